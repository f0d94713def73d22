//! Failure modes: what can go wrong with an asset of a model, how it shows in the signals
//! (a signature), what to do about it and how soon. The advice engine matches a twin's
//! evidence against its model's catalogue of failure modes.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::{validate_id, AssetModel, ValidationErrors, ValueKind};

/// How a signal moves when a failure mode develops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignalDirection {
    /// The level goes up (a bearing heating).
    Rising,
    /// The level goes down (a pressure dropping with a leak).
    Falling,
    /// The level moves away from normal, either way.
    Shift,
    /// The level stays but the signal gets erratic (turbulence, cavitation).
    Noisy,
}

impl SignalDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalDirection::Rising => "rising",
            SignalDirection::Falling => "falling",
            SignalDirection::Shift => "shift",
            SignalDirection::Noisy => "noisy",
        }
    }
}

impl std::fmt::Display for SignalDirection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One signal of a failure mode's signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalPattern {
    pub signal: String,
    pub direction: SignalDirection,
    /// How characteristic this signal is of the mode, relative to the signature's others
    /// (1 by default; the signal that only this mode moves should weigh most).
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// How soon a developing failure mode needs attention once it is recognised.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

/// A way an asset of this model fails, as maintenance engineers catalogue it (FMEA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailureMode {
    /// Identifier (`bearing_wear`); advice and labelled cases refer to the mode by it.
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The signals that move when the mode develops, and how.
    pub signature: Vec<SignalPattern>,
    /// What to do, most urgent first (`inspect the drive-end bearing`, `replace it`).
    pub actions: Vec<String>,
    /// Typical time from the first signs to failure, in hours, when nothing is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typical_horizon_h: Option<f64>,
    #[serde(default)]
    pub urgency: Urgency,
    /// What happens if nothing is done (`bearing seizes, pump trips`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub consequence: String,
}

/// Checks a model's failure modes against its signals, adding every problem to `errs`.
pub(crate) fn validate_failure_modes(model: &AssetModel, errs: &mut ValidationErrors) {
    let mut seen = HashSet::new();
    for (i, m) in model.failure_modes.iter().enumerate() {
        let p = format!("failure_modes[{i}]");
        if let Err(e) = validate_id(&m.id) {
            errs.push(format!("{p}.id"), e);
        }
        if !seen.insert(m.id.as_str()) {
            errs.push(
                format!("{p}.id"),
                format!("duplicate failure mode `{}`", m.id),
            );
        }
        if m.name.trim().is_empty() {
            errs.push(format!("{p}.name"), "must not be empty");
        }
        if m.signature.is_empty() {
            errs.push(format!("{p}.signature"), "must name at least one signal");
        }
        let mut signals = HashSet::new();
        for (j, s) in m.signature.iter().enumerate() {
            let q = format!("{p}.signature[{j}]");
            match model.signal(&s.signal) {
                None => errs.push(
                    format!("{q}.signal"),
                    format!("unknown signal `{}` in model `{}`", s.signal, model.id),
                ),
                Some(spec) if !matches!(spec.kind, ValueKind::Float | ValueKind::Int) => errs.push(
                    format!("{q}.signal"),
                    format!("signal `{}` is {}, not numeric", s.signal, spec.kind),
                ),
                Some(_) => {}
            }
            if !signals.insert(s.signal.as_str()) {
                errs.push(
                    format!("{q}.signal"),
                    format!("signal `{}` appears twice in the signature", s.signal),
                );
            }
            if !(s.weight.is_finite() && s.weight > 0.0) {
                errs.push(format!("{q}.weight"), "must be a finite number > 0");
            }
        }
        if m.actions.iter().all(|a| a.trim().is_empty()) {
            errs.push(format!("{p}.actions"), "must give at least one action");
        }
        if let Some(h) = m.typical_horizon_h {
            if !(h.is_finite() && h > 0.0) {
                errs.push(
                    format!("{p}.typical_horizon_h"),
                    "must be a finite number of hours > 0",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::AssetModel;

    fn pump(modes: serde_json::Value) -> AssetModel {
        serde_json::from_value(serde_json::json!({
            "id": "pump", "name": "Pump",
            "signals": [
                {"name": "bearing_temp", "unit": "°C", "min": 10.0, "max": 90.0},
                {"name": "vib", "unit": "mm/s"},
                {"name": "running", "kind": "bool"}
            ],
            "failure_modes": modes
        }))
        .unwrap()
    }

    #[test]
    fn a_valid_catalogue_passes_and_defaults_apply() {
        let m = pump(serde_json::json!([{
            "id": "bearing_wear", "name": "Bearing wear",
            "signature": [{"signal": "vib", "direction": "rising", "weight": 2},
                          {"signal": "bearing_temp", "direction": "rising"}],
            "actions": ["inspect bearing"], "typical_horizon_h": 120
        }]));
        m.validate().unwrap();
        let f = &m.failure_modes[0];
        assert_eq!(f.signature[1].weight, 1.0);
        assert_eq!(f.urgency, super::Urgency::Medium);
    }

    #[test]
    fn models_without_failure_modes_still_load() {
        let m: AssetModel =
            serde_json::from_value(serde_json::json!({"id": "a", "name": "A"})).unwrap();
        assert!(m.failure_modes.is_empty());
        let json = serde_json::to_value(&m).unwrap();
        assert!(json.get("failure_modes").is_none(), "{json}");
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let m = pump(serde_json::json!([
            {"id": "x", "name": "X",
             "signature": [{"signal": "nope", "direction": "rising"},
                           {"signal": "running", "direction": "falling"},
                           {"signal": "vib", "direction": "noisy", "weight": 0},
                           {"signal": "vib", "direction": "rising"}],
             "actions": [" "], "typical_horizon_h": -1},
            {"id": "x", "name": "", "signature": [], "actions": ["a"]}
        ]));
        let errs = m.validate().unwrap_err();
        let fields: Vec<_> = errs.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "failure_modes[0].signature[0].signal",
                "failure_modes[0].signature[1].signal",
                "failure_modes[0].signature[2].weight",
                "failure_modes[0].signature[3].signal",
                "failure_modes[0].actions",
                "failure_modes[0].typical_horizon_h",
                "failure_modes[1].id",
                "failure_modes[1].name",
                "failure_modes[1].signature",
            ]
        );
    }
}
