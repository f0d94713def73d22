//! One signal's detectors: an adaptive robust baseline (level, spread, optional daily
//! profile) and, scored against it, the level, rate-of-change, stuck, dropout, normal-range
//! and CUSUM shift detectors. All state is a fixed number of numbers except the warm-up
//! buffer, which is bounded by the warm-up length and dropped once the baseline is learned.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::DetectorConfig;
use crate::stats::{median, quantile, robust_std, sane, spread_floor};
use crate::Timestamp;

/// What kind of deviation a contribution to a score is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContributionKind {
    /// The value is far from its expected level.
    Level,
    /// The value jumped much more than it usually does between two readings.
    Rate,
    /// The value has not changed for much longer than it usually stays put.
    Stuck,
    /// The signal has not reported for much longer than its usual interval.
    Dropout,
    /// The value is outside the normal range declared by the asset model.
    Range,
    /// A sustained shift of the level (CUSUM), small per reading but persistent.
    Shift,
    /// The value is inconsistent with the twin's other signals.
    Multivariate,
}

/// The best-scoring deviation of one signal at one reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SignalOutcome {
    pub kind: ContributionKind,
    /// Statistic / threshold, before the feedback sensitivity is applied.
    pub ratio: f64,
    pub expected: f64,
    /// The reading; for a shift, the recent smoothed level.
    pub observed: Option<f64>,
    /// Standardized residual (for the multivariate part); `None` when not scored.
    pub z: Option<f64>,
    resid: f64,
    dx: f64,
    dt: f64,
}

const HOUR_NS: i64 = 3_600_000_000_000;
/// Width of the deadband inside a declared limit: this many spreads of the signal...
const RANGE_DEADBAND_SPREADS: f64 = 3.0;
/// ...or this share of the range's width, whichever is wider (alarm-management practice puts
/// limit deadbands at 1–5 % of the span).
const RANGE_DEADBAND_SHARE: f64 = 0.02;

/// A value relative to its declared range.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RangePosition {
    Inside,
    /// Inside, but closer to a limit than the deadband.
    Deadband,
    /// Outside, by this much.
    Outside(f64),
}
const DAY_NS: i64 = 24 * HOUR_NS;

/// A daily profile of the level: 24 hourly offsets, used once it explains enough variance.
/// Offsets are kept in single precision: they are residuals to the level (the daily swing,
/// not the signal's magnitude), so seven significant digits of them change no decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DailyProfile {
    offsets: [f32; 24],
    /// Readings learned per bin, saturating at `u8::MAX`: a count only matters while its
    /// inverse is above the learning weight (× 24), which a count that high never is unless
    /// the weight is below 1.6e-4 (with the default configuration it is at least 1e-3:
    /// `level_alpha` × the smaller of `suspect_weight` and `anomalous_weight`). Saved as
    /// 16-bit numbers, as they were before.
    #[serde(serialize_with = "wide_counts", deserialize_with = "saturating_counts")]
    counts: [u8; 24],
    /// First time learned, [`NO_TS`] before.
    #[serde(with = "ts_or_none")]
    first_ts: Timestamp,
    active: bool,
}

impl DailyProfile {
    fn new() -> Self {
        DailyProfile {
            offsets: [0.0; 24],
            counts: [0; 24],
            first_ts: NO_TS,
            active: false,
        }
    }

    fn bin(ts: Timestamp) -> usize {
        (ts.rem_euclid(DAY_NS) / HOUR_NS) as usize
    }

    fn offset(&self, ts: Timestamp) -> f64 {
        if self.active {
            f64::from(self.offsets[Self::bin(ts)])
        } else {
            0.0
        }
    }

    /// Learns from the residual to the plain level (`x - level`), weighted like the baseline.
    fn learn(&mut self, ts: Timestamp, resid_to_level: f64, weight: f64, spread: f64) {
        if self.first_ts == NO_TS {
            self.first_ts = ts;
        }
        let first = self.first_ts;
        let b = Self::bin(ts);
        self.counts[b] = self.counts[b].saturating_add(1);
        // Fast at first (running mean), then as slow as the baseline, never slower than 1/20
        // per day a bin sees about 1/24 of the points.
        let w = (1.0 / f64::from(self.counts[b]))
            .max(weight * 24.0)
            .min(1.0);
        if weight > 0.0 {
            let o = f64::from(self.offsets[b]);
            self.offsets[b] = narrow(sane(o + w * (resid_to_level - o), 0.0));
        }
        if !self.active
            && ts.saturating_sub(first) >= 2 * DAY_NS
            && self.counts.iter().all(|&c| c >= 3)
        {
            let offsets = self.offsets.map(f64::from);
            let mean = offsets.iter().sum::<f64>() / 24.0;
            let var = offsets.iter().map(|o| (o - mean).powi(2)).sum::<f64>() / 24.0;
            // Worth it when the daily swing is comparable to the noise around the level.
            if var >= 0.5 * spread * spread {
                self.active = true;
            }
        }
    }
}

/// Counts saved wider (16 bits, or 32 in state from before that) load saturated.
fn saturating_counts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 24], D::Error> {
    let wide = <[u32; 24]>::deserialize(d)?;
    Ok(wide.map(|c| u8::try_from(c).unwrap_or(u8::MAX)))
}

fn wide_counts<S: serde::Serializer>(counts: &[u8; 24], s: S) -> Result<S::Ok, S::Error> {
    counts.map(u16::from).serialize(s)
}

/// "No time yet" in a timestamp field (readings never carry it: it is the earliest
/// representable time).
const NO_TS: Timestamp = Timestamp::MIN;

/// A number kept in single precision: rounded, and held within its range (state never holds
/// an infinity; the numbers narrowed are finite by [`sane`]).
fn narrow(x: f64) -> f32 {
    x.clamp(-f64::from(f32::MAX), f64::from(f32::MAX)) as f32
}

/// Serde form of a timestamp field with a "none" sentinel: `Option<Timestamp>`, as the field
/// was saved before it had one.
mod ts_or_none {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::NO_TS;
    use crate::Timestamp;

    pub(super) fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        (*ts != NO_TS).then_some(*ts).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        Ok(Option::<Timestamp>::deserialize(d)?.unwrap_or(NO_TS))
    }
}

/// Serde form of a value field with NaN as "none" (values are finite): `Option<f64>`.
mod value_or_none {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        (!x.is_nan()).then_some(*x).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let x = Option::<f64>::deserialize(d)?;
        // A saved non-finite value (damage) reads as none rather than poisoning scores.
        Ok(x.filter(|x| x.is_finite()).unwrap_or(f64::NAN))
    }
}

/// What is constant about a signal, the same for every twin of a model: its name, declared
/// normal range and role. Twins of one model share one list of these
/// ([`TwinDetector::share_signals`](crate::TwinDetector::share_signals)).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignalSpec {
    pub name: Arc<str>,
    /// The declared normal range (asset model), if any.
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// An input or disturbance of the twin (a setpoint, a schedule, the weather): imposed
    /// from outside, so its changes say nothing about the twin's health. Checked only as a
    /// sensor (declared range, dropout, stuck), never against its baseline.
    #[serde(default)]
    pub exogenous: bool,
    /// An input (a setpoint, a schedule): a command rather than a measurement, so holding
    /// one value for hours is normal and never "stuck". Implies `exogenous`.
    #[serde(default)]
    pub command: bool,
}

impl SignalSpec {
    /// An output signal with no declared range (a signal the model does not name).
    pub fn output(name: Arc<str>) -> Self {
        SignalSpec {
            name,
            min: None,
            max: None,
            exogenous: false,
            command: false,
        }
    }

    /// Imposed on the twin (an input or a disturbance).
    pub fn is_exogenous(&self) -> bool {
        self.exogenous || self.command
    }

    fn key(&self) -> (&str, Option<u64>, Option<u64>, bool, bool) {
        (
            &self.name,
            self.min.map(f64::to_bits),
            self.max.map(f64::to_bits),
            self.exogenous,
            self.command,
        )
    }
}

/// Equal when every field is bit-for-bit equal, so specs can be interned in a hash set.
impl PartialEq for SignalSpec {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for SignalSpec {}

impl std::hash::Hash for SignalSpec {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.key().hash(h);
    }
}

/// State saved before the field was optional holds `[]` for "none".
#[allow(clippy::type_complexity)] // the field's own type
fn some_if_not_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Box<Vec<(Timestamp, f64)>>>, D::Error> {
    let v = Option::<Vec<(Timestamp, f64)>>::deserialize(d)?;
    Ok(v.filter(|v| !v.is_empty()).map(Box::new))
}

/// A single-precision number; one saved in double precision (JSON, before it was single)
/// loads rounded, and held within range.
fn narrowed<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    let x = f32::deserialize(d)?;
    Ok(if x.is_nan() {
        0.0
    } else {
        x.clamp(-f32::MAX, f32::MAX)
    })
}

/// Detectors of one signal: what a twin learned about it. What is constant about the signal
/// (name, range, role) is its [`SignalSpec`], shared by the twins of a model and passed in.
/// Serializable so a twin's detector can be persisted and resumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalDetector {
    /// Values seen before the baseline is learned, for a signal that first reported after
    /// its twin's warm-up (the twin keeps the warm-up readings of the others); emptied by
    /// `fit`. Boxed: nearly every signal never needs it.
    #[serde(default, deserialize_with = "some_if_not_empty")]
    #[allow(clippy::box_collection)] // 8 bytes in every signal instead of a Vec's 24
    warm: Option<Box<Vec<(Timestamp, f64)>>>,
    fitted: bool,
    /// False when the signal was constant while learning: stuck makes no sense for it.
    variable: bool,
    run_flagged: bool,
    /// Last seen outside the declared range and not yet back inside by the deadband.
    #[serde(default)]
    out_of_range: bool,
    level: f64,
    /// Change of the level per usual interval (Holt's linear trend), so slow drifts that are
    /// part of normal operation (a fluid warming up) do not read as shifts.
    trend: f64,
    spread: f64,
    /// Typical |change| between consecutive readings one interval apart.
    step: f64,
    /// Usual sampling interval (ns); 0 until known.
    interval: f64,
    /// Time of the last value, [`NO_TS`] before the first.
    #[serde(with = "ts_or_none")]
    last_ts: Timestamp,
    /// The last value, NaN before the first.
    #[serde(with = "value_or_none")]
    last_value: f64,
    run: u32,
    max_run: u32,
    cusum_pos: f64,
    cusum_neg: f64,
    /// This signal's CUSUM decision interval, learned on the warm-up. (The learned limits
    /// below are single precision: thresholds, not state that accumulates.)
    #[serde(deserialize_with = "narrowed")]
    cusum_h: f32,
    /// Inline rather than boxed: with the default configuration every learned signal has
    /// one, and a box would add a pointer and an allocation to each.
    season: Option<DailyProfile>,
    /// Recent level (fast EWMA of the values), the target of the drift allowance.
    #[serde(default)]
    recent: f64,
    /// How far the baseline may follow the recent level per usual interval, whatever the
    /// alarm state (learned on the warm-up).
    #[serde(default, deserialize_with = "narrowed")]
    drift: f32,
    /// The adaptive spread never shrinks below this (a share of the learned spread), so a
    /// long quiet spell does not make the signal's usual wander look anomalous.
    #[serde(default, deserialize_with = "narrowed")]
    min_spread: f32,
    /// Readings in a row that this signal has been off its baseline but steady near
    /// `anchor` (its recent level when the spell began), with no other signal off.
    #[serde(default)]
    steady: u32,
    #[serde(default)]
    anchor: f64,
    /// The rate detector's threshold never falls below this |change| per interval: a
    /// margin over the large steps the signal already took while learning (quantized or
    /// spiky sensors step by whole counts even when healthy).
    #[serde(default, deserialize_with = "narrowed")]
    rate_floor: f32,
}

impl SignalDetector {
    pub(crate) fn new(cfg: &DetectorConfig) -> Self {
        SignalDetector {
            warm: None,
            fitted: false,
            variable: false,
            run_flagged: false,
            out_of_range: false,
            level: 0.0,
            trend: 0.0,
            spread: 0.0,
            step: 0.0,
            interval: 0.0,
            last_ts: NO_TS,
            last_value: f64::NAN,
            run: 0,
            max_run: 0,
            cusum_pos: 0.0,
            cusum_neg: 0.0,
            cusum_h: narrow(sane(cfg.cusum_h, 0.0)),
            season: cfg.daily_seasonality.then(DailyProfile::new),
            recent: 0.0,
            drift: 0.0,
            min_spread: 0.0,
            steady: 0,
            anchor: 0.0,
            rate_floor: 0.0,
        }
    }

    pub(crate) fn is_fitted(&self) -> bool {
        self.fitted
    }

    pub(crate) fn is_variable(&self) -> bool {
        self.variable
    }

    fn last_value(&self) -> Option<f64> {
        (!self.last_value.is_nan()).then_some(self.last_value)
    }

    /// Time since the last value (0 before the first, or for a time before it).
    fn since_last(&self, ts: Timestamp) -> f64 {
        if self.last_ts == NO_TS {
            0.0
        } else {
            ts.saturating_sub(self.last_ts).max(0) as f64
        }
    }

    /// Takes the warm-up values this signal kept itself (see the `warm` field).
    pub(crate) fn take_warm(&mut self) -> Vec<(Timestamp, f64)> {
        self.warm.take().map(|w| *w).unwrap_or_default()
    }

    /// Hands the signal warm-up values to go on learning from on its own.
    pub(crate) fn set_warm(&mut self, warm: Vec<(Timestamp, f64)>) {
        self.warm = Some(Box::new(warm));
    }

    /// Heap bytes this detector owns.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.warm.as_ref().map_or(0, |w| {
            std::mem::size_of::<Vec<(Timestamp, f64)>>()
                + w.capacity() * std::mem::size_of::<(Timestamp, f64)>()
        })
    }

    /// Learned level and spread (for the multivariate part's standardization).
    pub(crate) fn level_spread(&self) -> (f64, f64) {
        (self.level, self.spread)
    }

    /// Records a warm-up value. Returns true once the signal has `warmup` values.
    pub(crate) fn push_warm(&mut self, ts: Timestamp, x: f64, cfg: &DetectorConfig) -> bool {
        let limit = cfg.warmup.max(2);
        let warm = self
            .warm
            .get_or_insert_with(|| Box::new(Vec::with_capacity(limit)));
        if warm.len() < limit {
            warm.push((ts, x));
        }
        warm.len() >= limit
    }

    /// Learns the baseline from the warm-up values `warm` (in time order): replays them
    /// through the adaptive baseline and takes the spread from its one-step prediction
    /// errors, so the spread covers what the baseline cannot follow (noise, and drift faster
    /// than it adapts). Drops the values the signal kept itself.
    pub(crate) fn fit(&mut self, warm: &[(Timestamp, f64)], cfg: &DetectorConfig) {
        let xs: Vec<f64> = warm.iter().map(|w| w.1).collect();
        let diffs: Vec<f64> = xs.windows(2).map(|w| w[1] - w[0]).collect();
        let dts: Vec<f64> = warm
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) as f64)
            .filter(|d| *d > 0.0)
            .collect();
        self.interval = sane(median(&dts), 0.0);
        let n = xs.len();
        let burn = (n / 4).clamp(1, n.saturating_sub(1).max(1));
        let mut level = median(&xs[..burn.max(10).min(n)]);
        let mut trend = 0.0;
        let a = cfg.level_alpha.clamp(0.0, 1.0);
        let b = cfg.trend_beta.clamp(0.0, 1.0);
        let mut resids = Vec::with_capacity(n);
        for (i, x) in xs.iter().enumerate() {
            let g = self.gap_factor(
                i.checked_sub(1)
                    .map_or(0.0, |j| (warm[i].0 - warm[j].0).max(0) as f64),
            );
            let e = level + trend * g;
            let r = x - e;
            if i >= burn {
                resids.push(r.abs());
            }
            level = sane(e + a * r, level);
            trend = sane(trend + a * b * r, trend);
        }
        let floor = spread_floor(level);
        let step = robust_std(&diffs);
        let med = median(&resids);
        let spread = if med > 0.0 {
            1.4826 * med
        } else {
            1.2533 * resids.iter().sum::<f64>() / resids.len().max(1) as f64
        };
        // The spread covers the one-step error of the baseline and, when `long_term_spread`,
        // the whole warm-up's variability: a signal that wandered while learning is judged
        // against that wander, not against its reading-to-reading noise.
        let spread = if cfg.long_term_spread {
            spread.max(robust_std(&xs))
        } else {
            spread
        };
        let spread = sane(spread.max(step / std::f64::consts::SQRT_2), floor).max(floor);
        // The shift detector's threshold: at least `cusum_h`, and above what the CUSUM reached
        // on the warm-up itself (autocorrelated or wandering signals accumulate more).
        let (mut pos, mut neg) = (0.0f64, 0.0f64);
        let mut path = Vec::with_capacity(resids.len());
        let mut level = median(&xs[..burn.max(10).min(n)]);
        let mut trend = 0.0;
        for (i, x) in xs.iter().enumerate() {
            let e = level + trend;
            let r = x - e;
            level = sane(e + a * r, level);
            trend = sane(trend + a * b * r, trend);
            if i >= burn {
                let z = (r / spread).clamp(-cfg.level_z, cfg.level_z);
                pos = (pos + z - cfg.cusum_k).max(0.0);
                neg = (neg - z - cfg.cusum_k).max(0.0);
                path.push(pos.max(neg));
            }
        }
        self.cusum_h = narrow(sane(
            (cfg.shift_margin * quantile(&path, cfg.shift_quantile)).max(cfg.cusum_h),
            cfg.cusum_h,
        ));
        self.level = sane(level, 0.0);
        self.recent = self.level;
        self.trend = trend;
        // Drift allowance: the warm-up's own trend (least squares, per reading) with a margin,
        // and at least `drift_spreads` spreads over a warm-up's length.
        let nf = n as f64;
        let mean_i = (nf - 1.0) / 2.0;
        let mean_x = xs.iter().sum::<f64>() / nf.max(1.0);
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (i, x) in xs.iter().enumerate() {
            let di = i as f64 - mean_i;
            sxy += di * (x - mean_x);
            sxx += di * di;
        }
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        self.drift = narrow(
            sane(
                (cfg.drift_margin * slope.abs()).max(cfg.drift_spreads * spread / nf.max(1.0)),
                0.0,
            )
            .max(0.0),
        );
        self.variable = spread > floor;
        self.spread = sane(spread, floor).max(floor);
        self.min_spread = narrow(self.spread * cfg.min_spread_ratio.clamp(0.0, 1.0));
        self.step = sane(step, floor).max(floor);
        let abs_diffs: Vec<f64> = diffs.iter().map(|d| d.abs()).collect();
        self.rate_floor = narrow(
            sane(
                cfg.rate_margin * quantile(&abs_diffs, cfg.rate_quantile),
                0.0,
            )
            .max(0.0),
        );
        let mut run = 0u32;
        let mut max_run = 0u32;
        for d in &diffs {
            if d.abs() <= self.equal_tolerance() {
                run += 1;
                max_run = max_run.max(run);
            } else {
                run = 0;
            }
        }
        self.max_run = max_run;
        self.run = run;
        if let Some(&(ts, x)) = warm.last() {
            self.last_ts = ts;
            self.last_value = x;
        }
        self.warm = None;
        self.fitted = true;
    }

    /// Elapsed time in usual intervals (1 when the interval is not known yet), capped so a
    /// long gap does not extrapolate the trend far.
    fn gap_factor(&self, dt: f64) -> f64 {
        if self.interval > 0.0 {
            (dt / self.interval).clamp(0.0, 10.0)
        } else {
            1.0
        }
    }

    fn equal_tolerance(&self) -> f64 {
        1e-12 * self.level.abs().max(1e-300)
    }

    fn stuck_limit(&self, cfg: &DetectorConfig) -> f64 {
        (cfg.stuck_factor * (self.max_run.max(1)) as f64).max(cfg.stuck_min_points as f64)
    }

    /// Scores a value. Does not change the baseline; call [`learn`](Self::learn) after.
    pub(crate) fn score(
        &self,
        spec: &SignalSpec,
        ts: Timestamp,
        x: f64,
        cfg: &DetectorConfig,
    ) -> SignalOutcome {
        let dt = self.since_last(ts);
        let expected = self.level
            + self.trend * self.gap_factor(dt)
            + self.season.as_ref().map_or(0.0, |s| s.offset(ts));
        let resid = x - expected;
        let z = sane(resid / self.spread, 0.0);
        let own = !(spec.exogenous || spec.command);
        let mut best = (
            ContributionKind::Level,
            if own { z.abs() / cfg.level_z } else { 0.0 },
        );
        let mut consider = |kind, r: f64| {
            let r = sane(r, 0.0);
            if r > best.1 {
                best = (kind, r);
            }
        };
        if self.interval > 0.0 {
            consider(
                ContributionKind::Dropout,
                dt / (cfg.dropout_factor * self.interval),
            );
        }
        let mut dx = 0.0;
        if let Some(prev) = self.last_value() {
            dx = x - prev;
            let gap = if self.interval > 0.0 {
                (dt / self.interval).max(1.0).sqrt()
            } else {
                1.0
            };
            if own {
                consider(
                    ContributionKind::Rate,
                    dx.abs() / ((cfg.rate_z * self.step).max(f64::from(self.rate_floor)) * gap),
                );
            }
            if self.variable && !spec.command && dx.abs() <= self.equal_tolerance() {
                consider(
                    ContributionKind::Stuck,
                    (self.run + 1) as f64 / self.stuck_limit(cfg),
                );
            }
        }
        // A single spike moves the CUSUM by at most `level_z`: spikes are the level
        // detector's business, sustained shifts this one's.
        let zc = z.clamp(-cfg.level_z, cfg.level_z);
        let cap = cfg.cusum_cap * f64::from(self.cusum_h);
        let pos = (self.cusum_pos + zc - cfg.cusum_k).clamp(0.0, cap);
        let neg = (self.cusum_neg - zc - cfg.cusum_k).clamp(0.0, cap);
        if own {
            consider(
                ContributionKind::Shift,
                pos.max(neg) / f64::from(self.cusum_h),
            );
        }
        if let Some(r) = self.range_ratio(spec, x) {
            consider(ContributionKind::Range, r);
        }
        // A shift is a sustained change of level: report the recent (smoothed) level as what
        // was observed, not the single reading, which can sit on either side of the baseline.
        let observed = if best.0 == ContributionKind::Shift {
            let season = self.season.as_ref().map_or(0.0, |s| s.offset(ts));
            let ra = cfg.recent_alpha.clamp(0.0, 1.0);
            sane(self.recent + ra * ((x - season) - self.recent), x - season) + season
        } else {
            x
        };
        SignalOutcome {
            kind: best.0,
            ratio: best.1,
            expected,
            observed: Some(observed),
            z: Some(z),
            resid,
            dx,
            dt,
        }
    }

    /// Outside the model's normal range: always at least 4.5 × threshold (a score ≥ 0.95),
    /// growing with the excess relative to the range's width. Back inside but still within
    /// the deadband of a limit it crossed: at the threshold, so a value hovering at a limit
    /// keeps one alarm up instead of raising one per crossing.
    fn range_ratio(&self, spec: &SignalSpec, x: f64) -> Option<f64> {
        let width = match (spec.min, spec.max) {
            (Some(lo), Some(hi)) => (hi - lo).abs(),
            (Some(b), None) | (None, Some(b)) => b.abs(),
            (None, None) => return None,
        }
        .max(1e-9);
        match self.range_position(spec, x) {
            RangePosition::Outside(excess) => Some(4.5 + 10.0 * excess / width),
            RangePosition::Deadband if self.out_of_range => Some(1.0),
            _ => None,
        }
    }

    /// Where `x` is relative to the declared range. The deadband is a few of the signal's
    /// own spreads inside a limit (what noise alone moves it by), at least a small share of
    /// the range.
    fn range_position(&self, spec: &SignalSpec, x: f64) -> RangePosition {
        let width = match (spec.min, spec.max) {
            (Some(lo), Some(hi)) => (hi - lo).abs(),
            _ => 0.0,
        };
        let band = (RANGE_DEADBAND_SPREADS * self.spread).max(RANGE_DEADBAND_SHARE * width);
        match (spec.min, spec.max) {
            (Some(lo), _) if x < lo => RangePosition::Outside(lo - x),
            (_, Some(hi)) if x > hi => RangePosition::Outside(x - hi),
            (Some(lo), _) if x < lo + band => RangePosition::Deadband,
            (_, Some(hi)) if x > hi - band => RangePosition::Deadband,
            _ => RangePosition::Inside,
        }
    }

    /// Scores the absence of this signal at `ts` (the twin reported, this signal did not).
    pub(crate) fn score_absent(&self, ts: Timestamp, cfg: &DetectorConfig) -> SignalOutcome {
        let dt = self.since_last(ts);
        let ratio = if self.interval > 0.0 {
            sane(dt / (cfg.dropout_factor * self.interval), 0.0)
        } else {
            0.0
        };
        SignalOutcome {
            kind: ContributionKind::Dropout,
            ratio,
            expected: self.level,
            observed: None,
            z: None,
            resid: 0.0,
            dx: 0.0,
            dt,
        }
    }

    /// Advances the statistics after a scored value and, with `weight` > 0, adapts the
    /// baseline. `weight` is 1 for a normal point, smaller for a suspect one and 0 for an
    /// anomalous one, so a fault never becomes the new normal while it is flagged.
    #[allow(clippy::too_many_arguments)] // one reading's outcome and its context
    pub(crate) fn learn(
        &mut self,
        spec: &SignalSpec,
        ts: Timestamp,
        x: f64,
        o: &SignalOutcome,
        weight: f64,
        others_off: bool,
        cfg: &DetectorConfig,
    ) {
        let z = o.z.unwrap_or(0.0).clamp(-cfg.level_z, cfg.level_z);
        let cap = cfg.cusum_cap * f64::from(self.cusum_h);
        self.cusum_pos = (self.cusum_pos + z - cfg.cusum_k).clamp(0.0, cap);
        self.cusum_neg = (self.cusum_neg - z - cfg.cusum_k).clamp(0.0, cap);
        let equal = self.last_value().is_some() && o.dx.abs() <= self.equal_tolerance();
        if equal {
            self.run = self.run.saturating_add(1);
            self.run_flagged |= o.kind == ContributionKind::Stuck && o.ratio >= 1.0;
        } else {
            if !self.run_flagged && weight > 0.0 {
                self.max_run = self.max_run.max(self.run);
            }
            self.run = 0;
            self.run_flagged = false;
        }
        let normal_gap =
            o.dt > 0.0 && (self.interval <= 0.0 || o.dt < cfg.dropout_factor * self.interval);
        if normal_gap {
            let a = cfg.level_alpha.max(0.01);
            self.interval = if self.interval > 0.0 {
                sane(
                    self.interval + a * (o.dt.min(3.0 * self.interval) - self.interval),
                    0.0,
                )
            } else {
                o.dt
            };
        }
        if weight > 0.0 {
            let a = (cfg.level_alpha * weight).min(1.0);
            let floor = spread_floor(self.level);
            let r = o.resid.clamp(-4.0 * self.spread, 4.0 * self.spread);
            let season = self.season.as_ref().map_or(0.0, |s| s.offset(ts));
            let predicted = o.expected - season;
            self.level = sane(predicted + a * r, self.level);
            self.trend = sane(self.trend + a * cfg.trend_beta * r, self.trend);
            // Mean absolute deviation × √(π/2) estimates σ for Gaussian noise and is far less
            // swayed by outliers than a variance (and clipped at 4σ on top).
            let dev = 1.2533 * o.resid.abs().min(4.0 * self.spread);
            self.spread = sane(self.spread + a * (dev - self.spread), self.spread)
                .max(floor)
                .max(f64::from(self.min_spread));
            let gap = if self.interval > 0.0 && o.dt > 0.0 {
                (o.dt / self.interval).max(1.0).sqrt()
            } else {
                1.0
            };
            let step = 1.2533 * (o.dx.abs() / gap).min(4.0 * self.step);
            self.step = sane(self.step + a * (step - self.step), self.step).max(floor);
            let (level, spread) = (self.level, self.spread);
            if let Some(s) = self.season.as_mut() {
                s.learn(ts, x - level, a, spread);
            }
        }
        // Two speeds: whatever the weight, the baseline follows the recent level at the
        // learned drift rate while the two stay close, so a slow drift is never left behind
        // (and never freezes into a lasting alarm), while a sudden change, which jumps
        // beyond the band at once, is not absorbed by this.
        let season = self.season.as_ref().map_or(0.0, |s| s.offset(ts));
        let ra = cfg.recent_alpha.clamp(0.0, 1.0);
        let deseasoned = x - season;
        self.recent = sane(self.recent + ra * (deseasoned - self.recent), self.level);
        let gap = self.recent - self.level;
        if gap.abs() <= cfg.drift_band * self.spread {
            let g = if self.interval > 0.0 && o.dt > 0.0 {
                (o.dt / self.interval).clamp(0.0, 10.0)
            } else {
                1.0
            };
            let lim = f64::from(self.drift) * g;
            self.level = sane(self.level + gap.clamp(-lim, lim), self.level);
        }
        // Re-baseline: a signal that has sat steadily at a new level for a warm-up's length,
        // while every other signal looked normal, is at a new operating point (or has
        // drifted there), not in a fault: accept the level and forget the shift evidence.
        let off = weight < 1.0;
        if off && !others_off && (self.recent - self.anchor).abs() <= cfg.drift_band * self.spread {
            self.steady = self.steady.saturating_add(1);
        } else {
            self.steady = 0;
            self.anchor = self.recent;
        }
        let after = (cfg.rebaseline_after * cfg.warmup as f64).max(1.0);
        if cfg.rebaseline_after > 0.0 && f64::from(self.steady) >= after {
            self.level = self.recent;
            self.cusum_pos = 0.0;
            self.cusum_neg = 0.0;
            self.steady = 0;
        }
        self.out_of_range = match self.range_position(spec, x) {
            RangePosition::Outside(_) => true,
            RangePosition::Deadband => self.out_of_range,
            RangePosition::Inside => false,
        };
        self.last_ts = ts;
        self.last_value = x;
    }

    /// Forgets accumulated shift evidence (after an alarm was declared false).
    pub(crate) fn reset_shift(&mut self) {
        self.cusum_pos = 0.0;
        self.cusum_neg = 0.0;
        self.run_flagged = false;
    }
}
