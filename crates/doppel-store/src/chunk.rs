//! Sealed chunks: an immutable, compressed run of one series' points with the summary that
//! lets queries skip it or answer from it without decoding.
//!
//! # Format
//!
//! ```text
//! chunk   = varint n, varint ts_len, timestamps column (ts_len bytes), values column (rest)
//! summary = varint count, zigzag varint first_ts, varint (last_ts - first_ts),
//!           value first, value last,
//!           u8 numeric, then 0: nothing
//!                        | 1: f64 min, f64 max, f64 sum                (LE bit patterns)
//!                        | 2: f64 min, f64 max, f64 sum, f64 m2
//! value   = u8 tag, then 0: f64 LE bits | 1: i64 LE | 2: u8 0/1 | 3: varint len, UTF-8
//! ```
//!
//! Columns are described in `codec/`. Points in a chunk are strictly ascending by time; the
//! summary's `numeric` part exists when every value has a number (`Value::as_f64`), so
//! numeric aggregates over a whole chunk need only the summary.
//!
//! `m2` is the sum of squared deviations from the chunk's mean (`sum / count`), computed in
//! two passes when the chunk seals; with count and mean it is what Chan's parallel formula
//! needs to combine chunks into a bucket's variance without the cancellation of a sum of
//! squares. Summaries written before it existed have numeric flag 1 and no `m2` (they are
//! still read, and a standard deviation over such a chunk decodes it); every summary sealed
//! since has flag 2. A reader that predates flag 2 refuses it as corrupt, so a store is not
//! meant to be opened by an older doppel once a newer one has written to it.

use std::ops::ControlFlow;

use doppel_model::{Timestamp, Value};

use crate::codec::{self, put_varint, unzigzag, zigzag, Bytes, CodecError, SealHint};
use crate::query::StableSum;
use crate::Point;

/// What a chunk holds, kept in memory for every chunk (the index entry): 80 bytes. A
/// fleet keeps one per sealed chunk of every series, so the first and last values are
/// their 8 bytes with a kind (not 24-byte `Value`s), and the numbers are flat fields whose
/// presence `flags` tells (not an `Option<Numeric>` with an `Option` inside). Text, which
/// is rare and never numeric, goes to a box.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    first_ts: Timestamp,
    last_ts: Timestamp,
    /// The first and last values' payloads (f64 bits, i64, 0/1), as their kinds say; 0 for
    /// text.
    first: u64,
    last: u64,
    /// min, max, sum and m2 of the values; 0 where `flags` says there are none.
    min: f64,
    max: f64,
    sum: f64,
    m2: f64,
    pub count: u32,
    /// Bits 0–1 the first value's kind, 2–3 the last's ([`KIND_FLOAT`] ...), 4 numeric,
    /// 5 with m2.
    flags: u8,
    /// The first and last values when either is text.
    text: Option<Box<[Value; 2]>>,
}

const KIND_FLOAT: u8 = 0;
const KIND_INT: u8 = 1;
const KIND_BOOL: u8 = 2;
const KIND_TEXT: u8 = 3;
const FLAG_NUMERIC: u8 = 1 << 4;
const FLAG_M2: u8 = 1 << 5;

/// A value's kind and payload as a summary holds them.
fn pack(v: &Value) -> (u8, u64) {
    match v {
        Value::Float(f) => (KIND_FLOAT, f.to_bits()),
        Value::Int(i) => (KIND_INT, *i as u64),
        Value::Bool(b) => (KIND_BOOL, u64::from(*b)),
        Value::String(_) => (KIND_TEXT, 0),
    }
}

/// The number of a packed (non-text) value, as `Value::as_f64` gives it.
fn packed_f64(kind: u8, bits: u64) -> Option<f64> {
    match kind {
        KIND_FLOAT => Some(f64::from_bits(bits)),
        KIND_INT => Some(bits as i64 as f64),
        KIND_BOOL => Some(if bits != 0 { 1.0 } else { 0.0 }),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Numeric {
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    /// Sum of squared deviations from the mean; `None` in summaries written before it existed.
    pub m2: Option<f64>,
}

impl Summary {
    /// `count` points from `first` to `last`, with their numbers when all are numeric.
    pub(crate) fn new(count: u32, first: Point, last: Point, numeric: Option<Numeric>) -> Self {
        let (first_kind, first_bits) = pack(&first.value);
        let (last_kind, last_bits) = pack(&last.value);
        let mut flags = first_kind | last_kind << 2;
        let n = numeric.unwrap_or(Numeric {
            min: 0.0,
            max: 0.0,
            sum: 0.0,
            m2: None,
        });
        if numeric.is_some() {
            flags |= FLAG_NUMERIC;
        }
        if numeric.is_some() && n.m2.is_some() {
            flags |= FLAG_M2;
        }
        let text = (first_kind == KIND_TEXT || last_kind == KIND_TEXT)
            .then(|| Box::new([first.value, last.value]));
        Summary {
            first_ts: first.ts,
            last_ts: last.ts,
            first: first_bits,
            last: last_bits,
            min: n.min,
            max: n.max,
            sum: n.sum,
            m2: n.m2.filter(|_| flags & FLAG_M2 != 0).unwrap_or(0.0),
            count,
            flags,
            text,
        }
    }

    pub(crate) fn first_ts(&self) -> Timestamp {
        self.first_ts
    }

    pub(crate) fn last_ts(&self) -> Timestamp {
        self.last_ts
    }

    fn value(&self, i: usize, kind: u8, bits: u64) -> Value {
        match (kind, &self.text) {
            (KIND_FLOAT, _) => Value::Float(f64::from_bits(bits)),
            (KIND_INT, _) => Value::Int(bits as i64),
            (KIND_BOOL, _) => Value::Bool(bits != 0),
            (_, Some(text)) => text[i].clone(),
            // `new` boxes text whenever a kind says so.
            (_, None) => Value::String(String::new()),
        }
    }

    /// The first point.
    pub(crate) fn first(&self) -> Point {
        Point {
            ts: self.first_ts,
            value: self.value(0, self.flags & 3, self.first),
        }
    }

    /// The last point.
    pub(crate) fn last(&self) -> Point {
        Point {
            ts: self.last_ts,
            value: self.value(1, self.flags >> 2 & 3, self.last),
        }
    }

    /// The first and last values as numbers (`Value::as_f64`), without building them.
    pub(crate) fn first_last_f64(&self) -> Option<(f64, f64)> {
        Some((
            packed_f64(self.flags & 3, self.first)?,
            packed_f64(self.flags >> 2 & 3, self.last)?,
        ))
    }

    /// min, max, sum (and m2) of the values, when all are numeric.
    pub(crate) fn numeric(&self) -> Option<Numeric> {
        (self.flags & FLAG_NUMERIC != 0).then_some(Numeric {
            min: self.min,
            max: self.max,
            sum: self.sum,
            m2: (self.flags & FLAG_M2 != 0).then_some(self.m2),
        })
    }

    fn of(points: &[Point]) -> Option<Summary> {
        let first = points.first()?.clone();
        let last = points.last()?.clone();
        let mut numeric = Some((f64::INFINITY, f64::NEG_INFINITY, StableSum::default()));
        for p in points {
            numeric = match (numeric, p.value.as_f64()) {
                (Some((min, max, mut sum)), Some(x)) => {
                    sum.add(x);
                    Some((min.min(x), max.max(x), sum))
                }
                _ => None,
            };
            if numeric.is_none() {
                break;
            }
        }
        let numeric = numeric.map(|(min, max, sum)| {
            let sum = sum.value();
            Numeric {
                min,
                max,
                sum,
                m2: Some(m2(points, sum)),
            }
        });
        Some(Summary::new(
            u32::try_from(points.len()).unwrap_or(u32::MAX),
            first,
            last,
            numeric,
        ))
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, u64::from(self.count));
        put_varint(out, zigzag(self.first_ts));
        put_varint(out, self.last_ts.wrapping_sub(self.first_ts) as u64);
        put_value(out, &self.first().value);
        put_value(out, &self.last().value);
        match self.numeric() {
            None => out.push(0),
            Some(n) => {
                out.push(if n.m2.is_some() { 2 } else { 1 });
                for x in [n.min, n.max, n.sum].into_iter().chain(n.m2) {
                    out.extend_from_slice(&x.to_bits().to_le_bytes());
                }
            }
        }
    }

    pub(crate) fn decode(b: &mut Bytes<'_>) -> Result<Summary, CodecError> {
        let count = b.varint_max(codec::MAX_POINTS as u64, "chunk count out of range")?;
        if count == 0 {
            return Err(CodecError::new("empty chunk in the index"));
        }
        let first_ts = unzigzag(b.varint()?);
        let span = b.varint()?;
        let last_ts = first_ts.wrapping_add(span as i64);
        if last_ts < first_ts || (count == 1 && span != 0) {
            return Err(CodecError::new("chunk time span out of range"));
        }
        let first = get_value(b)?;
        let last = get_value(b)?;
        let numeric = match b.u8()? {
            0 => None,
            flag @ (1 | 2) => {
                let mut v = [0f64; 3];
                for x in &mut v {
                    *x = f64::from_bits(b.u64()?);
                }
                let m2 = if flag == 2 {
                    Some(f64::from_bits(b.u64()?))
                } else {
                    None
                };
                Some(Numeric {
                    min: v[0],
                    max: v[1],
                    sum: v[2],
                    m2,
                })
            }
            _ => return Err(CodecError::new("bad numeric flag in a chunk summary")),
        };
        Ok(Summary::new(
            count as u32,
            Point {
                ts: first_ts,
                value: first,
            },
            Point {
                ts: last_ts,
                value: last,
            },
            numeric,
        ))
    }
}

/// Sum of squared deviations of the (all numeric) `points` from their mean, by the corrected
/// two-pass algorithm: the second term removes the rounding error of the mean.
fn m2(points: &[Point], sum: f64) -> f64 {
    let mean = sum / points.len() as f64;
    let mut sq = StableSum::default();
    let mut dev = StableSum::default();
    for x in points.iter().filter_map(|p| p.value.as_f64()) {
        let d = x - mean;
        sq.add(d * d);
        dev.add(d);
    }
    let dev = dev.value();
    (sq.value() - dev * dev / points.len() as f64).max(0.0)
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Float(f) => {
            out.push(0);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Int(i) => {
            out.push(1);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Bool(b) => {
            out.push(2);
            out.push(u8::from(*b));
        }
        Value::String(s) => {
            out.push(3);
            codec::put_block(out, s.as_bytes());
        }
    }
}

fn get_value(b: &mut Bytes<'_>) -> Result<Value, CodecError> {
    Ok(match b.u8()? {
        0 => Value::Float(f64::from_bits(b.u64()?)),
        1 => Value::Int(b.u64()? as i64),
        2 => match b.u8()? {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return Err(CodecError::new("bad bool in a chunk summary")),
        },
        3 => Value::String(
            std::str::from_utf8(b.block()?)
                .map_err(|_| CodecError::new("summary string is not UTF-8"))?
                .to_string(),
        ),
        _ => return Err(CodecError::new("bad value tag in a chunk summary")),
    })
}

/// Encodes `points` (strictly ascending, 1..=MAX_POINTS of them) as one chunk, every codec
/// candidate tried for each column (seals use a hint; tests use this).
#[cfg(test)]
pub(crate) fn encode(points: &[Point]) -> Option<(Vec<u8>, Summary)> {
    encode_with(points, None)
}

/// [`encode`] as the series' seal hint says (see `codec/hint.rs`), updating it.
pub(crate) fn encode_hinted(points: &[Point], hint: &mut SealHint) -> Option<(Vec<u8>, Summary)> {
    encode_with(points, Some(hint))
}

/// [`encode_hinted`] for a small chunk: follows `hint` without exploring or changing it
/// (see [`SealHint::followed`]).
pub(crate) fn encode_followed(points: &[Point], hint: &SealHint) -> Option<(Vec<u8>, Summary)> {
    encode_with(points, Some(&mut hint.followed()))
}

fn encode_with(points: &[Point], hint: Option<&mut SealHint>) -> Option<(Vec<u8>, Summary)> {
    let summary = Summary::of(points)?;
    let ts: Vec<i64> = points.iter().map(|p| p.ts).collect();
    let values: Vec<Value> = points.iter().map(|p| p.value.clone()).collect();
    let mut tcol = Vec::new();
    let mut vcol = Vec::with_capacity(points.len() * 2 + 8);
    match hint {
        Some(h) => h.encode_columns(&ts, &values, &mut tcol, &mut vcol),
        None => {
            codec::encode_timestamps(&ts, &mut tcol);
            codec::encode_values(&values, &mut vcol);
        }
    }
    let mut out = Vec::with_capacity(tcol.len() + vcol.len() + 8);
    put_varint(&mut out, points.len() as u64);
    put_varint(&mut out, tcol.len() as u64);
    out.extend_from_slice(&tcol);
    out.extend_from_slice(&vcol);
    Some((out, summary))
}

/// The count and the two column slices of a chunk.
fn split(bytes: &[u8]) -> Result<(usize, &[u8], &[u8]), CodecError> {
    let mut b = Bytes::new(bytes);
    let n = b.varint_max(codec::MAX_POINTS as u64, "chunk count out of range")? as usize;
    let ts = b.block()?;
    Ok((n, ts, b.rest()))
}

/// The timestamps of a chunk.
pub(crate) fn decode_ts(bytes: &[u8]) -> Result<Vec<i64>, CodecError> {
    let (n, ts, _) = split(bytes)?;
    codec::decode_timestamps(ts, n)
}

/// All points of a chunk, checked to be strictly ascending as the index relies on.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<Point>, CodecError> {
    let (n, ts, values) = split(bytes)?;
    let ts = codec::decode_timestamps(ts, n)?;
    let values = codec::decode_values(values, n)?;
    if ts.windows(2).any(|w| w[0] >= w[1]) {
        return Err(CodecError::new("chunk timestamps are not ascending"));
    }
    Ok(ts
        .into_iter()
        .zip(values)
        .map(|(ts, value)| Point { ts, value })
        .collect())
}

/// The points of an ascending slice with `from <= ts < to`.
pub(crate) fn slice_range(points: &[Point], from: Timestamp, to: Timestamp) -> &[Point] {
    let lo = points.partition_point(|p| p.ts < from);
    let hi = points.partition_point(|p| p.ts < to);
    points.get(lo..hi).unwrap_or(&[])
}

/// Calls `f` on `older` merged with `newer` (both ascending), ascending; at equal
/// timestamps only the newer point is visited (last write wins).
pub(crate) fn merge_visit<B>(
    older: &[Point],
    newer: &[Point],
    f: &mut impl FnMut(&Point) -> ControlFlow<B>,
) -> ControlFlow<B> {
    let (mut i, mut j) = (0, 0);
    loop {
        match (older.get(i), newer.get(j)) {
            (Some(o), Some(n)) if n.ts <= o.ts => {
                if n.ts == o.ts {
                    i += 1;
                }
                j += 1;
                f(n)?;
            }
            (Some(o), _) => {
                i += 1;
                f(o)?;
            }
            (None, Some(n)) => {
                j += 1;
                f(n)?;
            }
            (None, None) => return ControlFlow::Continue(()),
        }
    }
}

/// `older` merged with `newer`, `newer` winning at equal timestamps.
pub(crate) fn merge(older: &[Point], newer: &[Point]) -> Vec<Point> {
    let mut out = Vec::with_capacity(older.len() + newer.len());
    let _ = merge_visit::<()>(older, newer, &mut |p| {
        out.push(p.clone());
        ControlFlow::Continue(())
    });
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pts(v: &[(i64, Value)]) -> Vec<Point> {
        v.iter()
            .map(|(ts, value)| Point {
                ts: *ts,
                value: value.clone(),
            })
            .collect()
    }

    #[test]
    fn chunk_and_summary_round_trip() {
        let p = pts(&[
            (-5, Value::Int(3)),
            (0, Value::Float(1.5)),
            (7, Value::Bool(true)),
            (i64::MAX, Value::Int(-1)),
        ]);
        let (bytes, s) = encode(&p).unwrap();
        assert_eq!(decode(&bytes).unwrap(), p);
        assert_eq!(decode_ts(&bytes).unwrap(), vec![-5, 0, 7, i64::MAX]);
        assert_eq!(s.count, 4);
        assert_eq!(s.numeric().unwrap().sum, 4.5, "3 + 1.5 + true + -1");
        let mut out = Vec::new();
        s.encode(&mut out);
        assert_eq!(Summary::decode(&mut Bytes::new(&out)).unwrap(), s);

        let text = pts(&[(1, Value::String("on".into())), (2, Value::Int(1))]);
        let (_, s) = encode(&text).unwrap();
        assert!(s.numeric().is_none());
        let mut out = Vec::new();
        s.encode(&mut out);
        assert_eq!(Summary::decode(&mut Bytes::new(&out)).unwrap(), s);
    }

    #[test]
    fn summaries_without_m2_keep_the_old_encoding() {
        let p = pts(&[
            (0, Value::Float(1.0)),
            (1, Value::Float(3.0)),
            (2, Value::Int(5)),
        ]);
        let (_, s) = encode(&p).unwrap();
        let n = s.numeric().unwrap();
        assert_eq!(n.m2, Some(8.0), "deviations -2, 0, 2 from the mean 3");
        let old = Summary::new(
            s.count,
            s.first(),
            s.last(),
            Some(Numeric { m2: None, ..n }),
        );
        let mut out = Vec::new();
        old.encode(&mut out);
        assert_eq!(out[out.len() - 25], 1, "flag 1, then min, max, sum");
        assert_eq!(Summary::decode(&mut Bytes::new(&out)).unwrap(), old);
        let mut new = Vec::new();
        s.encode(&mut new);
        assert_eq!(new.len(), out.len() + 8);
        assert_eq!(new[new.len() - 33], 2, "flag 2, then min, max, sum, m2");
        assert_eq!(Summary::decode(&mut Bytes::new(&new)).unwrap(), s);
    }

    #[test]
    fn m2_of_a_large_offset_does_not_cancel() {
        // A sum of squares would lose every digit here: 1e9² needs 60 bits.
        let p: Vec<Point> = (0..1000)
            .map(|i| Point {
                ts: i,
                value: Value::Float(1e9 + f64::from((i % 3) as i32)),
            })
            .collect();
        let (_, s) = encode(&p).unwrap();
        let mean = p.iter().map(|p| p.value.as_f64().unwrap()).sum::<f64>() / 1000.0;
        let want: f64 = p
            .iter()
            .map(|p| (p.value.as_f64().unwrap() - mean).powi(2))
            .sum();
        let got = s.numeric().unwrap().m2.unwrap();
        assert!((got - want).abs() <= 1e-9 * want, "{got} vs {want}");
    }

    #[test]
    fn merging_lets_the_newer_win() {
        let old = pts(&[
            (1, Value::Int(1)),
            (3, Value::Int(3)),
            (i64::MAX, Value::Int(9)),
        ]);
        let newer = pts(&[
            (0, Value::Int(0)),
            (3, Value::Int(30)),
            (i64::MAX, Value::Int(90)),
        ]);
        let m = merge(&old, &newer);
        assert_eq!(
            m,
            pts(&[
                (0, Value::Int(0)),
                (1, Value::Int(1)),
                (3, Value::Int(30)),
                (i64::MAX, Value::Int(90))
            ])
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
            let _ = decode_ts(&bytes);
            let _ = Summary::decode(&mut Bytes::new(&bytes));
        }
    }
}
