//! Gorilla XOR compression of f64 bit patterns (Pelkonen et al., VLDB 2015), bit-exact for
//! every pattern including NaNs and negative zero.
//!
//! First value: 64 raw bits. Each next value is XORed with the previous one:
//!
//! ```text
//! 0                                    same bits as the previous value
//! 1 0 + meaningful bits                XOR fits the previous leading/trailing-zero window
//! 1 1 + 6 bits leading zeros + 6 bits (length - 1) + length bits      new window
//! ```
//!
//! Six bits for the leading zeros (Gorilla used five, capping at 31) cost one bit per new
//! window and save up to 32 wasted bits on XORs of values that differ only in their low bits.

use super::bits::{BitReader, BitWriter};
use super::CodecError;

pub(crate) fn encode(values: &[u64], out: &mut Vec<u8>) {
    let Some(&first) = values.first() else { return };
    let mut w = BitWriter::new();
    w.write(first, 64);
    let mut prev = first;
    // The current window: (leading zeros, meaningful length); none before the first XOR.
    let mut window: Option<(u32, u32)> = None;
    for &v in &values[1..] {
        let x = v ^ prev;
        prev = v;
        if x == 0 {
            w.bit(false);
            continue;
        }
        w.bit(true);
        let lz = x.leading_zeros();
        let tz = x.trailing_zeros();
        match window {
            Some((wlz, wlen)) if lz >= wlz && tz >= 64 - wlz - wlen => {
                w.bit(false);
                w.write(x >> (64 - wlz - wlen), wlen);
            }
            _ => {
                let len = 64 - lz - tz;
                w.bit(true);
                w.write(u64::from(lz), 6);
                w.write(u64::from(len - 1), 6);
                w.write(x >> tz, len);
                window = Some((lz, len));
            }
        }
    }
    out.extend_from_slice(&w.finish());
}

pub(crate) fn decode(buf: &[u8], n: usize) -> Result<Vec<u64>, CodecError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    // Every value after the first costs at least one bit.
    if n > 1 + buf.len().saturating_mul(8) {
        return Err(CodecError::new("more floats than the bytes can hold"));
    }
    let mut r = BitReader::new(buf);
    let mut out = Vec::with_capacity(n);
    let mut prev = r.read(64)?;
    out.push(prev);
    let mut window: Option<(u32, u32)> = None;
    for _ in 1..n {
        if r.bit()? {
            let (lz, len) = if r.bit()? {
                let lz = r.read(6)? as u32;
                let len = r.read(6)? as u32 + 1;
                if lz + len > 64 {
                    return Err(CodecError::new("XOR window wider than 64 bits"));
                }
                window = Some((lz, len));
                (lz, len)
            } else {
                window.ok_or(CodecError::new("XOR reuses a window before any was set"))?
            };
            prev ^= r.read(len)? << (64 - lz - len);
        }
        out.push(prev);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(v: &[u64]) -> usize {
        let mut out = Vec::new();
        encode(v, &mut out);
        assert_eq!(decode(&out, v.len()).unwrap(), v);
        out.len()
    }

    #[test]
    fn special_patterns_round_trip() {
        let v: Vec<u64> = [
            0.0f64,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::MIN_POSITIVE,
            1.5,
        ]
        .iter()
        .map(|f| f.to_bits())
        .chain([u64::MAX, 1, 0x7ff8_0000_0000_0001, 1 << 63])
        .collect();
        round_trip(&v);
        assert!(round_trip(&[42u64; 1000]) < 8 + 1000 / 8 + 1);
    }

    proptest! {
        #[test]
        fn arbitrary_bit_patterns_round_trip(v in proptest::collection::vec(any::<u64>(), 0..200)) {
            round_trip(&v);
        }

        #[test]
        fn arbitrary_floats_round_trip(v in proptest::collection::vec(any::<f64>(), 0..200)) {
            let bits: Vec<u64> = v.iter().map(|f| f.to_bits()).collect();
            round_trip(&bits);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), n in 0usize..3000) {
            let _ = decode(&bytes, n);
        }
    }
}
