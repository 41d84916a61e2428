//! Value types shared by the workflow format, the journal, the engine and the sandbox.

pub mod cron;
pub mod duration;
pub mod glob;
pub mod names;
pub mod phase;
pub mod version;
pub mod window;
pub mod xorshift;

pub use duration::HumanDuration;
pub use phase::Phase;
pub use version::Version;
pub use window::Window;
