//! Codec throughput (points/s) and size (bytes/point, printed before each group) on one SKAB
//! column and on synthetic 1 Hz sensor data, and the time to seal a chunk (both columns):
//! every candidate tried, following a seal hint, and a series' average over the hint's
//! exploring and following seals. Run with `cargo bench -p doppel-store --bench codecs`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

#[path = "../tests/support/skab.rs"]
mod skab;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use doppel_model::Value;
use doppel_store::codec::{self, floats, FloatCodec, SealHint};

const CHUNK: usize = 2048;

/// 1 Hz nanosecond timestamps with 2 % of seconds skipped, and a temperature that wanders in
/// steps of 0.01 degrees: a typical doppel signal.
fn synthetic() -> (Vec<i64>, Vec<f64>) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut t = 1_700_000_000_000_000_000i64;
    let mut x = 7000i64;
    let mut ts = Vec::with_capacity(CHUNK);
    let mut v = Vec::with_capacity(CHUNK);
    for _ in 0..CHUNK {
        t += if rand() % 50 == 0 { 2 } else { 1 } * 1_000_000_000;
        x += (rand() % 7) as i64 - 3;
        ts.push(t);
        v.push(x as f64 / 100.0);
    }
    (ts, v)
}

fn skab_column() -> Option<(Vec<i64>, Vec<f64>)> {
    let dir = skab::dir()?;
    let s = skab::load(&dir)
        .into_iter()
        .find(|s| s.file.contains("anomaly-free") && s.column == "Accelerometer1RMS")?;
    let n = s.ts.len().min(CHUNK);
    Some((s.ts[..n].to_vec(), s.values[..n].to_vec()))
}

fn bench_data(c: &mut Criterion, name: &str, ts: &[i64], v: &[f64]) {
    let n = ts.len();
    let values: Vec<Value> = v.iter().map(|&x| Value::Float(x)).collect();
    let mut tcol = Vec::new();
    codec::encode_timestamps(ts, &mut tcol);
    let mut vcol = Vec::new();
    codec::encode_values(&values, &mut vcol);
    println!(
        "{name}: {n} points; timestamps {:.3} B/pt, values {:.3} B/pt ({:?})",
        tcol.len() as f64 / n as f64,
        vcol.len() as f64 / n as f64,
        codec::float_codec_of(&vcol)
    );
    // A hint as a series holds it after sealing one chunk of this data.
    let mut primed = SealHint::default();
    primed.encode_columns(ts, &values, &mut Vec::new(), &mut Vec::new());
    let (mut hts, mut hvals) = (Vec::new(), Vec::new());
    let mut follower = primed;
    follower.encode_columns(ts, &values, &mut hts, &mut hvals);
    println!(
        "  chunk following the hint: timestamps {:.3} B/pt, values {:.3} B/pt ({:?})",
        hts.len() as f64 / n as f64,
        hvals.len() as f64 / n as f64,
        codec::float_codec_of(&hvals)
    );
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("seal/every candidate", |b| {
        b.iter(|| {
            let (mut t, mut v) = (Vec::new(), Vec::new());
            codec::encode_timestamps(black_box(ts), &mut t);
            codec::encode_values(black_box(&values), &mut v);
            (t, v)
        })
    });
    g.bench_function("seal/following the hint", |b| {
        b.iter(|| {
            let (mut t, mut v) = (Vec::new(), Vec::new());
            let mut follower = primed;
            follower.encode_columns(black_box(ts), black_box(&values), &mut t, &mut v);
            (t, v)
        })
    });
    let mut series = SealHint::default();
    g.bench_function("seal/hinted series average", |b| {
        b.iter(|| {
            let (mut t, mut v) = (Vec::new(), Vec::new());
            series.encode_columns(black_box(ts), black_box(&values), &mut t, &mut v);
            (t, v)
        })
    });
    g.bench_function("timestamps/encode", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            codec::encode_timestamps(black_box(ts), &mut out);
            out
        })
    });
    g.bench_function("timestamps/decode", |b| {
        b.iter(|| codec::decode_timestamps(black_box(&tcol), n).unwrap())
    });
    g.bench_function("values/encode (best of all codecs)", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            codec::encode_values(black_box(&values), &mut out);
            out
        })
    });
    g.bench_function("values/decode", |b| {
        b.iter(|| codec::decode_values(black_box(&vcol), n).unwrap())
    });
    for fc in [FloatCodec::Gorilla, FloatCodec::Pco, FloatCodec::Decimal] {
        let mut col = vec![0u8]; // the value-kind byte of a float column
        if !floats::encode_with(fc, v, &mut col) {
            continue;
        }
        println!(
            "  {}: {:.3} B/pt",
            fc.name(),
            (col.len() - 1) as f64 / n as f64
        );
        g.bench_with_input(BenchmarkId::new("encode", fc.name()), &fc, |b, &fc| {
            b.iter(|| {
                let mut out = Vec::new();
                floats::encode_with(fc, black_box(v), &mut out);
                out
            })
        });
        g.bench_with_input(BenchmarkId::new("decode", fc.name()), &col, |b, col| {
            b.iter(|| codec::decode_values(black_box(col), n).unwrap())
        });
    }
    g.finish();
}

fn codecs(c: &mut Criterion) {
    let (ts, v) = synthetic();
    bench_data(c, "synthetic-1hz", &ts, &v);
    if let Some((ts, v)) = skab_column() {
        bench_data(c, "skab-accelerometer1", &ts, &v);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = codecs
}
criterion_main!(benches);
