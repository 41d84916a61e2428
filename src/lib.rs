//! eks-upgrade: safe, resumable Amazon EKS upgrades driven by a declarative workflow.
//!
//! The binary is a thin shell over this library; see `docs/architecture.md` for the module map.

pub mod checks;
pub mod cli;
pub mod cloud;
pub mod engine;
pub mod exit;
pub mod sandbox;
pub mod state;
pub mod steps;
pub mod types;
pub mod ui;
pub mod velero;
pub mod workflow;
