//! Retention: how long history of a model's twins is kept. Periods are written as operators
//! write them (`"365d"`, `"30d"`, `"12h"`, `"2w"`; humantime syntax) and read when the model
//! is validated; the engine forgets points older than a period before the twin's newest
//! reading.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{AssetModel, ValidationErrors};

/// The shortest period a model may keep history for.
pub const MIN_RETENTION: Duration = Duration::from_secs(3600);

/// How long a model's history is kept: `default` for every signal (and the derived anomaly
/// score) unless `signals` names a period of its own. A signal with neither is kept forever.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Period for every signal without one of its own (`"365d"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Periods of single signals (`{"vibration_rms": "30d"}`), overriding `default`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub signals: BTreeMap<String, String>,
}

/// Reads a retention period (`"30d"`, `"12h 30m"`).
pub fn parse_period(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("unreadable period {s:?}: {e}"))
}

impl Retention {
    /// The period `signal` is kept for: its own, else the default; `None` keeps it forever.
    /// Periods that do not parse (the model was not validated) count as none.
    pub fn period(&self, signal: &str) -> Option<Duration> {
        self.signals
            .get(signal)
            .or(self.default.as_ref())
            .and_then(|s| parse_period(s).ok())
    }

    /// The default period, for series without an entry of their own (the anomaly score).
    pub fn default_period(&self) -> Option<Duration> {
        self.default.as_deref().and_then(|s| parse_period(s).ok())
    }
}

fn check_period(s: &str, field: String, errs: &mut ValidationErrors) {
    match parse_period(s) {
        Err(m) => errs.push(field, m),
        Ok(d) if d < MIN_RETENTION => {
            errs.push(field, format!("must be at least 1h, got {s:?}"));
        }
        Ok(_) => {}
    }
}

/// Checks a model's retention against its signals, adding every problem to `errs`.
pub(crate) fn validate_retention(model: &AssetModel, errs: &mut ValidationErrors) {
    let Some(r) = &model.retention else { return };
    if let Some(d) = &r.default {
        check_period(d, "retention.default".into(), errs);
    }
    for (signal, period) in &r.signals {
        let p = format!("retention.signals.{signal}");
        if model.signal(signal).is_none() {
            errs.push(
                p.clone(),
                format!("unknown signal `{signal}` in model `{}`", model.id),
            );
        }
        check_period(period, p, errs);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::AssetModel;

    fn pump(retention: serde_json::Value) -> AssetModel {
        serde_json::from_value(serde_json::json!({
            "id": "pump", "name": "Pump",
            "signals": [{"name": "bearing_temp"}, {"name": "vibration_rms"}],
            "retention": retention
        }))
        .unwrap()
    }

    #[test]
    fn periods_apply_per_signal_then_default() {
        let m = pump(serde_json::json!({"default": "365d", "signals": {"vibration_rms": "30d"}}));
        m.validate().unwrap();
        let r = m.retention.as_ref().unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(r.period("vibration_rms"), Some(day * 30));
        assert_eq!(r.period("bearing_temp"), Some(day * 365));
        assert_eq!(r.default_period(), Some(day * 365));
        let only = pump(serde_json::json!({"signals": {"vibration_rms": "2w"}}));
        only.validate().unwrap();
        let r = only.retention.as_ref().unwrap();
        assert_eq!(r.period("bearing_temp"), None);
        assert_eq!(r.default_period(), None);
        assert_eq!(r.period("vibration_rms"), Some(day * 14));
    }

    #[test]
    fn json_round_trips_as_written() {
        let m = pump(serde_json::json!({"default": "365d", "signals": {"vibration_rms": "30d"}}));
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            json["retention"],
            serde_json::json!({"default": "365d", "signals": {"vibration_rms": "30d"}})
        );
        let back: AssetModel = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
        let r = pump(serde_json::json!({"default": "7d"}));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["retention"], serde_json::json!({"default": "7d"}));
    }

    #[test]
    fn models_without_retention_still_load() {
        let m: AssetModel = serde_json::from_value(serde_json::json!({
            "id": "a", "name": "A", "signals": [{"name": "x"}]
        }))
        .unwrap();
        assert!(m.retention.is_none());
        m.validate().unwrap();
        let json = serde_json::to_value(&m).unwrap();
        assert!(json.get("retention").is_none(), "{json}");
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let m = pump(serde_json::json!({
            "default": "0s",
            "signals": {"nope": "30d", "vibration_rms": "59m", "bearing_temp": "soon"}
        }));
        let errs = m.validate().unwrap_err();
        let fields: Vec<_> = errs.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "retention.default",
                "retention.signals.bearing_temp",
                "retention.signals.nope",
                "retention.signals.vibration_rms",
            ]
        );
        assert!(errs.errors[0].message.contains("at least 1h"), "{errs}");
        assert!(errs.errors[2].message.contains("unknown signal"), "{errs}");
        let r: Result<AssetModel, _> = serde_json::from_value(serde_json::json!({
            "id": "a", "name": "A", "retention": {"defualt": "1d"}
        }));
        assert!(r.unwrap_err().to_string().contains("defualt"));
    }
}
