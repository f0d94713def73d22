//! Tuning knobs of the detectors. Every default is meant to be general (any sensor, any
//! sampling rate): thresholds are in units of each signal's own learned variability, and times
//! in units of its own learned sampling interval, so nothing here names a unit or a rate.

use serde::{Deserialize, Serialize};

/// Configuration of a [`TwinDetector`](crate::TwinDetector) and the per-signal detectors in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    /// Readings of a twin used to learn its normal behaviour before anything is scored.
    pub warmup: usize,
    /// Weight of a new normal point in the adaptive level (EWMA); the spread adapts at the
    /// same rate. Small: the baseline follows slow drift, not faults.
    pub level_alpha: f64,
    /// Judge deviations against the warm-up's whole variability (slow wander included), not
    /// only against the baseline's one-step error.
    pub long_term_spread: bool,
    /// Weight of the trend update relative to the level's (Holt's β).
    pub trend_beta: f64,
    /// Weight of a point whose own score is elevated (but below the decision threshold) in the
    /// baseline, relative to `level_alpha`. Points scored anomalous never update it.
    pub suspect_weight: f64,
    /// Weight of a point scored anomalous, relative to `level_alpha`: tiny, so a fault is not
    /// learned while it lasts (1 / (`level_alpha` × this) readings), yet a permanent change
    /// of operating point stops alarming eventually instead of never. 0 freezes completely.
    pub anomalous_weight: f64,
    /// Drift allowance: the baseline always moves toward the recent level (even during an
    /// alarm) by up to this many spreads per warm-up length...
    pub drift_spreads: f64,
    /// ...or this many times the warm-up's own trend, whichever is faster...
    pub drift_margin: f64,
    /// ...as long as the recent level is within this many spreads of the baseline: a slow
    /// drift never gets that far ahead, a sudden change does and stays scored.
    pub drift_band: f64,
    /// EWMA weight of the recent level (the drift allowance's target).
    pub recent_alpha: f64,
    /// A signal off its baseline but steady (within `drift_band` spreads) for this many
    /// warm-up lengths, while no other signal is off, is re-baselined at its new level.
    /// 0 disables.
    pub rebaseline_after: f64,
    /// The adaptive spread stays above this share of the spread learned on the warm-up.
    pub min_spread_ratio: f64,
    /// |standardized residual| at which the level detector reaches the decision threshold.
    pub level_z: f64,
    /// |step| / typical step at which the rate-of-change detector reaches the threshold.
    pub rate_z: f64,
    /// The rate threshold is also at least `rate_margin` × this quantile of the warm-up's
    /// |steps| (0 margin disables).
    pub rate_quantile: f64,
    pub rate_margin: f64,
    /// CUSUM reference value (in standardized units): shifts smaller than this are ignored.
    pub cusum_k: f64,
    /// CUSUM decision interval (standardized units).
    pub cusum_h: f64,
    /// Each signal's decision interval is at least `shift_margin` × this quantile of the
    /// CUSUM on its own warm-up.
    pub shift_quantile: f64,
    pub shift_margin: f64,
    /// CUSUM sums are capped at `cusum_cap * cusum_h`, so the statistic falls back below the
    /// threshold within a bounded time once a shift ends.
    pub cusum_cap: f64,
    /// A run of identical values is "stuck" once it is this many times longer than the longest
    /// run seen while learning...
    pub stuck_factor: f64,
    /// ...and at least this many readings long.
    pub stuck_min_points: u32,
    /// A gap is a dropout once it is this many times the usual sampling interval.
    pub dropout_factor: f64,
    /// Learn a daily profile of the level (24 hourly bins) and use it once it explains enough
    /// of the variance. Harmless on data shorter than two days: it never activates.
    pub daily_seasonality: bool,
    /// Multivariate part (PCA with T² and Q) over the twin's signals.
    pub multivariate: bool,
    /// Fraction of the variance kept by the principal components.
    pub pca_variance: f64,
    /// EWMA weight of the smoothed multivariate statistics (sustained small deviations).
    pub mv_lambda: f64,
    /// Standardized values enter the smoothed statistics clipped to ±this.
    pub mv_clip: f64,
    /// Multivariate thresholds are this quantile of the warm-up statistics...
    pub mv_quantile: f64,
    /// ...times this margin.
    pub mv_margin: f64,
    /// Persistence: an alarm needs `persist_k` of the last `persist_n` readings above the
    /// threshold (score ≥ 0.5)...
    pub persist_k: u32,
    pub persist_n: u32,
    /// ...unless one reading scores at least this much (a huge, unambiguous deviation).
    pub instant_score: f64,
    /// Hysteresis: an alarm clears only when fewer than `persist_k` of the last `persist_n`
    /// readings score above `clear_ratio` × the threshold.
    pub clear_ratio: f64,
    /// ...and only after this many readings in a row below that level, so a value hovering
    /// at a limit raises one alarm, not one per crossing.
    pub clear_quiet: u32,
    /// Bounds of the sensitivity factor moved by [`feedback`](crate::TwinDetector::feedback).
    pub feedback_min: f64,
    pub feedback_max: f64,
    /// Factor applied per false alarm (and its inverse, milder, per confirmed alarm).
    pub feedback_step: f64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            warmup: 400,
            level_alpha: 0.01,
            trend_beta: 0.0,
            long_term_spread: true,
            suspect_weight: 0.1,
            anomalous_weight: 0.1,
            drift_spreads: 4.0,
            drift_margin: 2.0,
            drift_band: 2.0,
            recent_alpha: 0.1,
            min_spread_ratio: 0.5,
            rebaseline_after: 1.0,
            level_z: 6.0,
            rate_z: 8.0,
            rate_quantile: 0.99,
            rate_margin: 1.5,
            cusum_k: 1.0,
            cusum_h: 8.0,
            cusum_cap: 2.0,
            shift_quantile: 0.99,
            shift_margin: 5.0,
            stuck_factor: 3.0,
            stuck_min_points: 10,
            dropout_factor: 10.0,
            daily_seasonality: true,
            multivariate: true,
            pca_variance: 0.9,
            mv_lambda: 0.1,
            mv_clip: 3.0,
            mv_quantile: 0.99,
            mv_margin: 4.0,
            persist_k: 3,
            persist_n: 5,
            instant_score: 0.95,
            clear_ratio: 0.8,
            clear_quiet: 0,
            feedback_min: 0.5,
            feedback_max: 4.0,
            feedback_step: 1.25,
        }
    }
}
