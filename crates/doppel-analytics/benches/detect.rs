//! Cost of scoring one reading of a 10-signal twin (all detectors and the multivariate
//! model), after warm-up.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use doppel_analytics::{DetectorConfig, TwinDetector};

const NAMES: [&str; 10] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"];

fn readings(n: usize) -> Vec<[(&'static str, f64); 10]> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    (0..n)
        .map(|_| {
            let common = noise();
            let mut r = [("", 0.0); 10];
            for (j, name) in NAMES.iter().enumerate() {
                r[j] = (name, 10.0 * j as f64 + common + 0.3 * noise());
            }
            r
        })
        .collect()
}

fn observe(c: &mut Criterion) {
    let data = readings(4096);
    let mut det = TwinDetector::new(DetectorConfig::default());
    let mut ts = 0i64;
    for r in data.iter().take(1000) {
        ts += 1_000_000_000;
        det.observe(ts, r);
    }
    let mut g = c.benchmark_group("twin_detector");
    g.throughput(Throughput::Elements(1));
    g.bench_function("observe_10_signals", |b| {
        let mut i = 0;
        b.iter(|| {
            ts += 1_000_000_000;
            i = (i + 1) % data.len();
            det.observe(ts, &data[i])
        })
    });
    g.finish();
}

criterion_group!(benches, observe);
criterion_main!(benches);
