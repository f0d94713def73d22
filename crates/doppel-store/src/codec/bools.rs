//! Bool columns: one bit a value, or run lengths when the state rarely changes (a valve that
//! opens twice a day); the encoder keeps the smaller.

use super::bits::{put_varint, Bytes};
use super::CodecError;

const T_BITS: u8 = 0;
const T_RUNS: u8 = 1;

pub(crate) fn encode(v: &[bool], out: &mut Vec<u8>) {
    let mut runs = vec![T_RUNS];
    if let Some(&first) = v.first() {
        runs.push(u8::from(first));
        let mut len = 0u64;
        let mut cur = first;
        for &b in v {
            if b == cur {
                len += 1;
            } else {
                put_varint(&mut runs, len);
                cur = b;
                len = 1;
            }
        }
        put_varint(&mut runs, len);
    }
    let packed_len = 1 + v.len().div_ceil(8);
    if runs.len() < packed_len {
        out.extend_from_slice(&runs);
        return;
    }
    out.push(T_BITS);
    for chunk in v.chunks(8) {
        let mut byte = 0u8;
        for (i, &b) in chunk.iter().enumerate() {
            byte |= u8::from(b) << i;
        }
        out.push(byte);
    }
}

pub(crate) fn decode(buf: &[u8], n: usize) -> Result<Vec<bool>, CodecError> {
    let mut b = Bytes::new(buf);
    match b.u8()? {
        T_BITS => {
            let bytes = b.rest();
            if bytes.len() != n.div_ceil(8) {
                return Err(CodecError::new("bit-packed bools have the wrong length"));
            }
            Ok((0..n).map(|i| bytes[i / 8] >> (i % 8) & 1 == 1).collect())
        }
        T_RUNS => {
            let mut out = Vec::with_capacity(n);
            if n == 0 {
                return if b.remaining() == 0 {
                    Ok(out)
                } else {
                    Err(CodecError::new("runs of an empty column"))
                };
            }
            let mut cur = match b.u8()? {
                0 => false,
                1 => true,
                _ => return Err(CodecError::new("bool run starts with a non-bool")),
            };
            while out.len() < n {
                let left = (n - out.len()) as u64;
                let len = b.varint()?;
                if len == 0 || len > left {
                    return Err(CodecError::new("bool run length out of range"));
                }
                out.extend(std::iter::repeat_n(cur, len as usize));
                cur = !cur;
            }
            if b.remaining() != 0 {
                return Err(CodecError::new("bytes after the last bool run"));
            }
            Ok(out)
        }
        _ => Err(CodecError::new("unknown bool codec")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn long_runs_are_short() {
        let mut v = vec![false; 5000];
        v.extend(vec![true; 3000]);
        let mut out = Vec::new();
        encode(&v, &mut out);
        assert!(out.len() < 8, "{}", out.len());
        assert_eq!(decode(&out, v.len()).unwrap(), v);
    }

    proptest! {
        #[test]
        fn round_trip(v in proptest::collection::vec(any::<bool>(), 0..300)) {
            let mut out = Vec::new();
            encode(&v, &mut out);
            prop_assert_eq!(decode(&out, v.len()).unwrap(), v);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100), n in 0usize..3000) {
            let _ = decode(&bytes, n);
        }
    }
}
