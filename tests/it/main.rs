//! The integration tests: one binary, because each test binary links the whole dependency set.

mod common;
mod schema;
mod validate;
