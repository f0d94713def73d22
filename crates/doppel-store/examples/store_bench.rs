//! Restart time, memory, size and query latency of a store holding ~10 M points.
//!
//! ```text
//! cargo run --release -p doppel-store --example store_bench -- write DIR [points] [--no-checkpoint | --crash]
//! cargo run --release -p doppel-store --example store_bench -- open DIR
//! cargo run --release -p doppel-store --example store_bench -- ingest DIR [points] [--writers N] [--batch N] [--step N]
//! ```
//!
//! `write` fills a fresh store with 10 twins × 10 signals at 1 Hz (decimal sensor-like random
//! walks) in batches of one second of every signal, then closes it (with a checkpoint, unless
//! `--no-checkpoint`: then a restart replays the whole WAL, like the first store version;
//! with `--crash` automatic checkpoints run but none at close, leaving the WAL tail a kill -9
//! would).
//! `open` (run it as its own process so the figures are its own) times `Store::open`, reads
//! resident memory, and times `last`, `range` and `downsample` (one day of 1 Hz points into
//! 1,000 buckets; and whole-chunk buckets answered from summaries).
//! `ingest` measures durable batched ingest: `--writers` threads (default 4) each own an equal
//! share of 100 twins × 10 signals and call `Store::write_batch` (as the engine does: one
//! reading per twin and second with its ten signals) with batches of `--batch` points
//! (default 10,000), one second of their signals after another, every write acknowledged only
//! after its group commit's fsync. Several writers' batches share one fsync. Values are
//! decimal random walks moving up to `--step` hundredths a second (default 10; larger steps
//! are less compressible, which fills a given size of history with fewer points). The store
//! is closed (checkpointed) at the end, so `open DIR` can time a restart on it.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use doppel_model::{ValidatedBatch, ValidatedReading, Value};
use doppel_store::{Agg, Row, Store, StoreOptions};

const TWINS: usize = 10;
const SIGNALS: usize = 10;
// Midnight UTC, so one day splits into exactly 1,000 buckets of 86.4 s.
const START: i64 = 1_700_006_400_000_000_000;
const SECOND: i64 = 1_000_000_000;

fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn write(dir: &Path, points: usize, checkpoint: bool, on_close: bool) {
    let _ = std::fs::remove_dir_all(dir);
    let opts = StoreOptions {
        checkpoint_on_close: checkpoint && on_close,
        checkpoint_wal_bytes: if checkpoint { 64 << 20 } else { u64::MAX },
        ..StoreOptions::default()
    };
    let store = Store::open(dir, opts).unwrap();
    let names: Vec<(Arc<str>, Arc<str>)> = (0..TWINS * SIGNALS)
        .map(|i| {
            (
                Arc::from(format!("pump-{}", i / SIGNALS)),
                Arc::from(format!("signal-{}", i % SIGNALS)),
            )
        })
        .collect();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut walk: Vec<i64> = (0..names.len() as i64).map(|i| 5000 + i * 100).collect();
    let seconds = points / names.len();
    let started = Instant::now();
    let per_batch = 10; // seconds per write call: 1,000 rows
    for s0 in (0..seconds).step_by(per_batch) {
        let mut rows = Vec::with_capacity(per_batch * names.len());
        for s in s0..(s0 + per_batch).min(seconds) {
            for (i, (twin, signal)) in names.iter().enumerate() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                walk[i] += (state % 21) as i64 - 10;
                rows.push(Row {
                    twin: twin.clone(),
                    signal: signal.clone(),
                    ts: START + s as i64 * SECOND,
                    value: Value::Float(walk[i] as f64 / 100.0),
                });
            }
        }
        store.write(rows).unwrap();
    }
    let wrote = started.elapsed();
    let closing = Instant::now();
    store.close().unwrap();
    let closed = closing.elapsed();
    let stats = store.stats();
    let total = seconds * names.len();
    println!(
        "wrote {total} points in {:.1} s ({:.0} points/s, fsync per 1,000-row write); close {:.2} s",
        wrote.as_secs_f64(),
        total as f64 / wrote.as_secs_f64(),
        closed.as_secs_f64()
    );
    println!(
        "on disk: {} bytes = {:.2} B/point (WAL {} B, {} segment files {} B, {} chunks, {} checkpoints)",
        dir_bytes(dir),
        dir_bytes(dir) as f64 / total as f64,
        stats.wal_bytes,
        stats.segment_files,
        stats.segment_bytes,
        stats.chunks,
        stats.checkpoints
    );
}

fn ingest(dir: &Path, points: usize, writers: usize, batch: usize, step: usize) {
    let step = step.max(1) as u64;
    const TWINS: usize = 100;
    let _ = std::fs::remove_dir_all(dir);
    let store = Arc::new(Store::open(dir, StoreOptions::default()).unwrap());
    let writers = writers.clamp(1, TWINS);
    let per_writer = points / writers;
    let started = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                let names: Vec<(Arc<str>, Arc<str>)> = (0..TWINS * SIGNALS)
                    .filter(|i| (i / SIGNALS) % writers == w)
                    .map(|i| {
                        (
                            Arc::from(format!("pump-{}", i / SIGNALS)),
                            Arc::from(format!("signal-{}", i % SIGNALS)),
                        )
                    })
                    .collect();
                let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ w as u64;
                let mut walk: Vec<i64> = (0..names.len() as i64).map(|i| 5000 + i * 100).collect();
                let mut written = 0;
                let mut second = 0i64;
                let mut latencies = Vec::new();
                let model: Arc<str> = Arc::from("pump");
                while written < per_writer {
                    // As the engine writes: one reading per twin and second, its ten signals.
                    let mut readings: Vec<ValidatedReading> = Vec::new();
                    let mut n = 0;
                    while n < batch && written + n < per_writer {
                        for (k, group) in names.chunks(SIGNALS).enumerate() {
                            let values = group
                                .iter()
                                .enumerate()
                                .map(|(j, (_, signal))| {
                                    let i = k * SIGNALS + j;
                                    state ^= state << 13;
                                    state ^= state >> 7;
                                    state ^= state << 17;
                                    walk[i] += (state % (2 * step + 1)) as i64 - step as i64;
                                    (signal.clone(), Value::Float(walk[i] as f64 / 100.0))
                                })
                                .collect::<Vec<_>>();
                            n += values.len();
                            readings.push(ValidatedReading {
                                twin: group[0].0.clone(),
                                model: model.clone(),
                                ts: START + second * SECOND,
                                values: values.into_iter().collect(),
                            });
                        }
                        second += 1;
                    }
                    written += n;
                    let t = Instant::now();
                    store
                        .write_batch(Arc::new(ValidatedBatch { readings }))
                        .unwrap();
                    latencies.push(t.elapsed());
                }
                (written, latencies)
            })
        })
        .collect();
    let mut total = 0;
    let mut latencies = Vec::new();
    for h in handles {
        let (n, l) = h.join().unwrap();
        total += n;
        latencies.extend(l);
    }
    let wrote = started.elapsed();
    latencies.sort();
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let closing = Instant::now();
    store.close().unwrap();
    let closed = closing.elapsed();
    let stats = store.stats();
    println!(
        "ingest: {total} points by {writers} writers in batches of {batch}: {:.2} s = {:.0} points/s \
         (write latency p50 {:.1} ms, p99 {:.1} ms); close {:.2} s; {} points stored, {} chunks",
        wrote.as_secs_f64(),
        total as f64 / wrote.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        closed.as_secs_f64(),
        stats.points,
        stats.chunks
    );
}

fn time<T>(n: u32, mut f: impl FnMut() -> T) -> (Duration, T) {
    let started = Instant::now();
    let mut out = f();
    for _ in 1..n {
        out = f();
    }
    (started.elapsed() / n, out)
}

fn open(dir: &Path) {
    let (rss0, _) = rss_kib();
    let started = Instant::now();
    let store = Store::open(
        dir,
        StoreOptions {
            checkpoint_on_close: false,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let opened = started.elapsed();
    let (rss, hwm) = rss_kib();
    let stats = store.stats();
    println!(
        "open: {:.3} s for {} points in {} series ({} chunks, {} open points, WAL {} B); RSS {} MiB (peak {} MiB, {} MiB before open)",
        opened.as_secs_f64(),
        stats.points,
        stats.series,
        stats.chunks,
        stats.open_points,
        stats.wal_bytes,
        rss / 1024,
        hwm / 1024,
        rss0 / 1024
    );

    let (t, last) = time(1_000_000, || store.last("pump-3", "signal-7"));
    println!(
        "last: {:.0} ns per call ({:?})",
        t.as_nanos(),
        last.map(|p| p.ts)
    );
    let day = 86_400 * SECOND;
    let (t, buckets) = time(50, || {
        store
            .downsample(
                "pump-3",
                "signal-7",
                START,
                START + day,
                day / 1000,
                Agg::Mean,
            )
            .unwrap()
    });
    println!(
        "downsample 86,400 points -> {} buckets (mean): {:.2} ms",
        buckets.len(),
        t.as_secs_f64() * 1e3
    );
    let (t, buckets) = time(50, || {
        store
            .downsample(
                "pump-3",
                "signal-7",
                START,
                START + day,
                day / 1000,
                Agg::Max,
            )
            .unwrap()
    });
    println!(
        "downsample 86,400 points -> {} buckets (max): {:.2} ms",
        buckets.len(),
        t.as_secs_f64() * 1e3
    );
    // Buckets of 8 h hold whole 2048-point chunks: answered mostly from summaries.
    let (t, buckets) = time(50, || {
        store
            .downsample(
                "pump-3",
                "signal-7",
                START,
                START + day,
                8 * 3600 * SECOND,
                Agg::Mean,
            )
            .unwrap()
    });
    println!(
        "downsample 86,400 points -> {} buckets of 8 h (mean, from summaries): {:.3} ms",
        buckets.len(),
        t.as_secs_f64() * 1e3
    );
    let (t, points) = time(50, || {
        store
            .range("pump-3", "signal-7", START, START + day, usize::MAX)
            .unwrap()
            .len()
    });
    println!(
        "range of one day: {points} points in {:.2} ms",
        t.as_secs_f64() * 1e3
    );
    let (t, points) = time(1000, || {
        store
            .range(
                "pump-3",
                "signal-7",
                START + 50_000 * SECOND,
                START + 50_060 * SECOND,
                1000,
            )
            .unwrap()
            .len()
    });
    println!(
        "range of one minute: {points} points in {:.1} µs",
        t.as_secs_f64() * 1e6
    );
    let (t, n) = time(1000, || {
        store.as_of("pump-3", START + 12_345 * SECOND).len()
    });
    println!(
        "as_of (10 signals, mid-chunk): {:.1} µs ({n} signals)",
        t.as_secs_f64() * 1e6
    );
    let (rss, hwm) = rss_kib();
    println!(
        "after queries: RSS {} MiB (peak {} MiB)",
        rss / 1024,
        hwm / 1024
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let default_dir = std::env::temp_dir().join("doppel-store-bench");
    let dir = args.get(2).map_or(default_dir.as_path(), Path::new);
    match args.get(1).map(String::as_str) {
        Some("write") => {
            let points = args
                .get(3)
                .and_then(|a| a.parse().ok())
                .unwrap_or(10_000_000);
            let flag = |f: &str| args.iter().any(|a| a == f);
            write(dir, points, !flag("--no-checkpoint"), !flag("--crash"));
        }
        Some("open") => open(dir),
        Some("ingest") => {
            let points = args
                .get(3)
                .and_then(|a| a.parse().ok())
                .unwrap_or(10_000_000);
            let opt = |f: &str, default: usize| {
                args.iter()
                    .position(|a| a == f)
                    .and_then(|i| args.get(i + 1))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(default)
            };
            ingest(
                dir,
                points,
                opt("--writers", 4),
                opt("--batch", 10_000),
                opt("--step", 10),
            );
        }
        _ => println!(
            "usage: store_bench (write DIR [points] [--no-checkpoint | --crash] | open DIR \
             | ingest DIR [points] [--writers N] [--batch N] [--step N])"
        ),
    }
}
