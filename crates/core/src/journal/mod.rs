//! The durable record of a run, below both the engine that drives a run and the steps that do
//! its work: the document (`record.rs`), where it is stored (`store.rs`: a local directory or an
//! S3 prefix), the handle a run writes it through (`handle.rs`), and the typed keys of the facts
//! steps record (`facts.rs`).

pub mod facts;
pub mod handle;
mod record;
pub mod store;

pub use facts::Fact;
pub use record::*;
