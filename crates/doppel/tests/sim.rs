//! End-to-end tests of `doppel sim`: `dataset` writes the promised files (rows, columns,
//! ground truth) byte-identically for a seed whatever the thread count; `live` lands readings
//! in a running server over HTTP and over MQTT; `load` reports its rate and latencies.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{doppel_bin, run_bounded, Output, TestServer};
use serde_json::Value;

fn sim(args: &[&str]) -> Output {
    let mut cmd = Command::new(doppel_bin());
    cmd.arg("sim").args(args);
    for var in ["DOPPEL_TOKEN", "DOPPEL_URL"] {
        cmd.env_remove(var);
    }
    let out = run_bounded(&mut cmd, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "doppel sim {args:?} failed ({}):\n{}\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    out
}

fn dataset(out: &Path, extra: &[&str]) {
    let mut args = vec![
        "dataset",
        "--out",
        out.to_str().unwrap(),
        "--twins",
        "2",
        "--hours",
        "1",
    ];
    args.extend_from_slice(extra);
    sim(&args);
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn dataset_has_a_row_per_second_every_signal_and_the_ground_truth_and_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    dataset(&a, &["--seed", "11", "--format", "both"]);

    let catalog: Value = serde_json::from_str(&read(&a.join("catalog.json"))).unwrap();
    let pump = catalog["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "centrifugal_pump")
        .unwrap();
    let signals: Vec<&str> = pump["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for twin in ["pump-001", "pump-002"] {
        let csv = read(&a.join(format!("{twin}.csv")));
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(header[0], "timestamp");
        assert_eq!(header[1..], signals[..], "columns in model order");
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), 3_600, "one row per second for an hour");
        assert!(rows.iter().all(|r| r.len() == header.len()));
        assert_eq!(rows[0][0], "2026-01-05T00:00:00Z");
        assert_eq!(rows[1][0], "2026-01-05T00:00:01Z");
        assert_eq!(rows[3_599][0], "2026-01-05T00:59:59Z");
        let flow = header.iter().position(|h| *h == "flow").unwrap();
        let mean_flow = rows
            .iter()
            .filter_map(|r| r[flow].parse::<f64>().ok())
            .sum::<f64>()
            / 3_600.0;
        assert!((40.0..135.0).contains(&mean_flow), "flow {mean_flow}");
        let running = header.iter().position(|h| *h == "running").unwrap();
        assert!(rows
            .iter()
            .all(|r| ["true", "false", ""].contains(&r[running])));

        let lp = read(&a.join(format!("{twin}.lp")));
        let lp_lines: Vec<&str> = lp.lines().collect();
        assert!((3_500..=3_600).contains(&lp_lines.len()));
        let first = lp_lines[0];
        assert!(first.starts_with(&format!("centrifugal_pump,twin={twin} speed_cmd=")));
        assert!(first.ends_with(" 1767571200000000000"), "{first}");
        assert!(first.contains("running=true"));
    }

    let truth: Value = serde_json::from_str(&read(&a.join("ground_truth.json"))).unwrap();
    let truth = truth.as_array().unwrap();
    assert!(
        !truth.is_empty(),
        "seed 11 schedules faults in the first hour"
    );
    for g in truth {
        assert!(["pump-001", "pump-002"].contains(&g["twin"].as_str().unwrap()));
        assert!(g["kind"].is_string());
        let onset = g["onset"].as_str().unwrap();
        assert!(onset.starts_with("2026-01-05T00:"), "{g}");
    }
    let manifest: Value = serde_json::from_str(&read(&a.join("manifest.json"))).unwrap();
    assert_eq!(manifest["rows_per_twin"], 3_600);
    assert_eq!(manifest["resolution"]["centrifugal_pump"]["flow"], 0.01);

    // The same seed gives the same bytes, on one thread or many; another seed does not.
    let b = tmp.path().join("b");
    dataset(&b, &["--seed", "11", "--format", "both", "--threads", "1"]);
    for f in [
        "pump-001.csv",
        "pump-002.csv",
        "pump-001.lp",
        "pump-002.lp",
        "ground_truth.json",
        "catalog.json",
        "manifest.json",
    ] {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} differs between two runs with the same seed"
        );
    }
    let c = tmp.path().join("c");
    dataset(&c, &["--seed", "12"]);
    assert_ne!(read(&a.join("pump-001.csv")), read(&c.join("pump-001.csv")));
    assert!(!c.join("pump-001.lp").exists(), "csv only by default");

    // Compressed: standard zstd frames holding exactly the bytes of the plain files.
    let z = tmp.path().join("z");
    dataset(
        &z,
        &["--seed", "11", "--format", "both", "--compress", "zstd"],
    );
    for f in ["pump-001.csv", "pump-002.lp"] {
        let packed = std::fs::read(z.join(format!("{f}.zst"))).unwrap();
        let plain = std::fs::read(a.join(f)).unwrap();
        assert!(
            packed.len() * 2 < plain.len(),
            "{f}: zstd should at least halve the text"
        );
        assert!(
            zstd::stream::decode_all(&packed[..]).unwrap() == plain,
            "{f}.zst does not decompress to {f}"
        );
        assert!(
            !z.join(f).exists(),
            "no plain {f} next to the compressed one"
        );
    }
}

#[test]
fn dataset_of_mixed_kinds_writes_each_model_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mixed");
    sim(&[
        "dataset",
        "--out",
        out.to_str().unwrap(),
        "--twins",
        "3",
        "--kinds",
        "pump,chiller,mri",
        "--hours",
        "2",
        "--dt",
        "1m",
    ]);
    let mri = read(&out.join("mri-001.csv"));
    assert!(mri
        .lines()
        .next()
        .unwrap()
        .contains(",helium_supply_pressure,"));
    assert_eq!(mri.lines().count(), 121);
    let row2 = mri.lines().nth(2).unwrap();
    assert!(row2.starts_with("2026-01-05T00:01:00Z,"), "{row2}");
    assert!(out.join("chiller-001.csv").exists());
}

/// Every twin of `ids` has some signal with a value.
fn assert_live(s: &TestServer, ids: &[&str]) {
    for id in ids {
        let state = s.get_ok(&format!("/api/v1/twins/{id}"));
        let signals = state["signals"].as_object().unwrap();
        assert!(
            signals.values().any(|v| !v["value"].is_null()),
            "{id} has no state: {state}"
        );
    }
}

#[test]
fn sim_live_lands_the_demo_plant_over_http() {
    let s = TestServer::start();
    let out = sim(&[
        "live",
        "--url",
        &s.http_url(),
        "--token",
        &s.admin_token,
        "--speed",
        "60",
        "--duration",
        "3s",
    ]);
    assert!(out.stdout.contains("sim live done"), "{}", out.stdout);
    assert_live(
        &s,
        &[
            "pump-1",
            "pump-2",
            "pump-3",
            "pump-4",
            "chiller-1",
            "mri-1",
            "mri-2",
            "mri-3",
        ],
    );
    // 60× real time: three wall seconds are minutes of plant life.
    let history = s.get_ok("/api/v1/twins/pump-1/signals/flow/history");
    let points = history["points"].as_array().map_or(0, Vec::len);
    assert!(points >= 100, "{points} points after 3 s at 60×: {history}");
    // The packs' hierarchy came through the API.
    let mri = s.get_ok("/api/v1/twins/mri-2");
    assert_eq!(mri["parent"], "radiology-1");
}

#[test]
fn sim_live_lands_a_fleet_over_mqtt() {
    let s = TestServer::start();
    let mqtt = format!("127.0.0.1:{}", s.mqtt_port());
    let out = sim(&[
        "live",
        "--url",
        &s.http_url(),
        "--mqtt",
        &mqtt,
        "--protocol",
        "mqtt",
        "--token",
        &s.admin_token,
        "--twins",
        "3",
        "--speed",
        "60",
        "--duration",
        "3s",
    ]);
    assert!(out.stdout.contains("acknowledged"), "{}", out.stdout);
    assert_live(&s, &["pump-001", "pump-002", "pump-003"]);
    let history = s.get_ok("/api/v1/twins/pump-003/signals/speed/history");
    let points = history["points"].as_array().map_or(0, Vec::len);
    assert!(points >= 100, "{points} points after 3 s at 60×: {history}");
}

#[test]
fn sim_live_with_a_wrong_token_fails_clearly() {
    let s = TestServer::start();
    let mut cmd = Command::new(doppel_bin());
    cmd.args([
        "sim",
        "live",
        "--url",
        &s.http_url(),
        "--token",
        "dpl_nope_nope",
    ])
    .args(["--duration", "2s"]);
    let out = run_bounded(&mut cmd, Duration::from_secs(60));
    assert!(!out.status.success());
    assert!(out.stderr.contains("401"), "{}", out.stderr);
}

/// The JSON summary `doppel sim load` prints last.
fn load_summary(out: &Output) -> Value {
    let last = out.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[test]
fn sim_load_reports_the_achieved_rate_and_latency_over_http_and_mqtt() {
    let s = TestServer::start();
    let mqtt = format!("127.0.0.1:{}", s.mqtt_port());
    for protocol in ["http", "lp", "mqtt"] {
        let out = sim(&[
            "load",
            "--url",
            &s.http_url(),
            "--mqtt",
            &mqtt,
            "--token",
            &s.admin_token,
            "--protocol",
            protocol,
            "--twins",
            "10",
            "--rate",
            "200",
            "--duration",
            "2s",
            "--concurrency",
            "2",
        ]);
        let r = load_summary(&out);
        assert_eq!(r["protocol"], protocol);
        let acked = r["readings_acked"].as_u64().unwrap();
        assert!((250..=450).contains(&acked), "{protocol}: {r}");
        assert_eq!(r["errors"], 0, "{protocol}: {r}");
        assert_eq!(r["signals_per_reading"], 18, "{protocol}: {r}");
        assert!(r["latency_ms"]["p50"].as_f64().unwrap() > 0.0, "{r}");
        assert!(
            r["latency_ms"]["p99"].as_f64().unwrap() >= r["latency_ms"]["p50"].as_f64().unwrap()
        );
    }
    assert_live(&s, &["pump-001", "pump-010"]);
}
