//! A data directory written before chunk summaries held `m2` (`tests/fixtures/store-v1`:
//! two segment files with flag-1 summaries, one of them holding a late point's re-sealed
//! chunk, and a WAL tail) opens, answers every aggregate including the standard deviation
//! (decoding the old chunks), and keeps doing so as new chunks are sealed beside them; a
//! retention cut over its old chunks keeps their rollups in a new (version 2) segment file.

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

/// Per-minute aggregates of `points`, for comparing with rollups.
fn minutes(points: &[(i64, f64)], agg: Agg) -> Vec<(i64, u64, f64)> {
    let mut buckets: Vec<(i64, Vec<f64>)> = Vec::new();
    for &(ts, x) in points {
        let start = ts.div_euclid(60 * S) * 60 * S;
        match buckets.last_mut() {
            Some((s, xs)) if *s == start => xs.push(x),
            _ => buckets.push((start, vec![x])),
        }
    }
    buckets
        .into_iter()
        .map(|(start, xs)| {
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            let value = match agg {
                Agg::Stddev if xs.len() < 2 => 0.0,
                Agg::Stddev => {
                    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
                }
                Agg::Mean => mean,
                Agg::First => xs[0],
                Agg::Last => xs[xs.len() - 1],
                _ => n,
            };
            (start, xs.len() as u64, value)
        })
        .collect()
}

#[test]
fn a_cut_over_version_1_segments_keeps_rollups_in_a_version_2_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("history");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1"),
        &dir,
    );
    let store = Store::open(&dir, opts()).unwrap();
    let all: Vec<(i64, f64)> = store
        .range("pump-1", "temp", i64::MIN, i64::MAX, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|p| (p.ts, p.value.as_f64().unwrap()))
        .collect();
    // A cut in the middle of the second minute, through chunks whose summaries lack m2:
    // rollups are made from the points, so they have it.
    store.drop_before("pump-1", Some("temp"), 90 * S).unwrap();
    let check = |store: &Store, when: &str| {
        for agg in [Agg::Mean, Agg::Stddev, Agg::First, Agg::Last, Agg::Count] {
            let got: Vec<(i64, u64, f64)> = store
                .downsample("pump-1", "temp", 0, 60 * 60 * S, 60 * S, agg)
                .unwrap()
                .into_iter()
                .map(|b| (b.start, b.count, b.value))
                .collect();
            let want = minutes(&all, agg);
            assert_eq!(got.len(), want.len(), "{agg:?} {when}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!((g.0, g.1), (w.0, w.1), "{agg:?} {when}");
                assert!(
                    (g.2 - w.2).abs() <= 1e-9 * w.2.abs().max(1.0),
                    "{agg:?} {when}: {g:?} vs {w:?}"
                );
            }
        }
        let raw = store
            .range("pump-1", "temp", i64::MIN, i64::MAX, usize::MAX)
            .unwrap();
        assert!(
            raw.iter().all(|p| p.ts >= 90 * S),
            "{when}: range does not return rollups"
        );
    };
    check(&store, "after the cut");
    store.checkpoint().unwrap();
    check(&store, "after a checkpoint");
    store.close().unwrap();
    drop(store);
    let mut magics: Vec<Vec<u8>> = fs::read_dir(dir.join("chunks"))
        .unwrap()
        .map(|e| fs::read(e.unwrap().path()).unwrap()[..8].to_vec())
        .collect();
    magics.sort();
    assert!(magics.contains(&b"DPLSEG02".to_vec()), "{magics:?}");
    let store = Store::open(&dir, opts()).unwrap();
    check(&store, "after reopen");
    assert!(store.stats().rollup_bytes > 0);
}
