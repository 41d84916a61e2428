//! The durable record of a run, below both the engine that drives a run and the steps that do
//! its work: the document (`record.rs`), where it is stored (`store.rs`: a local directory or an
//! S3 prefix), its stored form with a version and checksum (`seal.rs`), the handle a run writes
//! it through (`handle.rs`), and the typed keys of the facts steps record (`facts.rs`).

#[cfg(feature = "crash-points")]
mod crash;
pub mod facts;
pub mod handle;
mod record;
pub mod seal;
pub mod store;

pub use facts::Fact;
pub use record::*;
