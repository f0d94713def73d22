//! Integer columns: zigzag deltas as LEB128 varints, or pco; the encoder keeps the smaller.
//! pco is written as a bare chunk (tag 2 for 64-bit, tag 3 when every value fits 32 bits,
//! which lets pco use convolution deltas); tag 1, pco's standalone format, is still read.
//!
//! Also used for the mantissas of decimal float columns (see `floats.rs`).

use super::bits::{put_varint, unzigzag, zigzag, Bytes};
use super::pcodec::PcoChoice;
use super::{pcodec, CodecError};

const T_DELTA_VARINT: u8 = 0;
const T_PCO: u8 = 1;
const T_PCO_BARE: u8 = 2;
const T_PCO32_BARE: u8 = 3;

/// Which encoding an integer column took: what a seal hint remembers of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntChoice {
    Varint,
    Pco(PcoChoice),
}

impl IntChoice {
    /// 0 is left for "no choice" (see `hint.rs`): 1 varint, 2.. a pco choice.
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            IntChoice::Varint => 1,
            IntChoice::Pco(p) => 2 + p.to_byte(),
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<IntChoice> {
        match b {
            0 => None,
            1 => Some(IntChoice::Varint),
            _ => PcoChoice::from_byte(b - 2).map(IntChoice::Pco),
        }
    }
}

/// Appends `[tag][payload]` for the smaller of the two encodings.
pub(crate) fn encode(v: &[i64], out: &mut Vec<u8>) {
    encode_hinted(v, None, out);
}

/// Appends `[tag][payload]` for the smallest encoding tried, and says which it was (`None`
/// when pco won in a way a hint cannot name). Without a hint that is varint and every pco
/// configuration of the search; with one, varint (cheap) and the hinted configuration alone,
/// or no pco at all when varint won before.
pub(crate) fn encode_hinted(
    v: &[i64],
    hint: Option<IntChoice>,
    out: &mut Vec<u8>,
) -> Option<IntChoice> {
    let mut varint = Vec::with_capacity(v.len() * 2);
    let mut prev = 0i64;
    for &x in v {
        put_varint(&mut varint, zigzag(x.wrapping_sub(prev)));
        prev = x;
    }
    let pco_hint = match hint {
        Some(IntChoice::Varint) => {
            out.push(T_DELTA_VARINT);
            out.extend_from_slice(&varint);
            return hint;
        }
        Some(IntChoice::Pco(p)) => Some(p),
        None => None,
    };
    let narrow: Option<Vec<i32>> = v.iter().map(|&x| i32::try_from(x).ok()).collect();
    let pco = match narrow {
        Some(v32) => pcodec::compress_i32_bare(&v32, pco_hint).map(|p| (T_PCO32_BARE, p)),
        None => pcodec::compress_i64_bare(v, pco_hint).map(|p| (T_PCO_BARE, p)),
    };
    match pco {
        Some((tag, (p, choice))) if p.len() < varint.len() => {
            out.push(tag);
            out.extend_from_slice(&p);
            choice.map(IntChoice::Pco)
        }
        _ => {
            out.push(T_DELTA_VARINT);
            out.extend_from_slice(&varint);
            Some(IntChoice::Varint)
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
        T_PCO_BARE => pcodec::decompress_i64_bare(b.rest(), n),
        T_PCO32_BARE => Ok(pcodec::decompress_i32_bare(b.rest(), n)?
            .into_iter()
            .map(i64::from)
            .collect()),
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
        fn narrow_walks_round_trip(start in -1_000_000i64..1_000_000, steps in proptest::collection::vec(-5000i64..5000, 0..3000)) {
            // Fits 32 bits: the bare i32 pco form, convolution deltas included.
            let mut x = start;
            let v: Vec<i64> = steps.iter().map(|s| { x += s; x }).collect();
            let mut out = Vec::new();
            encode(&v, &mut out);
            prop_assert_eq!(decode(&out, v.len()).unwrap(), v);
        }

        #[test]
        fn short_narrow_columns_round_trip(v in proptest::collection::vec(-100_000i64..100_000, 0..40)) {
            // Columns of one value to a few dozen, where pco's convolution deltas have too
            // few values to look back on.
            let mut out = Vec::new();
            encode(&v, &mut out);
            prop_assert_eq!(decode(&out, v.len()).unwrap(), v);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), n in 0usize..3000) {
            let _ = decode(&bytes, n);
            for tag in [T_PCO, T_PCO_BARE, T_PCO32_BARE] {
                let mut with_pco = vec![tag];
                with_pco.extend_from_slice(&bytes);
                let _ = decode(&with_pco, n);
            }
        }
    }
}
