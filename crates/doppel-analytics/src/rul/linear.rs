//! Ridge regression on standardized columns (closed form through a Cholesky solve): the
//! health index of the RUL model, and optionally a linear member of its ensemble.

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ridge {
    mean: Vec<f64>,
    /// Weights applied to the raw (not standardized) columns.
    weights: Vec<f64>,
    intercept: f64,
}

impl Ridge {
    /// Fits `y ≈ w·x + b` with penalty `alpha · n · |w|²` on standardized columns (so alpha
    /// does not depend on the number of rows or the units of the columns).
    pub(crate) fn fit(x: &[Vec<f64>], y: &[f64], alpha: f64) -> Ridge {
        let n = x.len();
        let f = x.first().map_or(0, Vec::len);
        let nf = n.max(1) as f64;
        let ym = y.iter().sum::<f64>() / nf;
        let mut mean = vec![0.0; f];
        for r in x {
            for (m, v) in mean.iter_mut().zip(r) {
                *m += v / nf;
            }
        }
        let mut sd = vec![0.0; f];
        for r in x {
            for ((s, v), m) in sd.iter_mut().zip(r).zip(&mean) {
                *s += (v - m) * (v - m) / nf;
            }
        }
        let inv: Vec<f64> = sd
            .iter()
            .map(|&v| if v > 1e-18 { 1.0 / v.sqrt() } else { 0.0 })
            .collect();
        let mut xtx = DMatrix::<f64>::zeros(f, f);
        let mut xty = DVector::<f64>::zeros(f);
        let mut row = vec![0.0; f];
        for (r, &t) in x.iter().zip(y) {
            for (j, o) in row.iter_mut().enumerate() {
                *o = (r[j] - mean[j]) * inv[j];
            }
            for a in 0..f {
                xty[a] += row[a] * (t - ym);
                for b in a..f {
                    xtx[(a, b)] += row[a] * row[b];
                }
            }
        }
        for a in 0..f {
            for b in 0..a {
                xtx[(a, b)] = xtx[(b, a)];
            }
            xtx[(a, a)] += alpha.max(1e-9) * nf;
        }
        let beta = xtx
            .cholesky()
            .map(|c| c.solve(&xty))
            .unwrap_or_else(|| DVector::zeros(f));
        let weights: Vec<f64> = (0..f).map(|j| beta[j] * inv[j]).collect();
        Ridge {
            mean,
            weights,
            intercept: ym,
        }
    }

    pub(crate) fn predict(&self, x: &[f64]) -> f64 {
        self.intercept
            + x.iter()
                .zip(&self.mean)
                .zip(&self.weights)
                .map(|((v, m), w)| (v - m) * w)
                .sum::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_linear_law() {
        let x: Vec<Vec<f64>> = (0..200)
            .map(|i| vec![i as f64, ((i * 37) % 11) as f64 * 100.0])
            .collect();
        let y: Vec<f64> = x.iter().map(|r| 2.0 * r[0] - 0.01 * r[1] + 5.0).collect();
        let m = Ridge::fit(&x, &y, 1e-9);
        for (r, t) in x.iter().zip(&y) {
            assert!((m.predict(r) - t).abs() < 1e-4);
        }
    }
}
