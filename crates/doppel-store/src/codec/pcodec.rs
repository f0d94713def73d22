//! Thin wrapper over the `pco` crate (pcodec) for i64 and f64 columns.
//!
//! pco finds what Gorilla cannot: a common multiplier (ADC steps, decimal values), the
//! best delta order, and entropy-codes the rest close to its information content. Decoding is
//! into a buffer of exactly the expected count, and pco itself caps what an untrusted header
//! may preallocate, so stored bytes cannot make us allocate more than the caller's bound.

use pco::data_types::Number;
use pco::standalone::{simple_compress, simple_decompress_into};
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

/// `None` when pco refuses (it does not for finite inputs; the caller then uses another
/// codec).
pub(crate) fn compress_i64(v: &[i64]) -> Option<Vec<u8>> {
    int_configs()
        .iter()
        .filter_map(|c| simple_compress(v, c).ok())
        .min_by_key(Vec::len)
}

/// `v` as one pco chunk of one page without the standalone container (magic bytes, number
/// type, count, terminator: about ten bytes a column that the chunk header already knows), the
/// smallest over `configs`; `None` when pco refuses every one.
fn compress_bare<T: Number>(v: &[T], configs: &[ChunkConfig]) -> Option<Vec<u8>> {
    let fc = FileCompressor::default();
    configs
        .iter()
        .filter_map(|c| {
            // A panic inside pco on some input skips that configuration instead of taking
            // down the thread that seals chunks (nothing is shared with the closure but
            // the input, which it only reads).
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut cc = fc.chunk_compressor(v, c).ok()?;
                if cc.n_per_page().len() != 1 {
                    return None;
                }
                let out = fc.write_header(Vec::new()).ok()?;
                let out = cc.write_meta(out).ok()?;
                cc.write_page(0, out).ok()
            }))
            .ok()
            .flatten()
        })
        .min_by_key(Vec::len)
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

/// i64 values as a bare pco chunk, tried with the integer configurations.
pub(crate) fn compress_i64_bare(v: &[i64]) -> Option<Vec<u8>> {
    compress_bare(v, &int_configs())
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
pub(crate) fn compress_i32_bare(v: &[i32]) -> Option<Vec<u8>> {
    if v.len() < MIN_CONV_LEN {
        return compress_bare(v, &int_configs());
    }
    compress_bare(
        v,
        &[
            config(),
            config().with_delta_spec(DeltaSpec::TryLookback),
            config().with_delta_spec(DeltaSpec::TryConv1(2)),
        ],
    )
}

/// Shortest column that tries convolution deltas: pco 1.1 indexes the two values before
/// each prediction without checking the column holds them, and panics on a one-value
/// column (a buffer sealed with a single point at a checkpoint is one).
const MIN_CONV_LEN: usize = 16;

pub(crate) fn decompress_i32_bare(buf: &[u8], n: usize) -> Result<Vec<i32>, CodecError> {
    decompress_bare(buf, n)
}

pub(crate) fn compress_f64(v: &[f64]) -> Option<Vec<u8>> {
    simple_compress(v, &config()).ok()
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
