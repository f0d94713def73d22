//! Operating regimes: the settings vectors of a fleet are clustered (deterministic k-means,
//! the number of clusters chosen from the data) so each sensor can be normalized against its
//! own mean and spread in the regime where it was read.

use serde::{Deserialize, Serialize};

/// The clusters of the settings, in units of each setting's fleet-wide spread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Regimes {
    center: Vec<f64>,
    /// 1 / spread per setting; 0 for a constant setting, which then plays no part.
    inv_scale: Vec<f64>,
    centroids: Vec<Vec<f64>>,
}

/// A candidate clustering is kept only if each cluster holds at least this share of steps,
/// so a few odd settings rows do not become a regime of their own.
const MIN_CLUSTER_SHARE: f64 = 0.005;

impl Regimes {
    /// Finds the smallest number of clusters (1..=`max_regimes`) that explains at least
    /// `explained` of the settings' variance and leaves only noise; settings that are only
    /// noise around one point never reach that, and give a single regime.
    pub(crate) fn detect(settings: &[&[f64]], max_regimes: usize, explained: f64) -> Regimes {
        let d = settings.first().map_or(0, |s| s.len());
        let n = settings.len().max(1) as f64;
        let mut center = vec![0.0; d];
        for s in settings {
            for (c, v) in center.iter_mut().zip(*s) {
                *c += v / n;
            }
        }
        let mut var = vec![0.0; d];
        for s in settings {
            for ((v, x), c) in var.iter_mut().zip(*s).zip(&center) {
                *v += (x - c) * (x - c) / n;
            }
        }
        let inv_scale: Vec<f64> = var
            .iter()
            .zip(&center)
            .map(|(&v, &c)| {
                let sd = v.sqrt();
                if sd > 1e-9 * (1.0 + c.abs()) {
                    1.0 / sd
                } else {
                    0.0
                }
            })
            .collect();
        let mut single = Regimes {
            center,
            inv_scale,
            centroids: vec![vec![0.0; d]],
        };
        let points: Vec<Vec<f64>> = settings.iter().map(|s| single.scale(s)).collect();
        let total: f64 = points
            .iter()
            .map(|p| p.iter().map(|v| v * v).sum::<f64>())
            .sum();
        if total <= 0.0 || points.len() < 2 {
            return single;
        }
        // k clusters are regimes when they explain enough of the variance and one more
        // cluster would not halve what is left (that rest is noise around each condition,
        // not a condition missed: two close conditions merged leave a rest that a further
        // cluster removes almost entirely).
        let kmax = max_regimes.min(points.len());
        let mut prev: Option<(Vec<Vec<f64>>, f64, bool)> = None;
        for k in 2..=(kmax + 1).min(points.len()) {
            let (centroids, sse, sizes) = kmeans(&points, k);
            if let Some((c, prev_sse, ok)) = prev.take() {
                if ok && sse > 0.5 * prev_sse {
                    single.centroids = c;
                    return single;
                }
            }
            let min_size = sizes.iter().copied().min().unwrap_or(0) as f64;
            let ok =
                k <= kmax && sse <= (1.0 - explained) * total && min_size >= MIN_CLUSTER_SHARE * n;
            if ok && k == kmax {
                single.centroids = centroids;
                return single;
            }
            prev = Some((centroids, sse, ok));
        }
        single
    }

    fn scale(&self, s: &[f64]) -> Vec<f64> {
        s.iter()
            .zip(&self.center)
            .zip(&self.inv_scale)
            .map(|((x, c), k)| (x - c) * k)
            .collect()
    }

    pub(crate) fn count(&self) -> usize {
        self.centroids.len()
    }

    /// The regime of a settings vector: its nearest centroid.
    pub(crate) fn assign(&self, s: &[f64]) -> usize {
        nearest(&self.centroids, &self.scale(s)).0
    }
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn nearest(centroids: &[Vec<f64>], p: &[f64]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (i, c) in centroids.iter().enumerate() {
        let d = dist2(c, p);
        if d < best.1 {
            best = (i, d);
        }
    }
    best
}

/// Lloyd's k-means from a farthest-point start (the point nearest the mean, then repeatedly
/// the point farthest from every chosen centre): deterministic, and on well-separated
/// operating conditions it starts with one centre in each.
fn kmeans(points: &[Vec<f64>], k: usize) -> (Vec<Vec<f64>>, f64, Vec<usize>) {
    let d = points[0].len();
    let origin = vec![0.0; d];
    let first = points
        .iter()
        .enumerate()
        .min_by(|a, b| dist2(a.1, &origin).total_cmp(&dist2(b.1, &origin)))
        .map_or(0, |(i, _)| i);
    let mut centroids = vec![points[first].clone()];
    let mut near: Vec<f64> = points.iter().map(|p| dist2(p, &centroids[0])).collect();
    while centroids.len() < k {
        let far = near
            .iter()
            .enumerate()
            .fold(
                (0, -1.0),
                |best, (i, &v)| if v > best.1 { (i, v) } else { best },
            )
            .0;
        centroids.push(points[far].clone());
        let c = &centroids[centroids.len() - 1];
        for (nd, p) in near.iter_mut().zip(points) {
            *nd = nd.min(dist2(p, c));
        }
    }
    let mut assign = vec![usize::MAX; points.len()];
    for _ in 0..100 {
        let mut changed = false;
        for (a, p) in assign.iter_mut().zip(points) {
            let (i, _) = nearest(&centroids, p);
            if *a != i {
                *a = i;
                changed = true;
            }
        }
        let mut sums = vec![vec![0.0; d]; k];
        let mut counts = vec![0usize; k];
        for (&a, p) in assign.iter().zip(points) {
            counts[a] += 1;
            for (s, v) in sums[a].iter_mut().zip(p) {
                *s += v;
            }
        }
        for ((c, s), &m) in centroids.iter_mut().zip(&sums).zip(&counts) {
            if m > 0 {
                *c = s.iter().map(|v| v / m as f64).collect();
            }
        }
        if !changed {
            break;
        }
    }
    let mut sizes = vec![0usize; k];
    let mut sse = 0.0;
    for p in points {
        let (i, d) = nearest(&centroids, p);
        sizes[i] += 1;
        sse += d;
    }
    (centroids, sse, sizes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rul::gbt::SplitMix64;

    fn noise(rng: &mut SplitMix64, amp: f64) -> f64 {
        (rng.below(10_001) as f64 / 5_000.0 - 1.0) * amp
    }

    #[test]
    fn six_operating_conditions_are_found() {
        let conds = [
            [0.0, 0.0, 100.0],
            [10.0, 0.25, 100.0],
            [20.0, 0.7, 100.0],
            [25.0, 0.62, 60.0],
            [35.0, 0.84, 100.0],
            [42.0, 0.84, 100.0],
        ];
        let mut rng = SplitMix64::new(3);
        let rows: Vec<Vec<f64>> = (0..3_000)
            .map(|i| {
                let c = conds[(i * 7) % 6];
                vec![
                    c[0] + noise(&mut rng, 0.005),
                    c[1] + noise(&mut rng, 0.0005),
                    c[2],
                ]
            })
            .collect();
        let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
        let r = Regimes::detect(&refs, 8, 0.99);
        assert_eq!(r.count(), 6);
        let mut seen: Vec<usize> = conds.iter().map(|c| r.assign(c)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 6);
    }

    #[test]
    fn noise_around_one_condition_is_one_regime() {
        let mut rng = SplitMix64::new(5);
        let rows: Vec<Vec<f64>> = (0..3_000)
            .map(|_| vec![noise(&mut rng, 0.0087), noise(&mut rng, 0.0005), 100.0])
            .collect();
        let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
        assert_eq!(Regimes::detect(&refs, 8, 0.99).count(), 1);
    }
}
