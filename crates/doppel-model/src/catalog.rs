//! The catalog: every asset model and twin, with the referential rules between them (a twin's
//! model exists, its parent exists and is not itself, relations are allowed by the model and
//! point at existing twins, a model in use cannot be deleted).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{
    validate_id, AssetModel, Batch, ModelError, SignalValues, Twin, ValidatedBatch,
    ValidatedReading, ValidationErrors,
};

/// Which twins to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TwinFilter {
    pub model: Option<String>,
    pub parent: Option<String>,
}

/// Models and twins, consistent with each other. Cheap to clone: entries are shared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    models: BTreeMap<String, Arc<AssetModel>>,
    twins: BTreeMap<String, Arc<Twin>>,
    #[serde(skip)]
    children: BTreeMap<String, BTreeSet<String>>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a catalog from stored documents, re-checking every rule. Documents that no
    /// longer validate are reported, not silently dropped.
    pub fn from_parts(
        models: Vec<AssetModel>,
        twins: Vec<Twin>,
    ) -> Result<Catalog, ValidationErrors> {
        let mut c = Catalog::new();
        let mut errs = ValidationErrors::new();
        for m in models {
            let id = m.id.clone();
            if let Err(e) = c.put_model(m) {
                errs.push(format!("models.{id}"), e.to_string());
            }
        }
        // Parents first: insert in an order where each parent precedes its children.
        let mut pending: Vec<Twin> = twins;
        loop {
            let before = pending.len();
            let mut rest = Vec::new();
            for t in pending {
                let ready = t.parent.as_ref().is_none_or(|p| c.twins.contains_key(p));
                if ready {
                    let id = t.id.clone();
                    if let Err(e) = c.insert_twin_unchecked_relations(t) {
                        errs.push(format!("twins.{id}"), e.to_string());
                    }
                } else {
                    rest.push(t);
                }
            }
            pending = rest;
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        for t in pending {
            errs.push(format!("twins.{}", t.id), "parent missing or cyclic");
        }
        // Relations may point at twins defined later, so check them once all are in.
        for t in c.twins.values() {
            if let Err(e) = c.check_twin(t, false) {
                for fe in e.errors {
                    errs.push(format!("twins.{}.{}", t.id, fe.field), fe.message);
                }
            }
        }
        errs.into_result().map(|()| c)
    }

    pub fn model(&self, id: &str) -> Option<&Arc<AssetModel>> {
        self.models.get(id)
    }

    pub fn twin(&self, id: &str) -> Option<&Arc<Twin>> {
        self.twins.get(id)
    }

    pub fn models(&self) -> impl Iterator<Item = &Arc<AssetModel>> {
        self.models.values()
    }

    pub fn twins(&self) -> impl Iterator<Item = &Arc<Twin>> {
        self.twins.values()
    }

    pub fn twin_count(&self) -> usize {
        self.twins.len()
    }

    pub fn list_twins(&self, filter: &TwinFilter) -> Vec<Arc<Twin>> {
        self.twins
            .values()
            .filter(|t| filter.model.as_ref().is_none_or(|m| &t.model == m))
            .filter(|t| {
                filter
                    .parent
                    .as_ref()
                    .is_none_or(|p| t.parent.as_ref() == Some(p))
            })
            .cloned()
            .collect()
    }

    pub fn children(&self, id: &str) -> Vec<Arc<Twin>> {
        self.children
            .get(id)
            .map(|ids| {
                ids.iter()
                    .filter_map(|c| self.twins.get(c).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Creates or replaces a model. A replacement must keep every twin of the model valid
    /// (required properties, relation kinds in use).
    pub fn put_model(&mut self, model: AssetModel) -> Result<(), ModelError> {
        model.validate().map_err(ModelError::Invalid)?;
        let old = self
            .models
            .insert(model.id.clone(), Arc::new(model.clone()));
        let mut errs = ValidationErrors::new();
        for t in self.twins.values().filter(|t| t.model == model.id) {
            if let Err(e) = self.check_twin(t, false) {
                for fe in e.errors {
                    errs.push(
                        format!("twin `{}` would become invalid: {}", t.id, fe.field),
                        fe.message,
                    );
                }
            }
        }
        if !errs.is_empty() {
            match old {
                Some(o) => self.models.insert(model.id.clone(), o),
                None => self.models.remove(&model.id),
            };
            return Err(ModelError::Invalid(errs));
        }
        Ok(())
    }

    /// Deletes a model; refused while any twin uses it.
    pub fn delete_model(&mut self, id: &str) -> Result<Arc<AssetModel>, ModelError> {
        if !self.models.contains_key(id) {
            return Err(ModelError::ModelNotFound(id.to_string()));
        }
        let users: Vec<_> = self.twins.values().filter(|t| t.model == id).collect();
        if let Some(first) = users.first() {
            return Err(ModelError::ModelInUse {
                model: id.to_string(),
                count: users.len(),
                example: first.id.clone(),
            });
        }
        self.models
            .remove(id)
            .ok_or_else(|| ModelError::ModelNotFound(id.to_string()))
    }

    /// Creates or replaces a twin after checking it against its model and the hierarchy.
    pub fn put_twin(&mut self, twin: Twin) -> Result<(), ModelError> {
        self.check_twin(&twin, true).map_err(ModelError::Invalid)?;
        self.insert_twin_unchecked_relations(twin)
    }

    fn insert_twin_unchecked_relations(&mut self, twin: Twin) -> Result<(), ModelError> {
        let mut errs = ValidationErrors::new();
        if let Err(m) = validate_id(&twin.id) {
            errs.push("id", m);
        }
        if !self.models.contains_key(&twin.model) {
            errs.push("model", format!("model `{}` does not exist", twin.model));
        }
        errs.into_result().map_err(ModelError::Invalid)?;
        if let Some(old) = self.twins.get(&twin.id) {
            if let Some(p) = &old.parent {
                if let Some(set) = self.children.get_mut(p) {
                    set.remove(&twin.id);
                }
            }
        }
        if let Some(p) = &twin.parent {
            self.children
                .entry(p.clone())
                .or_default()
                .insert(twin.id.clone());
        }
        self.twins.insert(twin.id.clone(), Arc::new(twin));
        Ok(())
    }

    /// Deletes a twin; refused while it has children. Relations pointing at it from other
    /// twins are removed with it, so no relation ever dangles.
    pub fn delete_twin(&mut self, id: &str) -> Result<Arc<Twin>, ModelError> {
        let Some(twin) = self.twins.get(id).cloned() else {
            return Err(ModelError::TwinNotFound(id.to_string()));
        };
        if let Some(kids) = self.children.get(id).filter(|k| !k.is_empty()) {
            return Err(ModelError::TwinHasChildren {
                twin: id.to_string(),
                count: kids.len(),
                example: kids.iter().next().cloned().unwrap_or_default(),
            });
        }
        self.twins.remove(id);
        self.children.remove(id);
        if let Some(p) = &twin.parent {
            if let Some(set) = self.children.get_mut(p) {
                set.remove(id);
            }
        }
        for t in self.twins.values_mut() {
            if t.relations.iter().any(|r| r.target == id) {
                let mut nt = (**t).clone();
                nt.relations.retain(|r| r.target != id);
                *t = Arc::new(nt);
            }
        }
        Ok(twin)
    }

    /// All rules a twin must satisfy. `check_cycles` is off while bulk-loading.
    fn check_twin(&self, twin: &Twin, check_cycles: bool) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::new();
        if let Err(m) = validate_id(&twin.id) {
            errs.push("id", m);
        }
        let model = self.models.get(&twin.model);
        if model.is_none() {
            errs.push("model", format!("model `{}` does not exist", twin.model));
        }
        if let Some(p) = &twin.parent {
            if p == &twin.id {
                errs.push("parent", "a twin cannot be its own parent");
            } else if !self.twins.contains_key(p) {
                errs.push("parent", format!("twin `{p}` does not exist"));
            } else if check_cycles && self.is_ancestor(&twin.id, p) {
                errs.push(
                    "parent",
                    format!("`{p}` is a descendant of `{}`: cycle", twin.id),
                );
            }
        }
        if let Some(model) = model {
            for (name, value) in &twin.properties {
                match model.property(name) {
                    None => errs.push(
                        format!("properties.{name}"),
                        format!("model `{}` has no property `{name}`", model.id),
                    ),
                    Some(spec) => {
                        if let Err(m) = value.clone().coerce(spec.kind) {
                            errs.push(format!("properties.{name}"), m);
                        }
                    }
                }
            }
            for spec in model.properties.iter().filter(|p| p.required) {
                if !twin.properties.contains_key(&spec.name) {
                    errs.push(
                        format!("properties.{}", spec.name),
                        "required property missing",
                    );
                }
            }
            let mut seen = HashSet::new();
            for (i, r) in twin.relations.iter().enumerate() {
                let path = format!("relations[{i}]");
                match model.relation(&r.kind) {
                    None => errs.push(
                        format!("{path}.kind"),
                        format!(
                            "model `{}` allows no `{}` relation (allowed: {})",
                            model.id,
                            r.kind,
                            if model.relations.is_empty() {
                                "none".to_string()
                            } else {
                                model
                                    .relations
                                    .iter()
                                    .map(|r| r.kind.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            }
                        ),
                    ),
                    Some(spec) => match self.twins.get(&r.target) {
                        None if r.target == twin.id => {}
                        None => errs.push(
                            format!("{path}.target"),
                            format!("twin `{}` does not exist", r.target),
                        ),
                        Some(target) => {
                            if let Some(tm) = &spec.target_model {
                                if &target.model != tm {
                                    errs.push(
                                        format!("{path}.target"),
                                        format!(
                                            "`{}` relations must point at `{tm}` twins, `{}` is a `{}`",
                                            r.kind, r.target, target.model
                                        ),
                                    );
                                }
                            }
                        }
                    },
                }
                if !seen.insert((&r.kind, &r.target)) {
                    errs.push(path, "duplicate relation");
                }
            }
        }
        errs.into_result()
    }

    /// Whether `ancestor` is `id` or above `id` in the hierarchy.
    fn is_ancestor(&self, ancestor: &str, id: &str) -> bool {
        let mut cur = Some(id.to_string());
        let mut steps = 0;
        while let Some(c) = cur {
            if c == ancestor {
                return true;
            }
            steps += 1;
            if steps > self.twins.len() + 1 {
                return true; // a cycle already exists; refuse rather than loop
            }
            cur = self.twins.get(&c).and_then(|t| t.parent.clone());
        }
        false
    }

    /// Checks a decoded batch against the models. `label(i)` prefixes the field paths of the
    /// i-th reading (`"[3]."`, `"line 4: "`), so errors point into the user's document.
    /// Either every reading is valid or nothing is returned.
    pub fn validate_batch(
        &self,
        batch: Batch,
        label: impl Fn(usize) -> String,
    ) -> Result<ValidatedBatch, ValidationErrors> {
        let mut errs = ValidationErrors::new();
        let mut out = Vec::with_capacity(batch.readings.len());
        for (i, r) in batch.readings.into_iter().enumerate() {
            let Some(twin) = self.twins.get(&r.twin) else {
                errs.push(
                    format!("{}twin", label(i)),
                    format!("twin `{}` does not exist", r.twin),
                );
                continue;
            };
            let Some(model) = self.models.get(&twin.model) else {
                errs.push(
                    format!("{}twin", label(i)),
                    format!("model `{}` missing", twin.model),
                );
                continue;
            };
            if r.values.is_empty() {
                errs.push(format!("{}values", label(i)), "no values");
            }
            let mut values = Vec::with_capacity(r.values.len());
            let mut seen = HashSet::new();
            for (name, v) in r.values {
                let field = format!("{}values.{name}", label(i));
                if !seen.insert(name.clone()) {
                    errs.push(field, "signal given twice in one reading");
                    continue;
                }
                match model.signal(&name) {
                    None => errs.push(
                        field,
                        format!("model `{}` has no signal `{name}`", model.id),
                    ),
                    Some(spec) => match v.coerce(spec.kind) {
                        Ok(v) => values.push((Arc::<str>::from(name), v)),
                        Err(m) => errs.push(field, m),
                    },
                }
            }
            out.push(ValidatedReading {
                twin: Arc::from(r.twin),
                model: Arc::from(model.id.as_str()),
                ts: r.ts,
                values: SignalValues::from_pairs(values),
            });
        }
        errs.into_result()
            .map(|()| ValidatedBatch { readings: out })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Reading, Relation, Value};
    use proptest::prelude::*;
    use serde_json::json;

    fn catalog() -> Catalog {
        let mut c = Catalog::new();
        c.put_model(serde_json::from_value(json!({"id": "site", "name": "Site"})).unwrap())
            .unwrap();
        c.put_model(
            serde_json::from_value(json!({
                "id": "pump", "name": "Pump",
                "signals": [{"name": "temp", "unit": "°C"}, {"name": "on", "kind": "bool"},
                            {"name": "cycles", "kind": "int"}],
                "properties": [{"name": "serial", "kind": "string", "required": true}],
                "relations": [{"kind": "feeds", "target_model": "pump"}]
            }))
            .unwrap(),
        )
        .unwrap();
        c.put_twin(twin("s1", "site", None)).unwrap();
        let mut p = twin("p1", "pump", Some("s1"));
        p.properties
            .insert("serial".into(), Value::String("X1".into()));
        c.put_twin(p).unwrap();
        c
    }

    fn twin(id: &str, model: &str, parent: Option<&str>) -> Twin {
        Twin {
            id: id.into(),
            model: model.into(),
            name: id.into(),
            parent: parent.map(Into::into),
            properties: Default::default(),
            relations: vec![],
        }
    }

    #[test]
    fn model_in_use_cannot_be_deleted() {
        let mut c = catalog();
        assert!(matches!(
            c.delete_model("pump"),
            Err(ModelError::ModelInUse { count: 1, .. })
        ));
        c.delete_twin("p1").unwrap();
        c.delete_model("pump").unwrap();
    }

    #[test]
    fn parent_with_children_cannot_be_deleted() {
        let mut c = catalog();
        assert!(matches!(
            c.delete_twin("s1"),
            Err(ModelError::TwinHasChildren { .. })
        ));
        assert_eq!(c.children("s1").len(), 1);
    }

    #[test]
    fn twin_errors_are_all_reported() {
        let c = catalog();
        let mut t = twin("p2", "pump", Some("nope"));
        t.properties
            .insert("colour".into(), Value::String("red".into()));
        t.relations.push(Relation {
            kind: "powers".into(),
            target: "p1".into(),
        });
        t.relations.push(Relation {
            kind: "feeds".into(),
            target: "s1".into(),
        });
        let mut c2 = c.clone();
        let Err(ModelError::Invalid(e)) = c2.put_twin(t) else {
            panic!("accepted")
        };
        let fields: Vec<_> = e.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "parent",
                "properties.colour",
                "properties.serial",
                "relations[0].kind",
                "relations[1].target"
            ]
        );
        assert_eq!(c, c2, "a refused twin leaves the catalog unchanged");
    }

    #[test]
    fn cycles_are_refused() {
        let mut c = catalog();
        let mut s = twin("s1", "site", Some("p1"));
        s.parent = Some("p1".into());
        assert!(c.put_twin(s).is_err());
    }

    #[test]
    fn batch_is_all_or_nothing() {
        let c = catalog();
        let ok = Reading {
            twin: "p1".into(),
            ts: 1,
            values: vec![("temp".into(), Value::Int(70))],
        };
        let v = c
            .validate_batch(
                Batch {
                    readings: vec![ok.clone()],
                },
                |_| String::new(),
            )
            .unwrap();
        assert_eq!(
            v.readings[0].values.get(0).map(|(_, v)| v),
            Some(&Value::Float(70.0))
        );

        let bad = Reading {
            twin: "p1".into(),
            ts: 2,
            values: vec![
                ("on".into(), Value::Float(1.5)),
                ("nope".into(), Value::Int(1)),
                ("cycles".into(), Value::String("x".into())),
            ],
        };
        let ghost = Reading {
            twin: "ghost".into(),
            ts: 2,
            values: vec![],
        };
        let e = c
            .validate_batch(
                Batch {
                    readings: vec![ok, bad, ghost],
                },
                |i| format!("[{i}]."),
            )
            .unwrap_err();
        let fields: Vec<_> = e.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "[1].values.on",
                "[1].values.nope",
                "[1].values.cycles",
                "[2].twin"
            ]
        );
    }

    #[test]
    fn serde_round_trip_rebuilds_indexes() {
        let c = catalog();
        let models: Vec<AssetModel> = c.models().map(|m| (**m).clone()).collect();
        let mut twins: Vec<Twin> = c.twins().map(|t| (**t).clone()).collect();
        twins.reverse();
        let c2 = Catalog::from_parts(models, twins).unwrap();
        assert_eq!(c2.children("s1").len(), 1);
        assert_eq!(c2.twin_count(), 2);
    }

    proptest! {
        /// Any sequence of puts and deletes keeps the invariants: every twin's model and
        /// parent exist, and no relation dangles.
        #[test]
        fn random_operations_keep_invariants(ops in proptest::collection::vec((0u8..4, 0usize..6, 0usize..6), 1..60)) {
            let mut c = catalog();
            let ids = ["a", "b", "c", "d", "e", "f"];
            for (op, x, y) in ops {
                match op {
                    0 => { let _ = c.put_twin(twin(ids[x], "site", Some(ids[y]).filter(|_| x != y))); }
                    1 => { let _ = c.delete_twin(ids[x]); }
                    2 => {
                        let mut t = twin(ids[x], "pump", None);
                        t.properties.insert("serial".into(), Value::String("s".into()));
                        t.relations.push(Relation { kind: "feeds".into(), target: ids[y].into() });
                        let _ = c.put_twin(t);
                    }
                    _ => { let _ = c.delete_model("site"); }
                }
                for t in c.twins() {
                    prop_assert!(c.model(&t.model).is_some());
                    if let Some(p) = &t.parent { prop_assert!(c.twin(p).is_some()); }
                    for r in &t.relations { prop_assert!(c.twin(&r.target).is_some() || r.target == t.id); }
                }
            }
        }
    }
}
