//! Anomaly detection inside a shard: one [`TwinDetector`] per twin, fed every reading the
//! shard applies, in time order. Plain data, no IO: the shard decides what to do with the
//! scores (store them as the derived series [`SCORE_SIGNAL`], hand alarm edges to the alarm
//! service), and the engine persists the detectors' state so a restart does not forget what
//! each twin learned.
//!
//! Next to the detector, a twin whose model has a failure-mode catalogue keeps its
//! maintenance-advice state ([`TwinAdvice`]): hourly buckets of its recent history, the
//! detector's explanation since the last evaluation, and its [`AdviceTracker`]. Each scored
//! reading feeds them (cheap); advice is evaluated only every [`Detectors::advice_every`] of
//! reading time, once the detector has learned, exactly as `doppel eval advice` does.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use doppel_analytics::{
    AdviceConfig, AdviceEvent, AdviceInput, AdviceTracker, DetectorConfig, ExplanationWindow,
    PastCase, Score, SignalContribution, TwinDetector, TwinHistory,
};
use doppel_model::{format_ts, Catalog, Timestamp, ValidatedReading, Value};
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// Name of the derived series holding each twin's anomaly score (0..1, 0.5 = threshold).
/// Signal names cannot start with `.`, so it never collides with a model's signal.
pub const SCORE_SIGNAL: &str = ".anomaly_score";

/// A twin's detector with what the shard remembers around it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TwinAnalytics {
    pub det: TwinDetector,
    /// Time of the last reading scored; older readings are not scored (history only).
    pub last_ts: Timestamp,
    /// The last score, shown with the twin's state (kept across restarts).
    #[serde(default)]
    pub last: Option<Score>,
    /// Maintenance-advice state; absent while the twin's model has no failure modes (and in
    /// detector state saved before advice existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<Box<TwinAdvice>>,
}

/// Width of a history bucket for forecasts: one hour.
const ADVICE_BUCKET_NS: i64 = 3_600 * 1_000_000_000;

/// A twin's maintenance-advice state, fed by its shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TwinAdvice {
    /// Hourly buckets of the numeric signals (as many as the forecasts fit on: 14 days).
    pub history: TwinHistory,
    /// The detector's strongest contributions since the last evaluation. Not saved: its
    /// map is keyed by (signal, kind) pairs, which JSON cannot key an object by, and it
    /// holds at most one evaluation interval (a restart starts a fresh one).
    #[serde(skip)]
    pub window: ExplanationWindow,
    pub tracker: AdviceTracker,
    /// Reading time of the next evaluation (`Timestamp::MIN`: not set yet).
    pub next_eval: Timestamp,
}

impl TwinAdvice {
    fn new(config: &AdviceConfig) -> Self {
        TwinAdvice {
            history: TwinHistory::new(ADVICE_BUCKET_NS, config.forecast.max_points.max(1)),
            window: ExplanationWindow::default(),
            tracker: AdviceTracker::new(config.clone()),
            next_eval: Timestamp::MIN,
        }
    }
}

/// Health of a twin as its detector sees it, shown with the twin's state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TwinHealth {
    /// Latest anomaly score (0..1; 0.5 is the threshold).
    pub score: f64,
    /// True while the detector considers the twin anomalous.
    pub anomalous: bool,
    /// True while the detector is still learning what normal looks like.
    pub learning: bool,
    /// Feedback-adapted sensitivity factor (1 at start; above 1 after false alarms).
    pub sensitivity: f64,
    /// RFC 3339 time of the latest scored reading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scored_at: Option<String>,
    /// The signals contributing to the latest score, highest first.
    #[schema(value_type = Vec<Object>)]
    pub contributions: Vec<SignalContribution>,
}

impl TwinAnalytics {
    pub fn health(&self) -> TwinHealth {
        TwinHealth {
            score: self.last.as_ref().map_or(0.0, |s| s.total),
            anomalous: self.det.in_alarm(),
            learning: self.det.is_warming_up(),
            sensitivity: self.det.sensitivity(),
            scored_at: self.last.as_ref().map(|s| format_ts(s.ts)),
            contributions: self
                .last
                .as_ref()
                .map(|s| s.per_signal.iter().take(5).cloned().collect())
                .unwrap_or_default(),
        }
    }
}

/// The reading's numeric values as `(signal, value)`. Names borrowed, not cloned: the
/// interned `Arc`s are shared by every thread, and touching their counts for every value
/// would make cores fight over them.
fn numeric_values(r: &ValidatedReading) -> Vec<(&str, f64)> {
    r.values
        .iter()
        .filter_map(|(name, v)| match v {
            Value::Float(x) => Some((&**name, *x)),
            Value::Int(i) => Some((&**name, *i as f64)),
            Value::Bool(_) | Value::String(_) => None,
        })
        .collect()
}

/// Every detector of one shard.
#[derive(Debug, Default)]
pub(crate) struct Detectors {
    pub config: DetectorConfig,
    pub twins: HashMap<Arc<str>, TwinAnalytics>,
    /// Settings of every twin's advice tracker.
    pub advice: AdviceConfig,
    /// Reading time between two advice evaluations of a twin, in nanoseconds.
    pub advice_every: i64,
    /// The twins' remaining-life estimates, posted by the engine's RUL part.
    pub rul: Option<crate::rul::RulBoard>,
}

impl Detectors {
    pub fn new(config: DetectorConfig, twins: HashMap<Arc<str>, TwinAnalytics>) -> Self {
        Detectors {
            config,
            twins,
            advice: AdviceConfig::default(),
            advice_every: 600 * 1_000_000_000,
            rul: None,
        }
    }

    /// Reads remaining-life estimates from `board` at each advice evaluation.
    pub fn with_rul(mut self, board: crate::rul::RulBoard) -> Self {
        self.rul = Some(board);
        self
    }

    /// Sets how twins are advised.
    pub fn with_advice(mut self, advice: AdviceConfig, every: std::time::Duration) -> Self {
        self.advice = advice;
        self.advice_every = i64::try_from(every.as_nanos()).unwrap_or(i64::MAX).max(1);
        self
    }

    /// Feeds the reading just scored by [`observe`](Self::observe) (and its score, the
    /// twin's last) to the twin's advice state and, when an evaluation is due, evaluates its
    /// advice. `past_cases` is asked for the model's labelled cases only then. Returns the
    /// tracker's changes (usually none).
    pub fn advise(
        &mut self,
        catalog: &Catalog,
        r: &ValidatedReading,
        past_cases: impl FnOnce(&str) -> Vec<PastCase>,
    ) -> Vec<AdviceEvent> {
        let Some(model) = catalog.model(&r.model) else {
            return Vec::new();
        };
        if model.failure_modes.is_empty() {
            return Vec::new();
        }
        let Some(ta) = self.twins.get_mut(&r.twin) else {
            return Vec::new();
        };
        let TwinAnalytics {
            det, last, advice, ..
        } = ta;
        let Some(score) = last.as_ref().filter(|s| s.ts == r.ts) else {
            return Vec::new();
        };
        let adv = advice.get_or_insert_with(|| Box::new(TwinAdvice::new(&self.advice)));
        let values = numeric_values(r);
        adv.history.observe(r.ts, &values);
        adv.window.add(score);
        if adv.next_eval == Timestamp::MIN {
            adv.next_eval = r.ts.saturating_add(self.advice_every);
        }
        if r.ts < adv.next_eval {
            return Vec::new();
        }
        adv.next_eval = r.ts.saturating_add(self.advice_every);
        if det.is_warming_up() {
            // What the detector says while it learns is kept for the first evaluation.
            return Vec::new();
        }
        let (contributions, in_alarm) = adv.window.take();
        let cases = past_cases(&model.id);
        let input = AdviceInput {
            now: r.ts,
            model,
            contributions: &contributions,
            in_alarm,
            history: &adv.history,
            rul: self
                .rul
                .as_ref()
                .and_then(|b| crate::rul::board_life(b, &r.twin, r.ts)),
            past_cases: &cases,
        };
        adv.tracker.evaluate(&input).events
    }

    /// Maintenance was done on the twin: its tracker holds `failure_mode` off (from the
    /// twin's latest reading time, the clock its tracker runs on).
    pub fn dismiss_advice(&mut self, twin: &str, failure_mode: &str) -> bool {
        let Some(ta) = self.twins.get_mut(twin) else {
            return false;
        };
        let now = ta.last_ts;
        ta.advice
            .as_mut()
            .is_some_and(|a| a.tracker.dismiss(failure_mode, now))
    }

    /// Scores one reading. Returns the detector's decision before it and the score (kept as
    /// the twin's last; the caller clones it only if it needs to keep it), or `None` when
    /// nothing was scored (no numeric value, or a reading older than the last one scored:
    /// detectors learn in time order only).
    pub fn observe(&mut self, catalog: &Catalog, r: &ValidatedReading) -> Option<(bool, &Score)> {
        let values = numeric_values(r);
        if values.is_empty() {
            return None;
        }
        if !self.twins.contains_key(&r.twin) {
            let det = match catalog.model(&r.model) {
                Some(m) => TwinDetector::for_model(m, self.config.clone()),
                None => TwinDetector::new(self.config.clone()),
            };
            self.twins.insert(
                r.twin.clone(),
                TwinAnalytics {
                    det,
                    last_ts: Timestamp::MIN,
                    last: None,
                    advice: None,
                },
            );
        }
        let ta = self.twins.get_mut(&r.twin)?;
        if r.ts < ta.last_ts {
            return None;
        }
        ta.last_ts = r.ts;
        let was = ta.det.in_alarm();
        let score = ta.det.observe(r.ts, &values);
        Some((was, &*ta.last.insert(score)))
    }
}

/// Detector state on disk: `analytics/detectors-{shard}.json`, a map twin → detector,
/// replaced atomically by each shard.
pub(crate) fn state_path(dir: &Path, shard: usize) -> PathBuf {
    dir.join("analytics")
        .join(format!("detectors-{shard}.json"))
}

pub(crate) fn encode(
    twins: &HashMap<Arc<str>, TwinAnalytics>,
    path: &Path,
) -> Result<Vec<u8>, EngineError> {
    serde_json::to_vec(twins).map_err(|e| EngineError::Persist {
        path: path.to_path_buf(),
        source: e.into(),
    })
}

pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|source| EngineError::Persist {
            path: path.to_path_buf(),
            source,
        })?;
    }
    crate::catalog_file::write_atomic(path, bytes)
}

/// Loads every saved detector (whatever the shard count was when they were saved). A twin
/// found in several files keeps the one that scored the latest reading. Unreadable files
/// are logged and skipped: detectors then learn again.
pub(crate) fn load_all(dir: &Path) -> HashMap<Arc<str>, TwinAnalytics> {
    let mut out: HashMap<Arc<str>, TwinAnalytics> = HashMap::new();
    let Ok(entries) = fs::read_dir(dir.join("analytics")) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("detectors-") && name.ends_with(".json")) {
            continue;
        }
        let parsed = fs::read(e.path()).map_err(|e| e.to_string()).and_then(|b| {
            serde_json::from_slice::<HashMap<Arc<str>, TwinAnalytics>>(&b)
                .map_err(|e| e.to_string())
        });
        match parsed {
            Ok(map) => {
                for (twin, ta) in map {
                    let newer = out.get(&twin).is_none_or(|cur| ta.last_ts > cur.last_ts);
                    if newer {
                        out.insert(twin, ta);
                    }
                }
            }
            Err(err) => {
                tracing::warn!(file = %e.path().display(), error = %err, "detector state unreadable; those twins learn again");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_model::AssetModel;

    const MIN: i64 = 60 * 1_000_000_000;

    fn model(failure_modes: bool) -> AssetModel {
        let mut m = serde_json::json!({
            "id": "pump", "name": "Pump", "version": 1,
            "signals": [
                {"name": "bearing_temp", "unit": "°C", "kind": "float", "min": -20.0, "max": 120.0, "role": "output"},
                {"name": "vib", "unit": "mm/s", "kind": "float", "min": 0.0, "max": 20.0, "role": "output"}
            ]
        });
        if failure_modes {
            m["failure_modes"] = serde_json::json!([{
                "id": "bearing_wear", "name": "Bearing wear",
                "signature": [
                    {"signal": "vib", "direction": "rising", "weight": 2.0},
                    {"signal": "bearing_temp", "direction": "rising", "weight": 1.0}
                ],
                "actions": ["inspect the bearing"], "typical_horizon_h": 72.0
            }]);
        }
        serde_json::from_value(m).unwrap()
    }

    fn reading(model: &str, ts: i64, k: f64) -> ValidatedReading {
        ValidatedReading {
            twin: Arc::from("p1"),
            model: Arc::from(model),
            ts,
            values: vec![
                (
                    Arc::from("bearing_temp"),
                    Value::Float(60.0 + (k * 0.7).sin()),
                ),
                (Arc::from("vib"), Value::Float(2.0 + (k * 1.3).cos() * 0.1)),
            ],
        }
    }

    /// Feeds `n` readings a minute apart; returns the evaluations' count (tracker events are
    /// none on a healthy stream, so the window's take marks an evaluation).
    fn feed(dets: &mut Detectors, catalog: &Catalog, model: &str, n: usize) -> usize {
        let mut evaluations = 0;
        for k in 0..n {
            let r = reading(model, k as i64 * MIN, k as f64);
            if dets.observe(catalog, &r).is_none() {
                continue;
            }
            let mut asked = false;
            let events = dets.advise(catalog, &r, |_| {
                asked = true;
                Vec::new()
            });
            assert!(
                events.is_empty(),
                "a healthy twin gets no advice: {events:?}"
            );
            if asked {
                evaluations += 1;
            }
        }
        evaluations
    }

    #[test]
    fn advice_is_evaluated_on_reading_time_after_the_warm_up_only_with_failure_modes() {
        let config = DetectorConfig {
            warmup: 60,
            ..DetectorConfig::default()
        };
        let catalog = Catalog::from_parts(vec![model(true)], vec![]).unwrap();
        let mut dets = Detectors::new(config.clone(), HashMap::new())
            .with_advice(AdviceConfig::default(), std::time::Duration::from_secs(600));
        // 3 h a minute apart: the warm-up is the first hour, then one evaluation every 10 min.
        let n = feed(&mut dets, &catalog, "pump", 180);
        assert!((11..=13).contains(&n), "{n} evaluations");
        let adv = dets.twins["p1"].advice.as_ref().unwrap();
        assert!(adv.history.signal("vib").is_some());
        // Saved and loaded with the detector; state saved before advice existed still loads.
        let json = serde_json::to_string(&dets.twins).unwrap();
        let back: HashMap<Arc<str>, TwinAnalytics> = serde_json::from_str(&json).unwrap();
        assert!(back["p1"].advice.is_some());
        let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
        old["p1"].as_object_mut().unwrap().remove("advice");
        let back: HashMap<Arc<str>, TwinAnalytics> = serde_json::from_value(old).unwrap();
        assert!(back["p1"].advice.is_none());
        assert!(
            !dets.dismiss_advice("p1", "bearing_wear"),
            "nothing was open"
        );

        // A model without failure modes keeps no advice state.
        let catalog = Catalog::from_parts(vec![model(false)], vec![]).unwrap();
        let mut dets = Detectors::new(config, HashMap::new());
        assert_eq!(feed(&mut dets, &catalog, "pump", 180), 0);
        assert!(dets.twins["p1"].advice.is_none());
    }
}
