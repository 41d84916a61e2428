//! The emulated Kubernetes API server.

pub mod api;
pub mod resources;
pub mod selector;
pub mod store;
