//! Blue/green runs end to end: green made beside blue, blue's verified backup restored into
//! it, traffic moved by DNS weights and switched back in one change when something fails. The
//! sandbox's request record (filtered by cluster) proves what changed on which side.

mod create;
mod restore;
mod traffic;
