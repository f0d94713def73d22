//! `doppel store stats` on a data directory written by the real server: refused while the
//! server runs (the store's directory lock), exact series and point figures once it stopped,
//! in text and JSON.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{create_plant, Options, TestServer, T0_MS};
use serde_json::{json, Value};

fn store_stats(s: &TestServer, extra: &[&str]) -> (bool, String, String) {
    let out = Command::new(common::doppel_bin())
        .args(["store", "stats", "--data-dir"])
        .arg(s.data_dir())
        .args(extra)
        .env_remove("DOPPEL_DATA_DIR")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn store_stats_of_a_stopped_server() {
    let mut s = TestServer::start_with(Options {
        env: vec![("DOPPEL_ANOMALY".into(), "off".into())],
        ..Options::default()
    });
    create_plant(&s);
    let p1: Vec<Value> = (0..3_000)
        .map(|i| json!({"ts": T0_MS + i * 1_000, "values": {"cycles": i, "bearing_temp": 40.0 + (i % 50) as f64 / 10.0}}))
        .collect();
    s.post_ok("/api/v1/twins/pump-1/readings", &json!(p1));
    let p2: Vec<Value> = (0..100)
        .map(|i| json!({"ts": T0_MS + i * 1_000, "values": {"running": i % 2 == 0}}))
        .collect();
    s.post_ok("/api/v1/twins/pump-2/readings", &json!(p2));

    let (ok, _, err) = store_stats(&s, &[]);
    assert!(!ok, "stats ran against a live server");
    assert!(err.contains("in use by a running server"), "{err}");

    s.stop();
    let (ok, out, err) = store_stats(&s, &["--json", "--top", "2"]);
    assert!(ok, "stats failed: {err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["series"], 3, "{r}");
    assert_eq!(r["points"], 6_100, "{r}");
    // A clean stop checkpoints: everything is in segment files, 3000 points sealed into
    // 2048-point chunks (the rest in chunks sealed at the checkpoint).
    assert!(r["segment_files"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["chunks"].as_u64().unwrap() >= 3, "{r}");
    assert_eq!(r["open_points"], 0, "{r}");
    let bytes = r["wal_bytes"].as_u64().unwrap() + r["segment_bytes"].as_u64().unwrap();
    assert_eq!(r["bytes"], bytes, "{r}");
    let bpp = r["bytes_per_point"].as_f64().unwrap();
    assert!(bpp > 0.0 && bpp < 32.0, "{bpp} bytes per point");
    let top = r["top"].as_array().unwrap();
    assert_eq!(top.len(), 2, "{r}");
    assert_eq!(top[0]["twin"], "pump-1");
    assert_eq!(top[0]["signal"], "bearing_temp");
    assert_eq!(top[0]["points"], 3_000);
    assert_eq!(top[1]["signal"], "cycles");
    assert!(top[0]["chunk_bytes"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["rollup_bytes"], 0, "no retention, no rollups: {r}");
    assert_eq!(top[0]["rollup_bytes"], 0, "{r}");

    let (ok, out, err) = store_stats(&s, &[]);
    assert!(ok, "stats failed: {err}");
    assert!(out.contains("series          3"), "{out}");
    assert!(out.contains("points          6100"), "{out}");
    assert!(out.contains("pump-2"), "{out}");

    // Stats writes nothing: the server opens the same history afterwards.
    s.restart();
    let h = s.get_ok("/api/v1/twins/pump-1/signals/cycles/history?limit=10000");
    assert_eq!(h["points"].as_array().unwrap().len(), 3_000);
}

#[test]
fn store_stats_of_a_directory_without_history_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::doppel_bin())
        .args(["store", "stats", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("no `history` directory"), "{err}");
}
