//! Size and query latency of rollups: one signal at 1 Hz for a year, then cut by retention.
//!
//! ```text
//! cargo run --release -p doppel-store --example rollup_bench -- DIR [days]
//! ```
//!
//! Writes `days` (default 365) of one decimal random walk at 1 Hz (the sensor-like series of
//! `store_bench`), checkpoints, and times a downsample of the whole range at 1 h steps from
//! the raw chunks. Then cuts everything (`drop_before` at the end: the cut rolls the year up),
//! checkpoints, and reports the bytes of the rollups per minute of history and the latency of
//! the same downsample (and at 1 min and 1 day steps) answered from them, median of 20 runs.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use doppel_model::Value;
use doppel_store::{Agg, Row, Store, StoreOptions};

/// Midnight UTC.
const START: i64 = 1_767_225_600_000_000_000;
const SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

fn median(store: &Store, to: i64, step: i64, agg: Agg) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..20 {
        let t = Instant::now();
        n = store
            .downsample("pump-1", "bearing_temp", START, to, step, agg)
            .unwrap()
            .len();
        times.push(t.elapsed());
    }
    times.sort();
    (times[times.len() / 2], n)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: rollup_bench DIR [days]");
        std::process::exit(2);
    };
    let dir = Path::new(dir);
    let days: i64 = args.get(1).and_then(|d| d.parse().ok()).unwrap_or(365);
    let _ = std::fs::remove_dir_all(dir);
    let opts = StoreOptions {
        fsync: false,
        ..StoreOptions::default()
    };
    let store = Store::open(dir, opts).unwrap();
    let (twin, signal): (Arc<str>, Arc<str>) = (Arc::from("pump-1"), Arc::from("bearing_temp"));
    let seconds = days * 86_400;
    let end = START + seconds * SECOND;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut walk = 5000i64;
    let t = Instant::now();
    for s0 in (0..seconds).step_by(10_000) {
        let rows = (s0..(s0 + 10_000).min(seconds))
            .map(|s| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                walk += (state % 21) as i64 - 10;
                Row {
                    twin: twin.clone(),
                    signal: signal.clone(),
                    ts: START + s * SECOND,
                    value: Value::Float(walk as f64 / 100.0),
                }
            })
            .collect();
        store.write(rows).unwrap();
    }
    store.checkpoint().unwrap();
    let raw = store.series_stats()[0].chunk_bytes;
    println!(
        "{days} days at 1 Hz: {seconds} points written in {:.1} s, chunks {raw} B ({:.3} B/point)",
        t.elapsed().as_secs_f64(),
        raw as f64 / seconds as f64
    );
    let (raw_1h, n) = median(&store, end, HOUR, Agg::Mean);
    println!(
        "downsample {days} d at 1 h (mean) from raw chunks: {:.2} ms ({n} buckets)",
        raw_1h.as_secs_f64() * 1e3
    );

    let t = Instant::now();
    store.drop_before("pump-1", None, end).unwrap();
    let cut = t.elapsed();
    store.checkpoint().unwrap();
    let stats = store.stats();
    let minutes = seconds / 60;
    println!(
        "cut of {days} d: {:.2} s; rollups {} B in {} blocks = {:.2} B/minute of history ({:.2} % of the raw chunks)",
        cut.as_secs_f64(),
        stats.rollup_bytes,
        stats.rollup_blocks,
        stats.rollup_bytes as f64 / minutes as f64,
        100.0 * stats.rollup_bytes as f64 / raw as f64
    );
    for (step, name) in [(HOUR, "1 h"), (MINUTE, "1 min"), (24 * HOUR, "1 d")] {
        for agg in [Agg::Mean, Agg::Stddev] {
            let (d, n) = median(&store, end, step, agg);
            println!(
                "downsample {days} d at {name} ({agg:?}) from rollups: {:.2} ms ({n} buckets)",
                d.as_secs_f64() * 1e3
            );
        }
    }
    store.close().unwrap();
}
