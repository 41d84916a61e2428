//! The integration tests: one binary, because each test binary links the whole dependency set.

// Helpers shared by tests unwrap like the tests themselves: a surprise fails the test.
#![allow(clippy::unwrap_used)]

mod baseline;
mod checks;
mod checks_karpenter;
mod checks_stale;
mod checks_subnets;
mod common;
mod debug_logs;
mod deploy;
mod e2e;
mod harness;
mod health_managers;
mod inputs;
mod kinds;
mod moto;
mod sandbox;
mod sandbox_ec2;
mod sandbox_eks;
mod sandbox_kms;
mod sandbox_kube;
mod sandbox_route53;
mod sandbox_s3;
mod sandbox_traffic;
mod sandbox_velero;
mod schema;
mod streams;
mod validate;
mod velero;
