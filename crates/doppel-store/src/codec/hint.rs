//! Seal hints: a series remembers which encoding each column of its last sealed chunk took,
//! so the next seals try that one alone instead of every candidate.
//!
//! Choosing the smallest of every codec and pco configuration costs up to ten pco passes a
//! 2,048-point chunk, a quarter of the CPU of ingest. A series keeps its character from one
//! chunk to the next (a decimal sensor stays decimal, and the delta order that suits its
//! noise stays the same), so a seal *follows* its hint: the hinted float codec with the
//! hinted pco mode and delta encoding, named outright so that pco skips its own search too.
//! A seal *explores* (every candidate, as [`super::encode_values`] does, and remembers the
//! winner) when the series has no hint yet, every [`EXPLORE_EVERY`] seals, when the hinted
//! codec cannot hold the chunk (a decimal column that stopped being decimal), and when the
//! hinted chunk came out clearly larger a point than the last one ([`worse`]): then the
//! smaller of the followed and the explored encodings is kept.
//!
//! Only the choice is remembered; every column carries its codec tags as before, so decoding
//! does not know hints exist and a hint can never make a chunk unreadable, only larger.

use doppel_model::Value;

use super::floats::{self, FloatChoice, FloatCodec};
use super::ints::{self, IntChoice};
use super::timestamps::{self, TsChoice};
use super::{V_FLOAT, V_INT};

/// A seal explores every this many seals of a series. On SKAB (as for [`worse`]) every 8th,
/// 16th, 32nd or 64th store the same 1.493 B/pt against 1.492 exploring every seal: a
/// series' best encoding rarely changes without its size showing it.
pub const EXPLORE_EVERY: u8 = 16;
// The countdown lives in five bits of `SealHint::values`.
const _: () = assert!(EXPLORE_EVERY >= 1 && EXPLORE_EVERY <= 32);

/// What the last exploring seal of one series chose, and what its last chunk cost: 8 bytes
/// and no heap, because a fleet has millions of series. `Default` is "no hint": the next
/// seal explores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealHint {
    /// Low 3 bits, the value column: 0 none, 1..=5 a float codec (its tag + 1), 6 an integer
    /// column. High 5 bits: seals left before one explores again.
    values: u8,
    /// How that column stored its integers or configured pco ([`IntChoice::to_byte`]).
    inner: u8,
    /// The decimal places or significant digits of a float column.
    digits: u8,
    /// The timestamp column ([`TsChoice::to_byte`]).
    ts: u8,
    /// Bytes a point of the last chunk's value column, in 1/256 bytes (saturating).
    value_cost: u16,
    /// The same for its timestamp column.
    ts_cost: u16,
}

const VALUES_INT: u8 = 6;
const VALUES_BITS: u8 = 0b111;

/// Whether a followed column costing `now` (1/256 bytes a point) is clearly worse than the
/// last chunk's `last`: a sixteenth more and 1/16 byte a point more. On SKAB (one hint per
/// column carried through all files, 312 seals) this explores 7 times besides the schedule
/// and stores 1.493 B/pt; an eighth and 1/16 byte: 1.495 (7 times); never: 1.501.
fn worse(last: u16, now: u16) -> bool {
    u32::from(now) > u32::from(last) + u32::from(last) / 16 + 16
}

/// Bytes a point in 1/256 bytes, saturating at 256 bytes a point.
fn cost(bytes: usize, n: usize) -> u16 {
    u16::try_from(bytes.saturating_mul(256) / n.max(1)).unwrap_or(u16::MAX)
}

/// Encodes one column: following `hint` unless `explore` (or there is no hint), exploring
/// with `search` otherwise or when following fails or comes out [`worse`] than `last`.
/// Returns the choice to remember and the cost of what was appended.
fn seal_column<C: Copy>(
    hint: Option<C>,
    explore: bool,
    last: u16,
    n: usize,
    out: &mut Vec<u8>,
    follow: impl FnOnce(C, &mut Vec<u8>) -> Option<Option<C>>,
    search: impl FnOnce(&mut Vec<u8>) -> Option<C>,
) -> (Option<C>, u16) {
    let mut followed = None;
    if let (Some(h), false) = (hint, explore) {
        let mut buf = Vec::new();
        if let Some(choice) = follow(h, &mut buf) {
            let c = cost(buf.len(), n);
            if !worse(last, c) {
                out.extend_from_slice(&buf);
                return (choice, c);
            }
            followed = Some((buf, choice));
        }
    }
    let mut buf = Vec::new();
    let mut choice = search(&mut buf);
    if let Some((f, fc)) = followed.filter(|(f, _)| f.len() <= buf.len()) {
        (buf, choice) = (f, fc);
    }
    out.extend_from_slice(&buf);
    (choice, cost(buf.len(), n))
}

impl SealHint {
    /// Seals left before one explores again.
    #[cfg(test)]
    pub(crate) fn seals_left(&self) -> u8 {
        self.values >> 3
    }

    /// Appends the timestamp column of `ts` to `tcol` and the value column of `values` to
    /// `vcol` (the same bytes in kind as [`super::encode_timestamps`] and
    /// [`super::encode_values`], possibly a different candidate), and updates the hint.
    pub fn encode_columns(
        &mut self,
        ts: &[i64],
        values: &[Value],
        tcol: &mut Vec<u8>,
        vcol: &mut Vec<u8>,
    ) {
        let seals_left = self.values >> 3;
        let explore = seals_left == 0;
        let seals_left = if explore {
            EXPLORE_EVERY - 1
        } else {
            seals_left - 1
        };
        let kind = self.encode_values(values, explore, vcol);
        self.values = seals_left << 3 | kind;
        let (choice, c) = seal_column(
            TsChoice::from_byte(self.ts),
            explore,
            self.ts_cost,
            ts.len(),
            tcol,
            |h, out| Some(timestamps::encode_hinted(ts, Some(h), out)),
            |out| timestamps::encode(ts, out),
        );
        self.ts = choice.map_or(0, TsChoice::to_byte);
        self.ts_cost = c;
    }

    /// This hint made to be followed as it stands: [`Self::encode_columns`] with the copy
    /// never explores (unless there is no hint yet) and the original stays unchanged. For
    /// chunks too small to judge a codec by, such as the buffers a checkpoint seals early:
    /// with pco's per-column overhead spread over few points, their bytes a point say little
    /// about the next full chunk, and exploring all candidates for each costs a checkpoint
    /// most of its time.
    #[must_use]
    pub fn followed(&self) -> SealHint {
        let mut h = *self;
        // One seal left before exploring, and a last cost nothing can be worse than.
        h.values = (h.values & VALUES_BITS) | 1 << 3;
        h.value_cost = u16::MAX;
        h.ts_cost = u16::MAX;
        h
    }

    /// Appends the value column; returns what the low bits of `values` should say now.
    fn encode_values(&mut self, values: &[Value], explore: bool, out: &mut Vec<u8>) -> u8 {
        let n = values.len();
        let floats: Option<Vec<f64>> = values
            .iter()
            .map(|v| match v {
                Value::Float(f) => Some(*f),
                _ => None,
            })
            .collect();
        if let Some(v) = floats {
            out.push(V_FLOAT);
            let hint = match self.values & VALUES_BITS {
                t @ 1..=5 => FloatCodec::from_tag(t - 1).map(|codec| FloatChoice {
                    codec,
                    inner: IntChoice::from_byte(self.inner),
                    digits: self.digits,
                }),
                _ => None,
            };
            let (choice, c) = seal_column(
                hint,
                explore,
                self.value_cost,
                n,
                out,
                |h, out| floats::encode_hinted(&v, h, out).map(Some),
                |out| Some(floats::encode(&v, out)),
            );
            let choice = choice.unwrap_or(FloatChoice {
                codec: FloatCodec::Raw,
                inner: None,
                digits: 0,
            });
            self.inner = choice.inner.map_or(0, IntChoice::to_byte);
            self.digits = choice.digits;
            self.value_cost = c;
            return choice.codec.tag() + 1;
        }
        let ints: Option<Vec<i64>> = values
            .iter()
            .map(|v| match v {
                Value::Int(i) => Some(*i),
                _ => None,
            })
            .collect();
        if let Some(v) = ints {
            out.push(V_INT);
            let hint = match self.values & VALUES_BITS {
                VALUES_INT => IntChoice::from_byte(self.inner),
                _ => None,
            };
            let (choice, c) = seal_column(
                hint,
                explore,
                self.value_cost,
                n,
                out,
                |h, out| Some(ints::encode_hinted(&v, Some(h), out)),
                |out| ints::encode_hinted(&v, None, out),
            );
            self.inner = choice.map_or(0, IntChoice::to_byte);
            self.value_cost = c;
            return VALUES_INT;
        }
        // Bools and strings cost no pco run; a column of mixed kinds is rare.
        super::encode_values(values, out);
        self.values & VALUES_BITS
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::codec::{decode_timestamps, decode_values, pcodec};
    use proptest::prelude::*;

    #[test]
    fn a_hint_fits_in_eight_bytes() {
        assert!(std::mem::size_of::<SealHint>() <= 8);
    }

    /// Every hint a series could hold: each value codec with each integer or pco choice,
    /// each timestamp choice, and "none" for both.
    fn arb_hint() -> impl Strategy<Value = SealHint> {
        let pco: Vec<u8> = pcodec::all_choices()
            .map(|p| IntChoice::Pco(p).to_byte())
            .collect();
        let mut inner = vec![0, 1];
        inner.extend(pco.iter().copied());
        let ts: Vec<u8> = (0u8..4).chain(pco.iter().map(|p| p + 2)).collect();
        (
            0u8..=VALUES_INT,
            proptest::sample::select(inner),
            prop_oneof![0u8..20, any::<u8>()],
            proptest::sample::select(ts),
            0u8..EXPLORE_EVERY,
            any::<u16>(),
            any::<u16>(),
        )
            .prop_map(
                |(kind, inner, digits, ts, seals_left, value_cost, ts_cost)| SealHint {
                    values: seals_left << 3 | kind,
                    inner,
                    digits,
                    ts,
                    value_cost,
                    ts_cost,
                },
            )
    }

    fn same(a: &[Value], b: &[Value]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| match (x, y) {
                (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
                (x, y) => x == y,
            })
    }

    fn arb_values() -> impl Strategy<Value = Vec<Value>> {
        prop_oneof![
            // Decimal walks, across decades and zero.
            (0u32..7, proptest::collection::vec(-1000i64..1000, 1..400)).prop_map(|(d, steps)| {
                let mut m = 0i64;
                steps
                    .iter()
                    .map(|s| {
                        m += s;
                        Value::Float(m as f64 / 10f64.powi(d as i32))
                    })
                    .collect()
            }),
            proptest::collection::vec(
                any::<u64>().prop_map(|b| Value::Float(f64::from_bits(b))),
                1..100
            ),
            proptest::collection::vec(any::<f64>().prop_map(Value::Float), 1..100),
            proptest::collection::vec(any::<i64>().prop_map(Value::Int), 1..100),
            proptest::collection::vec((-50i64..50).prop_map(Value::Int), 1..300),
            proptest::collection::vec(any::<bool>().prop_map(Value::Bool), 1..50),
        ]
    }

    fn arb_ts() -> impl Strategy<Value = Vec<i64>> {
        prop_oneof![
            proptest::collection::vec(any::<i64>(), 0..100),
            (
                any::<i64>(),
                proptest::collection::vec(0i64..3_000_000_000, 0..400)
            )
                .prop_map(|(start, steps)| {
                    let mut t = start;
                    steps
                        .iter()
                        .map(|s| {
                            t = t.wrapping_add(*s);
                            t
                        })
                        .collect()
                }),
        ]
    }

    proptest! {
        #[test]
        fn sealing_with_any_hint_round_trips(
            hint in arb_hint(),
            columns in proptest::collection::vec((arb_ts(), arb_values()), 1..4),
        ) {
            // Several chunks in a row, as a series seals them: the hint each leaves is the
            // next one's.
            let mut hint = hint;
            for (ts, values) in columns {
                let mut tcol = Vec::new();
                let mut vcol = Vec::new();
                hint.encode_columns(&ts, &values, &mut tcol, &mut vcol);
                prop_assert_eq!(decode_timestamps(&tcol, ts.len()).unwrap(), ts);
                let back = decode_values(&vcol, values.len()).unwrap();
                prop_assert!(same(&back, &values), "{:?} -> {:?}", values, back);
            }
        }

        /// A followed seal round-trips with any hint and leaves the hint as it was.
        #[test]
        fn following_with_any_hint_round_trips_and_keeps_the_hint(
            hint in arb_hint(),
            ts in arb_ts(),
            values in arb_values(),
        ) {
            let (mut tcol, mut vcol) = (Vec::new(), Vec::new());
            let n = ts.len().min(values.len());
            let (ts, values) = (&ts[..n], &values[..n]);
            hint.followed().encode_columns(ts, values, &mut tcol, &mut vcol);
            prop_assert_eq!(decode_timestamps(&tcol, n).unwrap(), ts.to_vec());
            let back = decode_values(&vcol, n).unwrap();
            prop_assert!(same(&back, values), "{:?} -> {:?}", values, back);
            // The original hint is unchanged: following it again gives the same bytes.
            let (mut t2, mut v2) = (Vec::new(), Vec::new());
            hint.followed().encode_columns(ts, values, &mut t2, &mut v2);
            prop_assert_eq!((t2, v2), (tcol, vcol));
        }
    }
}
