//! Ingest: every way readings arrive turns bytes into one [`doppel_model::Batch`] and hands it
//! to [`doppel_engine::Engine::ingest`]. Decoders here are pure functions (bytes in, batch or
//! field errors out) so they are property-tested without sockets.

pub mod json;
pub mod line_protocol;
pub mod mqtt;
