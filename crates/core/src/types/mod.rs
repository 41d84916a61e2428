//! Value types shared by the workflow format, the engine and the sandbox.

pub mod duration;
pub mod version;
pub mod window;

pub use duration::HumanDuration;
pub use version::Version;
pub use window::Window;
