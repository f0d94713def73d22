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
    pub values: SignalValues,
}

/// A reading's values with the names of their signals. The names come as one shared list
/// (ingest gives every reading of a model in a batch the same list of the model's signal
/// names), and a value names its signal by its place in that list: validating a reading
/// touches one reference count instead of one per value, and threads that handle a batch
/// do not fight over the cache lines of a few names' counts, a value at a time.
#[derive(Debug, Clone, Default)]
pub struct SignalValues {
    names: Arc<[Arc<str>]>,
    values: Vec<(u32, Value)>,
}

impl SignalValues {
    /// No values yet, naming signals from `names`.
    pub fn with_capacity(names: Arc<[Arc<str>]>, capacity: usize) -> Self {
        SignalValues {
            names,
            values: Vec::with_capacity(capacity),
        }
    }

    /// Adds the value of the signal at place `at` of the names list; `false` (nothing
    /// added) if there is no such place.
    pub fn push(&mut self, at: usize, value: Value) -> bool {
        match u32::try_from(at) {
            Ok(i) if at < self.names.len() => {
                self.values.push((i, value));
                true
            }
            _ => false,
        }
    }

    /// Values with names of their own (each pair's name goes into a list of its own).
    pub fn from_pairs(pairs: Vec<(Arc<str>, Value)>) -> Self {
        let mut names = Vec::with_capacity(pairs.len());
        let mut values = Vec::with_capacity(pairs.len());
        for (i, (name, value)) in (0u32..).zip(pairs) {
            names.push(name);
            values.push((i, value));
        }
        SignalValues {
            names: names.into(),
            values,
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values in the order they were added, with their signals' names.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Arc<str>, &Value)> + Clone + '_ {
        let names = &*self.names;
        // `push` and `from_pairs` only store places inside the list.
        self.values
            .iter()
            .map(move |(i, v)| (&names[*i as usize], v))
    }

    /// The `k`-th value added and its signal's name.
    pub fn get(&self, k: usize) -> Option<(&Arc<str>, &Value)> {
        let (i, v) = self.values.get(k)?;
        Some((self.names.get(*i as usize)?, v))
    }
}

/// [`SignalValues::from_pairs`].
impl FromIterator<(Arc<str>, Value)> for SignalValues {
    fn from_iter<I: IntoIterator<Item = (Arc<str>, Value)>>(iter: I) -> Self {
        SignalValues::from_pairs(iter.into_iter().collect())
    }
}

/// Equal when they hold the same values under the same names in the same order, whatever
/// lists the names come from.
impl PartialEq for SignalValues {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(n: usize) -> Arc<[Arc<str>]> {
        (0..n).map(|i| Arc::from(format!("s{i}"))).collect()
    }

    #[test]
    fn a_value_names_a_place_of_its_list() {
        let mut v = SignalValues::with_capacity(names(3), 2);
        assert!(v.push(2, Value::Int(7)));
        assert!(!v.push(3, Value::Int(8)), "no fourth name");
        assert!(v.push(0, Value::Bool(true)));
        assert_eq!(v.len(), 2);
        let got: Vec<_> = v.iter().map(|(n, x)| (n.to_string(), x.clone())).collect();
        assert_eq!(
            got,
            [
                ("s2".to_string(), Value::Int(7)),
                ("s0".into(), Value::Bool(true))
            ]
        );
        assert_eq!(v.get(1).map(|(n, _)| &**n), Some("s0"));
        assert!(v.get(2).is_none());
    }

    proptest! {
        /// Equality is by names and values in order, whatever list the names come from.
        #[test]
        fn equal_by_content(places in proptest::collection::vec(0usize..6, 0..8)) {
            let list = names(6);
            let mut by_place = SignalValues::with_capacity(list.clone(), places.len());
            let mut pairs = Vec::new();
            for (k, &p) in places.iter().enumerate() {
                prop_assert!(by_place.push(p, Value::Int(k as i64)));
                pairs.push((list[p].clone(), Value::Int(k as i64)));
            }
            let own = SignalValues::from_pairs(pairs.clone());
            prop_assert_eq!(&by_place, &own);
            let collected: SignalValues = pairs.into_iter().collect();
            prop_assert_eq!(&collected, &own);
            if let Some(&p) = places.first() {
                let mut other = by_place.clone();
                other.values[0].0 = ((p + 1) % 6) as u32;
                prop_assert_ne!(&other, &own);
            }
        }
    }
}
