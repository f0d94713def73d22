//! Float columns: the encoder tries every codec and keeps the smallest, tagging the column.
//!
//! - `Raw`: 8 bytes LE a value; the bound every other codec must beat.
//! - `Gorilla`: XOR of successive bit patterns (`gorilla.rs`); wins on slowly changing or
//!   repeated values.
//! - `Pco`: pcodec on the f64s; finds float multipliers and entropy-codes.
//! - `Decimal`: sensors and JSON bodies carry decimal numbers ("79.3366"). When every value
//!   of the chunk is exactly `m / 10^d` for integers `m` (checked bit-for-bit, so this is
//!   lossless), the column stores `d` and the integers `m` through the integer codec, whose
//!   deltas are small: the noise is in a few low decimal digits, which XOR cannot see.
//! - `Significant`: values printed to a number of significant digits ("1.30128", "0.871339")
//!   have more decimal places below 1 than above, so `Decimal` stores the ones above 1 with a
//!   last digit that is always 0. This codec numbers the `s`-significant-digit decimals in
//!   order instead (each decade holds `9 * 10^(s-1)` of them, counted from the chunk's
//!   smallest decade, negatives mirrored, 0 as 0) and stores those ordinals through the
//!   integer codec; checked bit-for-bit like `Decimal`.
//!
//! Every codec is bit-exact for every f64 bit pattern it accepts (NaN payloads, -0.0); the
//! decimal check refuses values it could not reproduce exactly.

use super::bits::{put_varint, unzigzag, zigzag, Bytes};
use super::ints::IntChoice;
use super::{gorilla, ints, pcodec, CodecError};

const T_RAW: u8 = 0;
const T_GORILLA: u8 = 1;
const T_PCO: u8 = 2;
const T_DECIMAL: u8 = 3;
const T_SIGNIFICANT: u8 = 4;

/// The float encodings, for measuring them one by one (benches, the SKAB report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatCodec {
    Raw,
    Gorilla,
    Pco,
    Decimal,
    Significant,
}

impl FloatCodec {
    pub const ALL: [FloatCodec; 5] = [
        FloatCodec::Raw,
        FloatCodec::Gorilla,
        FloatCodec::Pco,
        FloatCodec::Decimal,
        FloatCodec::Significant,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FloatCodec::Raw => "raw",
            FloatCodec::Gorilla => "gorilla",
            FloatCodec::Pco => "pco",
            FloatCodec::Decimal => "decimal",
            FloatCodec::Significant => "signif",
        }
    }

    pub(crate) fn tag(self) -> u8 {
        match self {
            FloatCodec::Raw => T_RAW,
            FloatCodec::Gorilla => T_GORILLA,
            FloatCodec::Pco => T_PCO,
            FloatCodec::Decimal => T_DECIMAL,
            FloatCodec::Significant => T_SIGNIFICANT,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<FloatCodec> {
        Some(match tag {
            T_RAW => FloatCodec::Raw,
            T_GORILLA => FloatCodec::Gorilla,
            T_PCO => FloatCodec::Pco,
            T_DECIMAL => FloatCodec::Decimal,
            T_SIGNIFICANT => FloatCodec::Significant,
            _ => return None,
        })
    }
}

/// Exact powers of ten as f64 (all up to 10^22 are exact); `Decimal` uses up to 10^18.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];
const MAX_DECIMAL_PLACES: usize = 19;
/// Integers beyond 2^53 are not all representable as f64, so `m as f64` could round.
const MAX_MANTISSA: f64 = 9_007_199_254_740_992.0;

/// `x` as `m / 10^d`, if that reproduces its exact bits.
pub(crate) fn as_decimal(x: f64, d: usize) -> Option<i64> {
    let p = POW10[d];
    let m = (x * p).round();
    // NaN and infinities fail this too.
    if m.is_nan() || m.abs() >= MAX_MANTISSA {
        return None;
    }
    let m = m as i64;
    ((m as f64 / p).to_bits() == x.to_bits()).then_some(m)
}

/// The smallest `d` at which every value is an exact decimal, and the mantissas. With the
/// `d` of the series' last chunk as a hint, one pass checks that it still holds every value
/// and that not every mantissa ends in 0 (then a smaller `d` might); else the search runs.
fn decimal(v: &[f64], hint: Option<u8>) -> Option<(u8, Vec<i64>)> {
    if let Some(d) = hint.filter(|&d| usize::from(d) < MAX_DECIMAL_PLACES) {
        let m = v
            .iter()
            .map(|&x| as_decimal(x, usize::from(d)))
            .collect::<Option<Vec<i64>>>();
        if let Some(m) = m.filter(|m| d == 0 || m.iter().any(|x| x % 10 != 0)) {
            return Some((d, m));
        }
    }
    let mut d = 0;
    for &x in v {
        while as_decimal(x, d).is_none() {
            d += 1;
            if d >= MAX_DECIMAL_PLACES {
                return None;
            }
        }
    }
    // A value that fit at a smaller d fits at this one too unless its mantissa outgrew 2^53;
    // `as_decimal` checks again rather than assume.
    let m = v
        .iter()
        .map(|&x| as_decimal(x, d))
        .collect::<Option<Vec<i64>>>()?;
    Some((d as u8, m))
}

/// Most significant digits: 10^15 < 2^53, so every mantissa is an exact f64.
const MAX_SIGNIFICANT: u32 = 15;

/// `m * 10^-q` as the decoder computes it: one correctly rounded operation.
fn from_significant(m: i64, q: i32) -> Option<f64> {
    let p = *POW10.get(q.unsigned_abs() as usize)?;
    Some(if q >= 0 { m as f64 / p } else { m as f64 * p })
}

/// `x` as `(m, e)` with `10^(s-1) <= |m| < 10^s` and `x == m * 10^(e+1-s)` bit for bit.
fn as_significant(x: f64, s: u32) -> Option<(i64, i32)> {
    let a = x.abs();
    if !(a > 0.0 && a.is_finite()) {
        return None;
    }
    let lo = 10i64.pow(s - 1);
    let guess = a.log10().floor() as i32;
    for e in [guess, guess - 1, guess + 1] {
        let q = s as i32 - 1 - e;
        let p = *POW10.get(q.unsigned_abs() as usize)?;
        let m = if q >= 0 { a * p } else { a / p }.round() as i64;
        if !(lo..lo * 10).contains(&m) {
            continue;
        }
        let m = if x < 0.0 { -m } else { m };
        if from_significant(m, q)?.to_bits() == x.to_bits() {
            return Some((m, e));
        }
    }
    None
}

/// The fewest significant digits `s` that hold every value, the smallest decade `e0`, and
/// the ordinals; `None` when some value needs more than 15 digits or is not finite (or is
/// -0.0), or when all nonzero values share one decade and sign, where `Decimal` is as good.
///
/// With the `s` of the series' last chunk as a hint, the search for `s` is skipped (the
/// parts below check every value at it); if some value needs more digits, it runs.
fn significant(v: &[f64], hint: Option<u8>) -> Option<(u8, i32, Vec<i64>)> {
    let hinted = hint
        .map(u32::from)
        .filter(|s| (1..=MAX_SIGNIFICANT).contains(s));
    if let Some(s) = hinted {
        if let Some(found) = significant_at(v, s) {
            return found;
        }
    }
    let mut s = 1;
    for &x in v {
        if x.to_bits() == 0 {
            continue;
        }
        while as_significant(x, s).is_none() {
            s += 1;
            if s > MAX_SIGNIFICANT {
                return None;
            }
        }
    }
    significant_at(v, s).flatten()
}

/// [`significant`] at `s` digits: `None` when some value does not fit them.
#[allow(clippy::option_option)]
fn significant_at(v: &[f64], s: u32) -> Option<Option<(u8, i32, Vec<i64>)>> {
    let parts = v
        .iter()
        .map(|&x| {
            if x.to_bits() == 0 {
                Some(None)
            } else {
                as_significant(x, s).map(Some)
            }
        })
        .collect::<Option<Vec<Option<(i64, i32)>>>>()?;
    let Some(e0) = parts.iter().flatten().map(|p| p.1).min() else {
        return Some(None);
    };
    let e1 = parts.iter().flatten().map(|p| p.1).max().unwrap_or(e0);
    let mixed_sign =
        parts.iter().flatten().any(|p| p.0 < 0) && parts.iter().flatten().any(|p| p.0 > 0);
    if e0 == e1 && !mixed_sign {
        return Some(None);
    }
    let lo = 10i64.pow(s - 1);
    let span = 9 * lo;
    let ord = parts
        .iter()
        .map(|p| match *p {
            None => 0,
            Some((m, e)) => {
                let o = 1 + i64::from(e - e0) * span + (m.abs() - lo);
                if m < 0 {
                    -o
                } else {
                    o
                }
            }
        })
        .collect();
    Some(Some((s as u8, e0, ord)))
}

fn decode_significant(b: &mut Bytes<'_>, n: usize) -> Result<Vec<f64>, CodecError> {
    let bad = || CodecError::new("significant-digit column out of range");
    let s = u32::from(b.u8()?);
    if !(1..=MAX_SIGNIFICANT).contains(&s) {
        return Err(bad());
    }
    let e0 = i32::try_from(unzigzag(b.varint()?)).map_err(|_| bad())?;
    let lo = 10u64.pow(s - 1);
    let span = 9 * lo;
    ints::decode(b.rest(), n)?
        .into_iter()
        .map(|o| {
            if o == 0 {
                return Ok(0.0);
            }
            let a = o.unsigned_abs() - 1;
            let e = i64::from(e0) + i64::try_from(a / span).map_err(|_| bad())?;
            let q = i32::try_from(i64::from(s) - 1 - e).map_err(|_| bad())?;
            // < 10^15, so it fits.
            let m = (a % span + lo) as i64;
            from_significant(if o < 0 { -m } else { m }, q).ok_or_else(bad)
        })
        .collect()
}

/// Which encoding a float column took: what a seal hint remembers of it. `inner` is how the
/// integers of `Decimal` and `Significant` were stored, or the pco configuration of `Pco`
/// (as an [`IntChoice::Pco`]); `None` for the other codecs or when it cannot be named.
/// Remembering `digits` saves most of the search for them (a rounding and a division per
/// value and digit tried).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FloatChoice {
    pub codec: FloatCodec,
    pub inner: Option<IntChoice>,
    /// The decimal places of `Decimal`, the significant digits of `Significant`; 0 else.
    pub digits: u8,
}

/// Appends `[tag][payload]` in `codec`; `false` (and nothing appended) if it cannot hold
/// these values.
pub fn encode_with(codec: FloatCodec, v: &[f64], out: &mut Vec<u8>) -> bool {
    encode_as(codec, v, None, None, out).is_some()
}

/// [`encode_with`] given how the last column of the series stored its integers (or
/// configured pco) and its digits; `Some((inner, digits))` with how this one did when `codec`
/// holds the values.
fn encode_as(
    codec: FloatCodec,
    v: &[f64],
    inner: Option<IntChoice>,
    digits: Option<u8>,
    out: &mut Vec<u8>,
) -> Option<(Option<IntChoice>, u8)> {
    let start = out.len();
    out.push(codec.tag());
    let done = match codec {
        FloatCodec::Raw => {
            for x in v {
                out.extend_from_slice(&x.to_bits().to_le_bytes());
            }
            Some((None, 0))
        }
        FloatCodec::Gorilla => {
            let bits: Vec<u64> = v.iter().map(|x| x.to_bits()).collect();
            gorilla::encode(&bits, out);
            Some((None, 0))
        }
        FloatCodec::Pco => {
            let hint = match inner {
                Some(IntChoice::Pco(p)) => Some(p),
                _ => None,
            };
            pcodec::compress_f64(v, hint).map(|(p, choice)| {
                out.extend_from_slice(&p);
                (choice.map(IntChoice::Pco), 0)
            })
        }
        FloatCodec::Decimal => decimal(v, digits).map(|(d, m)| {
            out.push(d);
            (ints::encode_hinted(&m, inner, out), d)
        }),
        FloatCodec::Significant => significant(v, digits).map(|(s, e0, ord)| {
            out.push(s);
            put_varint(out, zigzag(i64::from(e0)));
            (ints::encode_hinted(&ord, inner, out), s)
        }),
    };
    if done.is_none() {
        out.truncate(start);
    }
    done
}

/// Appends the smallest encoding of `v`. pco is the expensive candidate (about three times
/// Gorilla's encode time), so a chunk that is all decimals, where the decimal codec always
/// beat pco on the f64s in our measurements (it is pco on the mantissas), skips it.
pub(crate) fn encode(v: &[f64], out: &mut Vec<u8>) -> FloatChoice {
    let mut best = Vec::new();
    encode_with(FloatCodec::Raw, v, &mut best);
    let mut chosen = FloatChoice {
        codec: FloatCodec::Raw,
        inner: None,
        digits: 0,
    };
    let mut consider = |codec: FloatCodec| {
        let mut buf = Vec::new();
        let Some((inner, digits)) = encode_as(codec, v, None, None, &mut buf) else {
            return false;
        };
        if buf.len() < best.len() {
            best = buf;
            chosen = FloatChoice {
                codec,
                inner,
                digits,
            };
        }
        true
    };
    consider(FloatCodec::Gorilla);
    if !consider(FloatCodec::Decimal) {
        consider(FloatCodec::Pco);
    }
    if spans_decades(v) {
        consider(FloatCodec::Significant);
    }
    out.extend_from_slice(&best);
    chosen
}

/// Appends `v` in the codec of `hint` alone (its integers as the hint says), raw if that
/// came out larger; `None` (nothing appended) when that codec cannot hold these values, so
/// the caller must choose again.
pub(crate) fn encode_hinted(
    v: &[f64],
    hint: FloatChoice,
    out: &mut Vec<u8>,
) -> Option<FloatChoice> {
    let start = out.len();
    let digits = Some(hint.digits)
        .filter(|_| matches!(hint.codec, FloatCodec::Decimal | FloatCodec::Significant));
    let (inner, digits) = encode_as(hint.codec, v, hint.inner, digits, out)?;
    if out.len() - start > 1 + 8 * v.len() {
        out.truncate(start);
        encode_with(FloatCodec::Raw, v, out);
        return Some(FloatChoice {
            codec: FloatCodec::Raw,
            inner: None,
            digits: 0,
        });
    }
    Some(FloatChoice {
        codec: hint.codec,
        inner,
        digits,
    })
}

/// Whether the non-zero magnitudes of `v` reach into more than one decade. Within one decade
/// the significant-digit ordinals are the decimal mantissas shifted by a constant, which pco
/// codes in the same size, so only chunks that cross a power of ten try that codec (it costs
/// as many pco passes as the decimal one).
fn spans_decades(v: &[f64]) -> bool {
    // The decade only grows with the magnitude: comparing the smallest and the largest
    // non-zero finite magnitudes takes two logarithms instead of one per value.
    let (lo, hi) = v
        .iter()
        .map(|x| x.abs())
        .filter(|a| *a != 0.0 && a.is_finite())
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), a| {
            (lo.min(a), hi.max(a))
        });
    lo.is_finite() && lo.log10().floor() != hi.log10().floor()
}

/// The codec of an encoded column.
pub fn codec_of(buf: &[u8]) -> Option<FloatCodec> {
    FloatCodec::from_tag(*buf.first()?)
}

pub(crate) fn decode(buf: &[u8], n: usize) -> Result<Vec<f64>, CodecError> {
    let mut b = Bytes::new(buf);
    let tag = b.u8()?;
    match FloatCodec::from_tag(tag) {
        Some(FloatCodec::Raw) => {
            if b.remaining() != n.saturating_mul(8) {
                return Err(CodecError::new("raw float column has the wrong length"));
            }
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push(f64::from_bits(b.u64()?));
            }
            Ok(out)
        }
        Some(FloatCodec::Gorilla) => Ok(gorilla::decode(b.rest(), n)?
            .into_iter()
            .map(f64::from_bits)
            .collect()),
        Some(FloatCodec::Pco) => pcodec::decompress_f64(b.rest(), n),
        Some(FloatCodec::Decimal) => {
            let d = usize::from(b.u8()?);
            let p = *POW10
                .get(d)
                .ok_or(CodecError::new("decimal exponent out of range"))?;
            Ok(ints::decode(b.rest(), n)?
                .into_iter()
                .map(|m| m as f64 / p)
                .collect())
        }
        Some(FloatCodec::Significant) => decode_significant(&mut b, n),
        None => Err(CodecError::new("unknown float codec")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn check_all(v: &[f64]) {
        for codec in FloatCodec::ALL {
            let mut out = Vec::new();
            if encode_with(codec, v, &mut out) {
                assert_eq!(codec_of(&out), Some(codec));
                assert_eq!(bits(&decode(&out, v.len()).unwrap()), bits(v), "{codec:?}");
            }
        }
        let mut out = Vec::new();
        encode(v, &mut out);
        assert_eq!(bits(&decode(&out, v.len()).unwrap()), bits(v));
        assert!(out.len() <= 1 + 8 * v.len());
        // Hinted digits, right or wrong, only change the size.
        for codec in [FloatCodec::Decimal, FloatCodec::Significant] {
            for digits in [0, 1, 3, 17, 200] {
                let hint = FloatChoice {
                    codec,
                    inner: None,
                    digits,
                };
                let mut out = Vec::new();
                if encode_hinted(v, hint, &mut out).is_some() {
                    assert_eq!(bits(&decode(&out, v.len()).unwrap()), bits(v));
                }
            }
        }
    }

    #[test]
    fn decimals_are_found_exactly() {
        assert_eq!(as_decimal(0.0265878, 7), Some(265_878));
        assert_eq!(as_decimal(0.0265878, 6), None);
        assert_eq!(as_decimal(-0.0, 0), None, "-0.0 must not become +0.0");
        assert_eq!(as_decimal(f64::NAN, 3), None);
        assert_eq!(decimal(&[79.3366, 26.0199, 233.062], None).unwrap().0, 4);
        // A hint of too many places is not taken (the mantissas all end in 0), too few is.
        assert_eq!(decimal(&[79.3366, 26.0199], Some(6)).unwrap().0, 4);
        assert_eq!(decimal(&[79.3366, 26.0199], Some(2)).unwrap().0, 4);
        assert_eq!(decimal(&[79.3366, 26.0199], Some(4)).unwrap().0, 4);
        // 0.30000000000000004 needs 17 digits: a mantissa beyond 2^53, so not a decimal.
        assert!(decimal(&[0.1 + 0.2], None).is_none());
        assert!(decimal(&[0.1 + 0.2], Some(3)).is_none());
        assert!(decimal(&[1.0 / 3.0], None).is_none_or(|(d, _)| d >= 16));
    }

    #[test]
    fn special_values_round_trip() {
        check_all(&[]);
        check_all(&[
            0.0,
            -0.0,
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ]);
        check_all(&[
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            1e300,
            -1e-300,
        ]);
        check_all(&[f64::from_bits(0x7ff0_0000_0000_0001), 1.0]);
        check_all(&[9_007_199_254_740_993.0, 1.5]);
    }

    #[test]
    fn decimal_sensor_data_beats_xor() {
        // A noisy temperature with four decimals, like SKAB's.
        let mut x = 79_3366i64;
        let v: Vec<f64> = (0..2000)
            .map(|i| {
                x += (i * 7919 % 61) - 30;
                x as f64 / 1e4
            })
            .collect();
        let mut dec = Vec::new();
        let mut gor = Vec::new();
        assert!(encode_with(FloatCodec::Decimal, &v, &mut dec));
        assert!(encode_with(FloatCodec::Gorilla, &v, &mut gor));
        assert!(
            dec.len() * 2 < gor.len(),
            "decimal {} gorilla {}",
            dec.len(),
            gor.len()
        );
        check_all(&v);
    }

    #[test]
    fn significant_digits_are_found_exactly() {
        assert_eq!(as_significant(1.30128, 6), Some((130_128, 0)));
        assert_eq!(as_significant(0.871339, 6), Some((871_339, -1)));
        assert_eq!(as_significant(-244.091, 6), Some((-244_091, 2)));
        assert_eq!(as_significant(0.871339, 5), None);
        assert_eq!(as_significant(-0.0, 6), None);
        assert_eq!(as_significant(f64::INFINITY, 6), None);
        assert_eq!(as_significant(1e300, 15), None, "beyond 10^22");
        // One decade and sign: left to Decimal.
        assert!(significant(&[0.0265878, 0.0270797], None).is_none());
        assert!(significant(&[0.0265878, 0.0270797], Some(6)).is_none());
        let (s, e0, ord) = significant(&[0.999999, 1.0, 0.0, -1.00001], None).unwrap();
        assert_eq!(
            significant(&[0.999999, 1.0, 0.0, -1.00001], Some(3))
                .unwrap()
                .0,
            6
        );
        assert_eq!((s, e0), (6, -1));
        assert_eq!(ord, vec![900_000, 900_001, 0, -900_002]);
    }

    #[test]
    fn significant_digits_beat_decimal_across_decades() {
        // A noisy current printed to six significant digits around 1.0 (like SKAB's).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let v: Vec<f64> = (0..2000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let f = 0.5 + (state % 1_000_000) as f64 / 1e6 * 0.7 + 0.15;
                // Six significant digits: five decimals from 1.0 up.
                if f >= 1.0 {
                    format!("{f:.5}").parse().unwrap()
                } else {
                    format!("{f:.6}").parse().unwrap()
                }
            })
            .collect();
        let mut dec = Vec::new();
        let mut sig = Vec::new();
        assert!(encode_with(FloatCodec::Decimal, &v, &mut dec));
        assert!(encode_with(FloatCodec::Significant, &v, &mut sig));
        assert!(
            sig.len() < dec.len(),
            "significant {} decimal {}",
            sig.len(),
            dec.len()
        );
        check_all(&v);
    }

    proptest! {
        #[test]
        fn spans_decades_agrees_with_a_decade_per_value(
            v in proptest::collection::vec(
                prop_oneof![any::<f64>(), (-1e6f64..1e6), Just(0.0), Just(f64::NAN)],
                0..40,
            )
        ) {
            let decades: std::collections::BTreeSet<i64> = v
                .iter()
                .map(|x| x.abs())
                .filter(|a| *a != 0.0 && a.is_finite())
                .map(|a| a.log10().floor() as i64)
                .collect();
            prop_assert_eq!(spans_decades(&v), decades.len() > 1);
        }
    }

    proptest! {
        #[test]
        fn significant_walks_round_trip(s in 1usize..8, steps in proptest::collection::vec(-1000i64..1000, 0..500)) {
            // Random walks printed to `s` significant digits, crossing decades and zero.
            let mut m = 0i64;
            let v: Vec<f64> = steps.iter().map(|d| {
                m += d;
                format!("{:.*e}", s - 1, m as f64 / 997.0).parse().unwrap()
            }).collect();
            check_all(&v);
        }

        #[test]
        fn arbitrary_floats_round_trip(v in proptest::collection::vec(any::<f64>(), 0..200)) {
            check_all(&v);
        }

        #[test]
        fn arbitrary_bit_patterns_round_trip(v in proptest::collection::vec(any::<u64>(), 0..100)) {
            let v: Vec<f64> = v.into_iter().map(f64::from_bits).collect();
            check_all(&v);
        }

        #[test]
        fn decimal_walks_round_trip(d in 0u32..10, steps in proptest::collection::vec(-1000i64..1000, 0..500)) {
            let mut m = 0i64;
            let v: Vec<f64> = steps.iter().map(|s| { m += s; m as f64 / 10f64.powi(d as i32) }).collect();
            check_all(&v);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), n in 0usize..3000) {
            let _ = decode(&bytes, n);
            for tag in 0..5u8 {
                let mut b = vec![tag];
                b.extend_from_slice(&bytes);
                let _ = decode(&b, n);
            }
        }
    }
}
