//! Timestamps: a constant step (tag 2: first and step as varints), else delta-of-delta with
//! Gorilla-style variable bit packing (tag 0), a steady step with exceptions (tag 3, see
//! `encode_gaps`) or pco (tag 1), whichever is smallest. An empty column is empty.
//!
//! Delta-of-delta spends one bit on a steady step but ~9 on each +1/-1 pair that a skipped
//! second makes; SKAB skips about one second in twenty, which pco's entropy coding of the
//! deltas prices at a fraction of a bit. dod layout: `zigzag varint first`, then (n >= 2) `varint scale`, `zigzag varint first delta /
//! scale`, then a bit stream of the n-2 deltas-of-deltas in units of `scale`, each as
//!
//! ```text
//! 0                      dod == 0
//! 10    + 7 bits         -64 ..= 63
//! 110   + 9 bits         -256 ..= 255
//! 1110  + 12 bits        -2048 ..= 2047
//! 11110 + 32 bits        i32 range
//! 11111 + 64 bits        anything
//! ```
//!
//! `scale` is the greatest common divisor of all deltas. Gorilla's buckets were sized for
//! second timestamps; doppel stores nanoseconds, so a steady 1 Hz signal has deltas of 1e9
//! and jitter-free data would otherwise never hit the one-bit case. Dividing by the gcd turns
//! 1 Hz nanoseconds back into deltas of 1 and skipped seconds into dods of ±1. All arithmetic
//! wraps, so any i64 sequence (unsorted, extreme) round-trips bit-exactly.

use super::bits::{put_varint, sign_extend, unzigzag, zigzag, BitReader, BitWriter, Bytes};
use super::pcodec::PcoChoice;
use super::{pcodec, CodecError};

const BUCKETS: [(u32, u32); 4] = [(1, 7), (2, 9), (3, 12), (4, 32)];

const T_DOD: u8 = 0;
const T_PCO: u8 = 1;
const T_STEP: u8 = 2;
const T_GAPS: u8 = 3;

/// Which encoding a timestamp column took: what a seal hint remembers of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TsChoice {
    Step,
    Dod,
    Gaps,
    Pco(PcoChoice),
}

impl TsChoice {
    /// 0 is left for "no choice" (see `hint.rs`): 1 step, 2 dod, 3 gaps, 4.. a pco choice.
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            TsChoice::Step => 1,
            TsChoice::Dod => 2,
            TsChoice::Gaps => 3,
            TsChoice::Pco(p) => 4 + p.to_byte(),
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<TsChoice> {
        match b {
            0 => None,
            1 => Some(TsChoice::Step),
            2 => Some(TsChoice::Dod),
            3 => Some(TsChoice::Gaps),
            _ => PcoChoice::from_byte(b - 4).map(TsChoice::Pco),
        }
    }
}

/// Appends `[tag][payload]`: a constant step as two varints, else the smaller of
/// delta-of-delta, gaps and pco; says which (`None` when pco won in a way a hint cannot
/// name).
pub(crate) fn encode(ts: &[i64], out: &mut Vec<u8>) -> Option<TsChoice> {
    encode_hinted(ts, None, out)
}

/// [`encode`] as `hint` says: a constant step is always taken; after delta-of-delta or gaps
/// won, that one alone (no pco); after a constant step, both of those; after pco, both and
/// pco with the hinted configuration alone; without a hint, everything.
pub(crate) fn encode_hinted(
    ts: &[i64],
    hint: Option<TsChoice>,
    out: &mut Vec<u8>,
) -> Option<TsChoice> {
    let Some(&first) = ts.first() else {
        return Some(TsChoice::Step);
    };
    let step = ts.get(1).map_or(0, |t| t.wrapping_sub(first));
    if ts.windows(2).all(|w| w[1].wrapping_sub(w[0]) == step) {
        // The common case of a steady sampler costs no pco run at seal time.
        out.push(T_STEP);
        put_varint(out, zigzag(first));
        put_varint(out, zigzag(step));
        return Some(TsChoice::Step);
    }
    let (mut best, mut chosen) = (Vec::new(), TsChoice::Dod);
    if hint != Some(TsChoice::Gaps) {
        best.push(T_DOD);
        encode_dod(ts, &mut best);
    }
    if hint != Some(TsChoice::Dod) {
        let mut gaps = vec![T_GAPS];
        encode_gaps(ts, &mut gaps);
        if best.is_empty() || gaps.len() < best.len() {
            (best, chosen) = (gaps, TsChoice::Gaps);
        }
    }
    // Under a bit a point pco has little left to win and costs most of the encode time.
    let cheap_hint = matches!(hint, Some(TsChoice::Step | TsChoice::Dod | TsChoice::Gaps));
    if best.len() <= ts.len() / 8 + 16 || cheap_hint {
        out.extend_from_slice(&best);
        return Some(chosen);
    }
    let pco_hint = match hint {
        Some(TsChoice::Pco(p)) => Some(p),
        _ => None,
    };
    match pcodec::compress_i64(ts, pco_hint) {
        Some((p, choice)) if p.len() + 1 < best.len() => {
            out.push(T_PCO);
            out.extend_from_slice(&p);
            choice.map(TsChoice::Pco)
        }
        _ => {
            out.extend_from_slice(&best);
            Some(chosen)
        }
    }
}

/// Deltas in units of their gcd, `(scale, quotients)`; scale 1 when it does not fit.
fn scaled_deltas(ts: &[i64]) -> (i64, Vec<i64>) {
    let deltas: Vec<i64> = ts.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let scale = deltas.iter().fold(0u64, |g, d| gcd(g, d.unsigned_abs()));
    let s = if scale == 0 || scale > i64::MAX as u64 {
        1
    } else {
        scale as i64
    };
    (s, deltas.iter().map(|d| d / s).collect())
}

/// Rice code of `g` with parameter `k`: `g >> k` ones, a zero, the low `k` bits.
fn rice_bits(g: u64, k: u32) -> u64 {
    (g >> k) + 1 + u64::from(k)
}

/// Steady sampling with exceptions (tag 3): `zigzag varint first`, then (n >= 2) `varint
/// scale`, `zigzag varint base`, `varint exceptions`, `u8 k`, and a bit stream of the
/// exceptions, each as the number of base steps before it (Rice code, parameter `k`) and its
/// step: `0` for one unit longer than base (a skipped sample), else `1`, 6 bits of `L - 1`,
/// `L` bits of `zigzag(base - step) - 1`. Steps are in units of the gcd of all deltas and
/// `base` is the most common one. SKAB skips about one second in eighteen: ~7 bits an
/// exception, where pco on the timestamps spends ~0.6 bits on every point.
fn encode_gaps(ts: &[i64], out: &mut Vec<u8>) {
    let Some(&first) = ts.first() else { return };
    put_varint(out, zigzag(first));
    if ts.len() == 1 {
        return;
    }
    let (s, q) = scaled_deltas(ts);
    let mut counts: Vec<(i64, usize)> = Vec::new();
    for &x in &q {
        match counts.iter().position(|c| c.0 == x) {
            Some(i) => counts[i].1 += 1,
            None if counts.len() < 16 => counts.push((x, 1)),
            None => {}
        }
    }
    let base = counts.iter().max_by_key(|c| c.1).map_or(q[0], |c| c.0);
    // (gap, code of the step)
    let mut exceptions: Vec<(u64, u64)> = Vec::new();
    let mut gap = 0u64;
    for &x in &q {
        if x == base {
            gap += 1;
        } else {
            exceptions.push((gap, zigzag(base.wrapping_sub(x)) - 1));
            gap = 0;
        }
    }
    let k = (0..32u32)
        .min_by_key(|&k| exceptions.iter().map(|e| rice_bits(e.0, k)).sum::<u64>())
        .unwrap_or(0);
    put_varint(out, s as u64);
    put_varint(out, zigzag(base));
    put_varint(out, exceptions.len() as u64);
    out.push(k as u8);
    let mut w = BitWriter::new();
    for &(g, code) in &exceptions {
        for _ in 0..(g >> k) {
            w.bit(true);
        }
        w.bit(false);
        w.write(g, k);
        if code == 0 {
            w.bit(false);
        } else {
            w.bit(true);
            let len = 64 - code.leading_zeros();
            w.write(u64::from(len - 1), 6);
            w.write(code, len);
        }
    }
    out.extend_from_slice(&w.finish());
}

fn decode_gaps(buf: &[u8], n: usize) -> Result<Vec<i64>, CodecError> {
    let bad = |why| Err(CodecError::new(why));
    let mut b = Bytes::new(buf);
    if n == 0 {
        return if buf.is_empty() {
            Ok(Vec::new())
        } else {
            bad("timestamps of an empty column")
        };
    }
    let first = unzigzag(b.varint()?);
    let mut out = Vec::with_capacity(n);
    out.push(first);
    if n == 1 {
        return if b.remaining() == 0 {
            Ok(out)
        } else {
            bad("bytes after a one-point column")
        };
    }
    let scale = b.varint()?;
    if scale == 0 || scale > i64::MAX as u64 {
        return bad("timestamp scale out of range");
    }
    let s = scale as i64;
    let base = unzigzag(b.varint()?);
    let exceptions = b.varint()?;
    if exceptions > (n - 1) as u64 {
        return bad("more exceptions than steps");
    }
    let k = u32::from(b.u8()?);
    if k >= 64 {
        return bad("gap parameter out of range");
    }
    let mut r = BitReader::new(b.rest());
    let mut t = first;
    let mut push = |q: i64, out: &mut Vec<i64>| {
        t = t.wrapping_add(q.wrapping_mul(s));
        out.push(t);
    };
    for _ in 0..exceptions {
        let mut high = 0u64;
        while r.bit()? {
            high += 1;
            if high > n as u64 {
                return bad("timestamp gap beyond the column");
            }
        }
        let g = (high << k) | if k == 0 { 0 } else { r.read(k)? };
        if g >= (n - out.len()) as u64 {
            return bad("timestamp gap beyond the column");
        }
        for _ in 0..g {
            push(base, &mut out);
        }
        let code = if r.bit()? {
            let len = r.read(6)? as u32 + 1;
            r.read(len)?
        } else {
            0
        };
        push(base.wrapping_sub(unzigzag(code.wrapping_add(1))), &mut out);
    }
    while out.len() < n {
        push(base, &mut out);
    }
    Ok(out)
}

fn encode_dod(ts: &[i64], out: &mut Vec<u8>) {
    let Some(&first) = ts.first() else { return };
    put_varint(out, zigzag(first));
    if ts.len() == 1 {
        return;
    }
    let deltas: Vec<i64> = ts.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let scale = deltas.iter().fold(0u64, |g, d| gcd(g, d.unsigned_abs()));
    // A gcd of 2^63 (only i64::MIN deltas) does not fit an i64 divisor; 0 means all equal.
    let scale = if scale == 0 || scale > i64::MAX as u64 {
        1
    } else {
        scale
    };
    put_varint(out, scale);
    let s = scale as i64;
    let mut prev = deltas[0] / s;
    put_varint(out, zigzag(prev));
    let mut w = BitWriter::new();
    for &d in &deltas[1..] {
        let q = d / s;
        let dod = q.wrapping_sub(prev);
        prev = q;
        if dod == 0 {
            w.bit(false);
            continue;
        }
        let mut written = false;
        for &(ones, bits) in &BUCKETS {
            let lo = -(1i64 << (bits - 1));
            let hi = (1i64 << (bits - 1)) - 1;
            if (lo..=hi).contains(&dod) {
                // `ones` one bits then a zero: the bucket's prefix code.
                w.write((1u64 << (ones + 1)) - 2, ones + 1);
                w.write(dod as u64, bits);
                written = true;
                break;
            }
        }
        if !written {
            w.write(0b11111, 5);
            w.write(dod as u64, 64);
        }
    }
    out.extend_from_slice(&w.finish());
}

/// Decodes exactly `n` timestamps from the whole of `buf`.
pub(crate) fn decode(buf: &[u8], n: usize) -> Result<Vec<i64>, CodecError> {
    let Some((&tag, rest)) = buf.split_first() else {
        return if n == 0 {
            Ok(Vec::new())
        } else {
            Err(CodecError::new("empty timestamp column"))
        };
    };
    match tag {
        T_DOD => decode_dod(rest, n),
        T_PCO => pcodec::decompress_i64(rest, n),
        T_GAPS => decode_gaps(rest, n),
        T_STEP => {
            let mut b = Bytes::new(rest);
            let first = unzigzag(b.varint()?);
            let step = unzigzag(b.varint()?);
            if b.remaining() != 0 {
                return Err(CodecError::new("bytes after a constant-step column"));
            }
            let mut t = first;
            Ok((0..n)
                .map(|i| {
                    if i > 0 {
                        t = t.wrapping_add(step);
                    }
                    t
                })
                .collect())
        }
        _ => Err(CodecError::new("unknown timestamp codec")),
    }
}

fn decode_dod(buf: &[u8], n: usize) -> Result<Vec<i64>, CodecError> {
    // Every point after the second costs at least one bit: more than that cannot be in `buf`,
    // so a corrupt count cannot make us allocate beyond what the bytes could hold.
    if n > 2 + buf.len().saturating_mul(8) {
        return Err(CodecError::new("more timestamps than the bytes can hold"));
    }
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return if buf.is_empty() {
            Ok(out)
        } else {
            Err(CodecError::new("timestamps of an empty column"))
        };
    }
    let mut b = Bytes::new(buf);
    let first = unzigzag(b.varint()?);
    out.push(first);
    if n == 1 {
        return Ok(out);
    }
    let scale = b.varint()?;
    if scale == 0 || scale > i64::MAX as u64 {
        return Err(CodecError::new("timestamp scale out of range"));
    }
    let s = scale as i64;
    let mut q = unzigzag(b.varint()?);
    let mut ts = first.wrapping_add(q.wrapping_mul(s));
    out.push(ts);
    let mut r = BitReader::new(b.rest());
    for _ in 2..n {
        let ones = r.ones(5)?;
        let dod = match ones {
            0 => 0,
            5 => r.read(64)? as i64,
            k => {
                let bits = BUCKETS[k as usize - 1].1;
                sign_extend(r.read(bits)?, bits)
            }
        };
        q = q.wrapping_add(dod);
        ts = ts.wrapping_add(q.wrapping_mul(s));
        out.push(ts);
    }
    Ok(out)
}

/// Binary (Stein's) GCD: shifts and subtractions instead of a 64-bit division per step
/// (the encoder folds it over every delta of a chunk).
fn gcd(a: u64, b: u64) -> u64 {
    if a == b || b == 0 {
        return a;
    }
    if a == 0 {
        return b;
    }
    let shift = (a | b).trailing_zeros();
    let (mut a, mut b) = (a >> a.trailing_zeros(), b >> b.trailing_zeros());
    while a != b {
        if a > b {
            a -= b;
            a >>= a.trailing_zeros();
        } else {
            b -= a;
            b >>= b.trailing_zeros();
        }
    }
    a << shift
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn binary_gcd_agrees_with_euclid(a in any::<u64>(), b in any::<u64>(), k in 0u32..20) {
            fn euclid(mut a: u64, mut b: u64) -> u64 {
                while b != 0 {
                    (a, b) = (b, a % b);
                }
                a
            }
            prop_assert_eq!(gcd(a, b), euclid(a, b));
            let (a, b) = ((a >> 40) << k, (b >> 40) << k);
            prop_assert_eq!(gcd(a, b), euclid(a, b));
        }
    }

    fn round_trip(ts: &[i64]) -> usize {
        let mut out = Vec::new();
        encode(ts, &mut out);
        assert_eq!(decode(&out, ts.len()).unwrap(), ts);
        let mut dod = Vec::new();
        encode_dod(ts, &mut dod);
        assert_eq!(decode_dod(&dod, ts.len()).unwrap(), ts);
        let mut gaps = Vec::new();
        encode_gaps(ts, &mut gaps);
        assert_eq!(decode_gaps(&gaps, ts.len()).unwrap(), ts);
        // The constant-step form may spend one varint more than dod on tiny columns.
        assert!(out.len() <= dod.len() + 11);
        out.len()
    }

    #[test]
    fn steady_one_hertz_costs_about_one_bit_per_point() {
        let start = 1_583_748_873_000_000_000i64;
        let ts: Vec<i64> = (0..1000).map(|i| start + i * 1_000_000_000).collect();
        let bytes = round_trip(&ts);
        assert!(bytes < 20, "{bytes} bytes");
        let mut dod = Vec::new();
        encode_dod(&ts, &mut dod);
        assert!(dod.len() < 1000 / 8 + 20, "{} bytes", dod.len());
        // A skipped second costs a few bits, not 64.
        let mut gappy = ts.clone();
        gappy.remove(500);
        let mut dod_gappy = Vec::new();
        encode_dod(&gappy, &mut dod_gappy);
        assert!(dod_gappy.len() < dod.len() + 4);
        assert!(round_trip(&gappy) <= dod_gappy.len() + 1);
    }

    #[test]
    fn extremes_round_trip() {
        round_trip(&[]);
        round_trip(&[i64::MIN]);
        round_trip(&[i64::MIN, i64::MAX]);
        round_trip(&[i64::MAX, i64::MIN, 0, i64::MAX, -1, 1]);
        round_trip(&[5, 5, 5, 5]);
        round_trip(&[0, i64::MIN, 0, i64::MIN]);
    }

    proptest! {
        #[test]
        fn arbitrary_sequences_round_trip(ts in proptest::collection::vec(any::<i64>(), 0..200)) {
            round_trip(&ts);
        }

        #[test]
        fn jittery_sorted_sequences_round_trip(
            start in any::<i64>(), steps in proptest::collection::vec(0i64..3_000_000_000, 0..300)
        ) {
            let mut t = start;
            let ts: Vec<i64> = steps.iter().map(|s| { t = t.wrapping_add(*s); t }).collect();
            round_trip(&ts);
        }

        #[test]
        fn skipped_samples_round_trip(
            start in any::<i64>(), step in 1i64..5_000_000_000, steps in proptest::collection::vec(0i64..40, 0..3000)
        ) {
            // Mostly one step, sometimes two or three, rarely a long pause or a step back.
            let mut t = start;
            let ts: Vec<i64> = steps.iter().map(|&k| {
                let m = match k { 0 => 2, 1 => 3, 2 => 1000, 3 => -1, _ => 1 };
                t = t.wrapping_add(m * step);
                t
            }).collect();
            round_trip(&ts);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), n in 0usize..500) {
            let _ = decode(&bytes, n);
            let mut gaps = vec![T_GAPS];
            gaps.extend_from_slice(&bytes);
            let _ = decode(&gaps, n);
        }
    }
}
