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
    /// The detector's strongest contributions since the last evaluation.
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

/// Every detector of one shard.
#[derive(Debug, Default)]
pub(crate) struct Detectors {
    pub config: DetectorConfig,
    pub twins: HashMap<Arc<str>, TwinAnalytics>,
    /// Reusable buffer of one reading's numeric values.
    values: Vec<(Arc<str>, f64)>,
    /// Settings of every twin's advice tracker.
    pub advice: AdviceConfig,
    /// Reading time between two advice evaluations of a twin, in nanoseconds.
    pub advice_every: i64,
}

impl Detectors {
    pub fn new(config: DetectorConfig, twins: HashMap<Arc<str>, TwinAnalytics>) -> Self {
        Detectors {
            config,
            twins,
            values: Vec::new(),
            advice: AdviceConfig::default(),
            advice_every: 600 * 1_000_000_000,
        }
    }

    /// Sets how twins are advised.
    pub fn with_advice(mut self, advice: AdviceConfig, every: std::time::Duration) -> Self {
        self.advice = advice;
        self.advice_every = i64::try_from(every.as_nanos()).unwrap_or(i64::MAX).max(1);
        self
    }

    /// Feeds the reading just scored by [`observe`](Self::observe) to the twin's advice state
    /// and, when an evaluation is due, evaluates its advice. `past_cases` is asked for the
    /// model's labelled cases only then. Returns the tracker's changes (usually none).
    pub fn advise(
        &mut self,
        catalog: &Catalog,
        r: &ValidatedReading,
        score: &Score,
        past_cases: impl FnOnce(&str) -> Vec<PastCase>,
    ) -> Vec<AdviceEvent> {
        let Some(ta) = self.twins.get_mut(&r.twin) else {
            return Vec::new();
        };
        let Some(model) = catalog.model(&r.model) else {
            return Vec::new();
        };
        if model.failure_modes.is_empty() {
            return Vec::new();
        }
        let adv = ta
            .advice
            .get_or_insert_with(|| Box::new(TwinAdvice::new(&self.advice)));
        adv.history.observe(r.ts, &self.values);
        adv.window.add(score);
        if adv.next_eval == Timestamp::MIN {
            adv.next_eval = r.ts.saturating_add(self.advice_every);
        }
        if r.ts < adv.next_eval {
            return Vec::new();
        }
        adv.next_eval = r.ts.saturating_add(self.advice_every);
        if ta.det.is_warming_up() {
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
            rul: None,
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

    /// Scores one reading. Returns the detector's decision before it and the score, or
    /// `None` when nothing was scored (no numeric value, or a reading older than the last
    /// one scored: detectors learn in time order only).
    pub fn observe(&mut self, catalog: &Catalog, r: &ValidatedReading) -> Option<(bool, Score)> {
        self.values.clear();
        for (name, v) in &r.values {
            match v {
                Value::Float(x) => self.values.push((name.clone(), *x)),
                Value::Int(i) => self.values.push((name.clone(), *i as f64)),
                Value::Bool(_) | Value::String(_) => {}
            }
        }
        if self.values.is_empty() {
            return None;
        }
        let ta = match self.twins.get_mut(&r.twin) {
            Some(t) => t,
            None => {
                let det = match catalog.model(&r.model) {
                    Some(m) => TwinDetector::for_model(m, self.config.clone()),
                    None => TwinDetector::new(self.config.clone()),
                };
                self.twins.entry(r.twin.clone()).or_insert(TwinAnalytics {
                    det,
                    last_ts: Timestamp::MIN,
                    last: None,
                    advice: None,
                })
            }
        };
        if r.ts < ta.last_ts {
            return None;
        }
        ta.last_ts = r.ts;
        let was = ta.det.in_alarm();
        let score = ta.det.observe(r.ts, &self.values);
        ta.last = Some(score.clone());
        Some((was, score))
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
