//! The virtual testing ground in the running system: each twin's learned dynamics
//! (`doppel_analytics::sysid`), identified from its own history on demand, kept in memory and
//! in `analytics/sysid/{twin}.json`, and asked what-if questions.
//!
//! Reads only: identification, scenarios, optimization and troubleshooting read history and
//! never write to a twin's state or history (the sandbox is the model itself).
//!
//! History is read as bucket means at the model step (`Store::downsample`, answered from chunk
//! summaries where it can), one point per bucket at its middle, which lands each bucket in the
//! model's bin of the same span: a week of 1 Hz readings is read as 20,160 points per signal.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use doppel_analytics::sysid::{
    self, Cause, FitConfig, GraphLink, GraphNode, OptimizeResult, OptimizeSpec, RelatedHistory,
    ScenarioComparison, ScenarioResult, ScenarioSpec, Series, SysIdModel, TroubleshootConfig,
};
use doppel_model::{AssetModel, Catalog, Timestamp, ValueKind};
use doppel_store::{Agg, Store};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::EngineError;

const NS_PER_S: i64 = 1_000_000_000;
/// History read for an identification when none is given: the week before the last reading.
pub const DEFAULT_FIT_SPAN_S: i64 = 7 * 86_400;
/// History handed to a scenario as its starting state: a day and a bit (a day is needed to
/// repeat the last day's inputs).
const TAIL_S: i64 = 26 * 3_600;

/// A twin's identified model with where it came from.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Identified {
    pub twin: String,
    /// History the model was fitted on, `[from, to)`, nanoseconds.
    pub history_from: Timestamp,
    pub history_to: Timestamp,
    #[schema(value_type = Object)]
    pub model: SysIdModel,
}

/// One scenario's answer: its trajectories and how they differ from the baseline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScenarioOutcome {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[schema(value_type = Object)]
    pub result: ScenarioResult,
    #[schema(value_type = Object)]
    pub comparison: ScenarioComparison,
}

/// The answer to a what-if request: the baseline (nothing changed) and each scenario.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WhatIfAnswer {
    pub twin: String,
    /// Where the simulation starts (the end of the history it starts from), nanoseconds.
    pub start: Timestamp,
    /// Fit quality of the model that answered, per output.
    #[schema(value_type = Object)]
    pub model: ModelSummary,
    #[schema(value_type = Object)]
    pub baseline: ScenarioResult,
    pub scenarios: Vec<ScenarioOutcome>,
}

/// What a caller needs to know of a model to trust an answer.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub step_s: f64,
    pub history_from: Timestamp,
    pub history_to: Timestamp,
    /// Per output: held-out NRMSE one step and one horizon ahead.
    pub outputs: Vec<OutputFit>,
    pub skipped: Vec<sysid::SkippedSignal>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputFit {
    pub signal: String,
    #[serde(flatten)]
    pub quality: sysid::FitQuality,
}

impl ModelSummary {
    pub fn of(id: &Identified) -> ModelSummary {
        ModelSummary {
            step_s: id.model.step_s,
            history_from: id.history_from,
            history_to: id.history_to,
            outputs: id
                .model
                .outputs
                .iter()
                .map(|o| OutputFit {
                    signal: o.signal.clone(),
                    quality: o.quality.clone(),
                })
                .collect(),
            skipped: id.model.skipped.clone(),
        }
    }
}

/// Identified models of the twins, in memory and on disk.
#[derive(Debug)]
pub(crate) struct Models {
    dir: PathBuf,
    cache: Mutex<HashMap<String, Arc<Identified>>>,
}

impl Models {
    pub fn new(data_dir: &Path) -> Models {
        Models {
            dir: data_dir.join("analytics").join("sysid"),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn path(&self, twin: &str) -> PathBuf {
        self.dir.join(format!("{twin}.json"))
    }

    /// The twin's model: from memory, else from disk (a file that does not parse is ignored
    /// with a warning: the model is refitted when next needed).
    pub fn get(&self, twin: &str) -> Option<Arc<Identified>> {
        if let Some(m) = self.cache.lock().get(twin) {
            return Some(m.clone());
        }
        let bytes = std::fs::read(self.path(twin)).ok()?;
        match serde_json::from_slice::<Identified>(&bytes) {
            Ok(m) if m.twin == twin => {
                let m = Arc::new(m);
                self.cache.lock().insert(twin.to_string(), m.clone());
                Some(m)
            }
            Ok(_) | Err(_) => {
                tracing::warn!(
                    twin,
                    "ignoring an unreadable identified model; it will be refitted"
                );
                None
            }
        }
    }

    pub fn put(&self, m: Identified) -> Result<Arc<Identified>, EngineError> {
        crate::catalog_file::write_json_atomic(&self.dir, &format!("{}.json", m.twin), &m)?;
        let m = Arc::new(m);
        self.cache.lock().insert(m.twin.clone(), m.clone());
        Ok(m)
    }

    /// Forgets a deleted twin's model.
    pub fn remove(&self, twin: &str) {
        self.cache.lock().remove(twin);
        let _ = std::fs::remove_file(self.path(twin));
    }
}

/// The numeric signals of `model` as bucket means at `step_s` over `[from, to)`.
pub(crate) fn read_series(
    store: &Store,
    twin: &str,
    model: &AssetModel,
    from: Timestamp,
    to: Timestamp,
    step_s: f64,
) -> Result<Vec<Series>, EngineError> {
    let step = ((step_s * 1e9).round() as i64).max(1);
    // Buckets aligned to whole steps since the epoch, like the model's bins.
    let from = from.div_euclid(step).saturating_mul(step);
    let mut out = Vec::new();
    for s in &model.signals {
        if !matches!(s.kind, ValueKind::Float | ValueKind::Int | ValueKind::Bool) {
            continue;
        }
        let buckets = store.downsample(twin, &s.name, from, to, step, Agg::Mean)?;
        let points = buckets
            .into_iter()
            .filter(|b| b.count > 0 && b.value.is_finite())
            .map(|b| (b.start.saturating_add(step / 2), b.value))
            .collect::<Vec<_>>();
        if !points.is_empty() {
            out.push(Series::new(s.name.clone(), points));
        }
    }
    Ok(out)
}

/// New history after which a model is refitted before answering: half the span it was
/// fitted on, and at least six hours.
pub fn refit_after(m: &Identified) -> i64 {
    let span = m.history_to.saturating_sub(m.history_from);
    (span / 2).max(6 * 3_600 * NS_PER_S)
}

/// The end of the twin's history (its newest reading of any signal), if it has one.
pub(crate) fn last_reading(store: &Store, twin: &str, model: &AssetModel) -> Option<Timestamp> {
    model
        .signals
        .iter()
        .filter_map(|s| store.last(twin, &s.name).map(|p| p.ts))
        .max()
}

/// Fits `twin`'s model on `[from, to)` (defaults: the week before its last reading).
pub(crate) fn identify(
    store: &Store,
    catalog: &Catalog,
    twin: &str,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    config: &FitConfig,
) -> Result<Identified, EngineError> {
    let model = twin_model(catalog, twin)?;
    let to = match to {
        Some(t) => t,
        None => last_reading(store, twin, model)
            .ok_or_else(|| sysid_err(sysid::SysIdError::EmptyHistory))?
            .saturating_add(1),
    };
    let from = from.unwrap_or(to.saturating_sub(DEFAULT_FIT_SPAN_S * NS_PER_S));
    let history = read_series(store, twin, model, from, to, config.step_s)?;
    let fitted = sysid::fit(model, &history, config).map_err(sysid_err)?;
    // The span the data covers, not the window asked for: a twin with eight hours of
    // history was fitted on eight hours, whatever the default window.
    let half = ((config.step_s * 1e9) as i64 / 2).max(0);
    let first = history
        .iter()
        .filter_map(|s| s.points.first().map(|p| p.0.saturating_sub(half)))
        .min()
        .unwrap_or(from)
        .max(from);
    Ok(Identified {
        twin: twin.to_string(),
        history_from: first,
        history_to: to,
        model: fitted,
    })
}

/// The history a scenario starts from: the day and a bit before `start`.
pub(crate) fn tail(
    store: &Store,
    catalog: &Catalog,
    twin: &str,
    step_s: f64,
    start: Timestamp,
) -> Result<Vec<Series>, EngineError> {
    let model = twin_model(catalog, twin)?;
    read_series(
        store,
        twin,
        model,
        start.saturating_sub(TAIL_S * NS_PER_S),
        start,
        step_s,
    )
}

/// Runs the baseline and each named scenario from the same start. The baseline spans the
/// longest scenario at the finest step asked for (`alone` when there is no scenario).
pub(crate) fn run_scenarios(
    id: &Identified,
    tail: &[Series],
    scenarios: &[(Option<String>, ScenarioSpec)],
    alone: ScenarioSpec,
) -> Result<WhatIfAnswer, EngineError> {
    let base_spec = match scenarios.first() {
        None => alone,
        Some((_, first)) => {
            let longest = scenarios
                .iter()
                .map(|(_, s)| s.horizon_s)
                .fold(0.0f64, f64::max);
            let out_step = scenarios
                .iter()
                .map(|(_, s)| s.output_step_s)
                .fold(f64::INFINITY, f64::min);
            let mut b = ScenarioSpec::baseline(longest, out_step);
            b.baseline = first.baseline;
            b
        }
    };
    let (longest, out_step) = (base_spec.horizon_s, base_spec.output_step_s);
    let baseline = sysid::simulate(&id.model, tail, &base_spec).map_err(sysid_err)?;
    let mut outcomes = Vec::with_capacity(scenarios.len());
    for (name, spec) in scenarios {
        let result = sysid::simulate(&id.model, tail, spec).map_err(sysid_err)?;
        // Compare over the scenario's own horizon and step: re-run the baseline on them when
        // they differ from the longest one.
        let comparison = if spec.horizon_s == longest && spec.output_step_s == out_step {
            sysid::compare(&baseline, &result)
        } else {
            let mut b = ScenarioSpec::baseline(spec.horizon_s, spec.output_step_s);
            b.baseline = spec.baseline;
            let b = sysid::simulate(&id.model, tail, &b).map_err(sysid_err)?;
            sysid::compare(&b, &result)
        }
        .map_err(sysid_err)?;
        outcomes.push(ScenarioOutcome {
            name: name.clone(),
            result,
            comparison,
        });
    }
    Ok(WhatIfAnswer {
        twin: id.twin.clone(),
        start: baseline.start,
        model: ModelSummary::of(id),
        baseline,
        scenarios: outcomes,
    })
}

/// One twin's part of a linked (graph) scenario.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GraphTwinOutcome {
    pub twin: String,
    #[schema(value_type = Object)]
    pub model: ModelSummary,
    #[schema(value_type = Object)]
    pub result: ScenarioResult,
    /// Against the same twins run without any change.
    #[schema(value_type = Object)]
    pub comparison: ScenarioComparison,
}

/// The answer to a linked scenario: every twin, upstream first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GraphAnswer {
    pub start: Timestamp,
    pub twins: Vec<GraphTwinOutcome>,
}

/// Runs linked twins' scenarios (upstream outputs driving downstream inputs) and the same
/// graph without changes, from each twin's history up to `start`.
pub(crate) fn run_graph(
    nodes: &[(Arc<Identified>, ScenarioSpec, Vec<Series>)],
    links: &[GraphLink],
) -> Result<GraphAnswer, EngineError> {
    let build = |with_changes: bool| -> Vec<GraphNode<'_>> {
        nodes
            .iter()
            .map(|(id, spec, tail)| {
                let mut spec = spec.clone();
                if !with_changes {
                    spec.changes.clear();
                }
                GraphNode {
                    twin: id.twin.clone(),
                    model: &id.model,
                    history_tail: tail,
                    spec,
                }
            })
            .collect()
    };
    let changed = sysid::simulate_graph(&build(true), links).map_err(sysid_err)?;
    let baseline = sysid::simulate_graph(&build(false), links).map_err(sysid_err)?;
    let mut twins = Vec::with_capacity(changed.len());
    let mut start = Timestamp::MAX;
    for (twin, result) in changed {
        let base = baseline
            .iter()
            .find(|(t, _)| *t == twin)
            .map(|(_, r)| r)
            .ok_or_else(|| {
                sysid_err(sysid::SysIdError::Twin {
                    twin: twin.clone(),
                    problem: "missing from the baseline run".into(),
                })
            })?;
        let comparison = sysid::compare(base, &result).map_err(sysid_err)?;
        let id = nodes
            .iter()
            .find(|(id, _, _)| id.twin == twin)
            .map(|(id, _, _)| id.clone())
            .ok_or_else(|| EngineError::TwinNotFound(twin.clone()))?;
        start = start.min(result.start);
        twins.push(GraphTwinOutcome {
            twin,
            model: ModelSummary::of(&id),
            result,
            comparison,
        });
    }
    Ok(GraphAnswer { start, twins })
}

pub(crate) fn optimize(
    id: &Identified,
    tail: &[Series],
    spec: &OptimizeSpec,
) -> Result<OptimizeResult, EngineError> {
    sysid::optimize(&id.model, tail, spec).map_err(sysid_err)
}

/// Ranks candidate causes of what happened to `twin` from `window_start` on, with the twins
/// related to it (both directions of every relation) as possible upstream causes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn troubleshoot(
    store: &Store,
    catalog: &Catalog,
    models: &Models,
    twin: &str,
    window_start: Timestamp,
    window_end: Timestamp,
    config: &TroubleshootConfig,
) -> Result<Vec<Cause>, EngineError> {
    let from = window_start.saturating_sub((config.baseline_s as i64).saturating_mul(NS_PER_S));
    // (twin, relation path) of the twin itself and its neighbours.
    let mut who: Vec<(String, String)> = vec![(twin.to_string(), "self".to_string())];
    let me = catalog
        .twin(twin)
        .ok_or_else(|| EngineError::TwinNotFound(twin.to_string()))?;
    for r in &me.relations {
        who.push((r.target.clone(), format!("{}->{}", r.kind, r.target)));
    }
    for t in catalog.twins() {
        for r in &t.relations {
            if r.target == twin && t.id != twin {
                who.push((t.id.clone(), format!("{}<-{}", r.kind, t.id)));
            }
        }
    }
    if let Some(p) = &me.parent {
        who.push((p.clone(), "parent".to_string()));
    }
    who.dedup_by(|a, b| a.0 == b.0);
    let mut loaded = Vec::new();
    for (id, relation) in who {
        let Ok(asset) = twin_model(catalog, &id) else {
            continue;
        };
        let model = models.get(&id);
        let step = model.as_ref().map_or(config.step_s, |m| m.model.step_s);
        let history = read_series(store, &id, asset, from, window_end, step)?;
        if history.is_empty() {
            continue;
        }
        loaded.push((id, relation, asset.clone(), model, history));
    }
    let related: Vec<RelatedHistory<'_>> = loaded
        .iter()
        .map(|(id, relation, asset, model, history)| RelatedHistory {
            twin: id,
            relation,
            asset,
            model: model.as_ref().map(|m| &m.model),
            history,
        })
        .collect();
    sysid::troubleshoot(&related, window_start, config).map_err(|e| match e {
        // Here a twin-level refusal is about its history (too little before the window, or
        // none in it): the history cannot answer yet, not a bad request.
        sysid::SysIdError::Twin { .. } => EngineError::NotEnoughHistory(e.to_string()),
        e => sysid_err(e),
    })
}

pub(crate) fn twin_model<'a>(
    catalog: &'a Catalog,
    twin: &str,
) -> Result<&'a AssetModel, EngineError> {
    let t = catalog
        .twin(twin)
        .ok_or_else(|| EngineError::TwinNotFound(twin.to_string()))?;
    catalog
        .model(&t.model)
        .map(|m| &**m)
        .ok_or_else(|| EngineError::Model(doppel_model::ModelError::ModelNotFound(t.model.clone())))
}

fn sysid_err(e: sysid::SysIdError) -> EngineError {
    EngineError::WhatIf(e)
}
