//! Helpers shared by integration tests and benches.

pub mod plant;
