//! Remaining useful life in the running system, learned from the fleet's own history.
//!
//! Operators (or an importer) record **maintenance events** on twins: a `failure` (the asset
//! failed at that time: its history since its last renewal is a run to failure, and the
//! asset is renewed) or a `repair` (renewed without failing: a bearing replaced after
//! advice; done advice confirmed by the operator records one). The events live in
//! `maintenance.jsonl` (append-only, fsync per event, a torn last line skipped at open).
//!
//! For each asset model, once at least [`MIN_FAILURES`] failures of its twins are recorded,
//! a [`RulModel`] is fitted (on a blocking thread) on those runs read from the store as
//! hourly bucket means ([`FleetLayout`]) and kept in memory and in
//! `analytics/rul/{model}.json` with the record of every earlier fit (how many runs, the
//! cross-validated error), so the API shows the error dropping as failures accumulate.
//! Recording a failure refits the model. A twin's RUL is predicted from its history since
//! its last renewal (at most [`MAX_RUN_NS`] back), cached per twin until its newest hour or
//! the model changes, and posted on a board the shards' advice trackers read.
//!
//! Invariant: RUL never writes history or twin state; a model is a pure function of the
//! recorded events, the stored history and the seed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use doppel_analytics::{
    fleet_config, FleetLayout, RemainingLife, RulModel, RulRun, RulStep, FLEET_STEP_NS,
};
use doppel_model::{format_ts, AssetModel, Catalog, ModelError, Timestamp, ValidationErrors};
use doppel_store::{Agg, Store};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::catalog_file::write_json_atomic;
use crate::jsonl::JsonLines;
use crate::EngineError;

/// Failures of a model recorded before its RUL model is fitted.
pub const MIN_FAILURES: usize = 3;
/// The longest history a run or a prediction reads back from its end (60 days).
pub const MAX_RUN_NS: i64 = 60 * 86_400 * 1_000_000_000;
/// How long a posted estimate is used by advice after the time it was made for.
const BOARD_FRESH_NS: i64 = 6 * FLEET_STEP_NS;

/// What happened to the asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceKind {
    /// The asset failed: its history since the last renewal is a run to failure.
    Failure,
    /// Repaired or replaced before failing: a renewal, not a training run.
    Repair,
}

impl MaintenanceKind {
    pub fn parse(s: &str) -> Option<MaintenanceKind> {
        match s {
            "failure" => Some(MaintenanceKind::Failure),
            "repair" => Some(MaintenanceKind::Repair),
            _ => None,
        }
    }
}

/// One recorded maintenance event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MaintenanceEvent {
    /// `M-000001`...
    pub id: String,
    pub twin: String,
    pub model: String,
    pub kind: MaintenanceKind,
    /// When it happened (nanoseconds since the epoch, reading time).
    pub at: Timestamp,
    /// RFC 3339 form of `at`.
    pub time: String,
    /// The failure mode (an id of the model's catalogue), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Token id of who recorded it.
    pub by: String,
    /// Where it came from when not recorded directly (`advice V-000003`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A new event as asked for (the engine gives it an id).
#[derive(Debug, Clone)]
pub struct NewMaintenance {
    pub twin: String,
    pub kind: MaintenanceKind,
    /// `None`: the twin's newest reading time (the time its detectors and advice run on).
    pub at: Option<Timestamp>,
    pub failure_mode: Option<String>,
    pub note: Option<String>,
    pub by: String,
    pub source: Option<String>,
}

/// The recorded events and their log.
#[derive(Debug)]
pub(crate) struct MaintenanceBook {
    events: Vec<MaintenanceEvent>,
    file: JsonLines,
    next: u64,
}

impl MaintenanceBook {
    pub fn open(dir: &Path) -> Result<MaintenanceBook, EngineError> {
        let mut events = Vec::new();
        let (mut file, bad) = JsonLines::open(
            dir.join("maintenance.jsonl"),
            "maintenance",
            |e: MaintenanceEvent| events.push(e),
        )?;
        if bad > 0 {
            // A torn last line would otherwise glue itself to the next append.
            file.rewrite(events.iter())?;
        }
        let next = events
            .iter()
            .filter_map(|e| e.id.strip_prefix("M-")?.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        Ok(MaintenanceBook { events, file, next })
    }

    /// Appends the event durably, then keeps it.
    pub fn record(&mut self, mut e: MaintenanceEvent) -> Result<MaintenanceEvent, EngineError> {
        e.id = format!("M-{:06}", self.next);
        self.file.append(&e)?;
        self.next += 1;
        self.events.push(e.clone());
        Ok(e)
    }

    /// Events, oldest first, of a twin or a model (or all).
    pub fn list(&self, twin: Option<&str>, model: Option<&str>) -> Vec<MaintenanceEvent> {
        let mut v: Vec<MaintenanceEvent> = self
            .events
            .iter()
            .filter(|e| twin.is_none_or(|t| e.twin == t) && model.is_none_or(|m| e.model == m))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
        v
    }
}

/// One fit of a model, kept to show how the error moves as failures accumulate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FitRecord {
    /// Runs to failure it was fitted on.
    pub runs: usize,
    /// Cross-validated RMSE in hours where the true RUL is within the cap (each run
    /// predicted by a model that never saw it).
    pub cv_rmse_h: f64,
    /// Share of cross-validated hours whose true RUL was inside the interval.
    pub coverage: f64,
    /// Wall-clock time of the fit (RFC 3339).
    pub fitted_at: String,
    pub train_secs: f64,
}

/// One run to failure a model was fitted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunInfo {
    pub twin: String,
    /// The failure event.
    pub event: String,
    pub from: String,
    pub to: String,
    pub hours: usize,
}

/// A fitted fleet RUL model of one asset model, as stored and shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FleetRul {
    pub model: String,
    pub layout: FleetLayout,
    pub runs: Vec<RunInfo>,
    /// Failure events of the model's twins recorded when it was fitted (those without
    /// history before them included), so a fit already up to date is not repeated.
    #[serde(default)]
    pub failures: usize,
    /// Every fit of this model, oldest first; the last is the current one.
    pub fits: Vec<FitRecord>,
    pub rul: RulModel,
}

/// What `GET /models/{id}/rul` shows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RulModelInfo {
    pub model: String,
    /// `trained`, or `untrained` with the reason.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Failures recorded for twins of the model.
    pub failures: usize,
    pub min_failures: usize,
    /// Hours beyond which the model only says "at least this".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap_h: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<String>,
    /// The sensors the model found to move with wear.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sensors_used: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regimes: Option<usize>,
    pub runs: Vec<RunInfo>,
    pub fits: Vec<FitRecord>,
}

/// A twin's remaining useful life, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TwinRul {
    pub twin: String,
    pub model: String,
    /// `estimated`, `untrained` (no model for the twin's asset model yet) or `no_history`
    /// (nothing read since the twin's last renewal).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Remaining life in hours from `as_of`, and the interval that holds the truth with
    /// the model's coverage (90 %).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rul_h: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lower_h: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upper_h: Option<f64>,
    /// The estimate is at the model's cap: "at least `rul_h`".
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub capped: bool,
    /// Time of the newest reading the estimate read (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    #[serde(skip)]
    pub as_of_ts: Option<Timestamp>,
    /// Start of the history read: the last renewal, or the first reading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Runs to failure the model was fitted on.
    pub trained_on: usize,
}

/// Estimates the shards' advice trackers read (twin → time it is for, remaining life).
pub(crate) type RulBoard = Arc<RwLock<HashMap<Arc<str>, (Timestamp, RemainingLife)>>>;

/// The remaining life from the board as of `now`: the posted estimate aged by the time since
/// it was made, if it is not from the future and not stale.
pub(crate) fn board_life(board: &RulBoard, twin: &str, now: Timestamp) -> Option<RemainingLife> {
    let (at, life) = *board.read().get(twin)?;
    let age = now.checked_sub(at)?;
    if !(0..=BOARD_FRESH_NS).contains(&age) {
        return None;
    }
    let h = age as f64 / FLEET_STEP_NS as f64;
    Some(RemainingLife {
        hours: (life.hours - h).max(0.0),
        lower_h: (life.lower_h - h).max(0.0),
        upper_h: (life.upper_h - h).max(0.0),
    })
}

/// Models, estimates and events of the running engine.
#[derive(Debug)]
pub(crate) struct Rul {
    dir: PathBuf,
    pub book: Mutex<MaintenanceBook>,
    models: RwLock<HashMap<String, Arc<FleetRul>>>,
    /// Per twin: the estimate and the (newest hour, fit count) it was made for.
    cache: Mutex<HashMap<String, (Timestamp, usize, TwinRul)>>,
    pub board: RulBoard,
    /// One fit at a time.
    pub fitting: tokio::sync::Mutex<()>,
}

impl Rul {
    /// Opens `maintenance.jsonl` and the stored models under `dir`.
    pub fn open(dir: &Path) -> Result<Rul, EngineError> {
        let book = MaintenanceBook::open(dir)?;
        let models_dir = dir.join("analytics").join("rul");
        let mut models = HashMap::new();
        if let Ok(entries) = std::fs::read_dir(&models_dir) {
            for e in entries.flatten() {
                let path = e.path();
                if path.extension().is_none_or(|x| x != "json") {
                    continue;
                }
                match std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice::<FleetRul>(&b).map_err(|e| e.to_string()))
                {
                    Ok(m) => {
                        models.insert(m.model.clone(), Arc::new(m));
                    }
                    Err(error) => {
                        tracing::warn!(file = %path.display(), %error, "RUL model not loaded; it is refitted at the next failure or on request")
                    }
                }
            }
        }
        Ok(Rul {
            dir: models_dir,
            book: Mutex::new(book),
            models: RwLock::new(models),
            cache: Mutex::new(HashMap::new()),
            board: RulBoard::default(),
            fitting: tokio::sync::Mutex::new(()),
        })
    }

    pub fn model(&self, id: &str) -> Option<Arc<FleetRul>> {
        self.models.read().get(id).cloned()
    }

    fn path(&self, model: &str) -> PathBuf {
        self.dir.join(format!("{model}.json"))
    }

    /// Keeps a fitted model (file first, then memory).
    pub fn put(&self, m: FleetRul) -> Result<Arc<FleetRul>, EngineError> {
        write_json_atomic(&self.dir, &format!("{}.json", m.model), &m)?;
        let m = Arc::new(m);
        self.models.write().insert(m.model.clone(), m.clone());
        Ok(m)
    }

    /// Forgets a deleted model's fit.
    pub fn remove_model(&self, model: &str) {
        self.models.write().remove(model);
        let _ = std::fs::remove_file(self.path(model));
    }

    /// Forgets a deleted twin's estimate.
    pub fn remove_twin(&self, twin: &str) {
        self.cache.lock().remove(twin);
        self.board.write().remove(twin);
    }

    pub fn info(&self, model: &AssetModel) -> RulModelInfo {
        let failures = failures_of(&self.book.lock().list(None, Some(&model.id)), &model.id);
        match self.model(&model.id) {
            Some(m) => RulModelInfo {
                model: model.id.clone(),
                status: "trained",
                reason: None,
                failures,
                min_failures: MIN_FAILURES,
                cap_h: Some(m.rul.config().rul_cap),
                settings: m.layout.settings.clone(),
                sensors_used: m
                    .rul
                    .sensors_used()
                    .iter()
                    .filter_map(|&i| m.layout.sensors.get(i).cloned())
                    .collect(),
                regimes: Some(m.rul.regimes()),
                runs: m.runs.clone(),
                fits: m.fits.clone(),
            },
            None => RulModelInfo {
                model: model.id.clone(),
                status: "untrained",
                reason: Some(untrained_reason(&model.id, failures)),
                failures,
                min_failures: MIN_FAILURES,
                cap_h: None,
                settings: Vec::new(),
                sensors_used: Vec::new(),
                regimes: None,
                runs: Vec::new(),
                fits: Vec::new(),
            },
        }
    }

    /// The twin's RUL now (from its history since its last renewal), cached until the twin's
    /// newest hour or the model changes; posted on the advice board.
    pub fn estimate(
        &self,
        store: &Store,
        catalog: &Catalog,
        twin: &str,
    ) -> Result<TwinRul, EngineError> {
        let t = catalog
            .twin(twin)
            .ok_or_else(|| EngineError::TwinNotFound(twin.to_string()))?;
        let model = catalog
            .model(&t.model)
            .ok_or_else(|| EngineError::Model(ModelError::ModelNotFound(t.model.clone())))?;
        let base = TwinRul {
            twin: twin.to_string(),
            model: model.id.clone(),
            status: "untrained",
            reason: None,
            rul_h: None,
            lower_h: None,
            upper_h: None,
            capped: false,
            as_of: None,
            as_of_ts: None,
            since: None,
            trained_on: 0,
        };
        let Some(fleet) = self.model(&model.id) else {
            let failures = failures_of(&self.book.lock().list(None, Some(&model.id)), &model.id);
            return Ok(TwinRul {
                reason: Some(untrained_reason(&model.id, failures)),
                ..base
            });
        };
        let base = TwinRul {
            trained_on: fleet.runs.len(),
            ..base
        };
        let newest = fleet
            .layout
            .columns()
            .filter_map(|c| store.last(twin, c).map(|p| p.ts))
            .max();
        let renewal = self
            .book
            .lock()
            .list(Some(twin), None)
            .iter()
            .map(|e| e.at)
            .filter(|&at| newest.is_none_or(|n| at <= n))
            .max();
        let Some(newest) = newest.filter(|&n| renewal.is_none_or(|r| n > r)) else {
            return Ok(TwinRul {
                status: "no_history",
                reason: Some(match renewal {
                    Some(r) => format!("no readings since the last renewal at {}", format_ts(r)),
                    None => "no readings of the model's signals yet".to_string(),
                }),
                ..base
            });
        };
        let hour = newest.div_euclid(FLEET_STEP_NS);
        if let Some((h, fits, cached)) = self.cache.lock().get(twin) {
            if *h == hour && *fits == fleet.fits.len() {
                return Ok(cached.clone());
            }
        }
        let from = renewal.map_or(newest.saturating_sub(MAX_RUN_NS), |r| {
            r.max(newest.saturating_sub(MAX_RUN_NS))
        });
        let steps = read_steps(store, twin, &fleet.layout, from, newest.saturating_add(1))?;
        if steps.is_empty() {
            return Ok(TwinRul {
                status: "no_history",
                reason: Some("no readings of the model's sensors since the last renewal".into()),
                ..base
            });
        }
        let e = fleet
            .rul
            .predict(&steps)
            .map_err(|e| EngineError::NotEnoughHistory(e.to_string()))?;
        // The estimate is for the newest reading (the last hour read is still filling).
        let as_of = newest;
        let cap = fleet.rul.config().rul_cap;
        let out = TwinRul {
            status: "estimated",
            rul_h: Some(e.rul),
            lower_h: Some(e.lower),
            upper_h: Some(e.upper),
            capped: e.rul >= 0.95 * cap,
            as_of: Some(format_ts(as_of)),
            as_of_ts: Some(as_of),
            // The first hour read (the grid starts at the first sensor reading).
            since: Some(format_ts(
                (hour - (steps.len() as i64 - 1)).saturating_mul(FLEET_STEP_NS),
            )),
            ..base
        };
        if let Some(life) = RemainingLife::from_estimate(&e, 1.0) {
            self.board.write().insert(Arc::from(twin), (as_of, life));
        }
        self.cache
            .lock()
            .insert(twin.to_string(), (hour, fleet.fits.len(), out.clone()));
        Ok(out)
    }
}

fn untrained_reason(model: &str, failures: usize) -> String {
    format!(
        "{failures} failure(s) of model `{model}` recorded; the remaining-life model is fitted from {MIN_FAILURES}"
    )
}

/// The hourly steps of `twin`'s history over `[from, to)`, read as bucket means.
fn read_steps(
    store: &Store,
    twin: &str,
    layout: &FleetLayout,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<RulStep>, EngineError> {
    let from = from.div_euclid(FLEET_STEP_NS).saturating_mul(FLEET_STEP_NS);
    let mut columns = Vec::with_capacity(layout.width());
    for c in layout.columns() {
        let buckets = store.downsample(twin, c, from, to, FLEET_STEP_NS, Agg::Mean)?;
        columns.push(
            buckets
                .into_iter()
                .filter(|b| b.count > 0)
                .map(|b| (b.start, b.value))
                .collect::<Vec<_>>(),
        );
    }
    Ok(layout.steps(&columns))
}

/// Failure events recorded for `model` in `events`.
pub(crate) fn failures_of(events: &[MaintenanceEvent], model: &str) -> usize {
    events
        .iter()
        .filter(|e| e.kind == MaintenanceKind::Failure && e.model == model)
        .count()
}

/// Fits the model's RUL from every recorded failure of its twins. `previous` carries the
/// record of earlier fits.
pub(crate) fn fit(
    store: &Store,
    model: &AssetModel,
    events: &[MaintenanceEvent],
    previous: Option<&FleetRul>,
    seed: u64,
) -> Result<FleetRul, EngineError> {
    let layout = FleetLayout::for_model(model);
    if layout.sensors.is_empty() {
        return Err(EngineError::NotEnoughHistory(format!(
            "model `{}` has no numeric output signals to learn wear from",
            model.id
        )));
    }
    let mut runs = Vec::new();
    let mut infos = Vec::new();
    let mut failures = 0;
    for (i, e) in events.iter().enumerate() {
        if e.kind != MaintenanceKind::Failure || e.model != model.id {
            continue;
        }
        failures += 1;
        // The run starts at the twin's previous renewal (any earlier event).
        let start = events[..i]
            .iter()
            .filter(|p| p.twin == e.twin && p.at < e.at)
            .map(|p| p.at)
            .max()
            .unwrap_or(i64::MIN)
            .max(e.at.saturating_sub(MAX_RUN_NS));
        let steps = read_steps(store, &e.twin, &layout, start, e.at.saturating_add(1))?;
        if steps.len() < 2 {
            tracing::info!(twin = %e.twin, event = %e.id, "failure without hours of history before it: not a training run");
            continue;
        }
        // The grid ends at the failure's hour (the last hour with readings).
        let first_hour = e.at.div_euclid(FLEET_STEP_NS) - (steps.len() as i64 - 1);
        infos.push(RunInfo {
            twin: e.twin.clone(),
            event: e.id.clone(),
            from: format_ts(first_hour.saturating_mul(FLEET_STEP_NS)),
            to: e.time.clone(),
            hours: steps.len(),
        });
        runs.push(RulRun {
            id: format!("{} {}", e.twin, e.id),
            steps,
        });
    }
    if runs.len() < MIN_FAILURES {
        return Err(EngineError::NotEnoughHistory(format!(
            "{} failure(s) of model `{}` with history before them; the remaining-life model is fitted from {MIN_FAILURES}",
            runs.len(),
            model.id
        )));
    }
    let began = Instant::now();
    let rul = RulModel::fit(&runs, &fleet_config(seed))
        .map_err(|e| EngineError::NotEnoughHistory(format!("fitting RUL: {e}")))?;
    let mut fits = previous.map(|p| p.fits.clone()).unwrap_or_default();
    fits.push(FitRecord {
        runs: runs.len(),
        cv_rmse_h: rul.held_out().rmse_within_cap,
        coverage: rul.held_out().coverage,
        fitted_at: format_ts(wall_now_ns()),
        train_secs: began.elapsed().as_secs_f64(),
    });
    Ok(FleetRul {
        model: model.id.clone(),
        layout,
        runs: infos,
        failures,
        fits,
        rul,
    })
}

pub(crate) fn wall_now_ns() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Checks a new event against the catalog: the failure mode, if given, must be in the
/// model's catalogue.
pub(crate) fn validate(model: &AssetModel, e: &NewMaintenance) -> Result<(), EngineError> {
    let mut errs = ValidationErrors::new();
    if let Some(m) = &e.failure_mode {
        if !model.failure_modes.is_empty() && !model.failure_modes.iter().any(|f| &f.id == m) {
            errs.push(
                "failure_mode",
                format!(
                    "model `{}` has no failure mode `{m}` (known: {})",
                    model.id,
                    model
                        .failure_modes
                        .iter()
                        .map(|f| f.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    // An hour of clock skew is tolerated; a renewal in the future would hide every reading.
    if e.at
        .is_some_and(|at| at > wall_now_ns().saturating_add(FLEET_STEP_NS))
    {
        errs.push("at", "is in the future");
    }
    if e.note.as_ref().is_some_and(|n| n.len() > 4_096) {
        errs.push("note", "at most 4096 bytes");
    }
    if errs.errors.is_empty() {
        Ok(())
    } else {
        Err(EngineError::Invalid(errs))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn board_ages_estimates_and_ignores_stale_or_future_ones() {
        let board = RulBoard::default();
        let life = RemainingLife {
            hours: 100.0,
            lower_h: 50.0,
            upper_h: 150.0,
        };
        board
            .write()
            .insert(Arc::from("p1"), (10 * FLEET_STEP_NS, life));
        let at = |h: i64| board_life(&board, "p1", h * FLEET_STEP_NS);
        assert_eq!(at(10).unwrap().hours, 100.0);
        let two = at(12).unwrap();
        assert_eq!((two.hours, two.lower_h, two.upper_h), (98.0, 48.0, 148.0));
        assert!(
            at(9).is_none(),
            "an estimate made after the evaluation time"
        );
        assert!(at(17).is_none(), "stale");
        assert!(board_life(&board, "p2", 10 * FLEET_STEP_NS).is_none());
    }

    #[test]
    fn book_numbers_events_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ev = |twin: &str, at| MaintenanceEvent {
            id: String::new(),
            twin: twin.into(),
            model: "pump".into(),
            kind: MaintenanceKind::Failure,
            at,
            time: format_ts(at),
            failure_mode: Some("bearing_wear".into()),
            note: None,
            by: "admin".into(),
            source: None,
        };
        {
            let mut b = MaintenanceBook::open(dir.path()).unwrap();
            assert_eq!(b.record(ev("p2", 20)).unwrap().id, "M-000001");
            assert_eq!(b.record(ev("p1", 10)).unwrap().id, "M-000002");
        }
        // A torn last line after a crash is skipped.
        let path = dir.path().join("maintenance.jsonl");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"{\"id\":\"M-0000");
        std::fs::write(&path, bytes).unwrap();
        let mut b = MaintenanceBook::open(dir.path()).unwrap();
        let all = b.list(None, None);
        assert_eq!(all.iter().map(|e| e.at).collect::<Vec<_>>(), [10, 20]);
        assert_eq!(b.list(Some("p2"), None).len(), 1);
        assert!(b.list(None, Some("chiller")).is_empty());
        assert_eq!(b.record(ev("p1", 30)).unwrap().id, "M-000003");
        drop(b);
        let b = MaintenanceBook::open(dir.path()).unwrap();
        assert_eq!(
            b.list(None, None).len(),
            3,
            "the event after the torn line is kept"
        );
    }
}
