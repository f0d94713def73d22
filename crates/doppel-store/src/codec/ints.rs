//! Integer columns: zigzag deltas as LEB128 varints, or pco; the encoder keeps the smaller.
//!
//! Also used for the mantissas of decimal float columns (see `floats.rs`).

use super::bits::{put_varint, unzigzag, zigzag, Bytes};
use super::{pcodec, CodecError};

const T_DELTA_VARINT: u8 = 0;
const T_PCO: u8 = 1;

/// Appends `[tag][payload]` for the smaller of the two encodings.
pub(crate) fn encode(v: &[i64], out: &mut Vec<u8>) {
    let mut varint = Vec::with_capacity(v.len() * 2);
    let mut prev = 0i64;
    for &x in v {
        put_varint(&mut varint, zigzag(x.wrapping_sub(prev)));
        prev = x;
    }
    match pcodec::compress_i64(v) {
        Some(p) if p.len() < varint.len() => {
            out.push(T_PCO);
            out.extend_from_slice(&p);
        }
        _ => {
            out.push(T_DELTA_VARINT);
            out.extend_from_slice(&varint);
        }
    }
}

pub(crate) fn decode(buf: &[u8], n: usize) -> Result<Vec<i64>, CodecError> {
    let mut b = Bytes::new(buf);
    match b.u8()? {
        T_DELTA_VARINT => {
            // One byte at least per value.
            if n > b.remaining() {
                return Err(CodecError::new("more integers than the bytes can hold"));
            }
            let mut out = Vec::with_capacity(n);
            let mut prev = 0i64;
            for _ in 0..n {
                prev = prev.wrapping_add(unzigzag(b.varint()?));
                out.push(prev);
            }
            if b.remaining() != 0 {
                return Err(CodecError::new("bytes after the last integer"));
            }
            Ok(out)
        }
        T_PCO => pcodec::decompress_i64(b.rest(), n),
        _ => Err(CodecError::new("unknown integer codec")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(v in proptest::collection::vec(any::<i64>(), 0..300)) {
            let mut out = Vec::new();
            encode(&v, &mut out);
            prop_assert_eq!(decode(&out, v.len()).unwrap(), v);
        }

        #[test]
        fn small_steps_round_trip(start in any::<i64>(), steps in proptest::collection::vec(-50i64..50, 0..3000)) {
            let mut x = start;
            let v: Vec<i64> = steps.iter().map(|s| { x = x.wrapping_add(*s); x }).collect();
            let mut out = Vec::new();
            encode(&v, &mut out);
            prop_assert_eq!(decode(&out, v.len()).unwrap(), v);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), n in 0usize..3000) {
            let _ = decode(&bytes, n);
            let mut with_pco = vec![T_PCO];
            with_pco.extend_from_slice(&bytes);
            let _ = decode(&with_pco, n);
        }
    }
}
