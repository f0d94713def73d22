//! Input optimization: the settings of chosen inputs, held from the scenario start, that best
//! meet an objective on the predicted outputs while keeping outputs within their limits.
//!
//! Deterministic search: a coarse grid over the allowed box, zooming grids around the best
//! point (up to three inputs), then pattern searches (coordinate and pairwise diagonal
//! moves) from the best four points found, each halving its step until it is a thousandth
//! of each range.
//! Candidates are ranked lexicographically: smaller constraint violation first, then the
//! better objective, so a feasible point always beats an infeasible one and no penalty weight
//! has to be tuned.

use serde::{Deserialize, Serialize};

use super::fit::SysIdModel;
use super::resample::Series;
use super::scenario::{
    input_bins, prepare, run_bins, simulate_from, Baseline, Change, InputChange, ScenarioResult,
    ScenarioSpec,
};
use super::SysIdError;

/// Whether the objective is to be made small or large.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sense {
    Minimize,
    Maximize,
}

/// `weight × mean of signal over the horizon`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectiveTerm {
    pub signal: String,
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

fn yes() -> bool {
    true
}

fn minute() -> f64 {
    60.0
}

/// The sum of the terms, minimized or maximized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    pub sense: Sense,
    pub terms: Vec<ObjectiveTerm>,
}

/// An output that must stay within `[min, max]` (either side optional) at every model step of
/// the horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Constraint {
    pub signal: String,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
}

/// An input the search may set, and the range it may take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputRange {
    pub signal: String,
    pub min: f64,
    pub max: f64,
}

/// An optimization question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizeSpec {
    pub horizon_s: f64,
    pub objective: Objective,
    #[serde(default)]
    pub constraints: Vec<Constraint>,
    /// Also constrain every output without an explicit constraint to its declared normal
    /// range.
    #[serde(default = "yes")]
    pub normal_range_constraints: bool,
    pub inputs: Vec<InputRange>,
    /// What the inputs not searched do.
    #[serde(default)]
    pub baseline: Baseline,
    /// Step of the returned outcome.
    #[serde(default = "minute")]
    pub output_step_s: f64,
}

/// A chosen input value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    pub signal: String,
    pub value: f64,
}

/// The best settings found, with what the model predicts they lead to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizeResult {
    pub settings: Vec<Setting>,
    /// The objective (sum of weighted means) at the settings.
    pub objective: f64,
    /// The objective if nothing is changed.
    pub baseline_objective: f64,
    /// Whether every constraint holds on the predicted trajectory.
    pub feasible: bool,
    /// Constraints the predicted trajectory breaks, in words (empty when feasible).
    pub violations: Vec<String>,
    /// Model evaluations the search used.
    pub evaluations: usize,
    /// The scenario with the settings applied, with its bands and limit crossings.
    pub outcome: ScenarioResult,
}

/// Most inputs searched at once: the grid has at least three points per input, so six
/// inputs already cost 729 model runs.
const MAX_SEARCHED: usize = 6;
/// Budget of the pattern searches after the grid (a pump's 4 h question costs ~0.1 ms per
/// run), shared by the starts.
const MAX_EVALUATIONS: usize = 1_200;
/// Pattern searches started from the best grid points.
const STARTS: usize = 4;

struct Problem<'a> {
    model: &'a SysIdModel,
    start: super::scenario::Start,
    base: Vec<Vec<f64>>,
    searched: Vec<(usize, f64, f64)>,
    /// Outputs to run, and per run output: objective weight and limits.
    which: Vec<usize>,
    weights: Vec<f64>,
    limits: Vec<(Option<f64>, Option<f64>)>,
    sign: f64,
    evaluations: usize,
}

impl Problem<'_> {
    /// (violation, signed objective, objective) at `x`.
    fn eval(&mut self, x: &[f64]) -> (f64, f64, f64) {
        self.evaluations += 1;
        let mut inputs = self.base.clone();
        for (&(i, _, _), &v) in self.searched.iter().zip(x) {
            inputs[i].iter_mut().for_each(|u| *u = v);
        }
        let runs = run_bins(self.model, &self.start, &inputs, &self.which);
        let mut objective = 0.0;
        let mut violation = 0.0;
        for (r, run) in runs.iter().enumerate() {
            let om = &self.model.outputs[self.which[r]];
            if self.weights[r] != 0.0 {
                objective += self.weights[r] * run.iter().sum::<f64>() / run.len() as f64;
            }
            let (lo, hi) = self.limits[r];
            let worst = run.iter().fold(0.0f64, |w, &y| {
                let above = hi.map_or(0.0, |h| (y - h).max(0.0));
                let below = lo.map_or(0.0, |l| (l - y).max(0.0));
                w.max(above + below)
            });
            violation += worst / om.scale;
        }
        (violation, self.sign * objective, objective)
    }
}

fn better(a: (f64, f64, f64), b: (f64, f64, f64)) -> bool {
    const TOL: f64 = 1e-12;
    if (a.0 - b.0).abs() > TOL {
        a.0 < b.0
    } else {
        a.1 < b.1 - TOL
    }
}

/// Searches the allowed input box for the best settings, held from the start of the horizon,
/// from the state at the end of `history_tail`.
pub fn optimize(
    model: &SysIdModel,
    history_tail: &[Series],
    spec: &OptimizeSpec,
) -> Result<OptimizeResult, SysIdError> {
    let mut problems = Vec::new();
    if !(spec.horizon_s.is_finite()
        && spec.horizon_s >= model.step_s
        && spec.horizon_s <= 7.0 * 86_400.0)
    {
        problems.push(format!(
            "horizon_s must be between one model step ({} s) and a week, got {}",
            model.step_s, spec.horizon_s
        ));
    }
    if spec.objective.terms.is_empty() {
        problems.push("objective has no terms".into());
    }
    for t in &spec.objective.terms {
        if model.output(&t.signal).is_none() {
            problems.push(format!(
                "objective: {:?} is not an identified output",
                t.signal
            ));
        }
        if !t.weight.is_finite() {
            problems.push(format!("objective: weight of {:?} is not finite", t.signal));
        }
    }
    for c in &spec.constraints {
        if model.output(&c.signal).is_none() {
            problems.push(format!(
                "constraint: {:?} is not an identified output",
                c.signal
            ));
        }
        if c.min.is_some_and(|v| !v.is_finite()) || c.max.is_some_and(|v| !v.is_finite()) {
            problems.push(format!(
                "constraint on {:?}: limits must be finite",
                c.signal
            ));
        }
    }
    if spec.inputs.is_empty() {
        problems.push("no input to search".into());
    }
    if spec.inputs.len() > MAX_SEARCHED {
        problems.push(format!(
            "{} inputs to search; at most {MAX_SEARCHED} at once",
            spec.inputs.len()
        ));
    }
    for (i, r) in spec.inputs.iter().enumerate() {
        if spec.inputs[..i].iter().any(|o| o.signal == r.signal) {
            problems.push(format!("{:?} is listed twice among the inputs", r.signal));
        }
    }
    if !(spec.output_step_s.is_finite() && spec.output_step_s > 0.0) {
        problems.push(format!(
            "output_step_s must be positive, got {}",
            spec.output_step_s
        ));
    }
    let mut searched = Vec::new();
    for r in &spec.inputs {
        match model.inputs.iter().position(|s| s.signal == r.signal) {
            None => problems.push(format!("{:?} is not an input of the model", r.signal)),
            Some(i) if model.inputs[i].role != doppel_model::SignalRole::Input => {
                problems.push(format!("{:?} is a disturbance: it cannot be set", r.signal))
            }
            Some(i) if !model.inputs[i].identified => problems.push(format!(
                "{:?} never varied in the fitted history, so its effect is unknown",
                r.signal
            )),
            Some(i) => {
                if !(r.min.is_finite() && r.max.is_finite() && r.min <= r.max) {
                    problems.push(format!("{:?}: need finite min <= max", r.signal));
                } else {
                    searched.push((i, r.min, r.max));
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(SysIdError::InvalidScenario { problems });
    }

    let start = prepare(model, history_tail)?;
    let k_max = (spec.horizon_s / model.step_s).ceil() as usize;
    let base = input_bins(model, &start, &[], spec.baseline, k_max)?;
    let mut which = Vec::new();
    let mut weights = Vec::new();
    let mut limits = Vec::new();
    for (o, om) in model.outputs.iter().enumerate() {
        let weight: f64 = spec
            .objective
            .terms
            .iter()
            .filter(|t| t.signal == om.signal)
            .map(|t| t.weight)
            .sum();
        let explicit: Vec<&Constraint> = spec
            .constraints
            .iter()
            .filter(|c| c.signal == om.signal)
            .collect();
        let (lo, hi) = if explicit.is_empty() {
            if spec.normal_range_constraints {
                (om.min, om.max)
            } else {
                (None, None)
            }
        } else {
            // Several constraints on one output: the tightest of each side.
            let lo = explicit
                .iter()
                .filter_map(|c| c.min)
                .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))));
            let hi = explicit
                .iter()
                .filter_map(|c| c.max)
                .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.min(v))));
            (lo, hi)
        };
        if weight != 0.0 || lo.is_some() || hi.is_some() {
            which.push(o);
            weights.push(weight);
            limits.push((lo, hi));
        }
    }
    let sign = match spec.objective.sense {
        Sense::Minimize => 1.0,
        Sense::Maximize => -1.0,
    };
    let mut p = Problem {
        model,
        start,
        base,
        searched,
        which,
        weights,
        limits,
        sign,
        evaluations: 0,
    };
    let baseline = {
        let runs = run_bins(model, &p.start, &p.base, &p.which);
        runs.iter()
            .zip(&p.weights)
            .map(|(r, w)| w * r.iter().sum::<f64>() / r.len() as f64)
            .sum::<f64>()
    };

    // Coarse grid: about 150 points in all, 3 to 11 per input.
    let n = p.searched.len();
    let per = ((150f64).powf(1.0 / n as f64).floor() as usize).clamp(3, 11);
    let ranges: Vec<(f64, f64)> = p.searched.iter().map(|&(_, lo, hi)| (lo, hi)).collect();
    let mut candidates: Vec<((f64, f64, f64), Vec<f64>)> = Vec::new();
    let centre: Vec<f64> = ranges.iter().map(|(lo, hi)| 0.5 * (lo + hi)).collect();
    candidates.push((p.eval(&centre), centre));
    let total = per.saturating_pow(n as u32);
    for idx in 0..total {
        let mut r = idx;
        let x: Vec<f64> = ranges
            .iter()
            .map(|(lo, hi)| {
                let g = r % per;
                r /= per;
                lo + (hi - lo) * g as f64 / (per - 1) as f64
            })
            .collect();
        candidates.push((p.eval(&x), x));
    }
    // Zoom: grids over a window of one coarse cell around the best point so far, each finer
    // than the last. Unlike moves from a point, a grid does not stall on a constraint
    // boundary that is not aligned with the inputs (least power for a required flow lies
    // where opening the valve and slowing the pump balance). Only for up to three inputs:
    // beyond, even a 5-point zoom grid costs too many runs and the pattern search alone goes on.
    let zoom_per: usize = match n {
        1 | 2 => 9,
        3 => 5,
        _ => 0,
    };
    if zoom_per > 0 {
        let mut cell: Vec<f64> = ranges
            .iter()
            .map(|(lo, hi)| (hi - lo) / (per - 1) as f64)
            .collect();
        // Zoom to a hundredth of each range; the pattern searches take it from there.
        let fine: Vec<f64> = ranges.iter().map(|(lo, hi)| (hi - lo) * 1e-2).collect();
        while cell.iter().zip(&fine).any(|(c, t)| c > t) && p.evaluations < MAX_EVALUATIONS {
            let centre = candidates
                .iter()
                .fold(&candidates[0], |b, c| if better(c.0, b.0) { c } else { b })
                .1
                .clone();
            let total = zoom_per.pow(n as u32);
            for idx in 0..total {
                let mut r = idx;
                let x: Vec<f64> = (0..n)
                    .map(|d| {
                        let g = r % zoom_per;
                        r /= zoom_per;
                        let off = -1.0 + 2.0 * g as f64 / (zoom_per - 1) as f64;
                        (centre[d] + off * cell[d]).clamp(ranges[d].0, ranges[d].1)
                    })
                    .collect();
                candidates.push((p.eval(&x), x));
            }
            cell.iter_mut()
                .for_each(|c| *c *= 2.0 / (zoom_per - 1) as f64);
        }
    }
    // Stable sort: ties keep evaluation order, so the result is deterministic.
    candidates.sort_by(|a, b| a.0 .0.total_cmp(&b.0 .0).then(a.0 .1.total_cmp(&b.0 .1)));

    // Pattern search from each of the best few grid points (the best grid point can sit just
    // inside a constraint on the wrong side of the optimum; another start reaches it along
    // an input bound). Besides the coordinate directions it polls the pairwise diagonals, so
    // two inputs can move at once along a constraint boundary that is not axis-aligned.
    let mut directions: Vec<Vec<(usize, f64)>> = Vec::new();
    for d in 0..n {
        for dir in [1.0, -1.0] {
            directions.push(vec![(d, dir)]);
        }
    }
    for a in 0..n {
        for b in a + 1..n {
            for (da, db) in [(1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0)] {
                directions.push(vec![(a, da), (b, db)]);
            }
        }
    }
    let tiny: Vec<f64> = ranges.iter().map(|(lo, hi)| (hi - lo) * 1e-3).collect();
    let starts = candidates.len().min(STARTS);
    let budget = MAX_EVALUATIONS.saturating_sub(p.evaluations).max(100) / starts;
    let (mut best, mut best_x) = candidates[0].clone();
    for (start_value, start_x) in candidates.into_iter().take(starts) {
        let (mut value, mut x) = (start_value, start_x);
        let until = p.evaluations + budget;
        let mut steps: Vec<f64> = ranges
            .iter()
            .map(|(lo, hi)| (hi - lo) / (per - 1) as f64 / 2.0)
            .collect();
        while p.evaluations < until && steps.iter().zip(&tiny).any(|(s, t)| s > t) {
            let mut improved = false;
            for dir in &directions {
                let mut y = x.clone();
                for &(d, sign) in dir {
                    y[d] = (y[d] + sign * steps[d]).clamp(ranges[d].0, ranges[d].1);
                }
                if y == x {
                    continue;
                }
                let v = p.eval(&y);
                if better(v, value) {
                    value = v;
                    x = y;
                    improved = true;
                    break;
                }
            }
            if !improved {
                steps.iter_mut().for_each(|s| *s *= 0.5);
            }
        }
        if better(value, best) {
            best = value;
            best_x = x;
        }
    }

    let changes: Vec<InputChange> = p
        .searched
        .iter()
        .zip(&best_x)
        .map(|(&(i, _, _), &v)| InputChange {
            signal: model.inputs[i].signal.clone(),
            change: Change::Step {
                at_s: 0.0,
                value: v,
            },
        })
        .collect();
    let outcome = simulate_from(
        model,
        &p.start,
        &ScenarioSpec {
            horizon_s: spec.horizon_s,
            output_step_s: spec.output_step_s,
            changes: changes.clone(),
            baseline: spec.baseline,
        },
    )?;
    // Name the broken constraints from the model-step run the search judged.
    let mut violations = Vec::new();
    let mut inputs = p.base.clone();
    for (&(i, _, _), &v) in p.searched.iter().zip(&best_x) {
        inputs[i].iter_mut().for_each(|u| *u = v);
    }
    let runs = run_bins(model, &p.start, &inputs, &p.which);
    for (r, run) in runs.iter().enumerate() {
        let name = &model.outputs[p.which[r]].signal;
        let (lo, hi) = p.limits[r];
        let top = run.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let bottom = run.iter().copied().fold(f64::INFINITY, f64::min);
        if let Some(h) = hi.filter(|&h| top > h) {
            violations.push(format!("{name} reaches {top:.3}, above {h}"));
        }
        if let Some(l) = lo.filter(|&l| bottom < l) {
            violations.push(format!("{name} falls to {bottom:.3}, below {l}"));
        }
    }
    Ok(OptimizeResult {
        settings: changes
            .into_iter()
            .zip(&best_x)
            .map(|(c, &v)| Setting {
                signal: c.signal,
                value: v,
            })
            .collect(),
        objective: best.2,
        baseline_objective: baseline,
        feasible: violations.is_empty(),
        violations,
        evaluations: p.evaluations,
        outcome,
    })
}
