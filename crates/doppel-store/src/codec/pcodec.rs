//! Thin wrapper over the `pco` crate (pcodec) for i64 and f64 columns.
//!
//! pco finds what Gorilla cannot: a common multiplier (ADC steps, decimal values), the
//! best delta order, and entropy-codes the rest close to its information content. Decoding is
//! into a buffer of exactly the expected count, and pco itself caps what an untrusted header
//! may preallocate, so stored bytes cannot make us allocate more than the caller's bound.

use pco::data_types::Number;
use pco::metadata::{ChunkMeta, DeltaEncoding, Mode};
use pco::standalone::simple_decompress_into;
use pco::wrapped::{FileCompressor, FileDecompressor};
use pco::{ChunkConfig, DeltaSpec, ModeSpec};

use super::CodecError;

/// pco's default level. Measured on SKAB (2048-point chunks): level 8 stores the sensor
/// columns 3 % smaller than level 4 (values 1.512 vs 1.558 B/pt) for about twice the encode
/// time (~0.4 µs a point, paid once when a chunk seals); size is what this store is for.
const LEVEL: usize = 8;

fn config() -> ChunkConfig {
    ChunkConfig::default().with_compression_level(LEVEL)
}

/// Integer configurations tried besides pco's own choice, smallest output kept. pco picks its
/// mode and delta order from a sample with a cost estimate that misjudges short chunks. On
/// SKAB (2048-point chunks): `Classic` stores nanosecond timestamps in 0.085 B/pt where the
/// automatic `IntMult` mode takes 0.110; first-order deltas win on slowly drifting decimal
/// mantissas (Temperature 1.68 vs 1.73 B/pt) where it picks none; lookback deltas on a
/// flow rate that revisits a few levels (0.72 vs 0.85). The choice is in pco's own header,
/// so decoding needs nothing new.
fn int_configs() -> [ChunkConfig; 4] {
    [
        config(),
        config().with_mode_spec(ModeSpec::Classic),
        config().with_delta_spec(DeltaSpec::TryConsecutive(1)),
        config().with_delta_spec(DeltaSpec::TryLookback),
    ]
}

/// A pco configuration that a seal hint remembers (one byte, see [`PcoChoice::to_byte`]): the
/// mode and delta encoding pco settled on for an earlier chunk of the same series. Naming
/// them skips pco's own search, which on SKAB's decimal mantissas is about two thirds of a
/// pass at level 8 (160 -> 50 µs a 2,048-value chunk when the search settles on plain
/// `Classic` without deltas, which it does on most of them), and tries one configuration
/// instead of the three or four the search lists below hold. A mode other than `Classic`
/// (an integer or float multiplier) is not remembered, only that pco should detect one
/// again: its base is the data's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PcoChoice {
    classic: bool,
    delta: Delta,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delta {
    None,
    /// Consecutive deltas of this order (1..=7).
    Consecutive(u8),
    Lookback,
    /// Convolution deltas of order 2: the only order the search lists try.
    Conv2,
}

impl PcoChoice {
    /// What pco chose for a chunk; `None` for an encoding this hint cannot name.
    fn of(meta: &ChunkMeta) -> Option<PcoChoice> {
        let delta = match &meta.delta_encoding {
            DeltaEncoding::NoOp => Delta::None,
            DeltaEncoding::Consecutive { order, .. } if (1..=7).contains(order) => {
                Delta::Consecutive(*order as u8)
            }
            DeltaEncoding::Lookback { .. } => Delta::Lookback,
            DeltaEncoding::Conv1 { .. } => Delta::Conv2,
            _ => return None,
        };
        Some(PcoChoice {
            classic: matches!(meta.mode, Mode::Classic),
            delta,
        })
    }

    fn config(self) -> ChunkConfig {
        let mode = if self.classic {
            ModeSpec::Classic
        } else {
            ModeSpec::Auto
        };
        let delta = match self.delta {
            Delta::None => DeltaSpec::NoOp,
            Delta::Consecutive(k) => DeltaSpec::TryConsecutive(usize::from(k)),
            Delta::Lookback => DeltaSpec::TryLookback,
            Delta::Conv2 => DeltaSpec::TryConv1(2),
        };
        config().with_mode_spec(mode).with_delta_spec(delta)
    }

    /// Bit 0 the mode (1: `Classic`), bits 1.. the delta encoding: 0 none, 1..=7 consecutive
    /// of that order, 8 lookback, 9 convolution; so 0..=19.
    pub(crate) fn to_byte(self) -> u8 {
        let delta = match self.delta {
            Delta::None => 0,
            Delta::Consecutive(k) => k,
            Delta::Lookback => 8,
            Delta::Conv2 => 9,
        };
        delta << 1 | u8::from(self.classic)
    }

    pub(crate) fn from_byte(b: u8) -> Option<PcoChoice> {
        let delta = match b >> 1 {
            0 => Delta::None,
            k @ 1..=7 => Delta::Consecutive(k),
            8 => Delta::Lookback,
            9 => Delta::Conv2,
            _ => return None,
        };
        Some(PcoChoice {
            classic: b & 1 == 1,
            delta,
        })
    }
}

/// Every value a [`PcoChoice`] byte may take, for tests.
#[cfg(test)]
pub(crate) fn all_choices() -> impl Iterator<Item = PcoChoice> {
    (0..=19).filter_map(PcoChoice::from_byte)
}

/// The configurations to try: the hinted one alone when there is one and `allowed` holds for
/// it, else `search`.
fn candidates(
    hint: Option<PcoChoice>,
    allowed: impl Fn(PcoChoice) -> bool,
    search: impl FnOnce() -> Vec<ChunkConfig>,
) -> Vec<ChunkConfig> {
    match hint {
        Some(h) if allowed(h) => vec![h.config()],
        _ => search(),
    }
}

/// The smallest of `configs` applied to `v`, and the choice pco resolved for it; `None`
/// when pco refuses every one. `write` turns a chunk compressor into the output format.
fn smallest<C>(
    configs: &[ChunkConfig],
    compressor: impl Fn(&ChunkConfig) -> Option<C>,
    meta: impl Fn(&C) -> &ChunkMeta,
    write: impl Fn(C) -> Option<Vec<u8>>,
) -> Option<(Vec<u8>, Option<PcoChoice>)> {
    configs
        .iter()
        .filter_map(|c| {
            // A panic inside pco on some input skips that configuration instead of taking
            // down the thread that seals chunks (nothing is shared with the closure but
            // the input, which it only reads).
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let cc = compressor(c)?;
                let choice = PcoChoice::of(meta(&cc));
                Some((write(cc)?, choice))
            }))
            .ok()
            .flatten()
        })
        .min_by_key(|(out, _)| out.len())
}

/// `v` in pco's standalone format (what `simple_compress` writes for a column of one page),
/// the smallest over `configs`.
fn compress_standalone<T: Number>(
    v: &[T],
    configs: &[ChunkConfig],
) -> Option<(Vec<u8>, Option<PcoChoice>)> {
    use pco::standalone::FileCompressor;
    let fc = FileCompressor::default().with_n_hint(v.len());
    smallest(
        configs,
        |c| fc.chunk_compressor(v, c).ok(),
        |cc| cc.meta(),
        |mut cc| {
            let out = fc.write_header(Vec::new()).ok()?;
            let out = cc.write(out).ok()?;
            fc.write_footer(out).ok()
        },
    )
}

/// i64 values (timestamps) in pco's standalone format, tried with the integer configurations
/// or the hinted one; `None` when pco refuses (it does not for finite inputs; the caller then
/// uses another codec).
pub(crate) fn compress_i64(
    v: &[i64],
    hint: Option<PcoChoice>,
) -> Option<(Vec<u8>, Option<PcoChoice>)> {
    let configs = candidates(hint, |h| h.delta != Delta::Conv2, || int_configs().to_vec());
    compress_standalone(v, &configs)
}

/// `v` as one pco chunk of one page without the standalone container (magic bytes, number
/// type, count, terminator: about ten bytes a column that the chunk header already knows), the
/// smallest over `configs`; `None` when pco refuses every one.
fn compress_bare<T: Number>(
    v: &[T],
    configs: &[ChunkConfig],
) -> Option<(Vec<u8>, Option<PcoChoice>)> {
    let fc = FileCompressor::default();
    smallest(
        configs,
        |c| {
            let cc = fc.chunk_compressor(v, c).ok()?;
            (cc.n_per_page().len() == 1).then_some(cc)
        },
        |cc| cc.meta(),
        |mut cc| {
            let out = fc.write_header(Vec::new()).ok()?;
            let out = cc.write_meta(out).ok()?;
            cc.write_page(0, out).ok()
        },
    )
}

fn decompress_bare<T: Number>(buf: &[u8], n: usize) -> Result<Vec<T>, CodecError> {
    let bad = |_| CodecError::new("pco column does not decode");
    let mut out = vec![T::default(); n];
    let (fd, rest) = FileDecompressor::new(buf).map_err(bad)?;
    let (mut cd, rest) = fd.chunk_decompressor::<T, _>(rest).map_err(bad)?;
    let mut pd = cd.page_decompressor(rest, n).map_err(bad)?;
    check(pd.read(&mut out), n)?;
    Ok(out)
}

/// i64 values as a bare pco chunk, tried with the integer configurations or the hinted one.
pub(crate) fn compress_i64_bare(
    v: &[i64],
    hint: Option<PcoChoice>,
) -> Option<(Vec<u8>, Option<PcoChoice>)> {
    let configs = candidates(hint, |h| h.delta != Delta::Conv2, || int_configs().to_vec());
    compress_bare(v, &configs)
}

pub(crate) fn decompress_i64_bare(buf: &[u8], n: usize) -> Result<Vec<i64>, CodecError> {
    decompress_bare(buf, n)
}

/// i32 values as a bare pco chunk: 32-bit numbers also allow pco's convolution deltas (a
/// linear prediction from the previous two values), which pco refuses on 64-bit ones. On
/// SKAB's decimal mantissas: Accelerometer1 1.79 -> 1.77 B/pt, Temperature 1.68 -> 1.65.
///
/// Columns long enough for convolution deltas try three configurations, not all five: on
/// SKAB, leaving out `Classic` and first-order deltas (whose wins pco's own choice, lookback
/// or convolution deltas nearly match) costs 0.001 B/pt (values 1.428 -> 1.429) and saves
/// two of the five pco passes a sealed chunk of decimals paid.
///
/// With a hint, only the hinted configuration (convolution deltas only where the column is
/// long enough for them).
pub(crate) fn compress_i32_bare(
    v: &[i32],
    hint: Option<PcoChoice>,
) -> Option<(Vec<u8>, Option<PcoChoice>)> {
    let long = v.len() >= MIN_CONV_LEN;
    let configs = candidates(
        hint,
        |h| long || h.delta != Delta::Conv2,
        || {
            if long {
                vec![
                    config(),
                    config().with_delta_spec(DeltaSpec::TryLookback),
                    config().with_delta_spec(DeltaSpec::TryConv1(2)),
                ]
            } else {
                int_configs().to_vec()
            }
        },
    );
    compress_bare(v, &configs)
}

/// Shortest column that tries convolution deltas: pco 1.1 indexes the two values before
/// each prediction without checking the column holds them, and panics on a one-value
/// column (a buffer sealed with a single point at a checkpoint is one).
const MIN_CONV_LEN: usize = 16;

pub(crate) fn decompress_i32_bare(buf: &[u8], n: usize) -> Result<Vec<i32>, CodecError> {
    decompress_bare(buf, n)
}

/// f64 values in pco's standalone format with pco's own choice, or the hinted one (no
/// convolution deltas: pco refuses them on 64-bit numbers).
pub(crate) fn compress_f64(
    v: &[f64],
    hint: Option<PcoChoice>,
) -> Option<(Vec<u8>, Option<PcoChoice>)> {
    let configs = candidates(hint, |h| h.delta != Delta::Conv2, || vec![config()]);
    compress_standalone(v, &configs)
}

pub(crate) fn decompress_i64(buf: &[u8], n: usize) -> Result<Vec<i64>, CodecError> {
    let mut out = vec![0i64; n];
    check(simple_decompress_into(buf, &mut out), n)?;
    Ok(out)
}

pub(crate) fn decompress_f64(buf: &[u8], n: usize) -> Result<Vec<f64>, CodecError> {
    let mut out = vec![0f64; n];
    check(simple_decompress_into(buf, &mut out), n)?;
    Ok(out)
}

fn check(r: pco::errors::PcoResult<pco::Progress>, n: usize) -> Result<(), CodecError> {
    match r {
        Ok(p) if p.finished && p.n_processed == n => Ok(()),
        Ok(_) => Err(CodecError::new("pco column holds a different count")),
        Err(_) => Err(CodecError::new("pco column does not decode")),
    }
}
