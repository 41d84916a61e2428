//! The integration tests: one binary, because each test binary links the whole dependency set.

mod baseline;
mod checks;
mod common;
mod deploy;
mod e2e;
mod harness;
mod moto;
mod sandbox;
mod sandbox_eks;
mod sandbox_kube;
mod sandbox_velero;
mod schema;
mod validate;
mod velero;
