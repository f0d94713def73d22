//! The fast path of batch validation: the same checks as `Catalog::validate_batch`, without
//! building a field path per value and with interned names, so a valid batch costs no
//! allocation per signal name. Any problem sends the whole batch to `validate_batch`, which
//! reports every error with its field path; a valid batch gives the same `ValidatedBatch`
//! from either path.

use std::collections::HashSet;
use std::sync::Arc;

use doppel_model::{AssetModel, Batch, Catalog, ReadingSource, ValidatedBatch, ValidatedReading};
use parking_lot::{RwLock, RwLockReadGuard};

/// Interned names are forgotten once there are this many (names of deleted twins and models
/// would otherwise stay for the life of the process).
const MAX_NAMES: usize = 1 << 20;

type NameSet = HashSet<Arc<str>, foldhash::fast::RandomState>;

/// One shared `Arc<str>` per twin, model and signal name the catalog accepted.
#[derive(Debug, Default)]
pub(crate) struct Names {
    set: RwLock<NameSet>,
}

impl Names {
    /// The validated form of `batch` if it passes every check of
    /// `Catalog::validate_batch`; `None` if anything fails (the caller then asks
    /// `validate_batch` for the errors).
    pub(crate) fn validate(&self, catalog: &Catalog, batch: &Batch) -> Option<ValidatedBatch> {
        self.validate_readings(catalog, &batch.readings)
    }

    /// [`Names::validate`] of readings owned or borrowed.
    pub(crate) fn validate_readings<R: ReadingSource>(
        &self,
        catalog: &Catalog,
        readings: &[R],
    ) -> Option<ValidatedBatch> {
        let mut set = self.set.read();
        let mut out = Vec::with_capacity(readings.len());
        // The interned names of the model the reading before belonged to, by signal place:
        // a batch is mostly readings of one model, and a clone of a name already looked up
        // saves hashing it again for every reading.
        let mut last_model: Option<(&AssetModel, Arc<str>)> = None;
        let mut names: Vec<Option<Arc<str>>> = Vec::new();
        for r in readings {
            let twin = catalog.twin(r.twin())?;
            let model = catalog.model(&twin.model)?;
            let pairs = r.values();
            if pairs.is_empty() {
                return None;
            }
            let model_name = match &last_model {
                Some((m, id)) if std::ptr::eq(*m, &**model) => id.clone(),
                _ => {
                    let id = self.intern(&mut set, &model.id);
                    last_model = Some((&**model, id.clone()));
                    names.clear();
                    names.resize(model.signals.len(), None);
                    id
                }
            };
            let mut values = Vec::with_capacity(pairs.len());
            // Devices mostly send a model's signals in the model's order: each name is
            // looked for where the previous one was found, plus one, before a scan. Found
            // at strictly rising places, the names are distinct (a model's are), and the
            // quadratic duplicate check is skipped.
            let signals = &model.signals;
            let mut rising = true;
            let mut next = 0;
            for (name, v) in pairs {
                let name = name.as_ref();
                let at = match signals.get(next) {
                    Some(s) if s.name == name => next,
                    _ => signals.iter().position(|s| s.name == name)?,
                };
                rising &= at >= next;
                next = at + 1;
                let spec = signals.get(at)?;
                // A cheap clone for numbers and bools; `coerce` is the catalog's own rule.
                let v = v.clone().coerce(spec.kind).ok()?;
                let interned = match names.get_mut(at) {
                    Some(Some(a)) => a.clone(),
                    Some(slot) => slot.insert(self.intern(&mut set, name)).clone(),
                    None => self.intern(&mut set, name),
                };
                values.push((interned, v));
            }
            if !rising && has_duplicate(pairs.iter().map(|(n, _)| n.as_ref())) {
                return None;
            }
            out.push(ValidatedReading {
                twin: self.intern(&mut set, r.twin()),
                model: model_name,
                ts: r.ts(),
                values,
            });
        }
        Some(ValidatedBatch { readings: out })
    }

    fn intern(&self, set: &mut RwLockReadGuard<'_, NameSet>, name: &str) -> Arc<str> {
        if let Some(a) = set.get(name) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(name);
        RwLockReadGuard::unlocked(set, || {
            let mut w = self.set.write();
            if w.len() >= MAX_NAMES {
                w.clear();
            }
            w.insert(a.clone());
        });
        a
    }
}

/// Whether a name occurs twice; quadratic for the usual handful of signals per reading.
fn has_duplicate<'a>(names: impl ExactSizeIterator<Item = &'a str> + Clone) -> bool {
    if names.len() <= 32 {
        let all: Vec<&str> = names.collect();
        (1..all.len()).any(|i| all[..i].contains(&all[i]))
    } else {
        let mut seen = HashSet::with_capacity(names.len());
        !names.into_iter().all(|n| seen.insert(n))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use doppel_model::{Reading, ReadingRef, Value};
    use proptest::prelude::*;
    use serde_json::json;

    fn catalog() -> Catalog {
        let mut c = Catalog::new();
        c.put_model(
            serde_json::from_value(json!({
                "id": "pump", "name": "Pump",
                "signals": [{"name": "temp", "unit": "C"}, {"name": "on", "kind": "bool"},
                            {"name": "cycles", "kind": "int"}, {"name": "state", "kind": "string"}]
            }))
            .unwrap(),
        )
        .unwrap();
        for id in ["p1", "p2"] {
            c.put_twin(serde_json::from_value(json!({"id": id, "model": "pump"})).unwrap())
                .unwrap();
        }
        c
    }

    fn value(k: u8, x: i64) -> Value {
        match k {
            0 => Value::Float(x as f64 / 2.0),
            1 => Value::Int(x),
            2 => Value::Bool(x % 2 == 0),
            3 => Value::String(format!("v{x}")),
            _ => Value::Float(f64::NAN),
        }
    }

    proptest! {
        /// The fast path accepts exactly what `validate_batch` accepts, with the same result.
        #[test]
        fn agrees_with_validate_batch(
            readings in proptest::collection::vec(
                (0u8..3, -5i64..5, proptest::collection::vec((0u8..5, 0u8..5, -4i64..4), 0..5)),
                0..5,
            )
        ) {
            let twins = ["p1", "p2", "nope"];
            let signals = ["temp", "on", "cycles", "state", "bogus"];
            let batch = Batch {
                readings: readings
                    .iter()
                    .map(|(t, ts, vals)| Reading {
                        twin: twins[*t as usize].to_string(),
                        ts: *ts,
                        values: vals
                            .iter()
                            .map(|(s, k, x)| (signals[*s as usize].to_string(), value(*k, *x)))
                            .collect(),
                    })
                    .collect(),
            };
            let c = catalog();
            let names = Names::default();
            let fast = names.validate(&c, &batch);
            // Borrowed names (line protocol) validate the same way.
            let borrowed: Vec<ReadingRef<'_>> = batch
                .readings
                .iter()
                .map(|r| ReadingRef {
                    twin: r.twin.as_str().into(),
                    ts: r.ts,
                    values: r.values.iter().map(|(k, v)| (k.as_str().into(), v.clone())).collect(),
                })
                .collect();
            prop_assert_eq!(&names.validate_readings(&c, &borrowed), &fast);
            let back: Vec<Reading> = borrowed.into_iter().map(ReadingRef::into_owned).collect();
            // Debug forms: NaN values compare unequal to themselves.
            prop_assert_eq!(format!("{back:?}"), format!("{:?}", batch.readings));
            let slow = c.validate_batch(batch, |i| format!("[{i}]."));
            match (fast, slow) {
                (Some(f), Ok(s)) => prop_assert_eq!(f, s),
                (None, Err(_)) => {}
                (f, s) => prop_assert!(false, "fast {:?} but slow {:?}", f, s),
            }
        }
    }

    #[test]
    fn names_are_shared() {
        let c = catalog();
        let names = Names::default();
        let batch = Batch {
            readings: vec![
                Reading {
                    twin: "p1".into(),
                    ts: 1,
                    values: vec![("temp".into(), Value::Int(1))],
                },
                Reading {
                    twin: "p1".into(),
                    ts: 2,
                    values: vec![("temp".into(), Value::Int(2))],
                },
            ],
        };
        let v = names.validate(&c, &batch).unwrap();
        assert!(Arc::ptr_eq(&v.readings[0].twin, &v.readings[1].twin));
        assert!(Arc::ptr_eq(
            &v.readings[0].values[0].0,
            &v.readings[1].values[0].0
        ));
        assert_eq!(v.readings[0].values[0].1, Value::Float(1.0));
    }
}
