//! Relations between a twin's signals: PCA learned on the warm-up readings (standardized by
//! each signal's baseline), scored with Hotelling's T² (unusual along the learned directions)
//! and Q / SPE (off the learned subspace: signals that no longer move together), both on
//! each reading and on an EWMA of the readings for small sustained deviations.

use std::sync::Arc;

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use serde::{Deserialize, Serialize};

use crate::config::DetectorConfig;
use crate::stats::{quantile, sane};

/// Which statistic of the multivariate model fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MvStat {
    T2,
    Q,
}

/// The multivariate model's verdict on one reading.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MvOutcome {
    /// sqrt(statistic / threshold) of the worst of the four statistics.
    pub ratio: f64,
    /// Per modelled signal: its share of the firing statistic (sums to 1) and the value in
    /// standardized units that the model expects given the other signals.
    pub shares: Vec<f64>,
    pub expected_z: Vec<f64>,
}

/// PCA model over a fixed set of the twin's signals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Multivariate {
    /// Indices of the modelled signals in the twin, and their names.
    pub(crate) signals: Vec<usize>,
    names: Vec<Arc<str>>,
    mean: DVector<f64>,
    /// d × k loadings of the kept components, and their variances.
    components: DMatrix<f64>,
    variances: DVector<f64>,
    thr_t2: f64,
    thr_q: f64,
    thr_t2s: f64,
    thr_qs: f64,
    smoothed: DVector<f64>,
}

struct Stats {
    t2: f64,
    q: f64,
    t: DVector<f64>,
    resid: DVector<f64>,
}

impl Multivariate {
    /// Fits on warm-up rows of standardized values (`rows[i][j]`: reading i, signal j; `None`
    /// is missing and taken as the mean). Needs at least two signals and more rows than
    /// signals; returns `None` otherwise.
    pub(crate) fn fit(
        signals: Vec<usize>,
        names: Vec<Arc<str>>,
        rows: &[Vec<Option<f64>>],
        cfg: &DetectorConfig,
    ) -> Option<Self> {
        let d = signals.len();
        if d < 2 || rows.len() <= d + 1 {
            return None;
        }
        let n = rows.len();
        let mut mean = DVector::zeros(d);
        let mut counts = vec![0usize; d];
        for r in rows {
            for (j, v) in r.iter().enumerate() {
                if let Some(v) = v {
                    mean[j] += v;
                    counts[j] += 1;
                }
            }
        }
        for j in 0..d {
            mean[j] = if counts[j] > 0 {
                mean[j] / counts[j] as f64
            } else {
                0.0
            };
        }
        let x = DMatrix::from_fn(n, d, |i, j| {
            rows[i][j].map_or(0.0, |v| sane(v - mean[j], 0.0))
        });
        let cov = (x.transpose() * &x) / (n - 1) as f64;
        let eig = SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        let total: f64 = eig.eigenvalues.iter().map(|v| v.max(0.0)).sum();
        if total.is_nan() || total <= 0.0 {
            return None;
        }
        // Keep enough components for `pca_variance`, but at least one and always leave one
        // out, so Q (the residual subspace) exists.
        let mut k = 0;
        let mut acc = 0.0;
        while k < d - 1 && acc < cfg.pca_variance * total {
            acc += eig.eigenvalues[order[k]].max(0.0);
            k += 1;
        }
        let k = k.max(1);
        let floor = 1e-6 * total;
        let components = DMatrix::from_fn(d, k, |i, c| eig.eigenvectors[(i, order[c])]);
        let variances = DVector::from_fn(k, |c, _| eig.eigenvalues[order[c]].max(floor));
        let mut model = Multivariate {
            signals,
            names,
            mean,
            components,
            variances,
            thr_t2: 1.0,
            thr_q: 1.0,
            thr_t2s: 1.0,
            thr_qs: 1.0,
            smoothed: DVector::zeros(d),
        };
        // Thresholds: a high quantile of the statistics on the warm-up itself, with a margin
        // (in-sample statistics are optimistic) and floors against degenerate warm-ups.
        let (mut t2, mut q, mut t2s, mut qs) = (vec![], vec![], vec![], vec![]);
        let mut smoothed = DVector::zeros(d);
        for i in 0..n {
            let u = x.row(i).transpose();
            let clip = cfg.mv_clip.max(0.0);
            let lam = cfg.mv_lambda;
            smoothed = smoothed.zip_map(&u, |s, v| s * (1.0 - lam) + v.clamp(-clip, clip) * lam);
            let s = model.stats(&u);
            t2.push(s.t2);
            q.push(s.q);
            // Skip the EWMA's start-up, where it has not seen enough points to be typical.
            if (i as f64) * cfg.mv_lambda >= 2.0 {
                let s = model.stats(&smoothed);
                t2s.push(s.t2);
                qs.push(s.q);
            }
        }
        let qf = cfg.mv_quantile;
        let m = cfg.mv_margin;
        let lam = cfg.mv_lambda / (2.0 - cfg.mv_lambda);
        let q_floor = 1e-4 * total;
        model.thr_t2 = (m * quantile(&t2, qf)).max(k as f64);
        model.thr_q = (m * quantile(&q, qf)).max(q_floor);
        model.thr_t2s = (m * quantile(&t2s, qf)).max(k as f64 * lam);
        model.thr_qs = (m * quantile(&qs, qf)).max(q_floor * lam);
        Some(model)
    }

    fn stats(&self, u: &DVector<f64>) -> Stats {
        let t = self.components.tr_mul(u);
        let t2 = t
            .iter()
            .zip(self.variances.iter())
            .map(|(t, v)| t * t / v)
            .sum::<f64>();
        let resid = u - &self.components * &t;
        let q = resid.norm_squared();
        Stats {
            t2: sane(t2, 0.0),
            q: sane(q, 0.0),
            t,
            resid,
        }
    }

    /// Scores one reading given its standardized values (in `signals` order; `None` missing)
    /// and advances the smoothed statistics.
    pub(crate) fn observe(&mut self, z: &[Option<f64>], cfg: &DetectorConfig) -> MvOutcome {
        let d = self.signals.len();
        // Clip: one wild value must not dominate the smoothed state for long.
        let u = DVector::from_fn(d, |j, _| {
            z.get(j)
                .copied()
                .flatten()
                .map_or(0.0, |v| sane(v - self.mean[j], 0.0).clamp(-50.0, 50.0))
        });
        // The smoothed statistics are for sustained deviations: a single spike enters them
        // clipped, so it cannot hold an alarm up for the EWMA's memory.
        let clip = cfg.mv_clip.max(0.0);
        let lam = cfg.mv_lambda;
        self.smoothed = self
            .smoothed
            .zip_map(&u, |s, v| s * (1.0 - lam) + v.clamp(-clip, clip) * lam);
        let point = self.stats(&u);
        let smooth = self.stats(&self.smoothed);
        let cands = [
            (point.t2 / self.thr_t2, MvStat::T2, false),
            (point.q / self.thr_q, MvStat::Q, false),
            (smooth.t2 / self.thr_t2s, MvStat::T2, true),
            (smooth.q / self.thr_qs, MvStat::Q, true),
        ];
        let mut best = cands[0];
        for c in cands {
            if c.0 > best.0 {
                best = c;
            }
        }
        let (s, v) = if best.2 {
            (&smooth, &self.smoothed)
        } else {
            (&point, &u)
        };
        let contrib: Vec<f64> = match best.1 {
            MvStat::Q => s.resid.iter().map(|e| e * e).collect(),
            MvStat::T2 => {
                // u_j × (P Λ⁻¹ t)_j: each signal's part of T², negative parts dropped.
                let scaled = DVector::from_fn(s.t.len(), |c, _| s.t[c] / self.variances[c]);
                let w = &self.components * scaled;
                (0..d).map(|j| (v[j] * w[j]).max(0.0)).collect()
            }
        };
        let sum: f64 = contrib.iter().sum();
        let shares = contrib
            .iter()
            .map(|c| if sum > 0.0 { sane(c / sum, 0.0) } else { 0.0 })
            .collect();
        let recon = &self.components * &point.t;
        let expected_z = (0..d)
            .map(|j| match best.1 {
                MvStat::Q => sane(self.mean[j] + recon[j], 0.0),
                MvStat::T2 => self.mean[j],
            })
            .collect();
        MvOutcome {
            ratio: sane(best.0.max(0.0).sqrt(), 0.0),
            shares,
            expected_z,
        }
    }

    pub(crate) fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    pub(crate) fn reset(&mut self) {
        self.smoothed.fill(0.0);
    }
}
