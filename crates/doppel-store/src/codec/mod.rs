//! Column codecs of sealed chunks: pure functions from values to bytes and back, no IO.
//!
//! A chunk stores two columns, timestamps and values, each decoded given the point count
//! that the chunk header records. Timestamps use delta-of-delta (`timestamps.rs`); values
//! are one column of their kind, or a kinds column plus one sub-column per kind when a
//! series mixes kinds (doppel validates kinds per signal, but the store does not rely on it):
//!
//! ```text
//! values = 0 float-column | 1 int-column | 2 bool-column | 3 string-column
//!        | 4 kind-runs block(float-column) block(int-column) block(bool-column) block(string-column)
//! kind-runs = (u8 kind, varint run)*        until the runs cover the count
//! block(x)  = varint length, x
//! ```
//!
//! Each typed column starts with its own codec tag (`floats.rs`, `ints.rs`, `bools.rs`),
//! chosen per chunk as the smallest of the candidates. Decoding is the trust boundary for
//! stored bytes: it returns [`CodecError`] for anything malformed, never panics, and never
//! allocates more than the given count (itself capped at [`MAX_POINTS`]) or the input's
//! size allows.

pub(crate) mod bits;
mod bools;
pub mod floats;
mod gorilla;
mod hint;
mod ints;
mod pcodec;
mod strings;
mod timestamps;

use doppel_model::Value;

pub(crate) use bits::{put_block, put_varint, unzigzag, zigzag, Bytes};
pub use floats::FloatCodec;
pub use hint::{SealHint, EXPLORE_EVERY};

/// Most points one column may hold; bounds what a corrupt count can make a decoder allocate.
pub const MAX_POINTS: usize = 1 << 16;

/// Why stored bytes did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecError(&'static str);

impl CodecError {
    pub(crate) fn new(reason: &'static str) -> Self {
        CodecError(reason)
    }

    pub fn reason(&self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

fn check_count(n: usize) -> Result<(), CodecError> {
    if n > MAX_POINTS {
        return Err(CodecError::new("column count exceeds the chunk limit"));
    }
    Ok(())
}

/// Appends the timestamp column of `ts` (any order, any values).
pub fn encode_timestamps(ts: &[i64], out: &mut Vec<u8>) {
    let _ = timestamps::encode(ts, out);
}

/// Decodes exactly `n` timestamps from the whole of `buf`.
pub fn decode_timestamps(buf: &[u8], n: usize) -> Result<Vec<i64>, CodecError> {
    check_count(n)?;
    timestamps::decode(buf, n)
}

const V_FLOAT: u8 = 0;
const V_INT: u8 = 1;
const V_BOOL: u8 = 2;
const V_STRING: u8 = 3;
const V_MIXED: u8 = 4;

fn kind_of(v: &Value) -> u8 {
    match v {
        Value::Float(_) => V_FLOAT,
        Value::Int(_) => V_INT,
        Value::Bool(_) => V_BOOL,
        Value::String(_) => V_STRING,
    }
}

/// Appends the value column of `values`.
pub fn encode_values(values: &[Value], out: &mut Vec<u8>) {
    let first = values.first().map_or(V_FLOAT, kind_of);
    if values.iter().all(|v| kind_of(v) == first) {
        out.push(first);
        encode_kind(first, values, out);
        return;
    }
    out.push(V_MIXED);
    let mut run = (first, 0u64);
    for v in values {
        let k = kind_of(v);
        if k == run.0 {
            run.1 += 1;
        } else {
            out.push(run.0);
            put_varint(out, run.1);
            run = (k, 1);
        }
    }
    out.push(run.0);
    put_varint(out, run.1);
    for kind in [V_FLOAT, V_INT, V_BOOL, V_STRING] {
        let of_kind: Vec<Value> = values
            .iter()
            .filter(|v| kind_of(v) == kind)
            .cloned()
            .collect();
        let mut col = Vec::new();
        encode_kind(kind, &of_kind, &mut col);
        put_block(out, &col);
    }
}

/// Encodes values all of `kind`.
fn encode_kind(kind: u8, values: &[Value], out: &mut Vec<u8>) {
    match kind {
        V_FLOAT => {
            let v: Vec<f64> = values
                .iter()
                .map(|v| match v {
                    Value::Float(f) => *f,
                    _ => 0.0,
                })
                .collect();
            let _ = floats::encode(&v, out);
        }
        V_INT => {
            let v: Vec<i64> = values
                .iter()
                .map(|v| match v {
                    Value::Int(i) => *i,
                    _ => 0,
                })
                .collect();
            ints::encode(&v, out);
        }
        V_BOOL => {
            let v: Vec<bool> = values
                .iter()
                .map(|v| matches!(v, Value::Bool(true)))
                .collect();
            bools::encode(&v, out);
        }
        _ => {
            let v: Vec<&str> = values
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.as_str(),
                    _ => "",
                })
                .collect();
            strings::encode(&v, out);
        }
    }
}

fn decode_kind(kind: u8, buf: &[u8], n: usize) -> Result<Vec<Value>, CodecError> {
    Ok(match kind {
        V_FLOAT => floats::decode(buf, n)?
            .into_iter()
            .map(Value::Float)
            .collect(),
        V_INT => ints::decode(buf, n)?.into_iter().map(Value::Int).collect(),
        V_BOOL => bools::decode(buf, n)?
            .into_iter()
            .map(Value::Bool)
            .collect(),
        V_STRING => strings::decode(buf, n)?
            .into_iter()
            .map(Value::String)
            .collect(),
        _ => return Err(CodecError::new("unknown value kind")),
    })
}

/// Decodes exactly `n` values from the whole of `buf`.
pub fn decode_values(buf: &[u8], n: usize) -> Result<Vec<Value>, CodecError> {
    check_count(n)?;
    let mut b = Bytes::new(buf);
    let kind = b.u8()?;
    if kind != V_MIXED {
        if n == 0 {
            return Ok(Vec::new());
        }
        return decode_kind(kind, b.rest(), n);
    }
    let mut kinds: Vec<u8> = Vec::with_capacity(n);
    let mut counts = [0usize; 4];
    while kinds.len() < n {
        let k = b.u8()?;
        let run = b.varint()?;
        let left = (n - kinds.len()) as u64;
        if usize::from(k) >= counts.len() || run == 0 || run > left {
            return Err(CodecError::new("kind run out of range"));
        }
        counts[usize::from(k)] += run as usize;
        kinds.extend(std::iter::repeat_n(k, run as usize));
    }
    let mut columns = Vec::with_capacity(4);
    for (kind, &count) in counts.iter().enumerate() {
        let block = b.block()?;
        let col = if count == 0 {
            Vec::new()
        } else {
            decode_kind(kind as u8, block, count)?
        };
        columns.push(col.into_iter());
    }
    if b.remaining() != 0 {
        return Err(CodecError::new("bytes after the last value column"));
    }
    kinds
        .iter()
        .map(|&k| {
            columns[usize::from(k)]
                .next()
                .ok_or(CodecError::new("value column shorter than its kind runs"))
        })
        .collect()
}

/// The float codec a value column chose, for reports; `None` for other kinds.
pub fn float_codec_of(values: &[u8]) -> Option<FloatCodec> {
    match values.split_first() {
        Some((&V_FLOAT, rest)) => floats::codec_of(rest),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Equality that compares floats by their bits.
    fn same(a: &[Value], b: &[Value]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| match (x, y) {
                (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
                (x, y) => x == y,
            })
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<f64>().prop_map(Value::Float),
            any::<u64>().prop_map(|b| Value::Float(f64::from_bits(b))),
            any::<i64>().prop_map(Value::Int),
            any::<bool>().prop_map(Value::Bool),
            "\\PC{0,8}".prop_map(Value::String),
        ]
    }

    fn round_trip(values: &[Value]) {
        let mut out = Vec::new();
        encode_values(values, &mut out);
        let back = decode_values(&out, values.len()).unwrap();
        assert!(same(&back, values), "{values:?} -> {back:?}");
    }

    #[test]
    fn every_kind_round_trips() {
        round_trip(&[]);
        round_trip(&[Value::Float(1.5), Value::Float(-0.0)]);
        round_trip(&[Value::Int(i64::MIN), Value::Int(i64::MAX)]);
        round_trip(&[Value::Bool(true)]);
        round_trip(&[Value::String("ö".into()), Value::String(String::new())]);
        round_trip(&[
            Value::String("a".into()),
            Value::Float(f64::NAN),
            Value::Int(3),
            Value::Bool(false),
            Value::Float(2.0),
        ]);
    }

    #[test]
    fn counts_beyond_the_limit_are_refused() {
        assert!(decode_timestamps(&[0], MAX_POINTS + 1).is_err());
        assert!(decode_values(&[V_BOOL, 0], MAX_POINTS + 1).is_err());
    }

    proptest! {
        #[test]
        fn values_round_trip(values in proptest::collection::vec(arb_value(), 0..100)) {
            round_trip(&values);
        }

        #[test]
        fn single_kind_runs_round_trip(v in proptest::collection::vec(-5i64..5, 0..300)) {
            let values: Vec<Value> = v.iter().map(|&x| Value::Float(x as f64 * 0.1)).collect();
            round_trip(&values);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), n in 0usize..2000) {
            let _ = decode_values(&bytes, n);
            let _ = decode_timestamps(&bytes, n);
            for kind in 0..5u8 {
                let mut b = vec![kind];
                b.extend_from_slice(&bytes);
                let _ = decode_values(&b, n);
            }
        }
    }
}
