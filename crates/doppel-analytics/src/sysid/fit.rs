//! Fitting: one Hammerstein-ARX model per output signal, orders and nonlinearity chosen on a
//! validation block, quality and prediction bands measured on a later held-out test block.
//!
//! The history is split in time: the first part trains, the next validates (order and degree
//! selection by free-run NRMSE), the last is never seen by the fit and gives the reported
//! quality and the band. The final coefficients are refitted on training plus validation.

use doppel_model::{AssetModel, SignalRole, ValueKind};
use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use super::linalg::{quantile, ridge_solve};
use super::resample::{find, resample, Grid, Series};
use super::SysIdError;

/// The polynomial feature map applied to the scaled inputs before the linear dynamics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Nonlinearity {
    /// The scaled inputs themselves.
    Linear,
    /// Plus every square and pairwise product.
    Quadratic,
    /// Plus every monomial of degree three (only the pure cubes when there are more than four
    /// inputs, to keep the regression small).
    Cubic,
}

impl Nonlinearity {
    /// Number of features for `m` inputs.
    pub(crate) fn width(self, m: usize) -> usize {
        let quad = m * (m + 1) / 2;
        let cubic = if m <= 4 { m * (m + 1) * (m + 2) / 6 } else { m };
        match self {
            Nonlinearity::Linear => m,
            Nonlinearity::Quadratic => m + quad,
            Nonlinearity::Cubic => m + quad + cubic,
        }
    }
}

/// Writes the features of scaled inputs `z` into `out` (length `level.width(z.len())`), in an
/// order where each level's features are a prefix of the next level's.
pub(crate) fn features(z: &[f64], level: Nonlinearity, out: &mut [f64]) {
    let m = z.len();
    let mut k = 0;
    for &v in z {
        out[k] = v;
        k += 1;
    }
    if level == Nonlinearity::Linear {
        return;
    }
    for i in 0..m {
        for j in i..m {
            out[k] = z[i] * z[j];
            k += 1;
        }
    }
    if level == Nonlinearity::Quadratic {
        return;
    }
    if m <= 4 {
        for i in 0..m {
            for j in i..m {
                for l in j..m {
                    out[k] = z[i] * z[j] * z[l];
                    k += 1;
                }
            }
        }
    } else {
        for &v in z {
            out[k] = v * v * v;
            k += 1;
        }
    }
}

/// How to fit. The defaults suit thermal and hydraulic plant: thermal time constants are
/// minutes to tens of minutes, so a 30 s step resolves them (τ = 15 min is 30 steps) while
/// hydraulics and drives (seconds) settle within one step and are learned as static maps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FitConfig {
    /// Model step, seconds.
    pub step_s: f64,
    /// Horizon of the reported free-run quality and of the calibrated band, seconds.
    pub horizon_s: f64,
    /// Largest autoregressive order tried (0 to 2).
    pub max_na: usize,
    /// Largest number of input lags tried (at least 1).
    pub max_nb: usize,
    /// Largest input delay tried, in steps.
    pub max_delay: usize,
    /// Feature maps tried.
    pub nonlinearities: Vec<Nonlinearity>,
    /// Ridge penalty relative to the mean diagonal of the normal equations.
    pub ridge: f64,
    /// Coverage of the prediction band, in (0, 1).
    pub band_coverage: f64,
    /// Share of the history (by time) used for validation, then for testing.
    pub validation_fraction: f64,
    pub test_fraction: f64,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            step_s: 30.0,
            horizon_s: 3_600.0,
            max_na: 2,
            max_nb: 3,
            max_delay: 1,
            nonlinearities: vec![
                Nonlinearity::Linear,
                Nonlinearity::Quadratic,
                Nonlinearity::Cubic,
            ],
            ridge: 1e-6,
            band_coverage: 0.9,
            validation_fraction: 0.2,
            test_fraction: 0.2,
        }
    }
}

impl FitConfig {
    fn validate(&self) -> Result<(), SysIdError> {
        let mut problems = Vec::new();
        if !(self.step_s.is_finite() && self.step_s >= 0.001 && self.step_s <= 86_400.0) {
            problems.push(format!(
                "step_s must be in [0.001, 86400], got {}",
                self.step_s
            ));
        }
        if !(self.horizon_s.is_finite() && self.horizon_s >= self.step_s) {
            problems.push(format!(
                "horizon_s must be at least step_s, got {}",
                self.horizon_s
            ));
        }
        if self.max_na > 2 {
            problems.push(format!("max_na must be at most 2, got {}", self.max_na));
        }
        if self.max_nb == 0 || self.max_nb > 10 {
            problems.push(format!("max_nb must be in 1..=10, got {}", self.max_nb));
        }
        if self.max_delay > 10 {
            problems.push(format!(
                "max_delay must be at most 10, got {}",
                self.max_delay
            ));
        }
        if self.nonlinearities.is_empty() {
            problems.push("nonlinearities must name at least one feature map".into());
        }
        if !(self.ridge.is_finite() && self.ridge >= 0.0) {
            problems.push(format!("ridge must be >= 0, got {}", self.ridge));
        }
        if !(self.band_coverage > 0.0 && self.band_coverage < 1.0) {
            problems.push(format!(
                "band_coverage must be in (0, 1), got {}",
                self.band_coverage
            ));
        }
        for (name, f) in [
            ("validation_fraction", self.validation_fraction),
            ("test_fraction", self.test_fraction),
        ] {
            if !(f > 0.0 && f < 0.5) {
                problems.push(format!("{name} must be in (0, 0.5), got {f}"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SysIdError::InvalidConfig { problems })
        }
    }

    fn horizon_steps(&self) -> usize {
        ((self.horizon_s / self.step_s).round() as usize).max(1)
    }
}

/// How an input or disturbance is scaled into the model: `z = (u − center) / half_range`, so
/// the training history spans `[-1, 1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputScale {
    pub signal: String,
    pub role: SignalRole,
    pub center: f64,
    pub half_range: f64,
    /// False when the signal did not vary in the history: its effect cannot be learned, and
    /// scenarios that change it are refused.
    pub identified: bool,
    /// For a disturbance: how far it drifts from its current value over a lag,
    /// `(lag seconds, band_coverage quantile of |d(t + lag) − d(t)|)`, measured on the
    /// history. A scenario that holds a disturbance (no forecast given) widens each output's
    /// band by this drift times the output's sensitivity to it. Empty for inputs.
    #[serde(default)]
    pub drift: Vec<(f64, f64)>,
}

impl InputScale {
    /// The drift quantile at `lag_s` seconds, interpolated; 0 at 0 and held beyond the last
    /// lag measured.
    pub(crate) fn drift_at(&self, lag_s: f64) -> f64 {
        let Some(&(last_t, last_q)) = self.drift.last() else {
            return 0.0;
        };
        if lag_s >= last_t {
            return last_q;
        }
        let mut prev = (0.0, 0.0);
        for &(t, q) in &self.drift {
            if lag_s <= t {
                let f = if t > prev.0 {
                    (lag_s - prev.0) / (t - prev.0)
                } else {
                    1.0
                };
                return prev.1 + f.clamp(0.0, 1.0) * (q - prev.1);
            }
            prev = (t, q);
        }
        last_q
    }
    /// Scaled value, clipped a quarter of the range beyond what was seen: a polynomial must
    /// not be extrapolated far.
    pub(crate) fn scale(&self, u: f64) -> f64 {
        ((u - self.center) / self.half_range).clamp(-MAX_Z, MAX_Z)
    }
}

pub(crate) const MAX_Z: f64 = 1.25;

/// Least share of bins with a reading for a signal to be fitted.
const MIN_FILLED: f64 = 0.5;

/// Fit quality of one output on the held-out test block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitQuality {
    /// One step ahead: RMSE / (max − min) of the held-out truth.
    pub nrmse_one_step: f64,
    /// Free run from every held-out start, error at exactly `horizon_s` ahead, over the same
    /// range.
    pub nrmse_horizon: f64,
    /// Free-run error at the horizon divided by the standard deviation of the truth instead
    /// (`sqrt(1 − R²)`), for readers who prefer that scale.
    pub nrmse_std_horizon: f64,
    pub rmse_one_step: f64,
    pub rmse_horizon: f64,
    pub horizon_s: f64,
    /// Model steps in the test block.
    pub test_points: usize,
    /// Free-run NRMSE over the validation block of the chosen structure.
    pub validation_nrmse: f64,
}

/// The learned dynamics of one output, on the standardized scale `ỹ = (y − mean) / scale`:
/// `ỹ[k] = Σ_{i<na} ar[i]·ỹ[k−1−i] + Σ_{j<nb} Σ_f b[j·F + f]·φ_f(z[k−delay−j]) + constant`,
/// with `F` features of [`OutputModel::nonlinearity`] (plus `ỹ[k−1]` when
/// [`OutputModel::integrating`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputModel {
    pub signal: String,
    pub na: usize,
    pub nb: usize,
    pub delay: usize,
    pub nonlinearity: Nonlinearity,
    /// An integrator: `ỹ[k] = ỹ[k−1] + exogenous part` (then `na = 0`).
    #[serde(default)]
    pub integrating: bool,
    pub mean: f64,
    pub scale: f64,
    pub ar: Vec<f64>,
    pub b: Vec<f64>,
    pub constant: f64,
    /// Half-width of the prediction band (signal units) for a bin mean `h` steps ahead in
    /// free run, `band[h − 1]`, `h = 1..=horizon`; the empirical `band_coverage` quantile of
    /// the held-out free-run errors, made non-decreasing. Held beyond the horizon.
    pub band: Vec<f64>,
    /// Spread of a single reading around its bin mean, added to the band when a scenario is
    /// reported at a finer step than the model's.
    pub reading_sd: f64,
    /// The declared normal range.
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub quality: FitQuality,
}

impl OutputModel {
    fn features_used(&self, m: usize) -> usize {
        self.nonlinearity.width(m)
    }

    /// The exogenous part (inputs and intercept) at step `k` from feature rows of width `w`.
    pub(crate) fn exo(&self, rows: &[f64], w: usize, m: usize, k: usize) -> f64 {
        let f = self.features_used(m);
        let mut s = self.constant;
        for j in 0..self.nb {
            let r = (k - self.delay - j) * w;
            let row = &rows[r..r + f];
            let coef = &self.b[j * f..(j + 1) * f];
            s += row.iter().zip(coef).map(|(a, b)| a * b).sum::<f64>();
        }
        s
    }

    /// The steady state (signal units) the output settles to with the feature row `row`
    /// held at every lag.
    pub(crate) fn steady_state(&self, row: &[f64], m: usize) -> f64 {
        let f = self.features_used(m);
        let mut s = self.constant;
        for j in 0..self.nb {
            let coef = &self.b[j * f..(j + 1) * f];
            s += row[..f].iter().zip(coef).map(|(a, b)| a * b).sum::<f64>();
        }
        if self.integrating {
            // No steady state: the output ramps for as long as the inputs drive it.
            return f64::NAN;
        }
        let gain = 1.0 - self.ar.iter().sum::<f64>();
        s / gain * self.scale + self.mean
    }

    /// Steps of input history the model needs before the first predicted step.
    pub(crate) fn input_lags(&self) -> usize {
        self.delay + self.nb - 1
    }

    /// Free run on the standardized scale: `prev = [ỹ[k−1], ỹ[k−2]]` before the first step.
    pub(crate) fn run(&self, exo: &[f64], prev: [f64; 2], out: &mut Vec<f64>) {
        out.clear();
        let (mut y1, mut y2) = (prev[0], prev[1]);
        for &e in exo {
            let mut y = e;
            if self.integrating {
                y += y1;
            }
            if self.na >= 1 {
                y += self.ar[0] * y1;
            }
            if self.na >= 2 {
                y += self.ar[1] * y2;
            }
            out.push(y);
            y2 = y1;
            y1 = y;
        }
    }

    /// Band half-width at a (fractional) number of model steps ahead.
    pub(crate) fn band_at(&self, h: f64) -> f64 {
        if self.band.is_empty() || h <= 0.0 {
            return 0.0;
        }
        let last = self.band.len() as f64;
        if h >= last {
            return self.band[self.band.len() - 1];
        }
        let i = h.floor() as usize;
        let lo = if i == 0 { 0.0 } else { self.band[i - 1] };
        let hi = self.band[i];
        lo + (h - i as f64) * (hi - lo)
    }
}

/// A model signal left out of the identified model, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedSignal {
    pub signal: String,
    pub reason: String,
}

/// The identified dynamics of one twin (or of one asset model, fitted on one twin's history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SysIdModel {
    /// Id of the asset model whose signals this model uses.
    pub model_id: String,
    pub step_s: f64,
    /// Horizon of the reported quality and calibrated band, in steps.
    pub horizon_steps: usize,
    pub band_coverage: f64,
    /// Every numeric input and disturbance, in model order; the identified ones make up the
    /// feature vector, in this order.
    pub inputs: Vec<InputScale>,
    /// Width of a feature row (the richest nonlinearity tried).
    pub feature_level: Nonlinearity,
    pub outputs: Vec<OutputModel>,
    pub skipped: Vec<SkippedSignal>,
}

impl SysIdModel {
    /// Identified inputs (the ones in the feature vector).
    pub(crate) fn identified(&self) -> impl Iterator<Item = &InputScale> {
        self.inputs.iter().filter(|i| i.identified)
    }

    pub(crate) fn m(&self) -> usize {
        self.identified().count()
    }

    pub(crate) fn width(&self) -> usize {
        self.feature_level.width(self.m())
    }

    /// Feature rows for raw inputs `u[k][i]` (all inputs, model order), appended to `rows`.
    pub(crate) fn push_features(&self, u: &[f64], z: &mut Vec<f64>, rows: &mut Vec<f64>) {
        z.clear();
        for (s, &v) in self.inputs.iter().zip(u) {
            if s.identified {
                z.push(s.scale(v));
            }
        }
        let w = self.width();
        let at = rows.len();
        rows.resize(at + w, 0.0);
        features(z, self.feature_level, &mut rows[at..]);
    }

    /// The most input history any output needs.
    pub(crate) fn max_input_lags(&self) -> usize {
        self.outputs
            .iter()
            .map(|o| o.input_lags())
            .max()
            .unwrap_or(0)
    }

    pub fn output(&self, signal: &str) -> Option<&OutputModel> {
        self.outputs.iter().find(|o| o.signal == signal)
    }
}

fn numeric(kind: ValueKind) -> bool {
    matches!(kind, ValueKind::Float | ValueKind::Int)
}

/// Resampled inputs and outputs of a history on one grid, as a model sees them.
pub(crate) struct Table {
    pub grid: Grid,
    /// `u[i]` per input of the model (all inputs, model order).
    pub inputs: Vec<Vec<f64>>,
    /// Per output of the model: the resampled values, or `None` when absent.
    pub outputs: Vec<Option<Vec<f64>>>,
}

/// Resamples `history` for an already identified model. Inputs missing from the history are
/// an error (the model cannot be driven without them).
pub(crate) fn table_for(model: &SysIdModel, history: &[Series]) -> Result<Table, SysIdError> {
    let grid = Grid::covering(history, model.step_s)?;
    if grid.len == 0 {
        return Err(SysIdError::TooShort {
            needed_s: model.step_s,
            got_s: 0.0,
        });
    }
    let mut inputs = Vec::with_capacity(model.inputs.len());
    for s in &model.inputs {
        let r = find(history, &s.signal).and_then(|x| resample(x, &grid));
        match r {
            Some(r) => inputs.push(r.values),
            None if !s.identified => inputs.push(vec![s.center; grid.len]),
            None => {
                return Err(SysIdError::Signal {
                    signal: s.signal.clone(),
                    problem: "no finite readings in the history".into(),
                })
            }
        }
    }
    let outputs = model
        .outputs
        .iter()
        .map(|o| {
            find(history, &o.signal)
                .and_then(|x| resample(x, &grid))
                .map(|r| r.values)
        })
        .collect();
    Ok(Table {
        grid,
        inputs,
        outputs,
    })
}

/// Feature rows for every bin of a table.
pub(crate) fn feature_rows(model: &SysIdModel, table: &Table) -> Vec<f64> {
    let mut rows = Vec::with_capacity(table.grid.len * model.width());
    let mut z = Vec::new();
    let mut u = vec![0.0; model.inputs.len()];
    for k in 0..table.grid.len {
        for (i, col) in table.inputs.iter().enumerate() {
            u[i] = col[k];
        }
        model.push_features(&u, &mut z, &mut rows);
    }
    rows
}

/// Range-normalized error: RMSE over `max − min` of the truth (falls back to 1 when the truth
/// is flat, which makes the figure an RMSE).
pub(crate) fn nrmse(pred: &[f64], truth: &[f64]) -> f64 {
    let n = pred.len().min(truth.len());
    if n == 0 {
        return f64::NAN;
    }
    let rmse = rmse(pred, truth);
    let (lo, hi) = truth[..n]
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let range = hi - lo;
    if range > 0.0 {
        rmse / range
    } else {
        rmse
    }
}

pub(crate) fn rmse(pred: &[f64], truth: &[f64]) -> f64 {
    let n = pred.len().min(truth.len());
    if n == 0 {
        return f64::NAN;
    }
    (pred
        .iter()
        .zip(truth)
        .map(|(p, t)| (p - t) * (p - t))
        .sum::<f64>()
        / n as f64)
        .sqrt()
}

fn std_dev(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// One candidate structure.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Structure {
    na: usize,
    nb: usize,
    delay: usize,
    level: Nonlinearity,
    integrating: bool,
}

/// Identifies `asset`'s dynamics from `history` (readings of its signals, any order, any
/// spacing). Outputs are the numeric signals with role `output`; inputs and disturbances
/// drive them. Outputs without readings or that never vary are skipped (listed in
/// [`SysIdModel::skipped`]); it is an error when no input varies or no output is left.
pub fn fit(
    asset: &AssetModel,
    history: &[Series],
    config: &FitConfig,
) -> Result<SysIdModel, SysIdError> {
    config.validate()?;
    let known: Vec<&str> = asset.signals.iter().map(|s| s.name.as_str()).collect();
    let grid = Grid::covering(
        history
            .iter()
            .filter(|s| known.contains(&s.signal.as_str())),
        config.step_s,
    )?;
    let horizon = config.horizon_steps();
    let lags = config.max_delay + config.max_nb;
    let warm = config.max_na.max(lags);
    // The test block must hold the horizon and some starts; the others must be able to hold
    // a fit of the largest structure.
    let needed = ((horizon + 20) as f64 / config.test_fraction).ceil() as usize + warm;
    if grid.len < needed {
        return Err(SysIdError::TooShort {
            needed_s: needed as f64 * config.step_s,
            got_s: grid.span_s(),
        });
    }

    let mut skipped = Vec::new();
    let mut inputs = Vec::new();
    let mut input_cols = Vec::new();
    let mut outputs_raw = Vec::new();
    for spec in &asset.signals {
        let is_input = matches!(spec.role, SignalRole::Input | SignalRole::Disturbance);
        if !numeric(spec.kind) {
            skipped.push(SkippedSignal {
                signal: spec.name.clone(),
                reason: format!("{} signals are not modelled", spec.kind.as_str()),
            });
            continue;
        }
        let Some(r) = find(history, &spec.name).and_then(|s| resample(s, &grid)) else {
            if is_input {
                return Err(SysIdError::Signal {
                    signal: spec.name.clone(),
                    problem: "no finite readings in the history; every input and disturbance \
                              is needed to drive the model"
                        .into(),
                });
            }
            skipped.push(SkippedSignal {
                signal: spec.name.clone(),
                reason: "no finite readings in the history".into(),
            });
            continue;
        };
        // Gaps are bridged by interpolation; a signal that is mostly gaps would teach the
        // model the interpolation rather than the plant.
        if r.filled < MIN_FILLED {
            let problem = format!(
                "readings in only {:.0} % of the {} s bins (need {:.0} %)",
                100.0 * r.filled,
                config.step_s,
                100.0 * MIN_FILLED
            );
            if is_input {
                return Err(SysIdError::Signal {
                    signal: spec.name.clone(),
                    problem,
                });
            }
            skipped.push(SkippedSignal {
                signal: spec.name.clone(),
                reason: problem,
            });
            continue;
        }
        let (lo, hi) = r
            .values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let flat = (hi - lo) <= 1e-9 * (1.0 + lo.abs().max(hi.abs()));
        if is_input {
            inputs.push(InputScale {
                signal: spec.name.clone(),
                role: spec.role,
                center: 0.5 * (lo + hi),
                half_range: if flat { 1.0 } else { 0.5 * (hi - lo) },
                identified: !flat,
                drift: if spec.role == SignalRole::Disturbance && !flat {
                    drift(&r.values, config)
                } else {
                    Vec::new()
                },
            });
            input_cols.push(r.values);
        } else if flat {
            skipped.push(SkippedSignal {
                signal: spec.name.clone(),
                reason: format!("constant ({lo}) throughout the history"),
            });
        } else {
            outputs_raw.push((spec, r));
        }
    }
    if !inputs.iter().any(|i| i.identified) {
        return Err(SysIdError::NoInputs);
    }
    if outputs_raw.is_empty() {
        let reasons = skipped
            .iter()
            .map(|s| format!("{}: {}", s.signal, s.reason))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(SysIdError::NoOutputs { reasons });
    }
    let feature_level = config
        .nonlinearities
        .iter()
        .copied()
        .max()
        .unwrap_or(Nonlinearity::Linear);
    let mut model = SysIdModel {
        model_id: asset.id.clone(),
        step_s: config.step_s,
        horizon_steps: horizon,
        band_coverage: config.band_coverage,
        inputs,
        feature_level,
        outputs: Vec::new(),
        skipped,
    };
    let table = Table {
        grid,
        inputs: input_cols,
        outputs: Vec::new(),
    };
    let rows = feature_rows(&model, &table);
    let m = model.m();
    let w = model.width();

    let n = grid.len;
    let n_test = (n as f64 * config.test_fraction).floor() as usize;
    let n_val = (n as f64 * config.validation_fraction).floor() as usize;
    let val_end = n - n_test;
    let train_end = val_end - n_val;

    let mut structures = Vec::new();
    for &level in &config.nonlinearities {
        for na in 0..=config.max_na {
            for delay in 0..=config.max_delay {
                for nb in 1..=config.max_nb {
                    structures.push(Structure {
                        na,
                        nb,
                        delay,
                        level,
                        integrating: false,
                    });
                    // An integrator (a level, a counter, an energy meter) in place of the
                    // autoregressive terms: its increment is what the inputs drive.
                    if na == 0 {
                        structures.push(Structure {
                            na: 0,
                            nb,
                            delay,
                            level,
                            integrating: true,
                        });
                    }
                }
            }
        }
    }

    for (spec, r) in outputs_raw {
        let y = &r.values;
        let mean = y[..val_end].iter().sum::<f64>() / val_end as f64;
        let scale = std_dev(&y[..val_end]).max(1e-9 * (1.0 + mean.abs()));
        let yt: Vec<f64> = y.iter().map(|v| (v - mean) / scale).collect();
        let ctx = Ctx {
            rows: &rows,
            w,
            m,
            yt: &yt,
            warm,
            lags,
            max_na: config.max_na,
            ridge: config.ridge,
        };
        // Select on the validation block.
        let (g, b) = ctx.normal_equations(warm, train_end);
        let mut best: Option<(f64, Structure)> = None;
        for &s in &structures {
            let Some(om) = ctx.solve(&g, &b, s, spec.name.as_str()) else {
                continue;
            };
            if !stable(&om.ar) {
                continue;
            }
            let exo: Vec<f64> = (train_end..val_end)
                .map(|k| om.exo(&rows, w, m, k))
                .collect();
            let mut pred = Vec::new();
            om.run(&exo, [yt[train_end - 1], yt[train_end - 2]], &mut pred);
            let e = nrmse(&pred, &yt[train_end..val_end]);
            if !e.is_finite() {
                continue;
            }
            // A small price per coefficient: prefer the simpler of two near-equal structures.
            let params = s.na + s.nb * s.level.width(m) + 1 + usize::from(s.integrating);
            let score = e * (1.0 + 0.002 * params as f64);
            if best.is_none_or(|(b, _)| score < b) {
                best = Some((score, s));
            }
        }
        let Some((_, s)) = best else {
            return Err(SysIdError::Singular {
                signal: spec.name.clone(),
            });
        };
        // Validation figure of the chosen structure, then refit on training + validation.
        let validation_nrmse = {
            let om = ctx
                .solve(&g, &b, s, &spec.name)
                .ok_or_else(|| SysIdError::Singular {
                    signal: spec.name.clone(),
                })?;
            let exo: Vec<f64> = (train_end..val_end)
                .map(|k| om.exo(&rows, w, m, k))
                .collect();
            let mut pred = Vec::new();
            om.run(&exo, [yt[train_end - 1], yt[train_end - 2]], &mut pred);
            nrmse(&pred, &yt[train_end..val_end])
        };
        let (g, b) = ctx.normal_equations(warm, val_end);
        let mut om = ctx
            .solve(&g, &b, s, &spec.name)
            .filter(|o| stable(&o.ar))
            .ok_or_else(|| SysIdError::Singular {
                signal: spec.name.clone(),
            })?;
        om.mean = mean;
        om.scale = scale;
        om.min = spec.min;
        om.max = spec.max;
        om.reading_sd = r.reading_sd;
        om.quality.validation_nrmse = validation_nrmse;
        test_block(&mut om, &ctx, y, val_end, horizon, config);
        model.outputs.push(om);
    }
    Ok(model)
}

/// Quality on the held-out block and the band: one-step predictions, and free runs of
/// `horizon` steps from every start in the block.
fn test_block(
    om: &mut OutputModel,
    ctx: &Ctx<'_>,
    y: &[f64],
    from: usize,
    horizon: usize,
    config: &FitConfig,
) {
    let coverage = config.band_coverage;
    let n = y.len();
    let exo: Vec<f64> = (from..n)
        .map(|k| om.exo(ctx.rows, ctx.w, ctx.m, k))
        .collect();
    let yt = ctx.yt;
    let unscale = |v: f64| v * om.scale + om.mean;
    let one: Vec<f64> = (from..n)
        .map(|k| {
            let mut v = exo[k - from];
            if om.integrating {
                v += yt[k - 1];
            }
            for (i, a) in om.ar.iter().enumerate() {
                v += a * yt[k - 1 - i];
            }
            unscale(v)
        })
        .collect();
    let truth = &y[from..n];
    let mut errors: Vec<Vec<f64>> = vec![Vec::new(); horizon];
    let mut at_horizon_pred = Vec::new();
    let mut at_horizon_truth = Vec::new();
    let mut pred = Vec::new();
    for s in from..=n - horizon {
        om.run(
            &exo[s - from..s - from + horizon],
            [yt[s - 1], yt[s - 2]],
            &mut pred,
        );
        for (h, p) in pred.iter().enumerate() {
            errors[h].push((unscale(*p) - y[s + h]).abs());
        }
        at_horizon_pred.push(unscale(pred[horizon - 1]));
        at_horizon_truth.push(y[s + horizon - 1]);
    }
    let mut band = Vec::with_capacity(horizon);
    let mut running = 0.0f64;
    for e in &mut errors {
        running = running.max(quantile(e, coverage).unwrap_or(0.0));
        band.push(running);
    }
    om.band = band;
    let rmse_h = rmse(&at_horizon_pred, &at_horizon_truth);
    let (lo, hi) = truth
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let range = if hi > lo { hi - lo } else { 1.0 };
    let sd = std_dev(truth);
    om.quality = FitQuality {
        nrmse_one_step: rmse(&one, truth) / range,
        nrmse_horizon: rmse_h / range,
        nrmse_std_horizon: if sd > 0.0 { rmse_h / sd } else { rmse_h },
        rmse_one_step: rmse(&one, truth),
        rmse_horizon: rmse_h,
        horizon_s: horizon as f64 * config.step_s,
        test_points: n - from,
        validation_nrmse: om.quality.validation_nrmse,
    };
}

/// Everything the regression of one output needs.
struct Ctx<'a> {
    rows: &'a [f64],
    w: usize,
    m: usize,
    yt: &'a [f64],
    /// First usable step (every lag of the largest structure exists).
    warm: usize,
    /// Input lags 0..lags are in the full regressor.
    lags: usize,
    max_na: usize,
    ridge: f64,
}

impl Ctx<'_> {
    /// Columns of the full regressor: `max_na` output lags, `lags × w` input features, 1.
    fn width(&self) -> usize {
        self.max_na + self.lags * self.w + 1
    }

    /// `XᵀX` and `Xᵀy`, `XᵀΔy` (for integrating structures) of the full regressor over
    /// steps `from..to`.
    fn normal_equations(&self, from: usize, to: usize) -> (DMatrix<f64>, [DVector<f64>; 2]) {
        let p = self.width();
        let rows = to.saturating_sub(from.max(self.warm));
        let mut x = DMatrix::<f64>::zeros(rows, p);
        let mut t = DVector::<f64>::zeros(rows);
        let mut dt = DVector::<f64>::zeros(rows);
        for (r, k) in (from.max(self.warm)..to).enumerate() {
            for i in 0..self.max_na {
                x[(r, i)] = self.yt[k - 1 - i];
            }
            for l in 0..self.lags {
                let src = &self.rows[(k - l) * self.w..(k - l + 1) * self.w];
                for (f, v) in src.iter().enumerate() {
                    x[(r, self.max_na + l * self.w + f)] = *v;
                }
            }
            x[(r, p - 1)] = 1.0;
            t[r] = self.yt[k];
            dt[r] = self.yt[k] - self.yt[k - 1];
        }
        let xt = x.transpose();
        (&xt * &x, [&xt * &t, &xt * &dt])
    }

    fn solve(
        &self,
        g: &DMatrix<f64>,
        b: &[DVector<f64>; 2],
        s: Structure,
        signal: &str,
    ) -> Option<OutputModel> {
        let b = &b[usize::from(s.integrating)];
        let p_full = self.width();
        let f = s.level.width(self.m);
        let mut cols: Vec<usize> = (0..s.na).collect();
        for l in s.delay..s.delay + s.nb {
            for j in 0..f {
                cols.push(self.max_na + l * self.w + j);
            }
        }
        cols.push(p_full - 1);
        let p = cols.len();
        let gs = DMatrix::from_fn(p, p, |i, j| g[(cols[i], cols[j])]);
        let bs = DVector::from_fn(p, |i, _| b[cols[i]]);
        let theta = ridge_solve(&gs, &bs, self.ridge, Some(p - 1))?;
        Some(OutputModel {
            signal: signal.to_string(),
            na: s.na,
            nb: s.nb,
            delay: s.delay,
            nonlinearity: s.level,
            integrating: s.integrating,
            mean: 0.0,
            scale: 1.0,
            ar: theta.as_slice()[..s.na].to_vec(),
            b: theta.as_slice()[s.na..p - 1].to_vec(),
            constant: theta[p - 1],
            band: Vec::new(),
            reading_sd: 0.0,
            min: None,
            max: None,
            quality: FitQuality {
                nrmse_one_step: f64::NAN,
                nrmse_horizon: f64::NAN,
                nrmse_std_horizon: f64::NAN,
                rmse_one_step: f64::NAN,
                rmse_horizon: f64::NAN,
                horizon_s: 0.0,
                test_points: 0,
                validation_nrmse: f64::NAN,
            },
        })
    }
}

/// Drift quantiles of a disturbance at lags growing geometrically from one step to a day
/// (or half the history): enough points to interpolate a smooth curve, at a bounded cost.
fn drift(values: &[f64], config: &FitConfig) -> Vec<(f64, f64)> {
    let n = values.len();
    let max_lag = ((86_400.0 / config.step_s).round() as usize)
        .min(n / 2)
        .max(1);
    let mut out = Vec::new();
    let mut lag = 1usize;
    let mut running = 0.0f64;
    let mut diffs = Vec::new();
    while lag <= max_lag {
        let stride = ((n - lag) / 4_000).max(1);
        diffs.clear();
        diffs.extend(
            (0..n - lag)
                .step_by(stride)
                .map(|k| (values[k + lag] - values[k]).abs()),
        );
        running = running.max(quantile(&mut diffs, config.band_coverage).unwrap_or(0.0));
        out.push((lag as f64 * config.step_s, running));
        lag = (lag * 3 / 2).max(lag + 1);
    }
    out
}

/// Whether the autoregressive part is stable with a margin (roots inside radius 0.999): a
/// model that diverges in free run is no model of a plant that does not.
fn stable(ar: &[f64]) -> bool {
    const R: f64 = 0.999;
    match ar {
        [] => true,
        [a] => a.abs() < R,
        // z² − a1·z − a2: both roots inside radius R (Jury conditions on the scaled polynomial).
        [a1, a2] => {
            let (a1, a2) = (a1 / R, a2 / (R * R));
            a2.abs() < 1.0 && a1.abs() < 1.0 - a2
        }
        _ => false,
    }
}
