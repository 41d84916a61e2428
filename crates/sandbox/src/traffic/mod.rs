//! Traffic in the sandbox: requests to the names Route 53 serves, spread over the clusters by
//! the weights clients see, counted as a metrics exporter would count them, and a
//! Prometheus-compatible query API over those counters, the source an error-rate gate reads.

pub mod backends;
pub mod generator;
pub mod prometheus;
pub mod promql;
pub mod series;
