//! eks-upgrade: safe, resumable Amazon EKS upgrades driven by a declarative workflow.
//!
//! The binary is a thin shell over this library; see `docs/architecture.md` for the module map.

pub mod cli;
pub mod exit;
pub mod sandbox;
pub mod types;
pub mod ui;
pub mod workflow;
