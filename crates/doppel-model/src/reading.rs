//! Readings: what arrives from the field. Every ingest path (HTTP JSON, line protocol, MQTT)
//! decodes into a [`Batch`]; the catalog validates it into a [`ValidatedBatch`] that the
//! engine stores and applies. A batch is accepted or refused as a whole.

use std::sync::Arc;

use crate::{Timestamp, Value};

/// One twin's values at one instant, as decoded, not yet checked against the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub twin: String,
    pub ts: Timestamp,
    pub values: Vec<(String, Value)>,
}

/// Readings decoded from one request or message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub readings: Vec<Reading>,
}

impl Batch {
    pub fn points(&self) -> usize {
        self.readings.iter().map(|r| r.values.len()).sum()
    }
}

/// A reading whose twin exists and whose values have the model's kinds. Names are shared
/// `Arc<str>` so fan-out to history, state and subscribers copies no strings.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedReading {
    pub twin: Arc<str>,
    pub model: Arc<str>,
    pub ts: Timestamp,
    pub values: Vec<(Arc<str>, Value)>,
}

/// A batch that passed validation as a whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValidatedBatch {
    pub readings: Vec<ValidatedReading>,
}

impl ValidatedBatch {
    pub fn points(&self) -> usize {
        self.readings.iter().map(|r| r.values.len()).sum()
    }
}
