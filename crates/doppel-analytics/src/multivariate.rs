//! Relations between a twin's signals: PCA learned on the warm-up readings (standardized by
//! each signal's baseline), scored with Hotelling's T² (unusual along the learned directions)
//! and Q / SPE (off the learned subspace: signals that no longer move together), both on
//! each reading and on an EWMA of the readings for small sustained deviations.

use nalgebra::{
    DMatrix, DMatrixView, DVector, DVectorView, Dyn, Matrix, Storage, SymmetricEigen, U1,
};
use serde::{Deserialize, Serialize};

use crate::config::DetectorConfig;
use crate::stats::{quantile, sane};

/// Which statistic of the multivariate model fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MvStat {
    T2,
    Q,
}

/// Work buffers of [`Multivariate::observe`], sized once so scoring allocates nothing, and
/// its explanation of the last reading ([`shares`](Self::shares),
/// [`expected_z`](Self::expected_z)). Not state: one per thread, shared by every twin it
/// scores.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scratch {
    u: DVector<f64>,
    t_point: DVector<f64>,
    resid_point: DVector<f64>,
    t_smooth: DVector<f64>,
    resid_smooth: DVector<f64>,
    scaled: DVector<f64>,
    w: DVector<f64>,
    recon: DVector<f64>,
    contrib: Vec<f64>,
    shares: Vec<f64>,
    expected_z: Vec<f64>,
}

impl Scratch {
    /// Per modelled signal, after [`Multivariate::observe`]: its share of the firing
    /// statistic (sums to 1)...
    pub(crate) fn shares(&self) -> &[f64] {
        &self.shares
    }

    /// ...and the value, in standardized units, the model expects given the other signals.
    pub(crate) fn expected_z(&self) -> &[f64] {
        &self.expected_z
    }

    fn ensure(&mut self, d: usize, k: usize) {
        if self.u.len() != d || self.t_point.len() != k {
            *self = Scratch {
                u: DVector::zeros(d),
                t_point: DVector::zeros(k),
                resid_point: DVector::zeros(d),
                t_smooth: DVector::zeros(k),
                resid_smooth: DVector::zeros(d),
                scaled: DVector::zeros(k),
                w: DVector::zeros(d),
                recon: DVector::zeros(d),
                contrib: vec![0.0; d],
                shares: vec![0.0; d],
                expected_z: vec![0.0; d],
            };
        }
    }
}

/// T² and Q of `u`, writing its scores to `t` and its residual to `resid` (no allocation).
fn stats_into<S: Storage<f64, Dyn>>(
    components: &DMatrixView<'_, f64>,
    variances: &[f64],
    u: &Matrix<f64, Dyn, U1, S>,
    t: &mut DVector<f64>,
    resid: &mut DVector<f64>,
) -> (f64, f64) {
    components.tr_mul_to(u, t);
    let t2 = t
        .iter()
        .zip(variances.iter())
        .map(|(t, v)| t * t / v)
        .sum::<f64>();
    resid.copy_from(u);
    resid.gemv(-1.0, components, t, 1.0);
    (sane(t2, 0.0), sane(resid.norm_squared(), 0.0))
}

/// PCA model over a fixed set of the twin's signals (d of them, k components kept).
///
/// Its numbers are in one allocation rather than nalgebra's vectors and matrix (each a
/// pointer, a length and its own allocation); its serde form is still those.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "wire::Model", into = "wire::Model")]
pub struct Multivariate {
    /// Indices of the modelled signals in the twin.
    signals: Box<[u16]>,
    /// The mean (d), the smoothed standardized values (d), the components' variances (k)
    /// and the d × k loadings, column by column.
    numbers: Box<[f64]>,
    thr_t2: f64,
    thr_q: f64,
    thr_t2s: f64,
    thr_qs: f64,
}

/// Serde form of [`Multivariate`]: the fields it had as nalgebra values.
mod wire {
    use super::*;

    #[derive(Clone, Serialize, Deserialize)]
    pub(super) struct Model {
        signals: Box<[usize]>,
        mean: DVector<f64>,
        components: DMatrix<f64>,
        variances: DVector<f64>,
        thr_t2: f64,
        thr_q: f64,
        thr_t2s: f64,
        thr_qs: f64,
        smoothed: DVector<f64>,
    }

    impl From<Multivariate> for Model {
        fn from(m: Multivariate) -> Self {
            let d = m.d();
            Model {
                signals: m.signal_indices().collect(),
                mean: DVector::from_column_slice(m.mean()),
                components: m.components().into_owned(),
                variances: DVector::from_column_slice(m.variances()),
                thr_t2: m.thr_t2,
                thr_q: m.thr_q,
                thr_t2s: m.thr_t2s,
                thr_qs: m.thr_qs,
                smoothed: DVector::from_column_slice(&m.numbers[d..2 * d]),
            }
        }
    }

    impl TryFrom<Model> for Multivariate {
        type Error = String;

        fn try_from(m: Model) -> Result<Self, String> {
            let d = m.signals.len();
            let k = m.variances.len();
            if m.mean.len() != d
                || m.smoothed.len() != d
                || m.components.nrows() != d
                || m.components.ncols() != k
                || k == 0
            {
                return Err(format!(
                    "multivariate model of {d} signals: dimensions disagree"
                ));
            }
            let signals = m
                .signals
                .iter()
                .map(|&i| u16::try_from(i).map_err(|_| format!("signal index {i}")))
                .collect::<Result<_, _>>()?;
            Ok(Multivariate::from_parts(
                signals,
                &m.mean,
                &m.smoothed,
                &m.variances,
                &m.components,
                [m.thr_t2, m.thr_q, m.thr_t2s, m.thr_qs],
            ))
        }
    }
}

impl Multivariate {
    /// Fits on warm-up rows of standardized values (`rows[i][j]`: reading i, signal j; `None`
    /// is missing and taken as the mean). Needs at least two signals and more rows than
    /// signals; returns `None` otherwise.
    pub(crate) fn fit(
        signals: &[usize],
        rows: &[Vec<Option<f64>>],
        cfg: &DetectorConfig,
    ) -> Option<Self> {
        // A twin's signals are numbered in 16 bits here: a PCA over more would not be fitted
        // per reading anyway.
        let signals: Box<[u16]> = signals
            .iter()
            .map(|&i| u16::try_from(i).ok())
            .collect::<Option<_>>()?;
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
        let mut model = Multivariate::from_parts(
            signals,
            &mean,
            &DVector::zeros(d),
            &variances,
            &components,
            [1.0; 4],
        );
        // Thresholds: a high quantile of the statistics on the warm-up itself, with a margin
        // (in-sample statistics are optimistic) and floors against degenerate warm-ups.
        let (mut t2, mut q, mut t2s, mut qs) = (vec![], vec![], vec![], vec![]);
        let mut smoothed = DVector::zeros(d);
        for i in 0..n {
            let u = x.row(i).transpose();
            let clip = cfg.mv_clip.max(0.0);
            let lam = cfg.mv_lambda;
            smoothed = smoothed.zip_map(&u, |s, v| s * (1.0 - lam) + v.clamp(-clip, clip) * lam);
            let (a, b) = model.stats(&u);
            t2.push(a);
            q.push(b);
            // Skip the EWMA's start-up, where it has not seen enough points to be typical.
            if (i as f64) * cfg.mv_lambda >= 2.0 {
                let (a, b) = model.stats(&smoothed);
                t2s.push(a);
                qs.push(b);
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

    fn from_parts(
        signals: Box<[u16]>,
        mean: &DVector<f64>,
        smoothed: &DVector<f64>,
        variances: &DVector<f64>,
        components: &DMatrix<f64>,
        [thr_t2, thr_q, thr_t2s, thr_qs]: [f64; 4],
    ) -> Self {
        let numbers = mean
            .iter()
            .chain(smoothed.iter())
            .chain(variances.iter())
            .chain(components.as_slice())
            .copied()
            .collect();
        Multivariate {
            signals,
            numbers,
            thr_t2,
            thr_q,
            thr_t2s,
            thr_qs,
        }
    }

    fn d(&self) -> usize {
        self.signals.len()
    }

    /// Components kept: the numbers hold 2d + k (d + 1) values.
    fn k(&self) -> usize {
        let d = self.d();
        self.numbers.len().saturating_sub(2 * d) / (d + 1)
    }

    fn mean(&self) -> &[f64] {
        &self.numbers[..self.d()]
    }

    fn variances(&self) -> &[f64] {
        let d = self.d();
        &self.numbers[2 * d..2 * d + self.k()]
    }

    fn components(&self) -> DMatrixView<'_, f64> {
        let (d, k) = (self.d(), self.k());
        DMatrixView::from_slice(&self.numbers[2 * d + k..], d, k)
    }

    /// T² and Q of `u` (warm-up use: allocates its own buffers).
    fn stats(&self, u: &DVector<f64>) -> (f64, f64) {
        let mut t = DVector::zeros(self.k());
        let mut resid = DVector::zeros(u.len());
        stats_into(&self.components(), self.variances(), u, &mut t, &mut resid)
    }

    /// Scores one reading given its standardized values (`z(i)` for the signal with twin
    /// index `i`; `None` missing) and advances the smoothed statistics. Returns
    /// sqrt(statistic / threshold) of the worst of the four statistics; `sc`'s
    /// [`shares`](Scratch::shares) and [`expected_z`](Scratch::expected_z) then explain it.
    /// Allocation-free once the work buffers exist.
    pub(crate) fn observe(
        &mut self,
        z: impl Fn(usize) -> Option<f64>,
        cfg: &DetectorConfig,
        sc: &mut Scratch,
    ) -> f64 {
        let (d, k) = (self.d(), self.k());
        sc.ensure(d, k);
        let (mean, rest) = self.numbers.split_at_mut(d);
        let mean = &*mean;
        let (smoothed, rest) = rest.split_at_mut(d);
        let (variances, components) = rest.split_at(k);
        let components = DMatrixView::from_slice(components, d, k);
        // Clip: one wild value must not dominate the smoothed state for long.
        for ((u, &i), m) in sc.u.iter_mut().zip(&self.signals).zip(mean) {
            *u = z(usize::from(i)).map_or(0.0, |v| sane(v - m, 0.0).clamp(-50.0, 50.0));
        }
        // The smoothed statistics are for sustained deviations: a single spike enters them
        // clipped, so it cannot hold an alarm up for the EWMA's memory.
        let clip = cfg.mv_clip.max(0.0);
        let lam = cfg.mv_lambda;
        for (s, u) in smoothed.iter_mut().zip(sc.u.iter()) {
            *s = *s * (1.0 - lam) + u.clamp(-clip, clip) * lam;
        }
        let smoothed = DVectorView::from_slice(smoothed, d);
        let (pt2, pq) = stats_into(
            &components,
            variances,
            &sc.u,
            &mut sc.t_point,
            &mut sc.resid_point,
        );
        let (st2, sq) = stats_into(
            &components,
            variances,
            &smoothed,
            &mut sc.t_smooth,
            &mut sc.resid_smooth,
        );
        let cands = [
            (pt2 / self.thr_t2, MvStat::T2, false),
            (pq / self.thr_q, MvStat::Q, false),
            (st2 / self.thr_t2s, MvStat::T2, true),
            (sq / self.thr_qs, MvStat::Q, true),
        ];
        let mut best = cands[0];
        for c in cands {
            if c.0 > best.0 {
                best = c;
            }
        }
        let (t, resid, v) = if best.2 {
            (&sc.t_smooth, &sc.resid_smooth, smoothed.as_slice())
        } else {
            (&sc.t_point, &sc.resid_point, sc.u.as_slice())
        };
        match best.1 {
            MvStat::Q => {
                for j in 0..d {
                    sc.contrib[j] = resid[j] * resid[j];
                }
            }
            MvStat::T2 => {
                // u_j × (P Λ⁻¹ t)_j: each signal's part of T², negative parts dropped.
                for c in 0..k {
                    sc.scaled[c] = t[c] / variances[c];
                }
                sc.w.gemv(1.0, &components, &sc.scaled, 0.0);
                for ((c, v), w) in sc.contrib.iter_mut().zip(v).zip(sc.w.iter()) {
                    *c = (v * w).max(0.0);
                }
            }
        }
        let sum: f64 = sc.contrib.iter().sum();
        for j in 0..d {
            sc.shares[j] = if sum > 0.0 {
                sane(sc.contrib[j] / sum, 0.0)
            } else {
                0.0
            };
        }
        sc.recon.gemv(1.0, &components, &sc.t_point, 0.0);
        for ((e, m), r) in sc.expected_z.iter_mut().zip(mean).zip(sc.recon.iter()) {
            *e = match best.1 {
                MvStat::Q => sane(m + r, 0.0),
                MvStat::T2 => *m,
            };
        }
        sane(best.0.max(0.0).sqrt(), 0.0)
    }

    /// The twin indices of the modelled signals.
    pub(crate) fn signal_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.signals.iter().map(|&i| usize::from(i))
    }

    /// Heap bytes this model owns.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.signals.len() * std::mem::size_of::<u16>()
            + self.numbers.len() * std::mem::size_of::<f64>()
    }

    /// Whether the model's dimensions agree with each other and with a twin of `signals`
    /// signals (state read from a file is checked before it is scored with).
    pub(crate) fn is_consistent(&self, signals: usize) -> bool {
        let (d, k) = (self.d(), self.k());
        self.signals.iter().all(|&i| usize::from(i) < signals)
            && d >= 1
            && k >= 1
            && self.numbers.len() == 2 * d + k * (d + 1)
    }

    pub(crate) fn reset(&mut self) {
        let d = self.d();
        self.numbers[d..2 * d].fill(0.0);
    }
}
