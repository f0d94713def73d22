//! Line-protocol decoding, points/s: doppel's decoder (direct scan of plain lines, readings
//! borrowing names from the body) against `influxdb_line_protocol::parse_lines`, the parser
//! of InfluxDB 3 itself, on the same body: 500 lines of 10 float fields, what
//! `doppel bench ingest --protocol lp --batch 500` sends. The peer only parses; doppel's
//! figure includes turning each line into a reading. Run with
//! `cargo bench -p doppel-server --bench line_protocol`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use doppel_model::Precision;
use doppel_server::ingest::line_protocol;

const LINES: usize = 500;
const FIELDS: usize = 10;

/// Lines as the load generator writes them: `model,twin=t042 s0=..,...,s9=.. <ns>`.
fn body() -> String {
    let mut out = String::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in 0..LINES {
        out.push_str(&format!("m10,twin=t{:03} ", i % 100));
        for k in 0..FIELDS {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = (x % 100_000) as f64 / 100.0;
            if k > 0 {
                out.push(',');
            }
            out.push_str(&format!("s{k}={v}"));
        }
        out.push_str(&format!(
            " {}\n",
            1_767_225_600_000_000_000i64 + i as i64 * 1_000_000
        ));
    }
    out
}

fn decode(c: &mut Criterion) {
    let body = body();
    let mut g = c.benchmark_group("line_protocol_500x10");
    g.throughput(Throughput::Elements((LINES * FIELDS) as u64));
    g.bench_function("doppel_decode", |b| {
        b.iter(|| {
            let d = line_protocol::decode(black_box(&body), Precision::Nanoseconds, 0).unwrap();
            black_box(d.readings.len())
        })
    });
    g.bench_function("influxdb3_parse_lines", |b| {
        b.iter(|| {
            let n = influxdb_line_protocol::parse_lines(black_box(&body))
                .map(|l| l.unwrap().field_set.len())
                .sum::<usize>();
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
