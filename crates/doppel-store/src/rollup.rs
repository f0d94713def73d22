//! Rollups: per-minute and per-hour summaries of a series' numeric values, made when
//! retention forgets the raw points, so long-range aggregates still answer after them.
//!
//! A rollup of one bucket (`[start, start + width)`, aligned to whole minutes or hours of the
//! epoch) holds what a chunk summary holds: count, first and last point (time and value),
//! min, max, sum and M2 (the sum of squared deviations from the mean). Two rollups of the
//! same bucket merge exactly (Chan's formula for M2), so a bucket may be rolled up in parts
//! (a cut in the middle of a minute, a late point cut later) and still answer as one.
//!
//! Rollups of one level are kept in *blocks* of up to [`BLOCK_BUCKETS`] buckets, stored like
//! chunks (in memory until a checkpoint writes them to a segment file), each with the merged
//! rollup of all its buckets as its summary, so a query bucket holding a whole block folds
//! it without reading it.
//!
//! # Block format
//!
//! ```text
//! block   = varint n, block(first_ts column), block(span column), block(count column),
//!           block(first), block(last), block(min), block(max), block(sum), m2 (rest)
//! summary = varint count, zigzag varint first_ts, varint (last_ts - first_ts),
//!           f64 first, f64 last, f64 min, f64 max, f64 sum, f64 m2      (LE bit patterns)
//! ```
//!
//! `first_ts` is a timestamp column; span (`last_ts - first_ts`) and count are integer value
//! columns and the six others float value columns, all through `codec/` (the smallest codec
//! per column wins, as in chunks). Buckets in a block have strictly ascending starts. Values
//! are kept as f64 (`Value::as_f64`: bools are 0/1); text values are not rolled up.

use doppel_model::{Timestamp, Value};

use crate::codec::{self, put_block, put_varint, unzigzag, zigzag, Bytes, CodecError};
use crate::query::{self, StableSum};
use crate::Point;

/// Most buckets one block holds: a day of minutes, 60 days of hours.
pub(crate) const BLOCK_BUCKETS: usize = 1440;

const MINUTE: i64 = 60_000_000_000;
const HOUR: i64 = 60 * MINUTE;

/// The width of a rollup bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Minute = 0,
    Hour = 1,
}

impl Level {
    pub(crate) const ALL: [Level; 2] = [Level::Minute, Level::Hour];

    pub(crate) fn width(self) -> i64 {
        match self {
            Level::Minute => MINUTE,
            Level::Hour => HOUR,
        }
    }

    pub(crate) fn from_u8(b: u8) -> Option<Level> {
        match b {
            0 => Some(Level::Minute),
            1 => Some(Level::Hour),
            _ => None,
        }
    }

    /// The coarsest level whose buckets each lie inside one bucket of `step`, if any.
    pub(crate) fn for_step(step: i64) -> Option<Level> {
        Level::ALL.into_iter().rev().find(|l| step % l.width() == 0)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The summary of the numeric points of one bucket, or of a whole block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rollup {
    pub count: u64,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    pub first: f64,
    pub last: f64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub m2: f64,
}

impl Rollup {
    pub(crate) fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }

    /// Adds `o` (any order in time: first and last go by timestamp, the earlier-merged
    /// rollup keeping a tie for first and the later one taking it for last).
    pub(crate) fn merge(&mut self, o: &Rollup) {
        if o.count == 0 {
            return;
        }
        let (na, nb) = (self.count as f64, o.count as f64);
        let n = na + nb;
        let delta = o.mean() - self.mean();
        self.m2 += o.m2 + delta * delta * na * nb / n;
        let mut sum = StableSum::default();
        sum.add(self.sum);
        sum.add(o.sum);
        self.sum = sum.value();
        self.count += o.count;
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
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.count);
        put_varint(out, zigzag(self.first_ts));
        put_varint(out, self.last_ts.wrapping_sub(self.first_ts) as u64);
        for x in [self.first, self.last, self.min, self.max, self.sum, self.m2] {
            out.extend_from_slice(&x.to_bits().to_le_bytes());
        }
    }

    pub(crate) fn decode(b: &mut Bytes<'_>) -> Result<Rollup, CodecError> {
        let count = b.varint()?;
        if count == 0 {
            return Err(CodecError::new("empty rollup"));
        }
        let first_ts = unzigzag(b.varint()?);
        let span = b.varint()?;
        let last_ts = first_ts.wrapping_add(span as i64);
        if last_ts < first_ts || (count == 1 && span != 0) {
            return Err(CodecError::new("rollup time span out of range"));
        }
        let mut v = [0f64; 6];
        for x in &mut v {
            *x = f64::from_bits(b.u64()?);
        }
        Ok(Rollup {
            count,
            first_ts,
            last_ts,
            first: v[0],
            last: v[1],
            min: v[2],
            max: v[3],
            sum: v[4],
            m2: v[5],
        })
    }
}

/// One bucket being filled from points in ascending time order.
#[derive(Debug)]
struct Open {
    start: Timestamp,
    r: Rollup,
    sum: StableSum,
    moments: query::Moments,
}

/// Turns points, fed in ascending time order, into minute rollups; non-numeric values are
/// skipped.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    cur: Option<Open>,
    out: Vec<Rollup>,
}

impl Builder {
    pub(crate) fn push(&mut self, p: &Point) {
        let Some(x) = p.value.as_f64() else { return };
        let start = query::bucket_start(p.ts, MINUTE);
        if let Some(o) = self.cur.as_mut().filter(|o| o.start == start) {
            o.r.count += 1;
            o.r.last_ts = p.ts;
            o.r.last = x;
            o.r.min = o.r.min.min(x);
            o.r.max = o.r.max.max(x);
            o.sum.add(x);
            o.moments.add(x);
            return;
        }
        self.flush();
        let mut sum = StableSum::default();
        sum.add(x);
        let mut moments = query::Moments::default();
        moments.add(x);
        self.cur = Some(Open {
            start,
            r: Rollup {
                count: 1,
                first_ts: p.ts,
                last_ts: p.ts,
                first: x,
                last: x,
                min: x,
                max: x,
                sum: x,
                m2: 0.0,
            },
            sum,
            moments,
        });
    }

    fn flush(&mut self) {
        if let Some(mut o) = self.cur.take() {
            o.r.sum = o.sum.value();
            o.r.m2 = o.moments.m2();
            self.out.push(o.r);
        }
    }

    /// The minute rollups, ascending by bucket.
    pub(crate) fn finish(mut self) -> Vec<Rollup> {
        self.flush();
        self.out
    }
}

/// Rollups of `level` from ascending rollups of a finer level (or the same one: then equal
/// buckets are merged).
pub(crate) fn coarsen(finer: &[Rollup], level: Level) -> Vec<Rollup> {
    let mut out: Vec<Rollup> = Vec::new();
    let w = level.width();
    for r in finer {
        match out.last_mut() {
            Some(last)
                if query::bucket_start(last.first_ts, w) == query::bucket_start(r.first_ts, w) =>
            {
                last.merge(r)
            }
            _ => out.push(*r),
        }
    }
    out
}

/// Merges two runs of rollups of `level`, each ascending by bucket with one rollup per
/// bucket, into one such run.
pub(crate) fn merge_runs(a: &[Rollup], b: &[Rollup], level: Level) -> Vec<Rollup> {
    let mut all: Vec<Rollup> = Vec::with_capacity(a.len() + b.len());
    all.extend_from_slice(a);
    all.extend_from_slice(b);
    let w = level.width();
    // Stable: of two parts of one bucket, the older run's stays first (ties of first/last).
    all.sort_by_key(|r| query::bucket_start(r.first_ts, w));
    coarsen(&all, level)
}

/// The merged rollup of `rs` (non-empty).
pub(crate) fn total(rs: &[Rollup]) -> Option<Rollup> {
    let (first, rest) = rs.split_first()?;
    let mut t = *first;
    for r in rest {
        t.merge(r);
    }
    Some(t)
}

/// Encodes the rollups of one block (ascending, distinct buckets, 1..=BLOCK_BUCKETS).
pub(crate) fn encode_block(rs: &[Rollup]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, rs.len() as u64);
    let mut col = Vec::new();
    let ts: Vec<i64> = rs.iter().map(|r| r.first_ts).collect();
    codec::encode_timestamps(&ts, &mut col);
    put_block(&mut out, &col);
    let ints = |f: &dyn Fn(&Rollup) -> i64| -> Vec<Value> {
        rs.iter().map(|r| Value::Int(f(r))).collect()
    };
    let floats = |f: &dyn Fn(&Rollup) -> f64| -> Vec<Value> {
        rs.iter().map(|r| Value::Float(f(r))).collect()
    };
    let columns = [
        ints(&|r| r.last_ts.wrapping_sub(r.first_ts)),
        ints(&|r| r.count as i64),
        floats(&|r| r.first),
        floats(&|r| r.last),
        floats(&|r| r.min),
        floats(&|r| r.max),
        floats(&|r| r.sum),
        floats(&|r| r.m2),
    ];
    let last = columns.len() - 1;
    for (i, values) in columns.iter().enumerate() {
        col.clear();
        codec::encode_values(values, &mut col);
        if i == last {
            out.extend_from_slice(&col);
        } else {
            put_block(&mut out, &col);
        }
    }
    out
}

/// Decodes a block of `level`, checking what queries rely on: every bucket non-empty and
/// inside one bucket of the level, starts strictly ascending.
pub(crate) fn decode_block(bytes: &[u8], level: Level) -> Result<Vec<Rollup>, CodecError> {
    let mut b = Bytes::new(bytes);
    let n = b.varint_max(BLOCK_BUCKETS as u64, "rollup block count out of range")? as usize;
    let ts = codec::decode_timestamps(b.block()?, n)?;
    let ints = |buf: &[u8]| -> Result<Vec<i64>, CodecError> {
        codec::decode_values(buf, n)?
            .into_iter()
            .map(|v| match v {
                Value::Int(i) => Ok(i),
                _ => Err(CodecError::new("rollup column is not integers")),
            })
            .collect()
    };
    let floats = |buf: &[u8]| -> Result<Vec<f64>, CodecError> {
        codec::decode_values(buf, n)?
            .into_iter()
            .map(|v| match v {
                Value::Float(x) => Ok(x),
                _ => Err(CodecError::new("rollup column is not floats")),
            })
            .collect()
    };
    let span = ints(b.block()?)?;
    let count = ints(b.block()?)?;
    let mut f = Vec::with_capacity(6);
    for _ in 0..5 {
        f.push(floats(b.block()?)?);
    }
    f.push(floats(b.rest())?);
    if ts.len() != n || span.len() != n || count.len() != n || f.iter().any(|c| c.len() != n) {
        return Err(CodecError::new("rollup columns of different lengths"));
    }
    let w = level.width();
    let mut out = Vec::with_capacity(n);
    let mut prev: Option<Timestamp> = None;
    for i in 0..n {
        let (first_ts, span, count) = (ts[i], span[i], count[i]);
        let last_ts = first_ts
            .checked_add(span)
            .filter(|_| span >= 0)
            .ok_or(CodecError::new("rollup time span out of range"))?;
        let start = query::bucket_start(first_ts, w);
        if count <= 0
            || (count == 1 && span != 0)
            || query::bucket_start(last_ts, w) != start
            || prev.is_some_and(|p| p >= start)
        {
            return Err(CodecError::new(
                "rollup bucket out of order or out of range",
            ));
        }
        prev = Some(start);
        out.push(Rollup {
            count: count as u64,
            first_ts,
            last_ts,
            first: f[0][i],
            last: f[1][i],
            min: f[2][i],
            max: f[3][i],
            sum: f[4][i],
            m2: f[5][i],
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn minutes(points: &[(i64, f64)]) -> Vec<Rollup> {
        let mut b = Builder::default();
        for &(ts, x) in points {
            b.push(&Point {
                ts,
                value: Value::Float(x),
            });
        }
        b.finish()
    }

    #[test]
    fn builder_buckets_by_minute_and_skips_text() {
        let mut b = Builder::default();
        for (ts, v) in [
            (-1, Value::Float(2.0)),
            (0, Value::Int(1)),
            (5, Value::String("x".into())),
            (MINUTE - 1, Value::Bool(true)),
            (MINUTE, Value::Float(4.0)),
        ] {
            b.push(&Point { ts, value: v });
        }
        let r = b.finish();
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].count, r[0].first_ts, r[0].sum), (1, -1, 2.0));
        assert_eq!(
            (r[1].count, r[1].first, r[1].last, r[1].sum),
            (2, 1.0, 1.0, 2.0)
        );
        assert_eq!(r[1].last_ts, MINUTE - 1);
        assert_eq!(r[2].first_ts, MINUTE);
        let hours = coarsen(&r, Level::Hour);
        assert_eq!(hours.len(), 2);
        assert_eq!(hours[1].count, 3);
        assert_eq!(Level::for_step(HOUR * 24), Some(Level::Hour));
        assert_eq!(Level::for_step(MINUTE * 5), Some(Level::Minute));
        assert_eq!(Level::for_step(MINUTE + 1), None);
    }

    #[test]
    fn parts_of_a_bucket_merge_to_the_whole() {
        let pts: Vec<(i64, f64)> = (0..100)
            .map(|i| (i * 1_000_000_000, 1e6 + (i % 7) as f64))
            .collect();
        let whole = minutes(&pts);
        let a = minutes(&pts[..37]);
        let b = minutes(&pts[37..]);
        let merged = merge_runs(&b, &a, Level::Minute);
        assert_eq!(merged.len(), whole.len());
        for (m, w) in merged.iter().zip(&whole) {
            assert_eq!(
                (m.count, m.first_ts, m.last_ts, m.first, m.last),
                (w.count, w.first_ts, w.last_ts, w.first, w.last)
            );
            assert_eq!((m.min, m.max, m.sum), (w.min, w.max, w.sum));
            assert!((m.m2 - w.m2).abs() <= 1e-9 * w.m2, "{} vs {}", m.m2, w.m2);
        }
    }

    #[test]
    fn block_round_trip() {
        let pts: Vec<(i64, f64)> = (0..5000)
            .map(|i| (i * 1_000_000_000 - 3, (i as f64 * 0.1).sin()))
            .collect();
        let r = minutes(&pts);
        let bytes = encode_block(&r);
        assert_eq!(decode_block(&bytes, Level::Minute).unwrap(), r);
        assert!(
            decode_block(&bytes, Level::Hour).is_err(),
            "minute starts repeat in hours? no: spans fit, but starts repeat"
        );
        let s = total(&r).unwrap();
        let mut out = Vec::new();
        s.encode(&mut out);
        assert_eq!(Rollup::decode(&mut Bytes::new(&out)).unwrap(), s);
        assert_eq!(s.count, 5000);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_block(&bytes, Level::Minute);
            let _ = decode_block(&bytes, Level::Hour);
            let _ = Rollup::decode(&mut Bytes::new(&bytes));
        }
    }
}
