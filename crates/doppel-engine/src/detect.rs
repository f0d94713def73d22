//! Anomaly detection inside a shard: one [`TwinDetector`] per twin, fed every reading the
//! shard applies, in time order. Plain data, no IO: the shard decides what to do with the
//! scores (store them as the derived series [`SCORE_SIGNAL`], hand alarm edges to the alarm
//! service), and the engine persists the detectors' state so a restart does not forget what
//! each twin learned.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use doppel_analytics::{DetectorConfig, Score, SignalContribution, TwinDetector};
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
}

impl Detectors {
    pub fn new(config: DetectorConfig, twins: HashMap<Arc<str>, TwinAnalytics>) -> Self {
        Detectors { config, twins }
    }

    /// Scores one reading. Returns the detector's decision before it and the score (kept as
    /// the twin's last; the caller clones it only if it needs to keep it), or `None` when
    /// nothing was scored (no numeric value, or a reading older than the last one scored:
    /// detectors learn in time order only).
    pub fn observe(&mut self, catalog: &Catalog, r: &ValidatedReading) -> Option<(bool, &Score)> {
        // Names borrowed, not cloned: the interned `Arc`s are shared by every thread, and
        // touching their counts here for every value would make cores fight over them.
        let values: Vec<(&str, f64)> = r
            .values
            .iter()
            .filter_map(|(name, v)| match v {
                Value::Float(x) => Some((&**name, *x)),
                Value::Int(i) => Some((&**name, *i as f64)),
                Value::Bool(_) | Value::String(_) => None,
            })
            .collect();
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
