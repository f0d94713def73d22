//! A data directory written before chunk summaries held `m2` (`tests/fixtures/store-v1`:
//! two segment files with flag-1 summaries, one of them holding a late point's re-sealed
//! chunk, and a WAL tail) opens, answers every aggregate including the standard deviation
//! (decoding the old chunks), and keeps doing so as new chunks are sealed beside them.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::sync::Arc;

use doppel_model::Value;
use doppel_store::{Agg, Row, Store, StoreOptions};

const S: i64 = 1_000_000_000;

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), &target).unwrap();
        }
    }
}

fn opts() -> StoreOptions {
    StoreOptions {
        fsync: false,
        chunk_points: 8,
        checkpoint_wal_bytes: u64::MAX,
        ..StoreOptions::default()
    }
}

/// Every aggregate of `signal` over a few steps, against the points themselves.
fn check_against_points(store: &Store, signal: &str) {
    let points = store
        .range("pump-1", signal, i64::MIN, i64::MAX, usize::MAX)
        .unwrap();
    for step in [S, 7 * S, 16 * S, 60 * S, 1000 * S] {
        let mut buckets: Vec<(i64, Vec<f64>)> = Vec::new();
        for p in &points {
            let start = p.ts.div_euclid(step) * step;
            let x = p.value.as_f64().unwrap();
            match buckets.last_mut() {
                Some((s, xs)) if *s == start => xs.push(x),
                _ => buckets.push((start, vec![x])),
            }
        }
        for agg in [Agg::Stddev, Agg::Mean, Agg::Min, Agg::Max, Agg::Count] {
            let got = store
                .downsample("pump-1", signal, -S, 1000 * S, step, agg)
                .unwrap();
            assert_eq!(got.len(), buckets.len(), "{signal} {agg:?} step {step}");
            for (g, (start, xs)) in got.iter().zip(&buckets) {
                let n = xs.len() as f64;
                let mean = xs.iter().sum::<f64>() / n;
                let want = match agg {
                    Agg::Stddev if xs.len() < 2 => 0.0,
                    Agg::Stddev => {
                        (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
                    }
                    Agg::Mean => mean,
                    Agg::Min => xs.iter().copied().fold(f64::INFINITY, f64::min),
                    Agg::Max => xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    _ => n,
                };
                assert_eq!((g.start, g.count), (*start, xs.len() as u64));
                assert!(
                    (g.value - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "{signal} {agg:?} step {step} bucket {start}: {} vs {want}",
                    g.value
                );
            }
        }
    }
}

#[test]
fn a_store_written_before_m2_answers_stddev() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("history");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1"),
        &dir,
    );
    let store = Store::open(&dir, opts()).unwrap();
    assert_eq!(store.stats().segment_files, 2);
    let temp = store
        .range("pump-1", "temp", i64::MIN, i64::MAX, usize::MAX)
        .unwrap();
    assert_eq!(temp.len(), 151, "150 seconds and the late point");
    assert_eq!(temp[11].ts, 10 * S + S / 2);
    assert_eq!(temp[11].value, Value::Float(1003.25));
    assert_eq!(store.stats().points, 251);
    check_against_points(&store, "temp");
    check_against_points(&store, "rpm");

    // New chunks (with m2) next to old ones, a late point re-sealing an old chunk, a
    // checkpoint that compacts old and new into one file, and a reopen.
    let rows = (150..200)
        .chain([3, 95])
        .map(|i| Row {
            twin: Arc::from("pump-1"),
            signal: Arc::from("temp"),
            ts: i * S + 1,
            value: Value::Float(1001.0 + (i % 7) as f64 / 8.0),
        })
        .collect();
    store.write(rows).unwrap();
    check_against_points(&store, "temp");
    store.checkpoint().unwrap();
    check_against_points(&store, "temp");
    store.close().unwrap();
    drop(store);
    let store = Store::open(&dir, opts()).unwrap();
    assert_eq!(store.stats().points, 303);
    check_against_points(&store, "temp");
    check_against_points(&store, "rpm");
}
