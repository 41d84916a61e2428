//! The run engine: resolving hops, the plan, the run state machine, the lock, the window and the
//! report. The journal it writes lives below it, in `crate::journal`.

pub mod assess;
mod blue_green;
pub mod hops;
pub mod lock;
pub mod locks;
pub mod plan;
pub mod report;
pub mod resume;
pub mod run;
mod step_runner;
