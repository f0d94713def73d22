//! Window features of a history prefix: for each channel (a regime-normalized sensor, or the
//! health index), the mean over recent windows, the least-squares slope over recent windows
//! and the drift of the recent level from the run's first steps; plus the age in steps.
//! Training and prediction call the same function, so a model sees the same numbers online
//! as it was fitted on.

use serde::{Deserialize, Serialize};

/// Which windows to summarize, in steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FeatureSpec {
    pub means: Vec<usize>,
    pub slopes: Vec<usize>,
    pub baseline: usize,
    /// Whether the age in steps is a feature (models saved before it existed had it).
    #[serde(default = "yes")]
    pub age: bool,
}

fn yes() -> bool {
    true
}

impl FeatureSpec {
    pub(crate) fn len(&self, channels: usize) -> usize {
        channels * (self.means.len() + self.slopes.len() + 1) + usize::from(self.age)
    }
}

/// Running sums of one channel, so every window statistic of every prefix costs O(1):
/// `sum[k]` = Σ y[..k], `isum[k]` = Σ i·y[i] for i < k.
#[derive(Debug, Clone)]
pub(crate) struct Sums {
    sum: Vec<f64>,
    isum: Vec<f64>,
}

impl Sums {
    pub(crate) fn new(y: &[f64]) -> Sums {
        let mut sum = Vec::with_capacity(y.len() + 1);
        let mut isum = Vec::with_capacity(y.len() + 1);
        let (mut s, mut si) = (0.0, 0.0);
        sum.push(s);
        isum.push(si);
        for (i, v) in y.iter().enumerate() {
            s += v;
            si += i as f64 * v;
            sum.push(s);
            isum.push(si);
        }
        Sums { sum, isum }
    }

    /// Mean of y[a..b] (a < b).
    fn mean(&self, a: usize, b: usize) -> f64 {
        (self.sum[b] - self.sum[a]) / (b - a) as f64
    }

    /// Least-squares slope per step of y[a..b]; 0 for fewer than two points.
    fn slope(&self, a: usize, b: usize) -> f64 {
        let m = (b - a) as f64;
        if m < 2.0 {
            return 0.0;
        }
        let sy = self.sum[b] - self.sum[a];
        // Σ (i − a)·y with x measured from the window start.
        let sxy = self.isum[b] - self.isum[a] - a as f64 * sy;
        let sx = m * (m - 1.0) / 2.0;
        let sxx = (m - 1.0) * m * (2.0 * m - 1.0) / 6.0;
        (m * sxy - sx * sy) / (m * sxx - sx * sx)
    }
}

/// Appends the features of the prefix `..=t` of each channel (given by its running sums).
pub(crate) fn features_at(channels: &[Sums], t: usize, spec: &FeatureSpec, out: &mut Vec<f64>) {
    let n = t + 1;
    let recent_w = spec.means.iter().copied().max().unwrap_or(1);
    for c in channels {
        for &w in &spec.means {
            out.push(c.mean(n.saturating_sub(w), n));
        }
        for &w in &spec.slopes {
            out.push(c.slope(n.saturating_sub(w), n));
        }
        let recent = c.mean(n.saturating_sub(recent_w), n);
        let base = c.mean(0, spec.baseline.clamp(1, n));
        out.push(recent - base);
    }
    if spec.age {
        out.push(n as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_is_its_gradient() {
        let y: Vec<f64> = (0..10).map(|i| 3.0 + 0.5 * i as f64).collect();
        let s = Sums::new(&y);
        assert!((s.slope(0, 10) - 0.5).abs() < 1e-12);
        assert!((s.slope(4, 9) - 0.5).abs() < 1e-12);
        assert_eq!(s.slope(3, 4), 0.0);
        assert!((s.mean(2, 4) - 4.25).abs() < 1e-12);
    }

    #[test]
    fn features_have_the_announced_length_and_only_look_back() {
        let spec = FeatureSpec {
            means: vec![1, 5],
            slopes: vec![4],
            baseline: 3,
            age: true,
        };
        let a: Vec<f64> = (0..20).map(|i| i as f64).collect();
        let b: Vec<f64> = (0..20).map(|i| (i * i) as f64).collect();
        let mut full = Vec::new();
        features_at(&[Sums::new(&a), Sums::new(&b)], 9, &spec, &mut full);
        assert_eq!(full.len(), spec.len(2));
        let mut cut = Vec::new();
        features_at(
            &[Sums::new(&a[..10]), Sums::new(&b[..10])],
            9,
            &spec,
            &mut cut,
        );
        assert_eq!(full, cut);
        assert_eq!(full[0], 9.0);
        assert_eq!(full[1], 7.0);
        assert!((full[2] - 1.0).abs() < 1e-12);
        assert_eq!(full[3], 7.0 - 1.0);
        assert_eq!(*full.last().unwrap(), 10.0);
    }
}
