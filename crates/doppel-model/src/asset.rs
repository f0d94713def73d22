//! Asset models: the type of a twin. A model names the signals a twin of that type reports,
//! the static properties it carries and the relations it may have to other twins.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::failure::validate_failure_modes;
use crate::retention::validate_retention;
use crate::{validate_id, FailureMode, Retention, ValidationErrors, ValueKind};

/// What a signal is to the asset's dynamics. Inputs (setpoints, load, speed) and disturbances
/// (ambient) drive the physics; outputs are what the asset does in response. Learned dynamics
/// and what-if scenarios depend on this split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignalRole {
    #[default]
    Output,
    Input,
    Disturbance,
}

/// One signal a twin of this model reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalSpec {
    pub name: String,
    /// Unit as written by engineers (`°C`, `bar`, `mm/s`, `A`); free text.
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub kind: ValueKind,
    /// Lower bound of normal operation (numeric signals only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Upper bound of normal operation (numeric signals only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default)]
    pub role: SignalRole,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// A static property every twin of the model may or must carry (serial number, rated power).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PropertySpec {
    pub name: String,
    #[serde(default)]
    pub kind: ValueKind,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// A relation kind twins of this model may have (`feeds`, `powers`, `located_in`), optionally
/// restricted to targets of one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelationSpec {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_model: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// The type of a twin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssetModel {
    pub id: String,
    pub name: String,
    #[serde(default = "one")]
    pub version: u32,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub signals: Vec<SignalSpec>,
    #[serde(default)]
    pub properties: Vec<PropertySpec>,
    #[serde(default)]
    pub relations: Vec<RelationSpec>,
    /// How twins of this model fail and what to do about it; the advice engine's catalogue.
    /// Optional: models written before it existed load with none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failure_modes: Vec<FailureMode>,
    /// How long history of the model's twins is kept (`{"default": "365d", "signals":
    /// {"vibration_rms": "30d"}}`). Optional: without it, history is kept forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
}

fn one() -> u32 {
    1
}

impl AssetModel {
    pub fn signal(&self, name: &str) -> Option<&SignalSpec> {
        self.signals.iter().find(|s| s.name == name)
    }

    pub fn property(&self, name: &str) -> Option<&PropertySpec> {
        self.properties.iter().find(|p| p.name == name)
    }

    pub fn relation(&self, kind: &str) -> Option<&RelationSpec> {
        self.relations.iter().find(|r| r.kind == kind)
    }

    /// Checks the model on its own (references to other models are checked by the catalog).
    /// Reports every problem found.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::new();
        if let Err(m) = validate_id(&self.id) {
            errs.push("id", m);
        }
        if self.name.trim().is_empty() {
            errs.push("name", "must not be empty");
        }
        if self.version == 0 {
            errs.push("version", "must be at least 1");
        }
        let mut seen = HashSet::new();
        for (i, s) in self.signals.iter().enumerate() {
            let p = format!("signals[{i}]");
            if let Err(m) = validate_id(&s.name) {
                errs.push(format!("{p}.name"), m);
            }
            if !seen.insert(s.name.as_str()) {
                errs.push(
                    format!("{p}.name"),
                    format!("duplicate signal `{}`", s.name),
                );
            }
            let numeric = matches!(s.kind, ValueKind::Float | ValueKind::Int);
            for (field, v) in [("min", s.min), ("max", s.max)] {
                match v {
                    Some(_) if !numeric => errs.push(
                        format!("{p}.{field}"),
                        format!(
                            "only numeric signals have a normal range, this one is {}",
                            s.kind
                        ),
                    ),
                    Some(x) if !x.is_finite() => {
                        errs.push(format!("{p}.{field}"), "must be a finite number")
                    }
                    _ => {}
                }
            }
            if let (Some(lo), Some(hi)) = (s.min, s.max) {
                if lo > hi {
                    errs.push(format!("{p}.min"), format!("min {lo} is above max {hi}"));
                }
            }
        }
        let mut seen = HashSet::new();
        for (i, prop) in self.properties.iter().enumerate() {
            let p = format!("properties[{i}]");
            if let Err(m) = validate_id(&prop.name) {
                errs.push(format!("{p}.name"), m);
            }
            if !seen.insert(prop.name.as_str()) {
                errs.push(
                    format!("{p}.name"),
                    format!("duplicate property `{}`", prop.name),
                );
            }
        }
        let mut seen = HashSet::new();
        for (i, r) in self.relations.iter().enumerate() {
            let p = format!("relations[{i}]");
            if let Err(m) = validate_id(&r.kind) {
                errs.push(format!("{p}.kind"), m);
            }
            if !seen.insert(r.kind.as_str()) {
                errs.push(
                    format!("{p}.kind"),
                    format!("duplicate relation kind `{}`", r.kind),
                );
            }
            if let Some(t) = &r.target_model {
                if let Err(m) = validate_id(t) {
                    errs.push(format!("{p}.target_model"), m);
                }
            }
        }
        validate_failure_modes(self, &mut errs);
        validate_retention(self, &mut errs);
        errs.into_result()
    }

    pub fn failure_mode(&self, id: &str) -> Option<&FailureMode> {
        self.failure_modes.iter().find(|m| m.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pump() -> AssetModel {
        serde_json::from_value(serde_json::json!({
            "id": "pump", "name": "Centrifugal pump",
            "signals": [
                {"name": "bearing_temp", "unit": "°C", "min": 10.0, "max": 90.0},
                {"name": "running", "kind": "bool"}
            ],
            "properties": [{"name": "serial", "kind": "string", "required": true}],
            "relations": [{"kind": "feeds"}]
        }))
        .unwrap()
    }

    #[test]
    fn valid_model_passes() {
        pump().validate().unwrap();
        assert_eq!(pump().version, 1);
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let mut m = pump();
        m.id = "bad id".into();
        m.name = " ".into();
        m.signals.push(m.signals[0].clone());
        m.signals[1].min = Some(1.0);
        m.signals[0].min = Some(100.0);
        let errs = m.validate().unwrap_err();
        let fields: Vec<_> = errs.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "id",
                "name",
                "signals[0].min",
                "signals[1].min",
                "signals[2].name"
            ]
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r: Result<AssetModel, _> =
            serde_json::from_value(serde_json::json!({"id": "a", "name": "b", "sginals": []}));
        assert!(r.unwrap_err().to_string().contains("sginals"));
    }
}
