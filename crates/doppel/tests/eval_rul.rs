//! End-to-end tests of `doppel eval rul` on small C-MAPSS-shaped files: the JSON report has
//! its promised keys, and a malformed row is reported with its file and line.

#![allow(clippy::unwrap_used)]

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{doppel_bin, run_bounded, Output};
use serde_json::Value;

/// A C-MAPSS row of unit `unit` at `cycle` of a life of `life` cycles: three sensors wear.
fn row(out: &mut String, unit: u32, cycle: u32, life: u32) {
    let wear = (3.0 * cycle as f64 / life as f64).exp();
    let wiggle = ((unit * 31 + cycle * 17) % 13) as f64 / 13.0;
    write!(out, "{unit} {cycle} 0.0001 -0.0002 100.0").unwrap();
    for s in 0..21 {
        let v = match s {
            1 => 640.0 + wear + wiggle,
            6 => 550.0 - 0.5 * wear + wiggle,
            10 => 47.0 + 0.2 * wear + 0.1 * wiggle,
            _ => 100.0 + s as f64,
        };
        write!(out, " {v:.4}").unwrap();
    }
    out.push_str("  \n");
}

fn eval_rul(dir: &Path) -> Output {
    let mut cmd = Command::new(doppel_bin());
    cmd.args(["eval", "rul", "--train"])
        .arg(dir.join("train.txt"))
        .arg("--test")
        .arg(dir.join("test.txt"))
        .arg("--truth")
        .arg(dir.join("truth.txt"));
    run_bounded(&mut cmd, Duration::from_secs(120))
}

#[test]
fn eval_rul_prints_rmse_phm08_and_engines() {
    let dir = tempfile::tempdir().unwrap();
    let (mut train, mut test, mut truth) = (String::new(), String::new(), String::new());
    for unit in 1..=12 {
        let life = 80 + unit * 7;
        for c in 1..=life {
            row(&mut train, unit, c, life);
        }
    }
    for unit in 1..=3 {
        let life = 90 + unit * 10;
        let seen = life - 20 * unit;
        for c in 1..=seen {
            row(&mut test, unit, c, life);
        }
        writeln!(truth, "{}", life - seen).unwrap();
    }
    std::fs::write(dir.path().join("train.txt"), train).unwrap();
    std::fs::write(dir.path().join("test.txt"), test).unwrap();
    std::fs::write(dir.path().join("truth.txt"), truth).unwrap();
    let out = eval_rul(dir.path());
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(report["rmse"].as_f64().unwrap().is_finite());
    assert!(report["phm08_score"].as_f64().unwrap().is_finite());
    assert_eq!(report["engines"], 3);
    assert_eq!(report["train_runs"], 12);
    assert!(report["train_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(report["per_engine"].as_array().unwrap().len(), 3);

    // A short row: refused, naming the file and the line.
    std::fs::write(dir.path().join("test.txt"), "1 1 0 0 100\n").unwrap();
    let out = eval_rul(dir.path());
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("test.txt:1: 5 columns, expected 26"),
        "{}",
        out.stderr
    );
}
