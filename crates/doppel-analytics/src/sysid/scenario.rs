//! What-if scenarios: drive an identified model from the end of a twin's history with changed
//! inputs, report every output's trajectory with its prediction band and the first predicted
//! crossings of the normal range, and chain scenarios over linked twins.
//!
//! The model runs on its own step; trajectories are linearly interpolated onto the requested
//! output step (a model value is the mean over its bin, so it is placed at the bin centre).
//! Inputs are averaged over each bin from sub-samples, so a step in the middle of a bin enters
//! with its share of the bin, as it would in the recorded bin means the model was fitted on.
//!
//! The band at `h` model steps ahead is the held-out free-run error quantile at `h`
//! ([`OutputModel::band`]); when the output step is finer than the model step, the band is
//! for single readings and adds `z × reading_sd` (the sensor noise around a bin mean). A
//! disturbance the scenario holds (no profile given for it: nobody said what the weather
//! will do) adds its historical drift over the lag ([`InputScale::drift`]) times the output's
//! steady-state sensitivity to it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[allow(unused_imports, reason = "linked from the module documentation")]
use super::fit::InputScale;
use super::fit::{feature_rows, table_for, OutputModel, SysIdModel};
use super::linalg::normal_quantile;
use super::resample::Series;
use super::SysIdError;
use crate::Timestamp;

/// Sub-samples per model step when averaging an input over a bin.
const SUBSAMPLES: usize = 8;
/// Most output points one scenario may return (all outputs together): beyond this the answer
/// would not fit in memory comfortably; coarsen `output_step_s` instead.
const MAX_POINTS: usize = 50_000_000;
/// Longest scenario: a month. The model's band is calibrated one horizon ahead and held
/// beyond; months ahead, a twin's operation is better asked as several scenarios.
const MAX_HORIZON_S: f64 = 31.0 * 86_400.0;

/// A change of one input over the scenario. Times are seconds from the scenario start (the end
/// of the last complete bin of the history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// From `at_s` on, the input is `value`.
    Step { at_s: f64, value: f64 },
    /// From `from_s` to `to_s` the input moves linearly from where it was to `to_value`, then
    /// stays there.
    Ramp {
        from_s: f64,
        to_s: f64,
        to_value: f64,
    },
    /// The input follows `(t_s, value)` points, linearly interpolated, from the first point on;
    /// it holds the last value after the last point.
    Profile { points: Vec<(f64, f64)> },
}

/// A [`Change`] of a named input or disturbance. Several changes of one input apply in order,
/// each on top of the previous ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputChange {
    pub signal: String,
    #[serde(flatten)]
    pub change: Change,
}

/// What inputs that no change mentions do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// Hold the last observed bin mean: the plant keeps running as it is now.
    #[default]
    Hold,
    /// Repeat the last observed 24 hours (for daily schedules and weather-driven
    /// disturbances); needs a history tail of at least one day.
    RepeatDay,
}

/// A what-if question to a twin's model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSpec {
    /// How far to look ahead, seconds.
    pub horizon_s: f64,
    /// Spacing of the returned trajectories, seconds.
    #[serde(default = "one_second")]
    pub output_step_s: f64,
    #[serde(default)]
    pub changes: Vec<InputChange>,
    #[serde(default)]
    pub baseline: Baseline,
}

fn one_second() -> f64 {
    1.0
}

impl ScenarioSpec {
    /// No change: what the twin does if nothing is touched.
    pub fn baseline(horizon_s: f64, output_step_s: f64) -> Self {
        ScenarioSpec {
            horizon_s,
            output_step_s,
            changes: Vec::new(),
            baseline: Baseline::Hold,
        }
    }
}

/// Which side of the normal range a crossing leaves by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Above,
    Below,
}

/// The first time a trajectory (or its band) is outside the declared normal range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitCrossing {
    /// Seconds from the scenario start.
    pub at_s: f64,
    pub side: Side,
    pub limit: f64,
    /// The trajectory value (or band edge) at that time.
    pub value: f64,
}

/// One output over the scenario. Points are single precision: seven significant digits are
/// beyond any sensor, and a day at 1 s for every output of a twin is then half the memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputTrajectory {
    pub signal: String,
    /// At `start + i × step_s`.
    pub values: Vec<f32>,
    /// The prediction band (coverage [`SysIdModel::band_coverage`]).
    pub lower: Vec<f32>,
    pub upper: Vec<f32>,
    /// Mean of `values` over the horizon.
    pub mean: f64,
    /// First crossing of the normal range by the trajectory.
    pub crossing: Option<LimitCrossing>,
    /// First crossing by the band: when a crossing becomes possible.
    pub band_crossing: Option<LimitCrossing>,
}

/// An input as the model was driven, one bin mean per model step (bin `k` ends at
/// `start + k × model_step_s`, `k ≥ 1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputTrajectory {
    pub signal: String,
    pub values: Vec<f64>,
}

/// The answer to a [`ScenarioSpec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// End of the last complete history bin; scenario times count from here.
    pub start: Timestamp,
    pub step_s: f64,
    pub model_step_s: f64,
    pub outputs: Vec<OutputTrajectory>,
    pub inputs: Vec<InputTrajectory>,
    /// Inputs driven outside the range seen in the history (the model extrapolates there and
    /// the band is not calibrated for it).
    pub extrapolated_inputs: Vec<String>,
}

impl ScenarioResult {
    pub fn output(&self, signal: &str) -> Option<&OutputTrajectory> {
        self.outputs.iter().find(|o| o.signal == signal)
    }
}

/// Where a scenario starts: the model's state at the end of a history.
pub(crate) struct Start {
    pub t0: Timestamp,
    /// Feature rows of the last `lags + 1` history bins.
    pub rows: Vec<f64>,
    pub lags: usize,
    /// Per output, standardized `[ỹ(n−1), ỹ(n−2)]`.
    pub prev: Vec<[f64; 2]>,
    /// Per output, the last bin mean.
    pub last: Vec<f64>,
    /// Per input, the resampled tail (for the baselines).
    pub inputs: Vec<Vec<f64>>,
}

pub(crate) fn prepare(model: &SysIdModel, history: &[Series]) -> Result<Start, SysIdError> {
    let table = table_for(model, history)?;
    let lags = model.max_input_lags();
    let n = table.grid.len;
    if n < lags + 2 {
        return Err(SysIdError::TooShort {
            needed_s: (lags + 2) as f64 * model.step_s,
            got_s: table.grid.span_s(),
        });
    }
    let rows_all = feature_rows(model, &table);
    let w = model.width();
    let rows = rows_all[(n - 1 - lags) * w..].to_vec();
    let mut prev = Vec::with_capacity(model.outputs.len());
    let mut last = Vec::with_capacity(model.outputs.len());
    for (om, y) in model.outputs.iter().zip(&table.outputs) {
        let Some(y) = y else {
            return Err(SysIdError::Signal {
                signal: om.signal.clone(),
                problem: "no finite readings in the history the scenario starts from".into(),
            });
        };
        prev.push([
            (y[n - 1] - om.mean) / om.scale,
            (y[n - 2] - om.mean) / om.scale,
        ]);
        last.push(y[n - 1]);
    }
    Ok(Start {
        t0: table.grid.last_end(),
        rows,
        lags,
        prev,
        last,
        inputs: table.inputs,
    })
}

fn check_spec(model: &SysIdModel, spec: &ScenarioSpec) -> Result<(), SysIdError> {
    let mut problems = Vec::new();
    if !(spec.horizon_s.is_finite() && spec.horizon_s > 0.0 && spec.horizon_s <= MAX_HORIZON_S) {
        problems.push(format!(
            "horizon_s must be in (0, {MAX_HORIZON_S}] (31 days), got {}",
            spec.horizon_s
        ));
    }
    if !(spec.output_step_s.is_finite() && spec.output_step_s > 0.0) {
        problems.push(format!(
            "output_step_s must be positive, got {}",
            spec.output_step_s
        ));
    } else if spec.horizon_s.is_finite()
        && (spec.horizon_s / spec.output_step_s + 1.0) * model.outputs.len().max(1) as f64
            > MAX_POINTS as f64
    {
        problems.push(format!(
            "{} s at {} s per point for {} outputs is too many points; coarsen output_step_s",
            spec.horizon_s,
            spec.output_step_s,
            model.outputs.len()
        ));
    }
    for (i, c) in spec.changes.iter().enumerate() {
        let at = format!("changes[{i}] ({})", c.signal);
        match model.inputs.iter().find(|s| s.signal == c.signal) {
            None => problems.push(format!(
                "{at}: not an input or disturbance of the model (known: {})",
                model
                    .inputs
                    .iter()
                    .map(|s| s.signal.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Some(s) if !s.identified => problems.push(format!(
                "{at}: never varied in the fitted history, so its effect is unknown"
            )),
            Some(_) => {}
        }
        let finite = |v: f64| v.is_finite();
        match &c.change {
            Change::Step { at_s, value } => {
                if !(finite(*at_s) && finite(*value)) {
                    problems.push(format!("{at}: step needs finite at_s and value"));
                }
            }
            Change::Ramp {
                from_s,
                to_s,
                to_value,
            } => {
                if !(finite(*from_s) && finite(*to_s) && finite(*to_value) && to_s > from_s) {
                    problems.push(format!(
                        "{at}: ramp needs finite times with to_s > from_s and a finite to_value"
                    ));
                }
            }
            Change::Profile { points } => {
                if points.is_empty() {
                    problems.push(format!("{at}: profile has no points"));
                } else if points.iter().any(|(t, v)| !(finite(*t) && finite(*v))) {
                    problems.push(format!("{at}: profile has a non-finite point"));
                } else if points.windows(2).any(|p| p[1].0 < p[0].0) {
                    problems.push(format!("{at}: profile times must not decrease"));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SysIdError::InvalidScenario { problems })
    }
}

/// The value of an input at `t` s after the start: its baseline with `changes` applied in
/// order.
fn input_at(changes: &[&Change], base: &dyn Fn(f64) -> f64, t: f64) -> f64 {
    let Some((last, before)) = changes.split_last() else {
        return base(t);
    };
    let prior = |t: f64| input_at(before, base, t);
    match last {
        Change::Step { at_s, value } => {
            if t >= *at_s {
                *value
            } else {
                prior(t)
            }
        }
        Change::Ramp {
            from_s,
            to_s,
            to_value,
        } => {
            if t < *from_s {
                prior(t)
            } else if t >= *to_s {
                *to_value
            } else {
                let v0 = prior(*from_s);
                v0 + (t - from_s) / (to_s - from_s) * (to_value - v0)
            }
        }
        Change::Profile { points } => {
            let first = points[0];
            if t < first.0 {
                return prior(t);
            }
            let i = points.partition_point(|p| p.0 <= t);
            if i >= points.len() {
                return points[points.len() - 1].1;
            }
            let (a, b) = (points[i - 1], points[i]);
            if b.0 > a.0 {
                a.1 + (t - a.0) / (b.0 - a.0) * (b.1 - a.1)
            } else {
                b.1
            }
        }
    }
}

/// Bin means of every input for scenario bins `1..=k_max` (index 0 of the result is bin 1).
pub(crate) fn input_bins(
    model: &SysIdModel,
    start: &Start,
    spec_changes: &[InputChange],
    baseline: Baseline,
    k_max: usize,
) -> Result<Vec<Vec<f64>>, SysIdError> {
    let step = model.step_s;
    let day = (86_400.0 / step).round() as usize;
    let mut out = Vec::with_capacity(model.inputs.len());
    for (i, s) in model.inputs.iter().enumerate() {
        let tail = &start.inputs[i];
        let n = tail.len();
        if baseline == Baseline::RepeatDay && n < day {
            return Err(SysIdError::InvalidScenario {
                problems: vec![format!(
                    "baseline repeat_day needs a day of history, the tail spans {:.0} s",
                    n as f64 * step
                )],
            });
        }
        let last = tail[n - 1];
        let base_bin = |k: usize| -> f64 {
            match baseline {
                Baseline::Hold => last,
                Baseline::RepeatDay => {
                    // Bin n-1+k maps to the same time of day in the last observed day.
                    let back = (k - 1) / day + 1;
                    tail[n - 1 + k - back * day]
                }
            }
        };
        let base = |t: f64| base_bin(((t / step).ceil().max(1.0)) as usize);
        let changes: Vec<&Change> = spec_changes
            .iter()
            .filter(|c| c.signal == s.signal)
            .map(|c| &c.change)
            .collect();
        let col: Vec<f64> = (1..=k_max)
            .map(|k| {
                if changes.is_empty() {
                    return base_bin(k);
                }
                let t0 = (k - 1) as f64 * step;
                (0..SUBSAMPLES)
                    .map(|j| {
                        input_at(
                            &changes,
                            &base,
                            t0 + (j as f64 + 0.5) * step / SUBSAMPLES as f64,
                        )
                    })
                    .sum::<f64>()
                    / SUBSAMPLES as f64
            })
            .collect();
        out.push(col);
    }
    Ok(out)
}

/// Runs the chosen outputs over the scenario bins: per output, raw values for bins
/// `1..=k_max`.
pub(crate) fn run_bins(
    model: &SysIdModel,
    start: &Start,
    inputs: &[Vec<f64>],
    which: &[usize],
) -> Vec<Vec<f64>> {
    let k_max = inputs.first().map_or(0, Vec::len);
    let w = model.width();
    let m = model.m();
    let mut rows = Vec::with_capacity((start.lags + 1 + k_max) * w);
    rows.extend_from_slice(&start.rows);
    let mut z = Vec::with_capacity(m);
    let mut u = vec![0.0; inputs.len()];
    for k in 0..k_max {
        for (i, col) in inputs.iter().enumerate() {
            u[i] = col[k];
        }
        model.push_features(&u, &mut z, &mut rows);
    }
    let mut exo = Vec::with_capacity(k_max);
    let mut run = Vec::with_capacity(k_max);
    which
        .iter()
        .map(|&o| {
            let om: &OutputModel = &model.outputs[o];
            exo.clear();
            exo.extend((1..=k_max).map(|k| om.exo(&rows, w, m, start.lags + k)));
            om.run(&exo, start.prev[o], &mut run);
            run.iter().map(|v| v * om.scale + om.mean).collect()
        })
        .collect()
}

/// Per output, `(disturbance index, |∂y/∂d|)` for every disturbance the scenario holds at
/// its last value (no change given for it): the steady-state sensitivity, the larger of the
/// ones at the first and the last scenario bin. The band widens by it times the
/// disturbance's historical drift, because nobody told the model what the weather will do.
fn held_disturbance_widening(
    model: &SysIdModel,
    spec: &ScenarioSpec,
    inputs: &[Vec<f64>],
) -> Vec<Vec<(usize, f64)>> {
    let held: Vec<usize> = model
        .inputs
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.role == doppel_model::SignalRole::Disturbance
                && s.identified
                && !s.drift.is_empty()
                && !spec.changes.iter().any(|c| c.signal == s.signal)
        })
        .map(|(i, _)| i)
        .collect();
    let m = model.m();
    let mut z = Vec::with_capacity(m);
    let mut row = Vec::with_capacity(model.width());
    let mut widen = vec![Vec::new(); model.outputs.len()];
    if held.is_empty() {
        return widen;
    }
    let k_max = inputs.first().map_or(0, Vec::len);
    let at = |k: usize| -> Vec<f64> { inputs.iter().map(|c| c[k]).collect() };
    let points: Vec<Vec<f64>> = [0, k_max.saturating_sub(1)]
        .iter()
        .map(|&k| at(k))
        .collect();
    for &d in &held {
        let delta = 0.05 * model.inputs[d].half_range;
        for (o, om) in model.outputs.iter().enumerate() {
            let mut gain = 0.0f64;
            for u in &points {
                let mut up = u.clone();
                up[d] += delta;
                let mut down = u.clone();
                down[d] -= delta;
                row.clear();
                model.push_features(&up, &mut z, &mut row);
                let hi = om.steady_state(&row, m);
                row.clear();
                model.push_features(&down, &mut z, &mut row);
                let lo = om.steady_state(&row, m);
                gain = gain.max(((hi - lo) / (2.0 * delta)).abs());
            }
            if gain.is_finite() && gain > 0.0 {
                widen[o].push((d, gain));
            }
        }
    }
    widen
}

fn first_crossing(
    values: &[f32],
    step: f64,
    min: Option<f64>,
    max: Option<f64>,
    edge: Option<(&[f32], &[f32])>,
) -> Option<LimitCrossing> {
    for (i, &v) in values.iter().enumerate() {
        let (lo, hi) = match edge {
            Some((l, u)) => (f64::from(l[i]), f64::from(u[i])),
            None => (f64::from(v), f64::from(v)),
        };
        if let Some(mx) = max {
            if hi > mx {
                return Some(LimitCrossing {
                    at_s: i as f64 * step,
                    side: Side::Above,
                    limit: mx,
                    value: hi,
                });
            }
        }
        if let Some(mn) = min {
            if lo < mn {
                return Some(LimitCrossing {
                    at_s: i as f64 * step,
                    side: Side::Below,
                    limit: mn,
                    value: lo,
                });
            }
        }
    }
    None
}

/// Runs `spec` on `model` from the end of `history_tail` (readings of the twin's signals; it
/// must cover the model's lags, a few model steps, or a day for [`Baseline::RepeatDay`]).
pub fn simulate(
    model: &SysIdModel,
    history_tail: &[Series],
    spec: &ScenarioSpec,
) -> Result<ScenarioResult, SysIdError> {
    check_spec(model, spec)?;
    let start = prepare(model, history_tail)?;
    simulate_from(model, &start, spec)
}

pub(crate) fn simulate_from(
    model: &SysIdModel,
    start: &Start,
    spec: &ScenarioSpec,
) -> Result<ScenarioResult, SysIdError> {
    let step = model.step_s;
    let k_max = (spec.horizon_s / step).ceil() as usize + 1;
    let inputs = input_bins(model, start, &spec.changes, spec.baseline, k_max)?;
    let which: Vec<usize> = (0..model.outputs.len()).collect();
    let bins = run_bins(model, start, &inputs, &which);
    let out_step = spec.output_step_s;
    let n_out = (spec.horizon_s / out_step).floor() as usize + 1;
    let z = normal_quantile(0.5 + 0.5 * model.band_coverage);
    let finer = out_step < step;
    let widen = held_disturbance_widening(model, spec, &inputs);
    let mut outputs = Vec::with_capacity(model.outputs.len());
    for (o, om) in model.outputs.iter().enumerate() {
        // Bin k (k = 0 is the last history bin) is centred at (k − ½)·step; one extra
        // element holds the last bin so interpolation needs no branch.
        let mut ys = Vec::with_capacity(k_max + 2);
        ys.push(start.last[o]);
        ys.extend_from_slice(&bins[o]);
        ys.push(ys[ys.len() - 1]);
        let noise = if finer { z * om.reading_sd } else { 0.0 };
        // Model error and reading noise add their half-widths rather than combining in
        // quadrature: a conservative bound for the sum that does not under-cover where the
        // sensor is noisier than its historical median (noise that grows with the level, as
        // a flow meter's does).
        let hb: Vec<f64> = (0..k_max + 2)
            .map(|k| {
                let lag_s = k as f64 * step;
                let drift: f64 = widen[o]
                    .iter()
                    .map(|&(d, gain)| gain * model.inputs[d].drift_at(lag_s))
                    .sum();
                om.band_at(k as f64) + noise + drift
            })
            .collect();
        let ratio = out_step / step;
        let mut values = Vec::with_capacity(n_out);
        let mut lower = Vec::with_capacity(n_out);
        let mut upper = Vec::with_capacity(n_out);
        for j in 0..n_out {
            let p = (j as f64 * ratio + 0.5).min(k_max as f64 + 1.0);
            let k = (p as usize).min(k_max);
            let f = p - k as f64;
            let v = ys[k] + f * (ys[k + 1] - ys[k]);
            let half = hb[k] + f * (hb[k + 1] - hb[k]);
            values.push(v as f32);
            lower.push((v - half) as f32);
            upper.push((v + half) as f32);
        }
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
        let crossing = first_crossing(&values, out_step, om.min, om.max, None);
        let band_crossing =
            first_crossing(&values, out_step, om.min, om.max, Some((&lower, &upper)));
        outputs.push(OutputTrajectory {
            signal: om.signal.clone(),
            values,
            lower,
            upper,
            mean,
            crossing,
            band_crossing,
        });
    }
    let extrapolated_inputs = model
        .inputs
        .iter()
        .zip(&inputs)
        .filter(|(s, col)| {
            s.identified
                && col
                    .iter()
                    .any(|&u| ((u - s.center) / s.half_range).abs() > 1.0 + 1e-9)
        })
        .map(|(s, _)| s.signal.clone())
        .collect();
    Ok(ScenarioResult {
        start: start.t0,
        step_s: out_step,
        model_step_s: step,
        outputs,
        inputs: model
            .inputs
            .iter()
            .zip(inputs)
            .map(|(s, values)| InputTrajectory {
                signal: s.signal.clone(),
                values,
            })
            .collect(),
        extrapolated_inputs,
    })
}

/// How one output differs between a baseline and a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputComparison {
    pub signal: String,
    pub baseline_mean: f64,
    pub scenario_mean: f64,
    /// `scenario_mean − baseline_mean`.
    pub mean_delta: f64,
    /// Difference at the end of the horizon.
    pub final_delta: f64,
    /// Largest absolute difference and when it occurs (seconds from the start).
    pub max_abs_delta: f64,
    pub max_abs_delta_at_s: f64,
    pub baseline_crossing: Option<LimitCrossing>,
    pub scenario_crossing: Option<LimitCrossing>,
}

/// The effect of a scenario against its baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioComparison {
    pub outputs: Vec<OutputComparison>,
}

/// Compares two results of the same model and start (`baseline` is usually the scenario with
/// no changes); outputs present in both are compared over their common length.
pub fn compare(
    baseline: &ScenarioResult,
    scenario: &ScenarioResult,
) -> Result<ScenarioComparison, SysIdError> {
    if baseline.start != scenario.start || baseline.step_s != scenario.step_s {
        return Err(SysIdError::InvalidScenario {
            problems: vec![format!(
                "baseline and scenario differ in start ({} vs {}) or step ({} vs {} s)",
                baseline.start, scenario.start, baseline.step_s, scenario.step_s
            )],
        });
    }
    let mut outputs = Vec::new();
    for b in &baseline.outputs {
        let Some(s) = scenario.output(&b.signal) else {
            continue;
        };
        let n = b.values.len().min(s.values.len());
        if n == 0 {
            continue;
        }
        let mean = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
        let (bm, sm) = (mean(&b.values[..n]), mean(&s.values[..n]));
        let (mut max_abs, mut max_at) = (0.0f64, 0.0);
        for i in 0..n {
            let d = (f64::from(s.values[i]) - f64::from(b.values[i])).abs();
            if d > max_abs {
                max_abs = d;
                max_at = i as f64 * baseline.step_s;
            }
        }
        outputs.push(OutputComparison {
            signal: b.signal.clone(),
            baseline_mean: bm,
            scenario_mean: sm,
            mean_delta: sm - bm,
            final_delta: f64::from(s.values[n - 1]) - f64::from(b.values[n - 1]),
            max_abs_delta: max_abs,
            max_abs_delta_at_s: max_at,
            baseline_crossing: b.crossing.clone(),
            scenario_crossing: s.crossing.clone(),
        });
    }
    Ok(ScenarioComparison { outputs })
}

/// One twin in a chained scenario.
#[derive(Debug, Clone)]
pub struct GraphNode<'a> {
    pub twin: String,
    pub model: &'a SysIdModel,
    pub history_tail: &'a [Series],
    pub spec: ScenarioSpec,
}

/// An output of one twin that drives an input or disturbance of another (for example the
/// relation "pump-1 feeds chiller-2": the pump's flow is the chiller's water flow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphLink {
    pub from_twin: String,
    pub from_signal: String,
    pub to_twin: String,
    pub to_signal: String,
}

/// Runs the scenarios of linked twins in topological order: each twin's linked inputs follow
/// the predicted trajectory of the upstream output (replacing, from the start, whatever its own
/// spec says for that input). Returns `(twin, result)` in the order run. Refuses cycles and
/// links to unknown twins or signals.
pub fn simulate_graph(
    nodes: &[GraphNode<'_>],
    links: &[GraphLink],
) -> Result<Vec<(String, ScenarioResult)>, SysIdError> {
    let index: BTreeMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.twin.as_str(), i))
        .collect();
    if index.len() != nodes.len() {
        return Err(SysIdError::InvalidScenario {
            problems: vec!["a twin appears twice among the nodes".into()],
        });
    }
    let mut incoming: Vec<Vec<&GraphLink>> = vec![Vec::new(); nodes.len()];
    let mut indegree = vec![0usize; nodes.len()];
    for l in links {
        let (Some(&from), Some(&to)) = (
            index.get(l.from_twin.as_str()),
            index.get(l.to_twin.as_str()),
        ) else {
            return Err(SysIdError::Twin {
                twin: format!("{} -> {}", l.from_twin, l.to_twin),
                problem: "link names a twin that is not among the nodes".into(),
            });
        };
        if nodes[from].model.output(&l.from_signal).is_none() {
            return Err(SysIdError::Twin {
                twin: l.from_twin.clone(),
                problem: format!("{:?} is not an identified output", l.from_signal),
            });
        }
        incoming[to].push(l);
        indegree[to] += 1;
    }
    let mut order = Vec::with_capacity(nodes.len());
    let mut ready: Vec<usize> = (0..nodes.len()).filter(|&i| indegree[i] == 0).collect();
    let mut remaining = indegree.clone();
    while !ready.is_empty() {
        let i = ready.remove(0);
        order.push(i);
        for l in links.iter().filter(|l| l.from_twin == nodes[i].twin) {
            let to = index[l.to_twin.as_str()];
            remaining[to] -= 1;
            if remaining[to] == 0 {
                ready.push(to);
                ready.sort_unstable();
            }
        }
    }
    if order.len() < nodes.len() {
        let twins = (0..nodes.len())
            .filter(|i| !order.contains(i))
            .map(|i| nodes[i].twin.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(SysIdError::Cycle { twins });
    }
    let mut results: Vec<Option<ScenarioResult>> = vec![None; nodes.len()];
    for &i in &order {
        let node = &nodes[i];
        let mut spec = node.spec.clone();
        let start = prepare(node.model, node.history_tail).map_err(|e| SysIdError::Twin {
            twin: node.twin.clone(),
            problem: e.to_string(),
        })?;
        for l in &incoming[i] {
            let up = results[index[l.from_twin.as_str()]]
                .as_ref()
                .ok_or_else(|| SysIdError::Twin {
                    twin: l.from_twin.clone(),
                    problem: "upstream result missing".into(),
                })?;
            let traj = up.output(&l.from_signal).ok_or_else(|| SysIdError::Twin {
                twin: l.from_twin.clone(),
                problem: format!("{:?} missing from its result", l.from_signal),
            })?;
            let offset = (up.start - start.t0) as f64 / 1e9;
            let every = ((node.model.step_s / up.step_s).floor() as usize).max(1);
            let points: Vec<(f64, f64)> = traj
                .values
                .iter()
                .enumerate()
                .step_by(every)
                .map(|(j, v)| (offset + j as f64 * up.step_s, f64::from(*v)))
                .collect();
            spec.changes.push(InputChange {
                signal: l.to_signal.clone(),
                change: Change::Profile { points },
            });
        }
        check_spec(node.model, &spec).map_err(|e| SysIdError::Twin {
            twin: node.twin.clone(),
            problem: e.to_string(),
        })?;
        results[i] = Some(simulate_from(node.model, &start, &spec)?);
    }
    Ok(order
        .into_iter()
        .filter_map(|i| results[i].take().map(|r| (nodes[i].twin.clone(), r)))
        .collect())
}
