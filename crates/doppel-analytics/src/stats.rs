//! Small numeric helpers shared by the detectors. All of them are total: they return finite
//! numbers for empty input, zero variance and huge values.

/// Maps a ratio "statistic / its threshold" to a 0..1 score: 0.5 at the threshold, about 0.8
/// at twice it, 0.95 at 4.4 times it. Monotone, never NaN.
pub(crate) fn ratio_to_score(r: f64) -> f64 {
    if !r.is_finite() {
        return if r.is_nan() { 0.0 } else { 1.0 };
    }
    let r = r.max(0.0);
    let r2 = r * r;
    if r2 > 1e12 {
        1.0
    } else {
        r2 / (1.0 + r2)
    }
}

/// The inverse of [`ratio_to_score`] for thresholds given as scores.
pub(crate) fn score_to_ratio(s: f64) -> f64 {
    let s = s.clamp(0.0, 0.999_999);
    (s / (1.0 - s)).sqrt()
}

/// Median of a slice (sorted copy); 0 for an empty slice.
pub(crate) fn median(xs: &[f64]) -> f64 {
    quantile(xs, 0.5)
}

/// Linear-interpolated quantile `q` in [0, 1]; 0 for an empty slice. Non-finite values are
/// ignored.
pub(crate) fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let f = pos - lo as f64;
    v[lo] * (1.0 - f) + v[hi] * f
}

/// Robust standard deviation: 1.4826 × median absolute deviation from the median, falling
/// back to the mean absolute deviation when more than half the values are equal.
pub(crate) fn robust_std(xs: &[f64]) -> f64 {
    let m = median(xs);
    let dev: Vec<f64> = xs.iter().map(|x| (x - m).abs()).collect();
    let mad = 1.4826 * median(&dev);
    if mad > 0.0 {
        mad
    } else if dev.is_empty() {
        0.0
    } else {
        1.2533 * dev.iter().sum::<f64>() / dev.len() as f64
    }
}

/// Smallest spread worth resolving for values of magnitude `level`: keeps standardized
/// residuals finite on constant signals without making float noise look like a deviation.
pub(crate) fn spread_floor(level: f64) -> f64 {
    1e-9 * level.abs().max(1e-3)
}

/// Replaces non-finite numbers by `fallback` and clamps huge ones, so state never holds NaN.
pub(crate) fn sane(x: f64, fallback: f64) -> f64 {
    if x.is_finite() {
        x.clamp(-1e300, 1e300)
    } else {
        fallback
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_mapping_is_monotone_and_total() {
        assert_eq!(ratio_to_score(0.0), 0.0);
        assert!((ratio_to_score(1.0) - 0.5).abs() < 1e-12);
        assert!(ratio_to_score(2.0) > ratio_to_score(1.5));
        assert_eq!(ratio_to_score(f64::INFINITY), 1.0);
        assert_eq!(ratio_to_score(f64::NAN), 0.0);
        assert!((score_to_ratio(ratio_to_score(3.0)) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn robust_helpers_on_degenerate_input() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(robust_std(&[5.0; 10]), 0.0);
        assert!(robust_std(&[1.0, 1.0, 1.0, 1.0, 9.0]) > 0.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 1.0), 3.0);
        assert_eq!(sane(f64::NAN, 1.0), 1.0);
    }
}
