//! Readings: what arrives from the field. Every ingest path (HTTP JSON, line protocol, MQTT)
//! decodes into a [`Batch`]; the catalog validates it into a [`ValidatedBatch`] that the
//! engine stores and applies. A batch is accepted or refused as a whole.

use std::borrow::Cow;
use std::sync::Arc;

use crate::{Timestamp, Value};

/// One twin's values at one instant, as decoded, not yet checked against the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub twin: String,
    pub ts: Timestamp,
    pub values: Vec<(String, Value)>,
}

/// A reading as a decoder that borrows names from the request body makes it (line protocol:
/// no string copied per name; names with escapes are unescaped, so owned). The engine
/// validates it like a [`Reading`] ([`ReadingSource`]); [`ReadingRef::into_owned`] gives one.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingRef<'a> {
    pub twin: Cow<'a, str>,
    pub ts: Timestamp,
    pub values: Vec<(Cow<'a, str>, Value)>,
}

impl ReadingRef<'_> {
    pub fn into_owned(self) -> Reading {
        Reading {
            twin: self.twin.into_owned(),
            ts: self.ts,
            values: self
                .values
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v))
                .collect(),
        }
    }
}

/// What validation reads of a reading, owned or borrowed.
pub trait ReadingSource {
    type Name: AsRef<str>;
    fn twin(&self) -> &str;
    fn ts(&self) -> Timestamp;
    fn values(&self) -> &[(Self::Name, Value)];
}

impl ReadingSource for Reading {
    type Name = String;
    fn twin(&self) -> &str {
        &self.twin
    }
    fn ts(&self) -> Timestamp {
        self.ts
    }
    fn values(&self) -> &[(String, Value)] {
        &self.values
    }
}

impl<'a> ReadingSource for ReadingRef<'a> {
    type Name = Cow<'a, str>;
    fn twin(&self) -> &str {
        &self.twin
    }
    fn ts(&self) -> Timestamp {
        self.ts
    }
    fn values(&self) -> &[(Cow<'a, str>, Value)] {
        &self.values
    }
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
