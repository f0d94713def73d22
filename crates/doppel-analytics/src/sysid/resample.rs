//! Irregular readings onto a fixed grid. Bin `k` holds the mean of the readings in
//! `(end_k − step, end_k]`; bin ends are whole multiples of the step since the epoch, so two
//! histories of the same twin resample onto the same grid. Empty bins are filled by linear
//! interpolation between their neighbours (held at the ends).

use serde::{Deserialize, Serialize};

use super::SysIdError;
use crate::Timestamp;

const NS_PER_S: f64 = 1e9;

/// Most bins one history may resample into (about 4.7 years at 30 s): a stray timestamp
/// decades away must be an error, not an allocation of gigabytes.
pub(crate) const MAX_BINS: usize = 5_000_000;

/// The readings of one signal: `(timestamp ns, value)`, in any order. Non-finite values (a
/// lost reading) are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub signal: String,
    pub points: Vec<(Timestamp, f64)>,
}

impl Series {
    /// A series of `signal` from `(timestamp ns, value)` points.
    pub fn new(signal: impl Into<String>, points: Vec<(Timestamp, f64)>) -> Self {
        Series {
            signal: signal.into(),
            points,
        }
    }
}

/// A grid of bins: bin `k` ends at `first_end + k·step_ns`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Grid {
    pub first_end: Timestamp,
    pub step_ns: i64,
    pub len: usize,
}

impl Grid {
    /// The complete bins covered by the finite readings of `history` (a partial last bin is
    /// left out: its mean would be biased toward its first readings).
    pub fn covering<'a>(
        history: impl IntoIterator<Item = &'a Series>,
        step_s: f64,
    ) -> Result<Grid, SysIdError> {
        let step_ns = step_ns(step_s)?;
        let mut lo = i64::MAX;
        let mut hi = i64::MIN;
        for s in history {
            for &(t, v) in &s.points {
                if v.is_finite() {
                    lo = lo.min(t);
                    hi = hi.max(t);
                }
            }
        }
        if lo > hi {
            return Err(SysIdError::EmptyHistory);
        }
        let first_end = ceil_div(lo, step_ns).saturating_mul(step_ns);
        let last_end = hi.div_euclid(step_ns).saturating_mul(step_ns);
        let len = if last_end >= first_end {
            (last_end.saturating_sub(first_end) / step_ns) as usize + 1
        } else {
            0
        };
        if len > MAX_BINS {
            return Err(SysIdError::TooLong {
                bins: len,
                max: MAX_BINS,
            });
        }
        Ok(Grid {
            first_end,
            step_ns,
            len,
        })
    }

    pub fn span_s(&self) -> f64 {
        self.len as f64 * self.step_ns as f64 / NS_PER_S
    }

    pub fn end(&self, k: usize) -> Timestamp {
        self.first_end + self.step_ns * k as i64
    }

    pub fn last_end(&self) -> Timestamp {
        self.end(self.len.saturating_sub(1))
    }

    /// The bin a reading at `t` falls in, if any.
    fn bin(&self, t: Timestamp) -> Option<usize> {
        let d = t.checked_sub(self.first_end.saturating_sub(self.step_ns))?;
        if d <= 0 {
            return None;
        }
        let k = ((d - 1) / self.step_ns) as usize;
        (k < self.len).then_some(k)
    }
}

pub(crate) fn step_ns(step_s: f64) -> Result<i64, SysIdError> {
    if !(step_s.is_finite() && (0.001..=86_400.0).contains(&step_s)) {
        return Err(SysIdError::InvalidConfig {
            problems: vec![format!(
                "step_s must be between 0.001 and 86400 s, got {step_s}"
            )],
        });
    }
    Ok((step_s * NS_PER_S).round() as i64)
}

fn ceil_div(a: i64, b: i64) -> i64 {
    let q = a.div_euclid(b);
    if a.rem_euclid(b) == 0 {
        q
    } else {
        q + 1
    }
}

/// One signal on a grid.
#[derive(Debug, Clone)]
pub(crate) struct Resampled {
    pub values: Vec<f64>,
    /// Fraction of bins that held at least one reading.
    pub filled: f64,
    /// Spread of single readings around their bin mean (median over bins of the within-bin
    /// standard deviation): the sensor noise a single reading adds to a bin-mean prediction.
    pub reading_sd: f64,
}

/// Resamples `series` onto `grid`; `None` when it has no finite reading inside the grid.
pub(crate) fn resample(series: &Series, grid: &Grid) -> Option<Resampled> {
    let mut sum = vec![0.0; grid.len];
    let mut sq = vec![0.0; grid.len];
    let mut n = vec![0u32; grid.len];
    for &(t, v) in &series.points {
        if !v.is_finite() {
            continue;
        }
        if let Some(k) = grid.bin(t) {
            sum[k] += v;
            sq[k] += v * v;
            n[k] += 1;
        }
    }
    let filled_bins = n.iter().filter(|&&c| c > 0).count();
    if filled_bins == 0 {
        return None;
    }
    let mut sds: Vec<f64> = Vec::new();
    let mut values = vec![f64::NAN; grid.len];
    for k in 0..grid.len {
        if n[k] > 0 {
            let c = f64::from(n[k]);
            let m = sum[k] / c;
            values[k] = m;
            if n[k] >= 2 {
                sds.push(((sq[k] / c - m * m).max(0.0) * c / (c - 1.0)).sqrt());
            }
        }
    }
    fill_gaps(&mut values);
    let reading_sd = median(&mut sds).unwrap_or(0.0);
    Some(Resampled {
        values,
        filled: filled_bins as f64 / grid.len as f64,
        reading_sd,
    })
}

/// Linear interpolation across NaN runs; runs at the ends take the nearest value.
fn fill_gaps(v: &mut [f64]) {
    let known: Vec<usize> = (0..v.len()).filter(|&i| v[i].is_finite()).collect();
    let (Some(&first), Some(&last)) = (known.first(), known.last()) else {
        return;
    };
    for i in 0..first {
        v[i] = v[first];
    }
    for i in last + 1..v.len() {
        v[i] = v[last];
    }
    for w in known.windows(2) {
        let (a, b) = (w[0], w[1]);
        for i in a + 1..b {
            let f = (i - a) as f64 / (b - a) as f64;
            v[i] = v[a] + f * (v[b] - v[a]);
        }
    }
}

pub(crate) fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    })
}

/// Looks a signal up in a history.
pub(crate) fn find<'a>(history: &'a [Series], signal: &str) -> Option<&'a Series> {
    history.iter().find(|s| s.signal == signal)
}
