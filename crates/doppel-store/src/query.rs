//! Query arithmetic that does not depend on how points are stored: argument checks, bucket
//! alignment, and the per-bucket aggregates of `downsample`.

use doppel_model::Timestamp;

use crate::chunk::Summary;
use crate::rollup::Rollup;
use crate::{Agg, Bucket, Point, StoreError};

/// Most buckets one `downsample` may span; bounds the answer (and the work) of one request.
pub(crate) const MAX_BUCKETS: i128 = 1_000_000;

pub(crate) fn check_range(from: Timestamp, to: Timestamp) -> Result<(), StoreError> {
    if from > to {
        return Err(StoreError::InvalidQuery(format!(
            "from ({from}) is after to ({to})"
        )));
    }
    Ok(())
}

/// Refuses a non-positive step and a range spanning more than [`MAX_BUCKETS`] buckets. The
/// count is of buckets the range touches, not of non-empty ones, so whether a query is
/// accepted does not depend on the data.
pub(crate) fn check_downsample(
    from: Timestamp,
    to: Timestamp,
    step: i64,
) -> Result<(), StoreError> {
    check_range(from, to)?;
    if step <= 0 {
        return Err(StoreError::InvalidQuery(format!(
            "step must be positive, got {step}"
        )));
    }
    if from < to {
        let first = i128::from(from).div_euclid(i128::from(step));
        let last = i128::from(to - 1).div_euclid(i128::from(step));
        let n = last - first + 1;
        if n > MAX_BUCKETS {
            return Err(StoreError::InvalidQuery(format!(
                "range spans {n} buckets of {step} ns, more than {MAX_BUCKETS}; use a larger step"
            )));
        }
    }
    Ok(())
}

/// Start of the bucket holding `ts`: the largest multiple of `step` not after it. Clamped at
/// `i64::MIN` for the few timestamps whose bucket would start before the representable range.
pub(crate) fn bucket_start(ts: Timestamp, step: i64) -> Timestamp {
    ts.checked_sub(ts.rem_euclid(step)).unwrap_or(i64::MIN)
}

/// Neumaier's compensated sum: the error stays at one rounding regardless of how many values
/// a bucket holds, where a naive f64 sum drifts with the count.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StableSum {
    sum: f64,
    compensation: f64,
}

impl StableSum {
    pub(crate) fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    pub(crate) fn value(&self) -> f64 {
        self.sum + self.compensation
    }
}

/// Count, mean and sum of squared deviations from the mean of a run of values: Welford's
/// update adds one value, Chan's parallel formula adds a whole chunk's summary. Neither
/// subtracts large squares, and both work on the values minus the first one seen (`shift`),
/// so the mean they update is small and its rounding does not eat the variance of readings
/// that sit far from zero (a pressure of 1e5 Pa ± 0.5).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Moments {
    count: u64,
    shift: f64,
    /// Mean of the shifted values.
    mean: f64,
    m2: f64,
}

impl Moments {
    pub(crate) fn add(&mut self, x: f64) {
        if self.count == 0 {
            self.shift = x;
        }
        let y = x - self.shift;
        self.count += 1;
        let delta = y - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (y - self.mean);
    }

    /// Adds `count` values of mean `mean` and sum of squared deviations `m2`.
    pub(crate) fn merge(&mut self, count: u64, mean: f64, m2: f64) {
        if count == 0 {
            return;
        }
        if self.count == 0 {
            *self = Moments {
                count,
                shift: mean,
                mean: 0.0,
                m2,
            };
            return;
        }
        let (na, nb) = (self.count as f64, count as f64);
        let n = na + nb;
        let delta = (mean - self.shift) - self.mean;
        self.mean += delta * nb / n;
        self.m2 += m2 + delta * delta * na * nb / n;
        self.count += count;
    }

    /// Sum of squared deviations from the mean.
    pub(crate) fn m2(&self) -> f64 {
        self.m2.max(0.0)
    }

    /// Adds another run's moments.
    fn merge_moments(&mut self, o: &Moments) {
        self.merge(o.count, o.shift + o.mean, o.m2);
    }

    /// Sample standard deviation (divisor n − 1); 0 for fewer than two values.
    pub(crate) fn sample_stddev(&self) -> f64 {
        if self.count < 2 {
            return 0.0;
        }
        (self.m2.max(0.0) / (self.count - 1) as f64).sqrt()
    }
}

#[derive(Debug)]
struct Acc {
    start: Timestamp,
    count: u64,
    sum: StableSum,
    min: f64,
    max: f64,
    first: f64,
    last: f64,
    first_ts: Timestamp,
    last_ts: Timestamp,
    moments: Moments,
}

impl Acc {
    /// Adds the bucket `o` of the same start; first and last go by timestamp (`o` takes a
    /// tie for last, `self` keeps it for first).
    fn merge(&mut self, o: &Acc) {
        self.count += o.count;
        self.sum.add(o.sum.sum);
        self.sum.add(o.sum.compensation);
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        if o.first_ts < self.first_ts {
            self.first_ts = o.first_ts;
            self.first = o.first;
        }
        if o.last_ts >= self.last_ts {
            self.last_ts = o.last_ts;
            self.last = o.last;
        }
        self.moments.merge_moments(&o.moments);
    }
}

/// Whether a chunk lying in one bucket can be folded from its summary for `agg`: the
/// standard deviation needs the summary's `m2`, which summaries written before it existed
/// lack (such chunks are decoded instead). A summary without numbers is accepted:
/// [`Downsampler::push_summary`] then refuses it as not numeric, as the points would be.
pub(crate) fn can_summarize(agg: Agg, s: &Summary) -> bool {
    agg != Agg::Stddev || s.numeric().is_none_or(|n| n.m2.is_some())
}

/// Folds points, given in ascending time order, into buckets.
#[derive(Debug)]
pub(crate) struct Downsampler {
    step: i64,
    agg: Agg,
    cur: Option<Acc>,
    out: Vec<Bucket>,
    /// Finished buckets kept whole for [`Downsampler::finish_with`] (`new_mergeable`); an
    /// accumulator is four times a bucket's size, and a query may hold a million.
    accs: Option<Vec<Acc>>,
}

/// The point that made a numeric aggregate impossible.
#[derive(Debug)]
pub(crate) struct NotNumeric;

impl Downsampler {
    pub(crate) fn new(step: i64, agg: Agg) -> Self {
        Downsampler {
            step,
            agg,
            cur: None,
            out: Vec::new(),
            accs: None,
        }
    }

    /// A downsampler whose buckets [`Downsampler::finish_with`] can merge with another's.
    pub(crate) fn new_mergeable(step: i64, agg: Agg) -> Self {
        Downsampler {
            accs: Some(Vec::new()),
            ..Downsampler::new(step, agg)
        }
    }

    pub(crate) fn push(&mut self, p: &Point) -> Result<(), NotNumeric> {
        let x = if self.agg == Agg::Count {
            0.0
        } else {
            p.value.as_f64().ok_or(NotNumeric)?
        };
        let start = bucket_start(p.ts, self.step);
        match &mut self.cur {
            Some(acc) if acc.start == start => {
                acc.count += 1;
                acc.sum.add(x);
                acc.min = acc.min.min(x);
                acc.max = acc.max.max(x);
                acc.last = x;
                acc.last_ts = p.ts;
                acc.moments.add(x);
            }
            _ => {
                self.flush();
                let mut sum = StableSum::default();
                sum.add(x);
                let mut moments = Moments::default();
                moments.add(x);
                self.cur = Some(Acc {
                    start,
                    count: 1,
                    sum,
                    min: x,
                    max: x,
                    first: x,
                    last: x,
                    first_ts: p.ts,
                    last_ts: p.ts,
                    moments,
                });
            }
        }
        Ok(())
    }

    /// Folds a whole chunk from its summary. The caller guarantees that the chunk lies in
    /// one bucket and comes, in time order, after everything pushed before.
    pub(crate) fn push_summary(&mut self, s: &Summary) -> Result<(), NotNumeric> {
        let count = u64::from(s.count);
        let (sum, min, max, first, last, m2) = if self.agg == Agg::Count {
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        } else {
            let n = s.numeric().ok_or(NotNumeric)?;
            let (first, last) = s.first_last_f64().ok_or(NotNumeric)?;
            // Without `m2` only the standard deviation is wrong, and `can_summarize` keeps
            // such chunks away from it.
            (n.sum, n.min, n.max, first, last, n.m2.unwrap_or(0.0))
        };
        let mean = if count == 0 { 0.0 } else { sum / count as f64 };
        let start = bucket_start(s.first_ts(), self.step);
        match &mut self.cur {
            Some(acc) if acc.start == start => {
                acc.count += count;
                acc.sum.add(sum);
                acc.min = acc.min.min(min);
                acc.max = acc.max.max(max);
                acc.last = last;
                acc.last_ts = s.last_ts();
                acc.moments.merge(count, mean, m2);
            }
            _ => {
                self.flush();
                let mut stable = StableSum::default();
                stable.add(sum);
                let mut moments = Moments::default();
                moments.merge(count, mean, m2);
                self.cur = Some(Acc {
                    start,
                    count,
                    sum: stable,
                    min,
                    max,
                    first,
                    last,
                    first_ts: s.first_ts(),
                    last_ts: s.last_ts(),
                    moments,
                });
            }
        }
        Ok(())
    }

    /// Folds a rollup (of a bucket or a block) lying in one bucket. Rollups may come in any
    /// order within a bucket, but buckets must come in ascending order.
    pub(crate) fn push_rollup(&mut self, r: &Rollup) {
        let zero = self.agg == Agg::Count;
        let pick = |x: f64| if zero { 0.0 } else { x };
        let mut sum = StableSum::default();
        sum.add(pick(r.sum));
        let mut moments = Moments::default();
        moments.merge(r.count, pick(r.mean()), pick(r.m2));
        let acc = Acc {
            start: bucket_start(r.first_ts, self.step),
            count: r.count,
            sum,
            min: pick(r.min),
            max: pick(r.max),
            first: pick(r.first),
            last: pick(r.last),
            first_ts: r.first_ts,
            last_ts: r.last_ts,
            moments,
        };
        match &mut self.cur {
            Some(cur) if cur.start == acc.start => cur.merge(&acc),
            _ => {
                self.flush();
                self.cur = Some(acc);
            }
        }
    }

    fn flush(&mut self) {
        if let Some(acc) = self.cur.take() {
            match &mut self.accs {
                Some(accs) => accs.push(acc),
                None => self.out.push(Self::bucket(self.agg, acc)),
            }
        }
    }

    /// The buckets of this downsampler and of `other` (same step and aggregate, both made by
    /// `new_mergeable`), a bucket both hold merged.
    pub(crate) fn finish_with(mut self, mut other: Downsampler) -> Vec<Bucket> {
        self.flush();
        other.flush();
        let agg = self.agg;
        let (a, b) = (
            self.accs.unwrap_or_default(),
            other.accs.unwrap_or_default(),
        );
        let mut out = Vec::with_capacity(a.len() + b.len());
        let mut a = a.into_iter().peekable();
        let mut b = b.into_iter().peekable();
        loop {
            let acc = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.start == y.start => {
                    let (mut x, y) = (a.next(), b.next());
                    if let (Some(x), Some(y)) = (&mut x, &y) {
                        x.merge(y);
                    }
                    x
                }
                (Some(x), Some(y)) if x.start < y.start => a.next(),
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, None) => break,
            };
            if let Some(acc) = acc {
                out.push(Self::bucket(agg, acc));
            }
        }
        out
    }

    fn bucket(agg: Agg, acc: Acc) -> Bucket {
        let value = match agg {
            Agg::Count => acc.count as f64,
            Agg::Sum => acc.sum.value(),
            Agg::Mean => acc.sum.value() / acc.count as f64,
            Agg::Min => acc.min,
            Agg::Max => acc.max,
            Agg::First => acc.first,
            Agg::Last => acc.last,
            Agg::Stddev => acc.moments.sample_stddev(),
        };
        Bucket {
            start: acc.start,
            count: acc.count,
            value,
        }
    }

    pub(crate) fn finish(mut self) -> Vec<Bucket> {
        self.flush();
        let agg = self.agg;
        let accs = self.accs.take().unwrap_or_default();
        self.out
            .extend(accs.into_iter().map(|a| Self::bucket(agg, a)));
        self.out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use doppel_model::Value;

    fn pts(v: &[(i64, Value)]) -> Vec<Point> {
        v.iter()
            .map(|(ts, value)| Point {
                ts: *ts,
                value: value.clone(),
            })
            .collect()
    }

    fn run(points: &[Point], step: i64, agg: Agg) -> Result<Vec<(i64, u64, f64)>, NotNumeric> {
        let mut d = Downsampler::new(step, agg);
        for p in points {
            d.push(p)?;
        }
        Ok(d.finish()
            .into_iter()
            .map(|b| (b.start, b.count, b.value))
            .collect())
    }

    #[test]
    fn buckets_align_to_epoch_including_negative_times() {
        assert_eq!(bucket_start(-1, 10), -10);
        assert_eq!(bucket_start(-10, 10), -10);
        assert_eq!(bucket_start(19, 10), 10);
        assert_eq!(bucket_start(i64::MIN, 3), i64::MIN);
        assert_eq!(bucket_start(i64::MAX, i64::MAX), i64::MAX);
    }

    #[test]
    fn aggregates_per_bucket() {
        let p = pts(&[
            (-3, Value::Int(4)),
            (1, Value::Float(1.5)),
            (2, Value::Bool(true)),
            (9, Value::Int(-2)),
            (12, Value::Float(8.0)),
        ]);
        assert_eq!(
            run(&p, 10, Agg::Count).unwrap(),
            vec![(-10, 1, 1.0), (0, 3, 3.0), (10, 1, 1.0)]
        );
        assert_eq!(run(&p, 10, Agg::Sum).unwrap()[1], (0, 3, 0.5));
        assert_eq!(run(&p, 10, Agg::Mean).unwrap()[1], (0, 3, 0.5 / 3.0));
        assert_eq!(run(&p, 10, Agg::Min).unwrap()[1], (0, 3, -2.0));
        assert_eq!(run(&p, 10, Agg::Max).unwrap()[1], (0, 3, 1.5));
        assert_eq!(run(&p, 10, Agg::First).unwrap()[1], (0, 3, 1.5));
        assert_eq!(run(&p, 10, Agg::Last).unwrap()[1], (0, 3, -2.0));
    }

    #[test]
    fn stddev_is_the_sample_one_and_zero_for_one_point() {
        let p = pts(&[
            (0, Value::Float(2.0)),
            (1, Value::Int(4)),
            (2, Value::Float(4.0)),
            (3, Value::Float(4.0)),
            (4, Value::Float(5.0)),
            (5, Value::Float(5.0)),
            (6, Value::Float(7.0)),
            (7, Value::Float(9.0)),
            (10, Value::Float(3.0)),
        ]);
        let got = run(&p, 10, Agg::Stddev).unwrap();
        // Mean 5, squared deviations sum to 32: sample variance 32 / 7.
        assert_eq!(got[0].1, 8);
        assert!((got[0].2 - (32.0f64 / 7.0).sqrt()).abs() < 1e-15);
        assert_eq!(got[1], (10, 1, 0.0));
    }

    #[test]
    fn chan_merge_equals_adding_one_by_one() {
        // Exact in f64 (quarters), far from zero: both ways must find the two-pass answer.
        let xs: Vec<f64> = (0..100).map(|i| 1e9 + f64::from(i % 7) * 0.25).collect();
        let mean = xs.iter().sum::<f64>() / 100.0;
        let want = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 99.0).sqrt();
        let mut one = Moments::default();
        xs.iter().for_each(|&x| one.add(x));
        let mut merged = Moments::default();
        for part in xs.chunks(13) {
            let mut m = Moments::default();
            part.iter().for_each(|&x| m.add(x));
            merged.merge(m.count, m.shift + m.mean, m.m2);
        }
        merged.merge(0, 123.0, 456.0);
        assert_eq!(merged.count, 100);
        let got = one.sample_stddev();
        assert!((got - want).abs() <= 1e-12 * want, "{got} vs {want}");
        // A chunk's mean is handed over as a number near 1e9, rounded to its ulp (1.2e-7):
        // that much of the spread between chunk means is unknowable, whatever the formula.
        let got = merged.sample_stddev();
        assert!((got - want).abs() <= 1e-8 * want, "{got} vs {want}");
        assert_eq!(Moments::default().sample_stddev(), 0.0);
    }

    #[test]
    fn strings_only_count() {
        let p = pts(&[(1, Value::String("on".into())), (2, Value::Int(1))]);
        assert_eq!(run(&p, 10, Agg::Count).unwrap(), vec![(0, 2, 2.0)]);
        assert!(run(&p, 10, Agg::Mean).is_err());
        assert!(run(&p, 10, Agg::Stddev).is_err());
    }

    #[test]
    fn stable_sum_survives_cancellation() {
        let mut s = StableSum::default();
        for x in [1e16, 1.0, -1e16, 1.0] {
            s.add(x);
        }
        assert_eq!(s.value(), 2.0);
        let mut naive = 0.0;
        for x in [1e16, 1.0, -1e16, 1.0] {
            naive += x;
        }
        assert_ne!(naive, 2.0, "the example must defeat a naive sum");
    }

    #[test]
    fn query_checks() {
        assert!(check_range(2, 1).is_err());
        assert!(check_range(1, 1).is_ok());
        assert!(check_downsample(0, 10, 0).is_err());
        assert!(check_downsample(0, 10, -5).is_err());
        assert!(check_downsample(0, 1_000_000, 1).is_ok());
        assert!(check_downsample(0, 1_000_001, 1).is_err());
        assert!(check_downsample(i64::MIN, i64::MAX, 1).is_err());
        assert!(check_downsample(i64::MIN, i64::MAX, i64::MAX).is_ok());
    }
}
