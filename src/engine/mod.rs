//! The run engine: resolving hops, the run state machine, the journal, the lock, the window and
//! the report.

pub mod handle;
pub mod hops;
pub mod journal;
pub mod lock;
pub mod plan;
pub mod report;
pub mod run;
mod step_runner;
pub mod store;
