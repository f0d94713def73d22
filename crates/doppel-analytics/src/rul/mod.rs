//! Remaining useful life (RUL) learned from a fleet of run-to-failure histories.
//!
//! Fitting, in order: the operating regimes are found by clustering the settings vectors
//! ([`regime`]); each sensor is normalized by its mean and spread within its regime; sensors
//! whose normalized value does not move with the remaining life are dropped; a ridge
//! regression of the capped RUL on the normalized sensors gives a one-dimensional health
//! index; window features of every prefix of every run ([`features`]) are regressed on the
//! piecewise-linear target `min(RUL, cap)` by gradient-boosted trees ([`gbt`]). Residuals
//! are first measured by cross-validation over runs (each run predicted, step by step, by a
//! model that never saw it); their quantiles per band of predicted RUL give the prediction
//! interval. The final model is then fitted on every run.
//!
//! Pure: no IO, no clock; the same runs, configuration and seed give the same model.

mod features;
pub mod fleet;
mod gbt;
mod linear;
mod regime;

use serde::{Deserialize, Serialize};

use features::{features_at, FeatureSpec, Sums};
use gbt::{Gbt, GbtParams, SplitMix64};
use linear::Ridge;
use regime::Regimes;

/// One step (cycle, sample) of a history: the operating-condition settings and the sensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulStep {
    pub settings: Vec<f64>,
    pub sensors: Vec<f64>,
}

/// A history that ends at failure: its last step has a remaining useful life of 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RulRun {
    /// A name for error messages and reports (a unit number, a twin id).
    pub id: String,
    pub steps: Vec<RulStep>,
}

/// Remaining useful life in steps, with a prediction interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RulEstimate {
    pub rul: f64,
    /// Lower and upper bounds; between them lies the true RUL with probability
    /// [`RulConfig::coverage`], as measured by cross-validation over the training runs.
    pub lower: f64,
    pub upper: f64,
}

/// Why a model could not be fitted or asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RulError {
    #[error("need at least {needed} runs to fit and hold some out, got {got}")]
    TooFewRuns { needed: usize, got: usize },
    #[error("run {run:?} has no steps")]
    EmptyRun { run: String },
    #[error("the history to predict from has no steps")]
    EmptyHistory,
    #[error("{at}: {field} has {got} values, expected {expected}")]
    Dimension {
        at: String,
        field: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{at}: {field}[{index}] is not a finite number")]
    NonFinite {
        at: String,
        field: &'static str,
        index: usize,
    },
    #[error("no sensor moves with the remaining life (|correlation| >= {threshold})")]
    NoInformativeSensor { threshold: f64 },
    #[error("invalid RUL configuration: {}", problems.join("; "))]
    InvalidConfig { problems: Vec<String> },
}

/// How to fit. The defaults are meant for any fleet; nothing here is specific to one data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RulConfig {
    /// The target is `min(RUL, rul_cap)`: early in life nothing tells how far failure is.
    pub rul_cap: f64,
    /// Most operating regimes looked for among the settings.
    pub max_regimes: usize,
    /// Share of the settings' variance the clusters must explain to count as regimes.
    pub regime_explained: f64,
    /// Sensors whose regime-normalized value correlates less than this with the capped RUL
    /// are dropped (constant sensors have no correlation).
    pub min_sensor_correlation: f64,
    /// Windows (in steps) over which channel means are taken.
    pub mean_windows: Vec<usize>,
    /// Windows (in steps) over which channel slopes are taken.
    pub slope_windows: Vec<usize>,
    /// First steps of a history that define its own baseline level.
    pub baseline_steps: usize,
    /// Give the trees the history's age (steps so far). Right where every history starts
    /// new and wears from its first step (C-MAPSS engines); misleading where an asset runs
    /// healthy for a varying time before wear starts, as fleet histories do.
    pub age_feature: bool,
    /// Share of each run's first steps (taken as healthy) on which every regime-normalized
    /// sensor is regressed on the settings (linear and squared terms), the regression then
    /// being subtracted everywhere: continuous operating conditions (speed, load, ambient)
    /// that move sensors without wear. 0 turns it off (discrete regimes, as in C-MAPSS,
    /// are handled by the regime normalization alone).
    pub condition_share: f64,
    /// Boosted ensembles fitted with different seeds and averaged (less variance).
    pub members: usize,
    /// Trees per member.
    pub trees: usize,
    pub learning_rate: f64,
    pub max_depth: usize,
    pub min_leaf: usize,
    pub l2: f64,
    /// Share of rows and of features each tree sees.
    pub subsample: f64,
    pub colsample: f64,
    pub bins: usize,
    /// Weight of a ridge regression on the same features, averaged with the trees.
    pub linear_weight: f64,
    /// Folds of the cross-validation over runs that measures residuals for the interval
    /// (each fold model has one member, so the interval errs on the wide side).
    pub folds: usize,
    /// Probability the interval should hold the true RUL.
    pub coverage: f64,
    /// Bands of predicted RUL, each with its own residual quantiles.
    pub interval_bands: usize,
    pub seed: u64,
}

impl Default for RulConfig {
    fn default() -> Self {
        RulConfig {
            rul_cap: 125.0,
            max_regimes: 8,
            regime_explained: 0.99,
            min_sensor_correlation: 0.2,
            mean_windows: vec![5, 10, 20],
            slope_windows: vec![10, 30, 60, 120, 250],
            baseline_steps: 10,
            age_feature: true,
            condition_share: 0.0,
            members: 3,
            trees: 300,
            learning_rate: 0.05,
            max_depth: 5,
            min_leaf: 40,
            l2: 1.0,
            subsample: 0.7,
            colsample: 0.5,
            bins: 64,
            linear_weight: 0.0,
            folds: 5,
            coverage: 0.9,
            interval_bands: 5,
            seed: 0x5EED,
        }
    }
}

impl RulConfig {
    /// Every problem of the configuration at once.
    pub fn validate(&self) -> Result<(), RulError> {
        let mut p = Vec::new();
        let mut check = |ok: bool, msg: &str| {
            if !ok {
                p.push(msg.to_string());
            }
        };
        check(self.rul_cap > 0.0, "rul_cap must be > 0");
        check(self.max_regimes >= 1, "max_regimes must be >= 1");
        check(
            self.regime_explained > 0.0 && self.regime_explained < 1.0,
            "regime_explained must be in (0, 1)",
        );
        check(
            (0.0..1.0).contains(&self.min_sensor_correlation),
            "min_sensor_correlation must be in [0, 1)",
        );
        check(
            !self.mean_windows.is_empty() && !self.mean_windows.contains(&0),
            "mean_windows must be non-empty and > 0",
        );
        check(
            !self.slope_windows.contains(&0),
            "slope_windows must be > 0",
        );
        check(self.baseline_steps >= 1, "baseline_steps must be >= 1");
        check(
            (0.0..1.0).contains(&self.condition_share),
            "condition_share must be in [0, 1)",
        );
        check(self.members >= 1, "members must be >= 1");
        check(self.trees >= 1, "trees must be >= 1");
        check(
            self.learning_rate > 0.0 && self.learning_rate <= 1.0,
            "learning_rate must be in (0, 1]",
        );
        check(self.min_leaf >= 1, "min_leaf must be >= 1");
        check(self.l2 >= 0.0, "l2 must be >= 0");
        check(
            self.subsample > 0.0 && self.subsample <= 1.0,
            "subsample must be in (0, 1]",
        );
        check(
            self.colsample > 0.0 && self.colsample <= 1.0,
            "colsample must be in (0, 1]",
        );
        check((2..=256).contains(&self.bins), "bins must be in 2..=256");
        check(
            (0.0..=1.0).contains(&self.linear_weight),
            "linear_weight must be in [0, 1]",
        );
        check(self.folds >= 2, "folds must be >= 2");
        check(
            self.coverage > 0.0 && self.coverage < 1.0,
            "coverage must be in (0, 1)",
        );
        check(self.interval_bands >= 1, "interval_bands must be >= 1");
        if p.is_empty() {
            Ok(())
        } else {
            Err(RulError::InvalidConfig { problems: p })
        }
    }

    fn spec(&self) -> FeatureSpec {
        FeatureSpec {
            means: self.mean_windows.clone(),
            slopes: self.slope_windows.clone(),
            baseline: self.baseline_steps,
            age: self.age_feature,
        }
    }

    fn gbt(&self, seed: u64) -> GbtParams {
        GbtParams {
            trees: self.trees,
            learning_rate: self.learning_rate,
            max_depth: self.max_depth,
            min_leaf: self.min_leaf,
            l2: self.l2,
            subsample: self.subsample,
            colsample: self.colsample,
            bins: self.bins,
            seed,
        }
    }
}

/// Regime-normalized values beyond this many spreads are clipped: far outside anything
/// seen in training, and it keeps every later sum finite.
const Z_LIMIT: f64 = 50.0;

/// Everything that turns a history into a predicted RUL (the interval aside).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pipeline {
    settings: usize,
    sensors: usize,
    regimes: Regimes,
    /// Per regime, per kept sensor: (mean, 1/spread), 1/spread = 0 for a constant sensor.
    norm: Vec<Vec<(f64, f64)>>,
    /// Indices of the sensors kept.
    kept: Vec<usize>,
    /// What the settings explain of each normalized sensor (fleet histories).
    #[serde(default)]
    conditions: Option<Conditions>,
    health: Ridge,
    spec: FeatureSpec,
    members: Vec<Gbt>,
    linear: Option<Ridge>,
    linear_weight: f64,
    cap: f64,
}

/// Per sensor, a ridge regression of its regime-normalized value on the settings (centred,
/// and their squares), fitted on the healthy first part of each run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Conditions {
    center: Vec<f64>,
    per_sensor: Vec<Ridge>,
}

impl Conditions {
    fn features(&self, settings: &[f64]) -> Vec<f64> {
        let d: Vec<f64> = settings
            .iter()
            .zip(&self.center)
            .map(|(v, c)| v - c)
            .collect();
        d.iter().copied().chain(d.iter().map(|v| v * v)).collect()
    }
}

/// Checks sizes and finiteness of one step.
fn check_step(
    s: &RulStep,
    at: impl Fn() -> String,
    settings: usize,
    sensors: usize,
) -> Result<(), RulError> {
    for (field, v, expected) in [
        ("settings", &s.settings, settings),
        ("sensors", &s.sensors, sensors),
    ] {
        if v.len() != expected {
            return Err(RulError::Dimension {
                at: at(),
                field,
                expected,
                got: v.len(),
            });
        }
        if let Some(index) = v.iter().position(|x| !x.is_finite()) {
            return Err(RulError::NonFinite {
                at: at(),
                field,
                index,
            });
        }
    }
    Ok(())
}

fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let m = values.iter().sum::<f64>() / n;
    let v = values.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, v.sqrt())
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let (ma, sa) = mean_sd(a);
    let (mb, sb) = mean_sd(b);
    if sa <= 0.0 || sb <= 0.0 {
        return 0.0;
    }
    let n = a.len().max(1) as f64;
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / n
        / (sa * sb)
}

/// The capped target of every step of a run, in order.
fn targets(len: usize, cap: f64) -> impl Iterator<Item = f64> {
    (0..len).map(move |t| ((len - 1 - t) as f64).min(cap))
}

impl Pipeline {
    fn fit(runs: &[&RulRun], cfg: &RulConfig, seed: u64) -> Result<Pipeline, RulError> {
        let settings = runs[0].steps[0].settings.len();
        let sensors = runs[0].steps[0].sensors.len();
        let all: Vec<&RulStep> = runs.iter().flat_map(|r| &r.steps).collect();
        let set_refs: Vec<&[f64]> = all.iter().map(|s| s.settings.as_slice()).collect();
        let regimes = Regimes::detect(&set_refs, cfg.max_regimes, cfg.regime_explained);
        let regime_of: Vec<usize> = set_refs.iter().map(|s| regimes.assign(s)).collect();
        let mut norm = vec![vec![(0.0, 0.0); sensors]; regimes.count()];
        for (r, slot) in norm.iter_mut().enumerate() {
            for (j, cell) in slot.iter_mut().enumerate() {
                let vals: Vec<f64> = all
                    .iter()
                    .zip(&regime_of)
                    .filter(|(_, &g)| g == r)
                    .map(|(s, _)| s.sensors[j])
                    .collect();
                let (m, sd) = mean_sd(&vals);
                *cell = (
                    m,
                    if sd > 1e-9 * (1.0 + m.abs()) {
                        1.0 / sd
                    } else {
                        0.0
                    },
                );
            }
        }
        let y: Vec<f64> = runs
            .iter()
            .flat_map(|r| targets(r.steps.len(), cfg.rul_cap))
            .collect();
        let mut pipe = Pipeline {
            settings,
            sensors,
            regimes,
            norm,
            kept: (0..sensors).collect(),
            conditions: None,
            health: Ridge::fit(&[], &[], 1.0),
            spec: cfg.spec(),
            members: Vec::new(),
            linear: None,
            linear_weight: cfg.linear_weight,
            cap: cfg.rul_cap,
        };
        let mut z_all: Vec<Vec<f64>> = all
            .iter()
            .zip(&regime_of)
            .map(|(s, &g)| pipe.normalize(s, g))
            .collect();
        if cfg.condition_share > 0.0 && settings > 0 {
            let healthy: Vec<bool> = runs
                .iter()
                .flat_map(|r| {
                    let n = r.steps.len();
                    let k = ((n as f64 * cfg.condition_share).ceil() as usize).max(1);
                    (0..n).map(move |t| t < k)
                })
                .collect();
            let n_h = healthy.iter().filter(|&&h| h).count().max(1) as f64;
            let mut center = vec![0.0; settings];
            for (s, _) in all.iter().zip(&healthy).filter(|(_, &h)| h) {
                for (c, v) in center.iter_mut().zip(&s.settings) {
                    *c += v / n_h;
                }
            }
            let mut cond = Conditions {
                center,
                per_sensor: Vec::new(),
            };
            let x: Vec<Vec<f64>> = all
                .iter()
                .zip(&healthy)
                .filter(|(_, &h)| h)
                .map(|(s, _)| cond.features(&s.settings))
                .collect();
            cond.per_sensor = (0..sensors)
                .map(|j| {
                    let y: Vec<f64> = z_all
                        .iter()
                        .zip(&healthy)
                        .filter(|(_, &h)| h)
                        .map(|(z, _)| z[j])
                        .collect();
                    Ridge::fit(&x, &y, 1e-3)
                })
                .collect();
            pipe.conditions = Some(cond);
            z_all = all
                .iter()
                .zip(&regime_of)
                .map(|(s, &g)| pipe.normalize(s, g))
                .collect();
        }
        let kept: Vec<usize> = (0..sensors)
            .filter(|&j| {
                let col: Vec<f64> = z_all.iter().map(|z| z[j]).collect();
                correlation(&col, &y).abs() >= cfg.min_sensor_correlation
            })
            .collect();
        if kept.is_empty() {
            return Err(RulError::NoInformativeSensor {
                threshold: cfg.min_sensor_correlation,
            });
        }
        let z_kept: Vec<Vec<f64>> = z_all
            .iter()
            .map(|z| kept.iter().map(|&j| z[j]).collect())
            .collect();
        pipe.kept = kept;
        pipe.health = Ridge::fit(&z_kept, &y, 1e-3);
        let mut x = Vec::with_capacity(all.len());
        let mut start = 0;
        for r in runs {
            let n = r.steps.len();
            let channels = pipe.channels(&z_kept[start..start + n]);
            for t in 0..n {
                let mut f = Vec::with_capacity(pipe.spec.len(channels.len()));
                features_at(&channels, t, &pipe.spec, &mut f);
                x.push(f);
            }
            start += n;
        }
        pipe.members = (0..cfg.members as u64)
            .map(|k| Gbt::fit(&x, &y, &cfg.gbt(seed.wrapping_add(k))))
            .collect();
        if cfg.linear_weight > 0.0 {
            pipe.linear = Some(Ridge::fit(&x, &y, 1e-3));
        }
        Ok(pipe)
    }

    /// All sensors of a step, normalized within regime `g` and clipped.
    fn normalize(&self, s: &RulStep, g: usize) -> Vec<f64> {
        let phi = self.conditions.as_ref().map(|c| c.features(&s.settings));
        s.sensors
            .iter()
            .zip(&self.norm[g])
            .enumerate()
            .map(|(j, (v, (m, k)))| {
                let mut z = (v - m) * k;
                if let (Some(c), Some(phi)) = (&self.conditions, &phi) {
                    z -= c.per_sensor[j].predict(phi);
                }
                z.clamp(-Z_LIMIT, Z_LIMIT)
            })
            .collect()
    }

    /// Kept, normalized sensors of a history, step by step.
    fn kept_z(&self, steps: &[RulStep]) -> Vec<Vec<f64>> {
        steps
            .iter()
            .map(|s| {
                let z = self.normalize(s, self.regimes.assign(&s.settings));
                self.kept.iter().map(|&j| z[j]).collect()
            })
            .collect()
    }

    /// Running sums per channel: each kept sensor, then the health index.
    fn channels(&self, z: &[Vec<f64>]) -> Vec<Sums> {
        let mut ch: Vec<Sums> = (0..self.kept.len())
            .map(|j| Sums::new(&z.iter().map(|row| row[j]).collect::<Vec<f64>>()))
            .collect();
        ch.push(Sums::new(
            &z.iter()
                .map(|row| self.health.predict(row))
                .collect::<Vec<f64>>(),
        ));
        ch
    }

    fn predict_features(&self, f: &[f64]) -> f64 {
        let n = self.members.len().max(1) as f64;
        let mut p = self.members.iter().map(|m| m.predict(f)).sum::<f64>() / n;
        if let Some(l) = &self.linear {
            p = (1.0 - self.linear_weight) * p + self.linear_weight * l.predict(f);
        }
        p.clamp(0.0, self.cap)
    }

    /// The prediction after every step of a history (what it would have said then).
    fn predict_each_step(&self, steps: &[RulStep]) -> Vec<f64> {
        let channels = self.channels(&self.kept_z(steps));
        let mut f = Vec::new();
        (0..steps.len())
            .map(|t| {
                f.clear();
                features_at(&channels, t, &self.spec, &mut f);
                self.predict_features(&f)
            })
            .collect()
    }

    fn predict_last(&self, steps: &[RulStep]) -> f64 {
        let channels = self.channels(&self.kept_z(steps));
        let mut f = Vec::new();
        features_at(&channels, steps.len() - 1, &self.spec, &mut f);
        self.predict_features(&f)
    }
}

/// Residual quantiles (true − predicted) for predictions up to `up_to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Band {
    up_to: f64,
    low: f64,
    high: f64,
}

/// How the model did in cross-validation over the training runs (each predicted by a
/// model fitted without it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOut {
    pub runs: usize,
    pub steps: usize,
    /// RMSE against the capped target over every step of every run.
    pub rmse_capped: f64,
    /// RMSE against the true RUL over each run's steps with a true RUL up to the cap.
    pub rmse_within_cap: f64,
    /// Share of steps whose true RUL lies in the interval (by construction close to the
    /// configured coverage).
    pub coverage: f64,
}

/// A fitted RUL model; serializable, so it can be stored and reloaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulModel {
    config: RulConfig,
    pipeline: Pipeline,
    bands: Vec<Band>,
    held_out: HeldOut,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    let next = sorted[(i + 1).min(sorted.len() - 1)];
    sorted[i] + frac * (next - sorted[i])
}

impl RulModel {
    /// Fits a model on run-to-failure histories (at least two, with the same number of
    /// settings and sensors at every step, all finite).
    pub fn fit(runs: &[RulRun], config: &RulConfig) -> Result<RulModel, RulError> {
        config.validate()?;
        if runs.len() < 2 {
            return Err(RulError::TooFewRuns {
                needed: 2,
                got: runs.len(),
            });
        }
        if let Some(r) = runs.iter().find(|r| r.steps.is_empty()) {
            return Err(RulError::EmptyRun { run: r.id.clone() });
        }
        let (ns, nx) = (
            runs[0].steps[0].settings.len(),
            runs[0].steps[0].sensors.len(),
        );
        for r in runs {
            for (t, s) in r.steps.iter().enumerate() {
                check_step(s, || format!("run {:?} step {t}", r.id), ns, nx)?;
            }
        }
        // Cross-validation over runs, in seeded folds, for residuals; then refit on all.
        let mut order: Vec<usize> = (0..runs.len()).collect();
        SplitMix64::new(config.seed ^ 0x0048_444F_5554).shuffle(&mut order);
        let folds = config.folds.min(runs.len());
        let fold_config = RulConfig {
            members: 1,
            ..config.clone()
        };
        let mut pairs: Vec<(f64, f64)> = Vec::new();
        let (mut sq, mut sq_in, mut n_in) = (0.0, 0.0, 0usize);
        for k in 0..folds {
            let fit_runs: Vec<&RulRun> = (0..runs.len())
                .filter(|&i| order[i] % folds != k)
                .map(|i| &runs[i])
                .collect();
            let probe = Pipeline::fit(&fit_runs, &fold_config, config.seed.wrapping_add(k as u64))?;
            for i in (0..runs.len()).filter(|&i| order[i] % folds == k) {
                let steps = &runs[i].steps;
                for (t, p) in probe.predict_each_step(steps).into_iter().enumerate() {
                    let truth = (steps.len() - 1 - t) as f64;
                    sq += (p - truth.min(config.rul_cap)).powi(2);
                    if truth <= config.rul_cap {
                        sq_in += (p - truth).powi(2);
                        n_in += 1;
                    }
                    pairs.push((p, truth - p));
                }
            }
        }
        let steps_out = pairs.len();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let bands_n = config.interval_bands.min(steps_out.max(1));
        let alpha = (1.0 - config.coverage) / 2.0;
        let mut bands = Vec::with_capacity(bands_n);
        for b in 0..bands_n {
            let lo = b * steps_out / bands_n;
            let hi = ((b + 1) * steps_out / bands_n).max(lo + 1).min(steps_out);
            let mut res: Vec<f64> = pairs[lo..hi].iter().map(|p| p.1).collect();
            res.sort_by(f64::total_cmp);
            bands.push(Band {
                // The last band also takes anything above it (see `interval`).
                up_to: pairs[hi - 1].0,
                low: quantile(&res, alpha),
                high: quantile(&res, 1.0 - alpha),
            });
        }
        let pipeline = Pipeline::fit(&runs.iter().collect::<Vec<_>>(), config, config.seed)?;
        let mut model = RulModel {
            config: config.clone(),
            pipeline,
            bands,
            held_out: HeldOut {
                runs: runs.len(),
                steps: steps_out,
                rmse_capped: (sq / steps_out.max(1) as f64).sqrt(),
                rmse_within_cap: (sq_in / n_in.max(1) as f64).sqrt(),
                coverage: 0.0,
            },
        };
        let inside = pairs
            .iter()
            .filter(|(p, r)| {
                let e = model.interval(*p);
                let truth = p + r;
                truth >= e.lower && truth <= e.upper
            })
            .count();
        model.held_out.coverage = inside as f64 / steps_out.max(1) as f64;
        Ok(model)
    }

    fn interval(&self, rul: f64) -> RulEstimate {
        let band = self
            .bands
            .iter()
            .find(|b| rul <= b.up_to)
            .or(self.bands.last());
        let (low, high) = band.map_or((0.0, 0.0), |b| (b.low, b.high));
        let lower = (rul + low).max(0.0);
        RulEstimate {
            rul,
            lower: lower.min(rul),
            upper: (rul + high).max(rul),
        }
    }

    /// The RUL after the last step of a (partial) history that starts where the runs did.
    pub fn predict(&self, history: &[RulStep]) -> Result<RulEstimate, RulError> {
        if history.is_empty() {
            return Err(RulError::EmptyHistory);
        }
        let p = &self.pipeline;
        for (t, s) in history.iter().enumerate() {
            check_step(s, || format!("history step {t}"), p.settings, p.sensors)?;
        }
        Ok(self.interval(p.predict_last(history)))
    }

    /// The RUL after every step of a history (each from the steps up to it), as
    /// [`predict`](RulModel::predict) would give for each prefix, in one pass.
    pub fn predict_each(&self, history: &[RulStep]) -> Result<Vec<RulEstimate>, RulError> {
        let p = &self.pipeline;
        for (t, s) in history.iter().enumerate() {
            check_step(s, || format!("history step {t}"), p.settings, p.sensors)?;
        }
        Ok(p.predict_each_step(history)
            .into_iter()
            .map(|r| self.interval(r))
            .collect())
    }

    pub fn config(&self) -> &RulConfig {
        &self.config
    }

    /// Number of operating regimes found in the settings.
    pub fn regimes(&self) -> usize {
        self.pipeline.regimes.count()
    }

    /// Indices of the sensors the model uses.
    pub fn sensors_used(&self) -> &[usize] {
        &self.pipeline.kept
    }

    pub fn held_out(&self) -> &HeldOut {
        &self.held_out
    }

    /// Number of features per step the trees see.
    pub fn features(&self) -> usize {
        self.pipeline.members.first().map_or(0, Gbt::features)
    }
}

#[cfg(test)]
mod tests;
