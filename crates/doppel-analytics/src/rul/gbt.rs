//! Gradient-boosted regression trees (least squares) on histogram-binned features: the
//! learner behind the RUL model. Deterministic for a given seed; no threads.

use serde::{Deserialize, Serialize};

/// Small, fast, seedable generator (SplitMix64); enough for row and column sampling.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant at these sizes.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Fisher-Yates shuffle.
    pub(crate) fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// How the ensemble is grown.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GbtParams {
    pub trees: usize,
    pub learning_rate: f64,
    pub max_depth: usize,
    pub min_leaf: usize,
    pub l2: f64,
    pub subsample: f64,
    pub colsample: f64,
    pub bins: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Node {
    /// Rows with `x[feature] <= threshold` go to `left`, the others (and NaN) to `right`.
    Split {
        feature: u32,
        threshold: f64,
        left: u32,
        right: u32,
    },
    Leaf {
        value: f64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn predict(&self, x: &[f64]) -> f64 {
        let mut i = 0usize;
        loop {
            match &self.nodes[i] {
                Node::Leaf { value } => return *value,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    i = if x[*feature as usize] <= *threshold {
                        *left as usize
                    } else {
                        *right as usize
                    };
                }
            }
        }
    }
}

/// A fitted ensemble: `base + Σ tree(x)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Gbt {
    features: usize,
    base: f64,
    trees: Vec<Tree>,
}

/// Per feature, the bin edges: bin(x) = number of edges below x, so `bin(x) <= b` exactly
/// when `x <= edges[b]`, which lets a split found on bins be stored as a plain threshold.
fn bin_edges(values: &mut [f64], bins: usize) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let mut edges: Vec<f64> = Vec::with_capacity(bins);
    if n == 0 {
        return edges;
    }
    for q in 1..bins {
        let v = values[(q * n / bins).min(n - 1)];
        if edges.last().is_none_or(|&last| v > last) {
            edges.push(v);
        }
    }
    // The largest value as an edge would put nothing on its right.
    if edges.last() == values.last() {
        edges.pop();
    }
    edges
}

/// Sums of residuals and counts per bin, for every feature, laid end to end.
#[derive(Clone)]
struct Histogram {
    sum: Vec<f64>,
    count: Vec<u32>,
}

impl Histogram {
    fn zeros(len: usize) -> Self {
        Histogram {
            sum: vec![0.0; len],
            count: vec![0; len],
        }
    }

    fn subtract(&self, other: &Histogram) -> Histogram {
        Histogram {
            sum: self
                .sum
                .iter()
                .zip(&other.sum)
                .map(|(a, b)| a - b)
                .collect(),
            count: self
                .count
                .iter()
                .zip(&other.count)
                .map(|(a, b)| a - b)
                .collect(),
        }
    }
}

struct Grower<'a> {
    p: &'a GbtParams,
    /// Column-major bin indices: `binned[j][i]`.
    binned: &'a [Vec<u8>],
    edges: &'a [Vec<f64>],
    offsets: &'a [usize],
    hist_len: usize,
    residual: &'a [f64],
    features: Vec<usize>,
    nodes: Vec<Node>,
}

struct BestSplit {
    feature: usize,
    bin: usize,
    gain: f64,
}

impl Grower<'_> {
    fn histogram(&self, rows: &[u32]) -> Histogram {
        let mut h = Histogram::zeros(self.hist_len);
        for &j in &self.features {
            let col = &self.binned[j];
            let off = self.offsets[j];
            let (sum, count) = (&mut h.sum, &mut h.count);
            for &i in rows {
                let b = off + col[i as usize] as usize;
                sum[b] += self.residual[i as usize];
                count[b] += 1;
            }
        }
        h
    }

    fn best_split(&self, h: &Histogram, total: f64, n: usize) -> Option<BestSplit> {
        let l2 = self.p.l2;
        let parent = total * total / (n as f64 + l2);
        let mut best: Option<BestSplit> = None;
        for &j in &self.features {
            let off = self.offsets[j];
            let nb = self.edges[j].len();
            let (mut gl, mut nl) = (0.0, 0usize);
            for b in 0..nb {
                gl += h.sum[off + b];
                nl += h.count[off + b] as usize;
                let nr = n - nl;
                if nl < self.p.min_leaf {
                    continue;
                }
                if nr < self.p.min_leaf {
                    break;
                }
                let gr = total - gl;
                let gain = gl * gl / (nl as f64 + l2) + gr * gr / (nr as f64 + l2) - parent;
                if gain > 1e-9 && best.as_ref().is_none_or(|s| gain > s.gain) {
                    best = Some(BestSplit {
                        feature: j,
                        bin: b,
                        gain,
                    });
                }
            }
        }
        best
    }

    /// Grows the subtree of `rows` (whose histogram is `h`) and returns its node index.
    fn grow(&mut self, rows: &mut [u32], h: Histogram, depth: usize) -> u32 {
        let n = rows.len();
        let total: f64 = rows.iter().map(|&i| self.residual[i as usize]).sum();
        let id = self.nodes.len() as u32;
        let leaf = Node::Leaf {
            value: self.p.learning_rate * total / (n as f64 + self.p.l2),
        };
        self.nodes.push(leaf.clone());
        if depth >= self.p.max_depth || n < 2 * self.p.min_leaf {
            return id;
        }
        let Some(split) = self.best_split(&h, total, n) else {
            return id;
        };
        let col = &self.binned[split.feature];
        // Stable partition: rows with bin <= split.bin first.
        let mut left: Vec<u32> = Vec::with_capacity(n);
        let mut right: Vec<u32> = Vec::with_capacity(n);
        for &i in rows.iter() {
            if (col[i as usize] as usize) <= split.bin {
                left.push(i);
            } else {
                right.push(i);
            }
        }
        let nl = left.len();
        rows[..nl].copy_from_slice(&left);
        rows[nl..].copy_from_slice(&right);
        let (lrows, rrows) = rows.split_at_mut(nl);
        let (hl, hr) = if lrows.len() <= rrows.len() {
            let hl = self.histogram(lrows);
            let hr = h.subtract(&hl);
            (hl, hr)
        } else {
            let hr = self.histogram(rrows);
            let hl = h.subtract(&hr);
            (hl, hr)
        };
        drop(h);
        let l = self.grow(lrows, hl, depth + 1);
        let r = self.grow(rrows, hr, depth + 1);
        self.nodes[id as usize] = Node::Split {
            feature: split.feature as u32,
            threshold: self.edges[split.feature][split.bin],
            left: l,
            right: r,
        };
        id
    }
}

impl Gbt {
    /// Fits `y ≈ f(x)` on row-major `x` (every row of the same length, finite values).
    pub(crate) fn fit(x: &[Vec<f64>], y: &[f64], p: &GbtParams) -> Gbt {
        let n = x.len();
        let f = x.first().map_or(0, Vec::len);
        let base = if n == 0 {
            0.0
        } else {
            y.iter().sum::<f64>() / n as f64
        };
        let mut model = Gbt {
            features: f,
            base,
            trees: Vec::new(),
        };
        if n == 0 || f == 0 {
            return model;
        }
        let bins = p.bins.clamp(2, 256);
        let mut edges = Vec::with_capacity(f);
        let mut binned = Vec::with_capacity(f);
        let mut column = vec![0.0; n];
        for j in 0..f {
            for (c, row) in column.iter_mut().zip(x) {
                *c = row[j];
            }
            let e = bin_edges(&mut column.clone(), bins);
            binned.push(
                column
                    .iter()
                    .map(|&v| e.partition_point(|&t| t < v) as u8)
                    .collect::<Vec<u8>>(),
            );
            edges.push(e);
        }
        // One extra bin per feature for values above the last edge.
        let mut offsets = Vec::with_capacity(f);
        let mut hist_len = 0;
        for e in &edges {
            offsets.push(hist_len);
            hist_len += e.len() + 1;
        }
        let mut rng = SplitMix64::new(p.seed);
        let mut pred = vec![base; n];
        let mut residual = vec![0.0; n];
        let m_rows = ((n as f64 * p.subsample).round() as usize).clamp(1, n);
        let m_cols = ((f as f64 * p.colsample).round() as usize).clamp(1, f);
        let mut all_rows: Vec<u32> = (0..n as u32).collect();
        let mut all_cols: Vec<usize> = (0..f).collect();
        for _ in 0..p.trees {
            for i in 0..n {
                residual[i] = y[i] - pred[i];
            }
            rng.shuffle(&mut all_rows);
            let mut rows = all_rows[..m_rows].to_vec();
            rows.sort_unstable();
            rng.shuffle(&mut all_cols);
            let mut features = all_cols[..m_cols].to_vec();
            features.sort_unstable();
            let mut g = Grower {
                p,
                binned: &binned,
                edges: &edges,
                offsets: &offsets,
                hist_len,
                residual: &residual,
                features,
                nodes: Vec::new(),
            };
            let h = g.histogram(&rows);
            g.grow(&mut rows, h, 0);
            let tree = Tree { nodes: g.nodes };
            for (pv, row) in pred.iter_mut().zip(x) {
                *pv += tree.predict(row);
            }
            model.trees.push(tree);
        }
        model
    }

    pub(crate) fn predict(&self, x: &[f64]) -> f64 {
        debug_assert_eq!(x.len(), self.features);
        self.base + self.trees.iter().map(|t| t.predict(x)).sum::<f64>()
    }

    pub(crate) fn features(&self) -> usize {
        self.features
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> GbtParams {
        GbtParams {
            trees: 200,
            learning_rate: 0.1,
            max_depth: 4,
            min_leaf: 5,
            l2: 1.0,
            subsample: 0.8,
            colsample: 1.0,
            bins: 64,
            seed: 7,
        }
    }

    #[test]
    fn learns_a_nonlinear_function_of_two_features() {
        let mut rng = SplitMix64::new(1);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..2_000 {
            let a = rng.below(1000) as f64 / 100.0;
            let b = rng.below(1000) as f64 / 100.0;
            let noise = rng.below(1000) as f64 / 5000.0;
            x.push(vec![a, b, noise]);
            y.push(if a > 5.0 { b * 2.0 } else { 10.0 - b });
        }
        let m = Gbt::fit(&x, &y, &params());
        let mse: f64 = x
            .iter()
            .zip(&y)
            .map(|(r, t)| (m.predict(r) - t).powi(2))
            .sum::<f64>()
            / x.len() as f64;
        assert!(mse < 0.5, "mse {mse}");
    }

    #[test]
    fn same_seed_same_model() {
        let x: Vec<Vec<f64>> = (0..300).map(|i| vec![i as f64, (i % 7) as f64]).collect();
        let y: Vec<f64> = x.iter().map(|r| r[0].sqrt() + r[1]).collect();
        assert_eq!(Gbt::fit(&x, &y, &params()), Gbt::fit(&x, &y, &params()));
    }

    #[test]
    fn bin_edges_match_thresholds() {
        let mut v: Vec<f64> = (0..100).map(|i| (i % 10) as f64).collect();
        let e = bin_edges(&mut v, 4);
        for x in [0.0, 2.0, 2.5, 9.0] {
            let b = e.partition_point(|&t| t < x);
            for (k, t) in e.iter().enumerate() {
                assert_eq!(b <= k, x <= *t);
            }
        }
        assert!(!e.contains(&9.0));
    }
}
