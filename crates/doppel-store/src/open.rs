//! The open buffer of a series: the points not yet sealed into a chunk, kept encoded.
//!
//! A series collects up to `chunk_points` (2,048) points before it seals them into a chunk,
//! so at 1 Hz a fleet holds about half a chunk's worth of unsealed points per series at any
//! time. As plain [`Point`]s that is 40 bytes a point (the size of [`Value`]'s string variant
//! pays for every float): 400 KB for a 10-signal twin. Here the points are a byte stream a
//! point appends to in constant time, about 2–4 bytes a point for sensor data:
//!
//! - time: the first point's zigzag varint, the second's delta, then deltas of deltas (a
//!   regular rate is one byte a point);
//! - value, by the buffer's mode, chosen at its first point and widened (re-encoding the
//!   buffer) when a point does not fit:
//!   - `Decimal(d)`: floats that are exactly `m / 10^d` (the check of the decimal codec,
//!     bit for bit) as the zigzag varint of the change of `m`: sensor noise in the last
//!     digits is a byte or two;
//!   - `Xor`: other floats as the XOR with the previous bits, trailing and leading zero
//!     bytes dropped (a header byte: zero bytes at the end << 4 | bytes kept; 0 = same bits);
//!   - `Int`: zigzag varints of the change;
//!   - `Tagged`: anything else (booleans, strings, kinds mixed in one series) with a tag
//!     byte a point.
//!
//! The newest point is kept decoded beside the stream, so replacing it (a reading repeated
//! at the same time) and reading it (`last`, the fleet view) cost nothing. A late point
//! inside the buffer decodes it, inserts and re-encodes it: readings nearly always come in
//! time order, and a buffer is at most a chunk long.
//!
//! The stream only lives in memory; nothing reads it but this module, and a stream that did
//! not decode would be a bug here, reported in the log with the points before the fault
//! kept (no panic).

use doppel_model::{Timestamp, Value};

use crate::codec::bits::{put_varint, unzigzag, zigzag, Bytes};
use crate::codec::floats::as_decimal;
use crate::codec::CodecError;
use crate::Point;

/// Most decimal places of the `Decimal` mode (its mantissas must stay exact, below 2^53).
const MAX_SCALE: u8 = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Decimal(u8),
    Xor,
    Int,
    Tagged,
}

impl Default for Mode {
    fn default() -> Self {
        Mode::Decimal(0)
    }
}

const TAG_FALSE: u8 = 0;
const TAG_TRUE: u8 = 1;
const TAG_INT: u8 = 2;
const TAG_FLOAT: u8 = 3;
const TAG_STRING: u8 = 4;

/// See the module docs. Boxed and absent while empty: a sealed series (after a restart,
/// every quiet one) pays one pointer for it.
#[derive(Debug, Default)]
pub(crate) struct OpenBuf(Option<Box<Buf>>);

impl OpenBuf {
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |b| b.len())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The newest point.
    pub(crate) fn last(&self) -> Option<&Point> {
        self.0.as_ref().and_then(|b| b.newest.as_ref())
    }

    /// The oldest point.
    pub(crate) fn first(&self) -> Option<Point> {
        self.0.as_ref().and_then(|b| b.first())
    }

    /// Heap bytes held (for memory accounting).
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.0
            .as_ref()
            .map_or(0, |b| std::mem::size_of::<Buf>() + b.bytes.capacity())
    }

    /// Inserts or replaces the point at `ts`; returns whether it is new to the buffer.
    pub(crate) fn upsert(&mut self, ts: Timestamp, value: Value) -> bool {
        self.0.get_or_insert_with(Box::default).upsert(ts, value)
    }

    /// Every point, in time order.
    pub(crate) fn points(&self) -> Vec<Point> {
        self.0.as_ref().map_or_else(Vec::new, |b| b.points())
    }

    /// Every point, leaving the buffer empty (its allocation freed).
    pub(crate) fn take(&mut self) -> Vec<Point> {
        self.0.take().map_or_else(Vec::new, |b| b.points())
    }

    /// Replaces the contents with `points` (strictly ascending).
    pub(crate) fn set(&mut self, points: Vec<Point>) {
        if points.is_empty() {
            self.0 = None;
        } else {
            self.0.get_or_insert_with(Box::default).set(points);
        }
    }

    #[cfg(test)]
    fn mode(&self) -> Mode {
        self.0.as_ref().map_or(Mode::default(), |b| b.mode)
    }

    #[cfg(test)]
    fn encoded_len(&self) -> usize {
        self.0.as_ref().map_or(0, |b| b.bytes.len())
    }
}

#[derive(Debug, Default)]
struct Buf {
    /// Every point but the newest, encoded.
    bytes: Vec<u8>,
    /// Points in `bytes`.
    n: u32,
    mode: Mode,
    /// The newest point.
    newest: Option<Point>,
    /// Encoder state after the last point in `bytes`: its time, the delta before it, and
    /// its value (float bits, integer, or decimal mantissa).
    prev_ts: Timestamp,
    prev_delta: i64,
    prev_value: u64,
}

impl Buf {
    fn len(&self) -> usize {
        self.n as usize + usize::from(self.newest.is_some())
    }

    fn first(&self) -> Option<Point> {
        if self.n == 0 {
            return self.newest.clone();
        }
        let mut d = Decoder::new(self);
        match d.next() {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(error = %e, "open buffer does not decode");
                self.newest.clone()
            }
        }
    }

    fn upsert(&mut self, ts: Timestamp, value: Value) -> bool {
        match &mut self.newest {
            None => {
                self.newest = Some(Point { ts, value });
                true
            }
            Some(last) if last.ts == ts => {
                last.value = value;
                false
            }
            Some(last) if last.ts < ts => {
                let prev = std::mem::replace(last, Point { ts, value });
                self.push_encoded(prev);
                true
            }
            Some(_) => {
                // Late: rare, and the buffer is at most a chunk long.
                let mut points = self.points();
                let grew = match points.binary_search_by_key(&ts, |p| p.ts) {
                    Ok(i) => {
                        points[i].value = value;
                        false
                    }
                    Err(i) => {
                        points.insert(i, Point { ts, value });
                        true
                    }
                };
                self.set(points);
                grew
            }
        }
    }

    fn points(&self) -> Vec<Point> {
        let mut out = Vec::with_capacity(self.len());
        let mut d = Decoder::new(self);
        for _ in 0..self.n {
            match d.next() {
                Ok(p) => out.push(p),
                Err(e) => {
                    tracing::error!(error = %e, kept = out.len(), lost = self.n as usize - out.len(),
                        "open buffer does not decode; the points before the fault are kept");
                    break;
                }
            }
        }
        out.extend(self.newest.clone());
        out
    }

    fn set(&mut self, points: Vec<Point>) {
        debug_assert!(points.windows(2).all(|w| w[0].ts < w[1].ts));
        *self = Buf::default();
        let mut points = points.into_iter();
        let Some(mut newest) = points.next() else {
            return;
        };
        for p in points {
            self.push_encoded(std::mem::replace(&mut newest, p));
        }
        self.newest = Some(newest);
        self.bytes.shrink_to_fit();
    }

    /// Appends `p` (later than every encoded point) to the stream.
    fn push_encoded(&mut self, p: Point) {
        if self.n == 0 {
            self.mode = first_mode(&p.value);
        }
        if !self.fits(&p.value) {
            let mut points = self.points_encoded();
            let mode = widen(self.mode, &points, &p.value);
            points.push(p);
            self.rebuild(mode, points);
            return;
        }
        self.encode_time(p.ts);
        self.encode_value(&p.value);
        self.n += 1;
    }

    fn points_encoded(&self) -> Vec<Point> {
        let mut points = self.points();
        if self.newest.is_some() {
            points.pop();
        }
        points
    }

    /// Re-encodes `points` (the encoded part) in `mode`, keeping the newest point.
    fn rebuild(&mut self, mode: Mode, points: Vec<Point>) {
        let newest = self.newest.take();
        *self = Buf {
            mode,
            ..Buf::default()
        };
        for p in points {
            // Every point fits the widened mode (`widen` only returns one that does).
            debug_assert!(self.fits(&p.value));
            self.encode_time(p.ts);
            self.encode_value(&p.value);
            self.n += 1;
        }
        self.newest = newest;
    }

    fn fits(&self, v: &Value) -> bool {
        fits(self.mode, v)
    }

    fn encode_time(&mut self, ts: Timestamp) {
        let v = match self.n {
            0 => ts,
            1 => ts.wrapping_sub(self.prev_ts),
            _ => ts.wrapping_sub(self.prev_ts).wrapping_sub(self.prev_delta),
        };
        put_varint(&mut self.bytes, zigzag(v));
        if self.n > 0 {
            self.prev_delta = ts.wrapping_sub(self.prev_ts);
        }
        self.prev_ts = ts;
    }

    fn encode_value(&mut self, v: &Value) {
        let out = &mut self.bytes;
        match (self.mode, v) {
            (Mode::Decimal(d), Value::Float(x)) => {
                self.prev_value = put_decimal(out, *x, d, self.prev_value);
            }
            (Mode::Xor, Value::Float(x)) => {
                let bits = x.to_bits();
                put_xor(out, bits ^ self.prev_value);
                self.prev_value = bits;
            }
            (Mode::Int, Value::Int(i)) => {
                put_varint(out, zigzag(i.wrapping_sub(self.prev_value as i64)));
                self.prev_value = *i as u64;
            }
            (_, v) => put_tagged(out, v),
        }
    }
}

/// The mode a buffer starts in for its first point.
fn first_mode(v: &Value) -> Mode {
    match v {
        Value::Float(x) => decimal_scale(*x).map_or(Mode::Xor, Mode::Decimal),
        Value::Int(_) => Mode::Int,
        Value::Bool(_) | Value::String(_) => Mode::Tagged,
    }
}

/// The fewest decimal places that hold `x` exactly.
fn decimal_scale(x: f64) -> Option<u8> {
    (0..=MAX_SCALE).find(|&d| as_decimal(x, usize::from(d)).is_some())
}

fn fits(mode: Mode, v: &Value) -> bool {
    match (mode, v) {
        (Mode::Xor, Value::Float(_)) | (Mode::Int, Value::Int(_)) | (Mode::Tagged, _) => true,
        (Mode::Decimal(d), Value::Float(x)) => as_decimal(*x, usize::from(d)).is_some(),
        _ => false,
    }
}

/// The narrowest mode past `mode` that holds `points` (which `mode` held) and `v`.
fn widen(mode: Mode, points: &[Point], v: &Value) -> Mode {
    let candidate = match (mode, v) {
        (Mode::Decimal(d), Value::Float(x)) => match decimal_scale(*x) {
            Some(e) if e > d => Mode::Decimal(e),
            _ => Mode::Xor,
        },
        (Mode::Xor, Value::Float(_)) => Mode::Xor,
        _ => Mode::Tagged,
    };
    // A value exact at `d` places is exact at more unless its mantissa outgrows 2^53:
    // checked, not assumed.
    [candidate, Mode::Xor]
        .into_iter()
        .find(|&m| fits(m, v) && points.iter().all(|p| fits(m, &p.value)))
        .unwrap_or(Mode::Tagged)
}

fn put_decimal(out: &mut Vec<u8>, x: f64, d: u8, prev: u64) -> u64 {
    // `fits` checked it.
    let m = as_decimal(x, usize::from(d)).unwrap_or_default();
    put_varint(out, zigzag(m.wrapping_sub(prev as i64)));
    m as u64
}

fn put_xor(out: &mut Vec<u8>, x: u64) {
    if x == 0 {
        out.push(0);
        return;
    }
    let tz = (x.trailing_zeros() / 8) as u8;
    let lz = (x.leading_zeros() / 8) as u8;
    let len = 8 - tz - lz;
    out.push(tz << 4 | len);
    let bytes = (x >> (u32::from(tz) * 8)).to_le_bytes();
    out.extend_from_slice(&bytes[..usize::from(len)]);
}

fn put_tagged(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Bool(false) => out.push(TAG_FALSE),
        Value::Bool(true) => out.push(TAG_TRUE),
        Value::Int(i) => {
            out.push(TAG_INT);
            put_varint(out, zigzag(*i));
        }
        Value::Float(x) => {
            out.push(TAG_FLOAT);
            out.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        Value::String(s) => {
            out.push(TAG_STRING);
            put_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

struct Decoder<'a> {
    b: Bytes<'a>,
    mode: Mode,
    i: u32,
    ts: Timestamp,
    delta: i64,
    value: u64,
}

impl<'a> Decoder<'a> {
    fn new(buf: &'a Buf) -> Self {
        Decoder {
            b: Bytes::new(&buf.bytes),
            mode: buf.mode,
            i: 0,
            ts: 0,
            delta: 0,
            value: 0,
        }
    }

    fn next(&mut self) -> Result<Point, CodecError> {
        let v = unzigzag(self.b.varint()?);
        match self.i {
            0 => self.ts = v,
            1 => {
                self.delta = v;
                self.ts = self.ts.wrapping_add(v);
            }
            _ => {
                self.delta = self.delta.wrapping_add(v);
                self.ts = self.ts.wrapping_add(self.delta);
            }
        }
        self.i += 1;
        let value = match self.mode {
            Mode::Decimal(d) => {
                let m = (self.value as i64).wrapping_add(unzigzag(self.b.varint()?));
                self.value = m as u64;
                Value::Float(m as f64 / POW10[usize::from(d)])
            }
            Mode::Xor => {
                let h = self.b.u8()?;
                if h != 0 {
                    let (tz, len) = (u32::from(h >> 4), usize::from(h & 0x0f));
                    if len > 8 || tz as usize + len > 8 {
                        return Err(CodecError::new("bad XOR header in an open buffer"));
                    }
                    let mut bytes = [0u8; 8];
                    bytes[..len].copy_from_slice(self.b.take(len)?);
                    self.value ^= u64::from_le_bytes(bytes) << (tz * 8);
                }
                Value::Float(f64::from_bits(self.value))
            }
            Mode::Int => {
                let i = (self.value as i64).wrapping_add(unzigzag(self.b.varint()?));
                self.value = i as u64;
                Value::Int(i)
            }
            Mode::Tagged => match self.b.u8()? {
                TAG_FALSE => Value::Bool(false),
                TAG_TRUE => Value::Bool(true),
                TAG_INT => Value::Int(unzigzag(self.b.varint()?)),
                TAG_FLOAT => Value::Float(f64::from_bits(self.b.u64()?)),
                TAG_STRING => {
                    let n = usize::try_from(self.b.varint()?)
                        .map_err(|_| CodecError::new("string too long"))?;
                    let s = std::str::from_utf8(self.b.take(n)?)
                        .map_err(|_| CodecError::new("string is not UTF-8"))?;
                    Value::String(s.to_owned())
                }
                _ => return Err(CodecError::new("unknown tag in an open buffer")),
            },
        };
        Ok(Point { ts: self.ts, value })
    }
}

/// Exact powers of ten up to the largest scale.
const POW10: [f64; MAX_SCALE as usize + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn same(a: &[Point], b: &[Point]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.ts == y.ts
                    && match (&x.value, &y.value) {
                        (Value::Float(p), Value::Float(q)) => p.to_bits() == q.to_bits(),
                        (p, q) => p == q,
                    }
            })
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => (-100_000i64..100_000, 0u32..4).prop_map(|(m, d)| Value::Float(m as f64 / 10f64.powi(d as i32))),
            2 => any::<f64>().prop_map(Value::Float),
            1 => prop_oneof![Just(Value::Float(-0.0)), Just(Value::Float(f64::NAN)), Just(Value::Float(f64::INFINITY)), Just(Value::Float(1e300))],
            2 => any::<i64>().prop_map(Value::Int),
            1 => any::<bool>().prop_map(Value::Bool),
            1 => "[a-zé]{0,6}".prop_map(Value::String),
        ]
    }

    fn float_walk() -> impl Strategy<Value = Vec<(i64, Value)>> {
        proptest::collection::vec((0i64..3, -50i64..50), 0..300).prop_map(|steps| {
            let (mut t, mut m) = (1_700_000_000_000_000_000i64, 7_000i64);
            steps
                .into_iter()
                .map(|(dt, dm)| {
                    t += 1_000_000_000 + dt;
                    m += dm;
                    (t, Value::Float(m as f64 / 100.0))
                })
                .collect()
        })
    }

    proptest! {
        /// The buffer holds what a sorted map of the same upserts holds, bit for bit, in
        /// every mode and through every widening, with late points and replacements.
        #[test]
        fn matches_a_map(ops in proptest::collection::vec((-40i64..40, value()), 0..200)) {
            let mut buf = OpenBuf::default();
            let mut model: BTreeMap<i64, Value> = BTreeMap::new();
            for (ts, v) in ops {
                let grew = buf.upsert(ts, v.clone());
                prop_assert_eq!(grew, model.insert(ts, v).is_none());
                prop_assert_eq!(buf.len(), model.len());
            }
            let want: Vec<Point> = model.into_iter().map(|(ts, value)| Point { ts, value }).collect();
            prop_assert!(same(&buf.points(), &want));
            prop_assert_eq!(buf.first().map(|p| p.ts), want.first().map(|p| p.ts));
            prop_assert_eq!(buf.last().map(|p| p.ts), want.last().map(|p| p.ts));
            let mut again = OpenBuf::default();
            again.set(want.clone());
            prop_assert!(same(&again.points(), &want));
            prop_assert!(same(&buf.take(), &want));
            prop_assert!(buf.is_empty());
        }

        /// Regular decimal sensor data stays small: a few bytes a point.
        #[test]
        fn sensor_walks_are_compact(points in float_walk()) {
            let mut buf = OpenBuf::default();
            for (ts, v) in &points {
                buf.upsert(*ts, v.clone());
            }
            prop_assert!(matches!(buf.mode(), Mode::Decimal(0..=2)), "{:?}", buf.mode());
            prop_assert!(buf.encoded_len() <= 12 + 4 * points.len(), "{} bytes for {} points", buf.encoded_len(), points.len());
            let want: Vec<Point> = points.into_iter().map(|(ts, value)| Point { ts, value }).collect();
            prop_assert!(same(&buf.points(), &want));
        }
    }

    #[test]
    fn a_finer_decimal_widens_the_scale_and_keeps_earlier_points() {
        let mut buf = OpenBuf::default();
        for (i, x) in [71.0, 71.5, 71.25, 71.125, 70.0].into_iter().enumerate() {
            buf.upsert(i as i64, Value::Float(x));
        }
        assert_eq!(buf.mode(), Mode::Decimal(3));
        let got: Vec<f64> = buf
            .points()
            .into_iter()
            .map(|p| match p.value {
                Value::Float(x) => x,
                _ => f64::NAN,
            })
            .collect();
        assert_eq!(got, vec![71.0, 71.5, 71.25, 71.125, 70.0]);
    }

    #[test]
    fn a_string_among_floats_turns_the_buffer_tagged() {
        let mut buf = OpenBuf::default();
        buf.upsert(1, Value::Float(1.5));
        buf.upsert(2, Value::Float(2.5));
        buf.upsert(3, Value::String("x".into()));
        buf.upsert(4, Value::Int(4));
        assert_eq!(buf.mode(), Mode::Tagged);
        let want = vec![
            Point {
                ts: 1,
                value: Value::Float(1.5),
            },
            Point {
                ts: 2,
                value: Value::Float(2.5),
            },
            Point {
                ts: 3,
                value: Value::String("x".into()),
            },
            Point {
                ts: 4,
                value: Value::Int(4),
            },
        ];
        assert!(same(&buf.points(), &want));
    }

    #[test]
    fn a_thousand_decimal_readings_take_a_few_kilobytes_not_forty() {
        let mut buf = OpenBuf::default();
        for i in 0..1_000i64 {
            let m = 7_000 + (i * 37 % 23) - 11;
            buf.upsert(
                1_700_000_000_000_000_000 + i * 1_000_000_000,
                Value::Float(m as f64 / 100.0),
            );
        }
        assert!(buf.heap_bytes() < 4_000, "{} bytes", buf.heap_bytes());
        assert!(buf.heap_bytes() < 1_000 * std::mem::size_of::<Point>() / 10);
    }
}
