//! Small numerical helpers: ridge least squares on a Gram matrix, quantiles, the normal
//! quantile function.

use nalgebra::{DMatrix, DVector};

/// Solves `(G + λ·D)·θ = b`, where `D` is the identity except for the unpenalized columns
/// (the intercept), with `λ = ridge × mean(diag G)`. `None` when the system is singular even
/// so (a column that is identically zero with `ridge = 0`).
pub(crate) fn ridge_solve(
    g: &DMatrix<f64>,
    b: &DVector<f64>,
    ridge: f64,
    unpenalized: Option<usize>,
) -> Option<DVector<f64>> {
    let p = g.nrows();
    if p == 0 {
        return Some(DVector::zeros(0));
    }
    let mean_diag = (0..p).map(|i| g[(i, i)]).sum::<f64>() / p as f64;
    let lambda = ridge * mean_diag.max(f64::MIN_POSITIVE) + 1e-12;
    let mut a = g.clone();
    for i in 0..p {
        if Some(i) != unpenalized {
            a[(i, i)] += lambda;
        }
    }
    let chol = a.cholesky()?;
    let x = chol.solve(b);
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// The `q`-quantile (linear interpolation between order statistics) of `v`; sorts `v`.
pub(crate) fn quantile(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let i = pos.floor() as usize;
    let j = (i + 1).min(v.len() - 1);
    let f = pos - i as f64;
    Some(v[i] + f * (v[j] - v[i]))
}

/// The standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantile_known_values() {
        assert!((normal_quantile(0.95) - 1.644_853_6).abs() < 1e-6);
        assert!((normal_quantile(0.5)).abs() < 1e-9);
        assert!((normal_quantile(0.001) + 3.090_232).abs() < 1e-5);
    }

    #[test]
    fn ridge_recovers_exact_solution() {
        let g = DMatrix::from_row_slice(2, 2, &[4.0, 1.0, 1.0, 3.0]);
        let b = DVector::from_vec(vec![1.0, 2.0]);
        let x = ridge_solve(&g, &b, 0.0, None).expect("positive definite");
        assert!((x[0] - 1.0 / 11.0).abs() < 1e-9 && (x[1] - 7.0 / 11.0).abs() < 1e-9);
    }
}
