//! What the store holds in memory per twin of a large fleet: writes `TWINS` twins × 10
//! signals × `READINGS` readings (as the engine does, one batch of readings per request),
//! then counts the bytes the store's heap holds (a counting allocator, so the figure is the
//! store's structures, not the allocator's or the OS's view) while the points sit in open
//! buffers, after a checkpoint sealed them, and after a close and reopen.
//!
//!     cargo run --release -p doppel-store --example series_memory -- [twins] [readings]

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;

use doppel_model::{ValidatedBatch, ValidatedReading, Value};
use doppel_store::{Store, StoreOptions};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const SIGNALS: usize = 10;
const START: i64 = 1_767_225_600_000_000_000;
const SECOND: i64 = 1_000_000_000;

fn live() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let twins: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let readings: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<Arc<str>> = (0..twins).map(|i| format!("t{i:06}").into()).collect();
    let signals: Vec<Arc<str>> = (0..SIGNALS).map(|k| format!("s{k}").into()).collect();
    let model: Arc<str> = "m10".into();

    let base = live();
    // No checkpoint before the one measured: the points stay in open buffers.
    let opts = StoreOptions {
        checkpoint_wal_bytes: u64::MAX,
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path(), opts).unwrap();
    let opened = live();
    for r in 0..readings {
        for part in names.chunks(2_000) {
            let readings = part
                .iter()
                .enumerate()
                .map(|(i, twin)| ValidatedReading {
                    twin: twin.clone(),
                    model: model.clone(),
                    ts: START + r as i64 * SECOND,
                    values: signals
                        .iter()
                        .enumerate()
                        .map(|(k, s)| {
                            (
                                s.clone(),
                                Value::Float(((i * 7 + k * 3 + r) % 100) as f64 + 0.5),
                            )
                        })
                        .collect(),
                })
                .collect();
            store
                .write_batch(Arc::new(ValidatedBatch { readings }))
                .unwrap();
        }
    }
    let written = live();
    let open_points = store.stats().open_points;
    store.checkpoint().unwrap();
    let sealed = live();
    store.close().unwrap();
    drop(store);
    let closed = live();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let reopened = live();
    let per = |b: i64| b as f64 / twins as f64;
    println!("{twins} twins × {SIGNALS} signals × {readings} readings ({open_points} points open)");
    println!(
        "open buffers (before a checkpoint)  {:8.0} B per twin",
        per(written - opened)
    );
    println!(
        "after a checkpoint sealed them      {:8.0} B per twin",
        per(sealed - opened)
    );
    println!(
        "after close and reopen              {:8.0} B per twin",
        per(reopened - closed)
    );
    println!("(empty store: {} B)", opened - base);
    drop(store);
}
