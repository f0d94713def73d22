//! The fast path of batch validation: the same checks as `Catalog::validate_batch`, without
//! building a field path per value and with interned names, so a valid batch costs no
//! allocation per signal name. Any problem sends the whole batch to `validate_batch`, which
//! reports every error with its field path; a valid batch gives the same `ValidatedBatch`
//! from either path.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use doppel_model::{
    AssetModel, Batch, Catalog, ReadingSource, SignalValues, ValidatedBatch, ValidatedReading,
    Value, ValueKind,
};
use parking_lot::{Mutex, RwLock, RwLockReadGuard};

/// Interned names are forgotten once there are this many (names of deleted twins and models
/// would otherwise stay for the life of the process).
const MAX_NAMES: usize = 1 << 20;

type NameSet = HashSet<Arc<str>, foldhash::fast::RandomState>;

/// The interned names of a model's signals by place, one list per model version, keyed by
/// the model's address (the entry holds the model, so no other can take that address).
type SignalLists = HashMap<usize, (Arc<AssetModel>, SignalNames), foldhash::fast::RandomState>;

/// A model's signal names by place, interned.
type SignalNames = Arc<[Arc<str>]>;

/// Signal-name lists are forgotten once there are this many (old versions of models).
const MAX_LISTS: usize = 4096;

/// One shared `Arc<str>` per twin, model and signal name the catalog accepted.
#[derive(Debug, Default)]
pub(crate) struct Names {
    set: RwLock<NameSet>,
    lists: Mutex<SignalLists>,
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
        // The model the reading before belonged to, its interned id and the interned names
        // of its signals by place, made once per batch and shared by every reading of that
        // model in it: a batch is mostly readings of one model, and each of its readings
        // then holds one reference to the list instead of one per name.
        let mut last_model: Option<(&AssetModel, Arc<str>, SignalNames)> = None;
        for (i, r) in readings.iter().enumerate() {
            let twin = catalog.twin(r.twin())?;
            let model = catalog.model(&twin.model)?;
            let pairs = r.values();
            if pairs.is_empty() {
                return None;
            }
            let (model_name, names) = match &last_model {
                Some((m, id, names)) if std::ptr::eq(*m, &**model) => (id.clone(), names.clone()),
                _ => {
                    let id = self.intern(&mut set, &model.id);
                    let names = self.signal_names(&mut set, model, readings.len() - i);
                    last_model = Some((&**model, id.clone(), names.clone()));
                    (id, names)
                }
            };
            let mut values = SignalValues::with_capacity(names, pairs.len());
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
                // `coerce` is the catalog's own rule; a finite float for a float signal and an
                // integer for an integer one (nearly every value) pass as they are, without
                // the call and its `Result` (returned through memory, perf showed a third of
                // this function's time stalled reading it back).
                let v = match (v, spec.kind) {
                    (Value::Float(f), ValueKind::Float) if f.is_finite() => Value::Float(*f),
                    (Value::Int(i), ValueKind::Int) => Value::Int(*i),
                    _ => v.clone().coerce(spec.kind).ok()?,
                };
                if !values.push(at, v) {
                    return None;
                }
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

    /// The interned names of `model`'s signals by place. Shared by every batch of the model,
    /// unless up to `readings` readings of this batch may use it and that is at least as many
    /// as the model has signals: then the batch gets a copy of its own, so that threads
    /// handling different batches do not take turns at one reference count for every
    /// reading (a small batch of a large model keeps the shared list: the copy would cost
    /// more than it saves).
    fn signal_names(
        &self,
        set: &mut RwLockReadGuard<'_, NameSet>,
        model: &Arc<AssetModel>,
        readings: usize,
    ) -> SignalNames {
        let key = Arc::as_ptr(model) as usize;
        let cached = self
            .lists
            .lock()
            .get(&key)
            .filter(|(m, _)| Arc::ptr_eq(m, model))
            .map(|(_, names)| names.clone());
        let shared = match cached {
            Some(names) => names,
            None => {
                let names: SignalNames = model
                    .signals
                    .iter()
                    .map(|s| self.intern(set, &s.name))
                    .collect();
                let mut lists = self.lists.lock();
                if lists.len() >= MAX_LISTS {
                    lists.clear();
                }
                lists.insert(key, (model.clone(), names.clone()));
                names
            }
        };
        if readings >= shared.len() {
            shared.iter().cloned().collect()
        } else {
            shared
        }
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
        let first = |i: usize| v.readings[i].values.get(0).unwrap();
        assert!(Arc::ptr_eq(first(0).0, first(1).0));
        assert_eq!(first(0).1, &Value::Float(1.0));
    }

    /// The signal-name list of a model: shared by small batches, a copy of its own for a
    /// batch with at least as many readings as the model has signals, made again when the
    /// model changes; the names in it are the interned ones either way.
    #[test]
    fn signal_name_lists() {
        let mut c = catalog();
        let names = Names::default();
        let reading = |ts| Reading {
            twin: "p1".into(),
            ts,
            values: vec![("temp".into(), Value::Int(ts))],
        };
        let list = |v: &ValidatedBatch, i: usize| {
            let (name, _) = v.readings[i].values.get(0).unwrap();
            name.clone()
        };
        let small = || Batch {
            readings: vec![reading(1)],
        };
        let a = names.validate(&c, &small()).unwrap();
        let b = names.validate(&c, &small()).unwrap();
        // The same interned name either way; the lists themselves are compared through
        // what a reading can see of them: the name of the value.
        assert!(Arc::ptr_eq(&list(&a, 0), &list(&b, 0)));
        let key = Arc::as_ptr(c.model("pump").unwrap()) as usize;
        let shared = names.lists.lock().get(&key).unwrap().1.clone();
        let mut set = names.set.read();
        let model = c.model("pump").unwrap().clone();
        assert!(Arc::ptr_eq(
            &names.signal_names(&mut set, &model, 1),
            &shared
        ));
        let own = names.signal_names(&mut set, &model, 4);
        assert!(!Arc::ptr_eq(&own, &shared));
        assert!(own
            .iter()
            .zip(shared.iter())
            .all(|(x, y)| Arc::ptr_eq(x, y)));
        drop(set);
        let big = Batch {
            readings: (1..=4).map(reading).collect(),
        };
        let v = names.validate(&c, &big).unwrap();
        assert!(Arc::ptr_eq(&list(&v, 0), &list(&a, 0)));
        // A new version of the model gets a list of its own.
        let mut m = (**c.model("pump").unwrap()).clone();
        m.name = "Pump v2".into();
        c.put_model(m).unwrap();
        let model = c.model("pump").unwrap().clone();
        let mut set = names.set.read();
        let v2 = names.signal_names(&mut set, &model, 1);
        assert!(!Arc::ptr_eq(&v2, &shared));
        assert_eq!(names.lists.lock().len(), 2);
    }
}
