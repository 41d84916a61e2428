//! The integration tests: one binary, because each test binary links the whole dependency set.

mod common;
mod e2e;
mod sandbox;
mod sandbox_eks;
mod sandbox_kube;
mod sandbox_velero;
mod schema;
mod validate;
mod velero;
