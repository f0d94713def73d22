//! Forecasts of one signal: readings bucketed onto a regular grid, an exponential-smoothing
//! forecaster (additive damped trend, optional additive daily seasonality) with prediction
//! intervals, and the time at which the signal will cross a limit at its current trend, with
//! an earliest / likely / latest range.
//!
//! Everything here is a pure function of the points it is given: no clock, no IO. Bad input
//! (non-finite values, too few points, a flat series) gives an error or a "no crossing
//! predicted" with its reason, never a panic and never a NaN in the output.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::Timestamp;

const NS_PER_HOUR: f64 = 3_600e9;
const DAY_NS: i64 = 86_400_000_000_000;

/// Why a series could not be forecast.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    #[error("bucket width must be a positive number of nanoseconds, got {0}")]
    BadStep(i64),
    #[error("{have} of the buckets hold data, need at least {need}")]
    TooLittleData { have: usize, need: usize },
    #[error("forecast configuration: {field} {reason}")]
    Config { field: &'static str, reason: String },
}

/// A series on a regular grid: bucket `i` covers `[start + i·step, start + (i+1)·step)` and
/// holds the mean of the points that fell in it, `None` where none did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegularSeries {
    pub start: Timestamp,
    pub step_ns: i64,
    pub values: Vec<Option<f64>>,
}

impl RegularSeries {
    /// Buckets `(t, value)` points (any order; non-finite values are skipped) onto a grid of
    /// `step_ns` aligned to multiples of `step_ns` since the epoch.
    pub fn from_points(points: &[(Timestamp, f64)], step_ns: i64) -> Result<Self, ForecastError> {
        if step_ns <= 0 {
            return Err(ForecastError::BadStep(step_ns));
        }
        let mut buckets: BTreeMap<i64, (f64, u32)> = BTreeMap::new();
        for &(t, x) in points {
            if x.is_finite() {
                let e = buckets.entry(t.div_euclid(step_ns)).or_insert((0.0, 0));
                e.0 += x;
                e.1 += 1;
            }
        }
        let (Some((&first, _)), Some((&last, _))) =
            (buckets.first_key_value(), buckets.last_key_value())
        else {
            return Ok(RegularSeries {
                start: 0,
                step_ns,
                values: Vec::new(),
            });
        };
        let mut values = vec![None; (last - first + 1) as usize];
        for (k, (sum, n)) in buckets {
            values[(k - first) as usize] = Some(sum / f64::from(n));
        }
        Ok(RegularSeries {
            start: first.saturating_mul(step_ns),
            step_ns,
            values,
        })
    }

    /// Buckets that hold data.
    pub fn filled(&self) -> usize {
        self.values.iter().filter(|v| v.is_some()).count()
    }

    /// Start time of bucket `i`.
    pub fn time_of(&self, i: usize) -> Timestamp {
        self.start
            .saturating_add((i as i64).saturating_mul(self.step_ns))
    }
}

/// A bounded, streaming version of [`RegularSeries::from_points`] for one signal: feed
/// readings in time order, keep the last `capacity` buckets. A reading older than the oldest
/// kept bucket is ignored; one in an earlier, still kept bucket is added to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalHistory {
    step_ns: i64,
    capacity: usize,
    /// Bucket index (time / step) of `buckets[0]`.
    first: i64,
    buckets: VecDeque<(f64, u32)>,
}

impl SignalHistory {
    /// `step_ns` is clamped to at least one second, `capacity` to at least 2 buckets.
    pub fn new(step_ns: i64, capacity: usize) -> Self {
        SignalHistory {
            step_ns: step_ns.max(1_000_000_000),
            capacity: capacity.max(2),
            first: 0,
            buckets: VecDeque::new(),
        }
    }

    pub fn push(&mut self, t: Timestamp, x: f64) {
        if !x.is_finite() {
            return;
        }
        let k = t.div_euclid(self.step_ns);
        if self.buckets.is_empty() {
            self.first = k;
        }
        if k < self.first {
            return;
        }
        let idx = (k - self.first) as u64;
        if idx >= self.capacity as u64 * 4 {
            // A jump far ahead: start over rather than push thousands of empty buckets.
            self.buckets.clear();
            self.first = k;
        }
        while ((k - self.first) as usize) >= self.buckets.len() {
            if self.buckets.len() >= self.capacity {
                // Drop the oldest before adding: the buffer never holds more than
                // `capacity` buckets, so it is never grown past it (a doubling would).
                self.buckets.pop_front();
                self.first += 1;
                continue;
            }
            if self.buckets.len() == self.buckets.capacity() {
                let room = self.capacity - self.buckets.len();
                let more = self.buckets.len().max(8).min(room);
                self.buckets.reserve_exact(more);
            }
            self.buckets.push_back((0.0, 0));
        }
        while self.buckets.len() > self.capacity {
            self.buckets.pop_front();
            self.first += 1;
        }
        if let Some(b) = self.buckets.get_mut((k - self.first) as usize) {
            b.0 += x;
            b.1 += 1;
        }
    }

    /// The kept buckets as a series. The newest bucket is still filling; `complete_before`
    /// leaves out buckets that end after that time (pass "now" to forecast from complete
    /// buckets only).
    pub fn series(&self, complete_before: Timestamp) -> RegularSeries {
        let values = self
            .buckets
            .iter()
            .enumerate()
            .take_while(|(i, _)| {
                (self.first + *i as i64 + 1).saturating_mul(self.step_ns) <= complete_before
            })
            .map(|(_, &(s, n))| (n > 0).then(|| s / f64::from(n)))
            .collect();
        RegularSeries {
            start: self.first.saturating_mul(self.step_ns),
            step_ns: self.step_ns,
            values,
        }
    }

    pub fn step_ns(&self) -> i64 {
        self.step_ns
    }
}

/// The recent history of all of a twin's numeric signals, bucketed: what a twin's shard
/// keeps so forecasts and advice can be computed at any time without querying the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwinHistory {
    step_ns: i64,
    capacity: usize,
    signals: BTreeMap<String, SignalHistory>,
}

impl TwinHistory {
    pub fn new(step_ns: i64, capacity: usize) -> Self {
        TwinHistory {
            step_ns,
            capacity,
            signals: BTreeMap::new(),
        }
    }

    /// Adds one reading of the twin (non-finite values are skipped).
    pub fn observe<S: AsRef<str>>(&mut self, ts: Timestamp, values: &[(S, f64)]) {
        for (name, x) in values {
            if !x.is_finite() {
                continue;
            }
            let name = name.as_ref();
            match self.signals.get_mut(name) {
                Some(h) => h.push(ts, *x),
                None => {
                    let mut h = SignalHistory::new(self.step_ns, self.capacity);
                    h.push(ts, *x);
                    self.signals.insert(name.to_string(), h);
                }
            }
        }
    }

    pub fn signal(&self, name: &str) -> Option<&SignalHistory> {
        self.signals.get(name)
    }
}

/// Settings of the forecaster. Smoothing parameters are chosen per series from the grids
/// below by one-step-ahead squared error, so a noisy series gets heavy smoothing and a
/// trending one follows its trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ForecastConfig {
    /// Buckets ahead to forecast.
    pub horizon: usize,
    /// Fewest filled buckets to fit on.
    pub min_points: usize,
    /// Fit on at most this many of the latest buckets.
    pub max_points: usize,
    /// Add a daily seasonal component when the grid divides a day and at least two days of
    /// data are there.
    pub daily_seasonality: bool,
    /// z of the prediction interval (1.96: 95 %).
    pub interval_z: f64,
    pub alpha_grid: Vec<f64>,
    pub beta_grid: Vec<f64>,
    /// Trend damping; 1 is Holt's linear trend, below 1 the trend flattens with the horizon.
    pub phi_grid: Vec<f64>,
    /// Seasonal smoothing.
    pub gamma: f64,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            horizon: 168,
            min_points: 12,
            max_points: 336,
            daily_seasonality: true,
            interval_z: 1.96,
            alpha_grid: vec![0.1, 0.3, 0.6, 0.9],
            beta_grid: vec![0.02, 0.1, 0.3],
            phi_grid: vec![0.98, 1.0],
            gamma: 0.1,
        }
    }
}

impl ForecastConfig {
    fn validate(&self) -> Result<(), ForecastError> {
        let bad = |field, reason: &str| {
            Err(ForecastError::Config {
                field,
                reason: reason.to_string(),
            })
        };
        let unit =
            |g: &[f64]| !g.is_empty() && g.iter().all(|x| x.is_finite() && *x > 0.0 && *x <= 1.0);
        if !unit(&self.alpha_grid) {
            return bad("alpha_grid", "must hold numbers in (0, 1]");
        }
        if !unit(&self.beta_grid) {
            return bad("beta_grid", "must hold numbers in (0, 1]");
        }
        if !unit(&self.phi_grid) {
            return bad("phi_grid", "must hold numbers in (0, 1]");
        }
        if !(self.gamma.is_finite() && (0.0..1.0).contains(&self.gamma)) {
            return bad("gamma", "must be in [0, 1)");
        }
        if !(self.interval_z.is_finite() && self.interval_z > 0.0) {
            return bad("interval_z", "must be a positive number");
        }
        Ok(())
    }
}

/// One forecast bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForecastPoint {
    pub ts: Timestamp,
    pub value: f64,
    pub lower: f64,
    pub upper: f64,
}

/// A least-squares slope over the recent buckets (seasonality removed), with its standard
/// error corrected for autocorrelated residuals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slope {
    pub per_hour: f64,
    pub se_per_hour: f64,
    /// Hours the slope was fitted over.
    pub window_h: f64,
}

impl Slope {
    /// The slope in standard errors (0 when the error is 0 and the slope too).
    pub fn t_stat(&self) -> f64 {
        if self.se_per_hour > 0.0 {
            self.per_hour / self.se_per_hour
        } else if self.per_hour == 0.0 {
            0.0
        } else {
            f64::MAX.copysign(self.per_hour)
        }
    }
}

/// A fitted forecast of one signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// End of the last bucket fitted: "now" for the forecast.
    pub origin: Timestamp,
    pub step_ns: i64,
    /// Smoothed level and trend at the origin (the trend per hour, before damping).
    pub level: f64,
    pub trend_per_hour: f64,
    /// The smoothed value of the last bucket: level plus that bucket's seasonal component.
    pub current: f64,
    pub slope: Slope,
    /// Standard deviation of the one-step-ahead errors.
    pub residual_std: f64,
    pub alpha: f64,
    pub beta: f64,
    pub phi: f64,
    pub seasonal: bool,
    pub points_fitted: usize,
    /// `horizon` buckets ahead; bucket `h` is stamped with its end time.
    pub points: Vec<ForecastPoint>,
}

/// Fits the forecaster to a series and forecasts `config.horizon` buckets ahead.
pub fn forecast(
    series: &RegularSeries,
    config: &ForecastConfig,
) -> Result<Forecast, ForecastError> {
    config.validate()?;
    if series.step_ns <= 0 {
        return Err(ForecastError::BadStep(series.step_ns));
    }
    let skip = series.values.len().saturating_sub(config.max_points.max(2));
    let values = &series.values[skip..];
    // Leading gaps say nothing; trailing ones are forecast across.
    let lead = values.iter().take_while(|v| v.is_none()).count();
    let values = &values[lead..];
    let start = series.time_of(skip + lead);
    let filled = values.iter().filter(|v| v.is_some()).count();
    let need = config.min_points.max(4);
    if filled < need {
        return Err(ForecastError::TooLittleData { have: filled, need });
    }
    let season = season_len(series.step_ns, values.len(), config);
    let seasonal_init = season.map(|m| initial_seasonal(values, m));

    let mut best: Option<(f64, Fit)> = None;
    for &phi in &config.phi_grid {
        for &alpha in &config.alpha_grid {
            for &beta in &config.beta_grid {
                let params = Params {
                    alpha,
                    beta,
                    phi,
                    gamma: config.gamma,
                };
                let fit = run(values, &params, seasonal_init.as_ref());
                let sse = fit.sse / fit.n.max(1) as f64;
                // Ties (flat series) go to the earlier, more damped and smoother setting.
                if best.as_ref().is_none_or(|(b, _)| sse < *b * (1.0 - 1e-9)) {
                    best = Some((sse, fit));
                }
            }
        }
    }
    let Some((mse, fit)) = best else {
        return Err(ForecastError::Config {
            field: "alpha_grid",
            reason: "is empty".into(),
        });
    };
    let sigma = if mse.is_finite() {
        mse.max(0.0).sqrt()
    } else {
        0.0
    };
    let step_h = series.step_ns as f64 / NS_PER_HOUR;
    let origin = start.saturating_add((values.len() as i64).saturating_mul(series.step_ns));
    let p = &fit.params;
    let mut points = Vec::with_capacity(config.horizon);
    let mut damp_sum = 0.0;
    let mut phi_pow = 1.0;
    let mut var_sum = 0.0;
    for h in 1..=config.horizon {
        phi_pow *= p.phi;
        damp_sum += phi_pow;
        let seasonal = fit
            .seasonal
            .as_ref()
            .map_or(0.0, |s| s[(fit.season_pos + h - 1) % s.len()]);
        let value = fit.level + damp_sum * fit.trend + seasonal;
        // Variance of the h-step error of the damped-trend model (Hyndman et al., class 1):
        // σ²·(1 + Σ_{j<h} c_j²), c_j = α(1 + β·φ(1−φ^j)/(1−φ)) (+ γ at whole seasons).
        if h > 1 {
            let j = h - 1;
            let damp_j = if (1.0 - p.phi).abs() < 1e-12 {
                j as f64
            } else {
                p.phi * (1.0 - p.phi.powi(j as i32)) / (1.0 - p.phi)
            };
            let mut c = p.alpha * (1.0 + p.beta * damp_j);
            if let Some(m) = season {
                if j % m == 0 {
                    c += p.gamma * (1.0 - p.alpha);
                }
            }
            var_sum += c * c;
        }
        let half = config.interval_z * sigma * (1.0 + var_sum).sqrt();
        let ts = origin.saturating_add((h as i64).saturating_mul(series.step_ns));
        points.push(ForecastPoint {
            ts,
            value: finite_or(value, fit.level),
            lower: finite_or(value - half, fit.level),
            upper: finite_or(value + half, fit.level),
        });
    }
    let slope = recent_slope(values, fit.seasonal_history.as_deref(), step_h);
    Ok(Forecast {
        origin,
        step_ns: series.step_ns,
        level: finite_or(fit.level, 0.0),
        current: finite_or(
            fit.level
                + fit
                    .seasonal_history
                    .as_ref()
                    .and_then(|h| h.last())
                    .copied()
                    .unwrap_or(0.0),
            0.0,
        ),
        trend_per_hour: finite_or(fit.trend / step_h, 0.0),
        slope,
        residual_std: sigma,
        alpha: p.alpha,
        beta: p.beta,
        phi: p.phi,
        seasonal: season.is_some(),
        points_fitted: filled,
        points,
    })
}

fn finite_or(x: f64, fallback: f64) -> f64 {
    if x.is_finite() {
        x
    } else if fallback.is_finite() {
        fallback
    } else {
        0.0
    }
}

/// Buckets per day, when a daily season applies.
fn season_len(step_ns: i64, n: usize, config: &ForecastConfig) -> Option<usize> {
    if !config.daily_seasonality || DAY_NS % step_ns != 0 {
        return None;
    }
    let m = (DAY_NS / step_ns) as usize;
    (m >= 2 && n >= 2 * m).then_some(m)
}

/// Seasonal indices by bucket of the day from the first two days, after removing their
/// linear trend (otherwise a trend would be taken for a within-day pattern and then
/// subtracted from every day).
fn initial_seasonal(values: &[Option<f64>], m: usize) -> Vec<f64> {
    let pts: Vec<(f64, f64)> = values
        .iter()
        .take(2 * m)
        .enumerate()
        .filter_map(|(i, v)| v.map(|x| (i as f64, x)))
        .collect();
    // The trend from the difference of the two days' means: a whole day of the season
    // averages out of each, which a least-squares line over the two days would not do.
    let day_mean = |d: usize| {
        let xs: Vec<f64> = pts
            .iter()
            .filter(|p| (p.0 as usize) / m == d)
            .map(|p| p.1)
            .collect();
        (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
    };
    let b = match (day_mean(0), day_mean(1)) {
        (Some(a), Some(c)) => finite_or((c - a) / m as f64, 0.0),
        _ => 0.0,
    };
    let n = pts.len().max(1) as f64;
    let mt = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let mx = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let mut sums = vec![(0.0, 0u32); m];
    for &(t, x) in &pts {
        let i = t as usize % m;
        sums[i].0 += x - mx - b * (t - mt);
        sums[i].1 += 1;
    }
    let idx: Vec<Option<f64>> = sums
        .iter()
        .map(|&(s, c)| (c > 0).then(|| s / f64::from(c)))
        .collect();
    let present: Vec<f64> = idx.iter().flatten().copied().collect();
    let mean = if present.is_empty() {
        0.0
    } else {
        present.iter().sum::<f64>() / present.len() as f64
    };
    idx.iter()
        .map(|v| v.map_or(0.0, |x| finite_or(x - mean, 0.0)))
        .collect()
}

#[derive(Debug, Clone)]
struct Params {
    alpha: f64,
    beta: f64,
    phi: f64,
    gamma: f64,
}

#[derive(Debug, Clone)]
struct Fit {
    params: Params,
    level: f64,
    trend: f64,
    seasonal: Option<Vec<f64>>,
    /// Position in the season of the bucket after the last one.
    season_pos: usize,
    /// The seasonal component used at each fitted bucket (to deseasonalise for the slope).
    seasonal_history: Option<Vec<f64>>,
    sse: f64,
    n: usize,
}

/// Additive damped-trend exponential smoothing (error-correction form); missing buckets
/// advance the state without an update.
fn run(values: &[Option<f64>], p: &Params, seasonal_init: Option<&Vec<f64>>) -> Fit {
    let mut seasonal = seasonal_init.cloned();
    let m = seasonal.as_ref().map_or(1, Vec::len).max(1);
    let mut hist = seasonal.as_ref().map(|_| Vec::with_capacity(values.len()));
    let mut first = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|x| (i, x)));
    let (i0, x0) = first.next().unwrap_or((0, 0.0));
    let s0 = seasonal.as_ref().map_or(0.0, |s| s[i0 % m]);
    let mut level = x0 - s0;
    let mut trend = 0.0;
    let mut sse = 0.0;
    let mut n = 0;
    // Errors of the first few buckets are those of the initialisation, not the model.
    let burn_in = 3;
    for (i, v) in values.iter().enumerate() {
        let s = seasonal.as_ref().map_or(0.0, |s| s[i % m]);
        if let Some(h) = hist.as_mut() {
            h.push(s);
        }
        if i < i0 {
            continue;
        }
        let pred_level = level + p.phi * trend;
        let Some(x) = *v else {
            level = pred_level;
            trend *= p.phi;
            continue;
        };
        if i == i0 {
            continue;
        }
        let e = x - (pred_level + s);
        if i > i0 + burn_in && e.is_finite() {
            sse += e * e;
            n += 1;
        }
        level = pred_level + p.alpha * e;
        trend = p.phi * trend + p.alpha * p.beta * e;
        if let Some(sv) = seasonal.as_mut() {
            sv[i % m] += p.gamma * (1.0 - p.alpha) * e;
        }
    }
    let season_pos = values.len() % m;
    Fit {
        params: p.clone(),
        level,
        trend,
        seasonal,
        season_pos,
        seasonal_history: hist,
        sse: if sse.is_finite() { sse } else { f64::MAX },
        n,
    }
}

/// Least-squares slope over the last day of buckets (at least 12, at most the series),
/// seasonality removed, standard error inflated by lag-1 autocorrelation of the residuals.
fn recent_slope(values: &[Option<f64>], seasonal: Option<&[f64]>, step_h: f64) -> Slope {
    let per_day = (24.0 / step_h).round().max(12.0) as usize;
    let from = values.len().saturating_sub(per_day);
    let pts: Vec<(f64, f64)> = values[from..]
        .iter()
        .enumerate()
        .filter_map(|(k, v)| {
            let i = from + k;
            let s = seasonal.and_then(|s| s.get(i)).copied().unwrap_or(0.0);
            v.map(|x| (i as f64 * step_h, x - s))
        })
        .collect();
    let n = pts.len();
    let window_h = (values.len() - from) as f64 * step_h;
    let none = Slope {
        per_hour: 0.0,
        se_per_hour: 0.0,
        window_h,
    };
    if n < 4 {
        return none;
    }
    let mt = pts.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let mx = pts.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let stt: f64 = pts.iter().map(|p| (p.0 - mt).powi(2)).sum();
    if stt <= 0.0 {
        return none;
    }
    let b = pts.iter().map(|p| (p.0 - mt) * (p.1 - mx)).sum::<f64>() / stt;
    let resid: Vec<f64> = pts.iter().map(|p| p.1 - mx - b * (p.0 - mt)).collect();
    let rss: f64 = resid.iter().map(|r| r * r).sum();
    let r1 = {
        let num: f64 = resid.windows(2).map(|w| w[0] * w[1]).sum();
        if rss > 0.0 {
            (num / rss).clamp(0.0, 0.95)
        } else {
            0.0
        }
    };
    let inflate = ((1.0 + r1) / (1.0 - r1)).sqrt();
    let se = (rss / (n - 2) as f64 / stt).sqrt() * inflate;
    Slope {
        per_hour: finite_or(b, 0.0),
        se_per_hour: finite_or(se, 0.0),
        window_h,
    }
}

/// A limit a signal should stay on the right side of.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub value: f64,
    /// True for an upper limit (crossing means going above it).
    pub upper: bool,
}

/// Why no crossing is predicted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "detail")]
pub enum NoCrossing {
    /// Too little data to forecast, or a bad configuration.
    CannotForecast(String),
    /// The trend is not distinguishable from noise, or points away from the limit.
    NoTrendTowardLimit,
    /// Even the pessimistic bound stays inside the limit over the whole horizon.
    NotWithinHorizon,
    /// The threshold is not a finite number.
    BadThreshold,
}

/// When a signal is expected to cross a limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum TimeToThreshold {
    /// The smoothed level is already beyond the limit.
    AlreadyBeyond { level: f64, threshold: Threshold },
    /// Crossing times: `earliest` where the pessimistic interval bound crosses, `likely`
    /// where the point forecast does, `latest` where the optimistic bound does (`None` when
    /// that is beyond the horizon).
    Predicted {
        threshold: Threshold,
        earliest: Timestamp,
        likely: Option<Timestamp>,
        latest: Option<Timestamp>,
        /// Hours from the forecast's origin to `earliest` / `likely`.
        earliest_h: f64,
        likely_h: Option<f64>,
        trend_per_hour: f64,
    },
    NotPredicted {
        threshold: Threshold,
        why: NoCrossing,
    },
}

impl TimeToThreshold {
    /// Hours until the likely crossing, 0 when already beyond.
    pub fn likely_hours(&self) -> Option<f64> {
        match self {
            TimeToThreshold::AlreadyBeyond { .. } => Some(0.0),
            TimeToThreshold::Predicted { likely_h, .. } => *likely_h,
            TimeToThreshold::NotPredicted { .. } => None,
        }
    }

    /// Hours until the earliest plausible crossing, 0 when already beyond.
    pub fn earliest_hours(&self) -> Option<f64> {
        match self {
            TimeToThreshold::AlreadyBeyond { .. } => Some(0.0),
            TimeToThreshold::Predicted { earliest_h, .. } => Some(*earliest_h),
            TimeToThreshold::NotPredicted { .. } => None,
        }
    }
}

/// Picks one curve of a forecast: the point forecast or an interval bound.
type Bound = fn(&ForecastPoint) -> f64;

/// Minimum |t| of the recent slope for a trend to count as one.
const TREND_T: f64 = 3.0;

/// When the forecast crosses `threshold`. A crossing is predicted only when the recent slope
/// is significant and heads toward the limit; otherwise noise widening the interval would
/// "predict" a crossing for every flat series.
pub fn time_to_threshold(f: &Forecast, threshold: Threshold) -> TimeToThreshold {
    if !threshold.value.is_finite() {
        return TimeToThreshold::NotPredicted {
            threshold,
            why: NoCrossing::BadThreshold,
        };
    }
    // The normal range includes its bounds: a signal resting on one (a closed damper at 0 %)
    // has not crossed it.
    let beyond = |x: f64| {
        if threshold.upper {
            x > threshold.value
        } else {
            x < threshold.value
        }
    };
    // Already beyond: the smoothed current value (level plus this hour's season) is past the
    // limit by more than the noise, not just the deseasonalised level.
    let margin = if threshold.upper {
        f.residual_std
    } else {
        -f.residual_std
    };
    if beyond(f.current - margin) {
        return TimeToThreshold::AlreadyBeyond {
            level: f.current,
            threshold,
        };
    }
    let toward = if threshold.upper {
        f.slope.per_hour > 0.0
    } else {
        f.slope.per_hour < 0.0
    };
    if !toward || f.slope.t_stat().abs() < TREND_T {
        return TimeToThreshold::NotPredicted {
            threshold,
            why: NoCrossing::NoTrendTowardLimit,
        };
    }
    let (pess, opt): (Bound, Bound) = if threshold.upper {
        (|p| p.upper, |p| p.lower)
    } else {
        (|p| p.lower, |p| p.upper)
    };
    let first = |g: fn(&ForecastPoint) -> f64| f.points.iter().find(|p| beyond(g(p))).map(|p| p.ts);
    let Some(earliest) = first(pess) else {
        return TimeToThreshold::NotPredicted {
            threshold,
            why: NoCrossing::NotWithinHorizon,
        };
    };
    let likely = first(|p| p.value);
    let latest = first(opt);
    let hours = |t: Timestamp| (t - f.origin) as f64 / NS_PER_HOUR;
    TimeToThreshold::Predicted {
        threshold,
        earliest,
        likely,
        latest,
        earliest_h: hours(earliest),
        likely_h: likely.map(hours),
        trend_per_hour: f.slope.per_hour,
    }
}

/// Forecasts a series and asks when it crosses `threshold`; a series that cannot be
/// forecast gives "no crossing predicted" with the reason.
pub fn time_to_threshold_of(
    series: &RegularSeries,
    threshold: Threshold,
    config: &ForecastConfig,
) -> TimeToThreshold {
    match forecast(series, config) {
        Ok(f) => time_to_threshold(&f, threshold),
        Err(e) => TimeToThreshold::NotPredicted {
            threshold,
            why: NoCrossing::CannotForecast(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: i64 = 3_600_000_000_000;
    const T0: i64 = 1_767_571_200_000_000_000;

    /// Deterministic noise in [-1, 1].
    fn noise(i: u64) -> f64 {
        let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }

    fn hourly(n: usize, f: impl Fn(usize) -> f64) -> RegularSeries {
        let pts: Vec<_> = (0..n).map(|i| (T0 + i as i64 * H, f(i))).collect();
        RegularSeries::from_points(&pts, H).unwrap()
    }

    #[test]
    fn buckets_average_points_and_leave_gaps() {
        let pts = [
            (T0 + 10, 1.0),
            (T0 + 20, 3.0),
            (T0 + 2 * H, 5.0),
            (T0 + 2 * H + 1, f64::NAN),
        ];
        let s = RegularSeries::from_points(&pts, H).unwrap();
        assert_eq!(s.start, T0);
        assert_eq!(s.values, vec![Some(2.0), None, Some(5.0)]);
        assert!(RegularSeries::from_points(&pts, 0).is_err());
    }

    #[test]
    fn streaming_history_matches_batch_bucketing() {
        let pts: Vec<_> = (0..500)
            .map(|i| (T0 + i * 600_000_000_000, noise(i as u64)))
            .collect();
        let mut h = SignalHistory::new(H, 1_000);
        for &(t, x) in &pts {
            h.push(t, x);
        }
        let batch = RegularSeries::from_points(&pts, H).unwrap();
        let stream = h.series(i64::MAX);
        assert_eq!(stream.start, batch.start);
        assert_eq!(stream.values.len(), batch.values.len());
        for (a, b) in stream.values.iter().zip(&batch.values) {
            assert!((a.unwrap() - b.unwrap()).abs() < 1e-12);
        }
        // Bounded, and the incomplete last bucket can be left out.
        let mut small = SignalHistory::new(H, 10);
        for &(t, x) in &pts {
            small.push(t, x);
        }
        assert_eq!(small.series(i64::MAX).values.len(), 10);
        assert_eq!(small.series(pts[499].0).values.len(), 9);
        assert!(
            small.buckets.capacity() <= 16,
            "{}",
            small.buckets.capacity()
        );
    }

    /// Dropping the oldest bucket before adding one (so the buffer never outgrows its
    /// capacity) keeps what pushing first and trimming after kept, gaps and jumps included.
    #[test]
    fn streaming_history_keeps_the_same_buckets_whatever_the_gaps() {
        for capacity in [2usize, 3, 10, 336] {
            let mut h = SignalHistory::new(H, capacity);
            // The plain model: every bucket ever touched, trimmed to the last `capacity`.
            let mut model: Vec<(i64, f64, u32)> = Vec::new();
            let mut t = T0;
            for i in 0..3_000u64 {
                let gap = match noise(i).abs() {
                    g if g > 0.99 => H * (capacity as i64 * 5),
                    g if g > 0.9 => H * 7,
                    g if g > 0.6 => H,
                    _ => H / 7,
                };
                t += gap;
                let x = noise(i + 7);
                h.push(t, x);
                let k = t.div_euclid(H);
                if model
                    .first()
                    .is_some_and(|m| k - m.0 >= capacity as i64 * 4)
                {
                    model.clear();
                }
                match model.iter_mut().find(|m| m.0 == k) {
                    Some(m) => {
                        m.1 += x;
                        m.2 += 1;
                    }
                    None => {
                        let from = model.last().map_or(k, |m| m.0 + 1);
                        model.extend((from..k).map(|j| (j, 0.0, 0)));
                        model.push((k, x, 1));
                    }
                }
                let excess = model.len().saturating_sub(capacity);
                model.drain(..excess);
                assert_eq!(h.first, model[0].0);
                let kept: Vec<(f64, u32)> = model.iter().map(|m| (m.1, m.2)).collect();
                assert!(h.buckets.iter().copied().eq(kept.iter().copied()));
                assert!(h.buckets.capacity() <= capacity.max(8) * 2);
            }
            assert!(
                h.buckets.capacity() <= capacity.max(16),
                "{}",
                h.buckets.capacity()
            );
        }
    }

    #[test]
    fn linear_trend_is_followed_and_crossing_found() {
        // 0.5 per hour from 10 with noise ±0.2: crosses 60 at hour 100.
        let s = hourly(72, |i| 10.0 + 0.5 * i as f64 + 0.2 * noise(i as u64));
        let cfg = ForecastConfig {
            daily_seasonality: false,
            ..Default::default()
        };
        let f = forecast(&s, &cfg).unwrap();
        assert!((f.slope.per_hour - 0.5).abs() < 0.02, "{:?}", f.slope);
        let t = time_to_threshold(
            &f,
            Threshold {
                value: 60.0,
                upper: true,
            },
        );
        let TimeToThreshold::Predicted {
            earliest_h,
            likely_h,
            ..
        } = t
        else {
            panic!("{t:?}")
        };
        let likely = likely_h.unwrap();
        // The origin is hour 72, the crossing at hour 100 (damping may delay it a little).
        assert!((24.0..40.0).contains(&likely), "likely in {likely} h");
        assert!(earliest_h <= likely);
    }

    #[test]
    fn flat_and_noisy_series_predict_no_crossing() {
        let th = Threshold {
            value: 12.0,
            upper: true,
        };
        let cfg = ForecastConfig::default();
        let flat = hourly(100, |_| 10.0);
        assert!(matches!(
            time_to_threshold_of(&flat, th, &cfg),
            TimeToThreshold::NotPredicted {
                why: NoCrossing::NoTrendTowardLimit,
                ..
            }
        ));
        let noisy = hourly(100, |i| 10.0 + noise(i as u64));
        assert!(matches!(
            time_to_threshold_of(&noisy, th, &cfg),
            TimeToThreshold::NotPredicted { .. }
        ));
        let short = hourly(3, |i| i as f64);
        let r = time_to_threshold_of(&short, th, &cfg);
        assert!(
            matches!(&r, TimeToThreshold::NotPredicted { why: NoCrossing::CannotForecast(m), .. } if m.contains("need")),
            "{r:?}"
        );
    }

    #[test]
    fn a_trend_is_kept_when_the_daily_season_is_fitted() {
        let s = hourly(72, |i| {
            0.1 + 0.006 * i as f64
                + 0.02 * (i as f64 / 24.0 * std::f64::consts::TAU).sin()
                + 0.005 * noise(i as u64)
        });
        let f = forecast(&s, &ForecastConfig::default()).unwrap();
        assert!(f.seasonal);
        assert!((f.slope.per_hour - 0.006).abs() < 0.001, "{:?}", f.slope);
        assert!(f.slope.t_stat() > 10.0, "{:?}", f.slope);
    }

    #[test]
    fn daily_cycle_is_not_mistaken_for_a_trend() {
        // Three days of a 24 h wave: a slope fitted over one day without the season would
        // be large at most phases.
        let s = hourly(72, |i| {
            20.0 + 5.0 * (i as f64 / 24.0 * std::f64::consts::TAU).sin() + 0.1 * noise(i as u64)
        });
        let f = forecast(&s, &ForecastConfig::default()).unwrap();
        assert!(f.seasonal);
        assert!(f.slope.t_stat().abs() < TREND_T, "{:?}", f.slope);
        // The forecast follows the wave: 6 h ahead of hour 72 is the crest.
        let p = f.points[5];
        assert!((p.value - 25.0).abs() < 1.0, "{p:?}");
        assert!(p.lower < p.value && p.value < p.upper);
    }

    #[test]
    fn falling_signal_crosses_a_lower_limit() {
        let s = hourly(48, |i| 8.0 - 0.05 * i as f64 + 0.01 * noise(i as u64));
        let cfg = ForecastConfig {
            daily_seasonality: false,
            ..Default::default()
        };
        let t = time_to_threshold_of(
            &s,
            Threshold {
                value: 6.0,
                upper: false,
            },
            &cfg,
        );
        let likely = t.likely_hours().unwrap();
        // 8 − 0.05·h = 6 at h = 40, the origin is at 48... already 5.6: beyond.
        assert_eq!(likely, 0.0, "{t:?}");
        let t = time_to_threshold_of(
            &s,
            Threshold {
                value: 5.0,
                upper: false,
            },
            &cfg,
        );
        let likely = t.likely_hours().unwrap();
        assert!((8.0..20.0).contains(&likely), "{t:?}");
    }

    proptest! {
        #[test]
        fn any_input_gives_finite_output(
            xs in proptest::collection::vec(prop_oneof![
                Just(f64::NAN), Just(f64::INFINITY), -1e12f64..1e12, Just(0.0)
            ], 0..80),
            th in -1e12f64..1e12, upper: bool,
        ) {
            let s = hourly(xs.len(), |i| xs[i]);
            let cfg = ForecastConfig { horizon: 48, ..Default::default() };
            if let Ok(f) = forecast(&s, &cfg) {
                prop_assert!(f.level.is_finite() && f.residual_std.is_finite());
                prop_assert!(f.slope.per_hour.is_finite() && f.slope.se_per_hour.is_finite());
                for p in &f.points {
                    prop_assert!(p.value.is_finite() && p.lower.is_finite() && p.upper.is_finite());
                    prop_assert!(p.lower <= p.upper);
                }
            }
            let t = time_to_threshold_of(&s, Threshold { value: th, upper }, &cfg);
            match t {
                TimeToThreshold::Predicted { earliest_h, likely_h, trend_per_hour, .. } => {
                    prop_assert!(earliest_h.is_finite() && trend_per_hour.is_finite());
                    prop_assert!(likely_h.is_none_or(f64::is_finite));
                }
                TimeToThreshold::AlreadyBeyond { level, .. } => prop_assert!(level.is_finite()),
                TimeToThreshold::NotPredicted { .. } => {}
            }
        }
    }
}
