//! The evaluation's CSV reading: separators, line endings, quoting, time formats, missing and
//! non-numeric cells, and the metrics it reports.

use doppel_analytics::eval::{eval_files, eval_reader, parse_time_cell, EvalOptions};
use proptest::prelude::*;

/// A SKAB-like file: `;`, float labels, a normal stretch then a big fault.
fn skab_like(eol: &str) -> String {
    let mut s = format!("datetime;A;\"Volume Flow RateRMS\";anomaly;changepoint{eol}");
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    for i in 0..600 {
        let fault = (450..550).contains(&i);
        let a = 1.0 + 0.1 * noise() + if fault { 5.0 } else { 0.0 };
        let f = 32.0 + 0.2 * noise();
        let t = format!("2020-03-09 10:{:02}:{:02}", i / 60, i % 60);
        let l = if fault { "1.0" } else { "0.0" };
        s.push_str(&format!("{t};{a};{f};{l};0.0{eol}"));
    }
    s
}

fn opts() -> EvalOptions {
    let mut o = EvalOptions::default();
    o.detector.warmup = 200;
    o
}

#[test]
fn crlf_and_lf_files_give_the_same_result() {
    let (crlf, rows_crlf) = eval_reader("crlf", skab_like("\r\n").as_bytes(), &opts()).unwrap();
    let (lf, rows_lf) = eval_reader("lf", skab_like("\n").as_bytes(), &opts()).unwrap();
    assert_eq!(crlf.rows, 600);
    assert_eq!(crlf.signals, ["A", "Volume Flow RateRMS"]);
    assert_eq!(crlf.metrics, lf.metrics);
    assert_eq!(rows_crlf, rows_lf);
    assert!(crlf.labelled);
    assert!(crlf.metrics.recall.unwrap() > 0.95, "{:?}", crlf.metrics);
    assert!(crlf.metrics.f1.unwrap() > 0.7, "{:?}", crlf.metrics);
    assert_eq!(crlf.metrics.tp + crlf.metrics.fn_, 100);
    assert!(crlf.warnings.non_numeric_columns.is_empty());
}

#[test]
fn commas_epoch_times_missing_and_non_numeric_cells() {
    let mut s = String::from("ts,site,x,y\n");
    for i in 0..300 {
        let x = if i % 50 == 7 {
            String::new()
        } else {
            format!("{}", (i % 5) as f64)
        };
        let y = if i == 100 {
            "oops".to_string()
        } else {
            format!("{}", (i % 3) as f64)
        };
        s.push_str(&format!(
            "{},plant-{},{x},{y}\n",
            1_600_000_000_000i64 + i * 1000,
            i % 2
        ));
    }
    let (r, rows) = eval_reader("c.csv", s.as_bytes(), &opts()).unwrap();
    assert_eq!(r.signals, ["x", "y"]);
    assert_eq!(r.warnings.non_numeric_columns, ["site"]);
    assert_eq!(r.warnings.missing_cells, 6 + 1);
    assert!(!r.labelled);
    assert_eq!(r.metrics.f1, None);
    assert_eq!(rows.len(), 300);
    assert_eq!(rows[1].ts - rows[0].ts, 1_000_000_000);
}

#[test]
fn time_cells_in_every_supported_form() {
    let t = parse_time_cell;
    assert_eq!(t("1970-01-01 00:00:01"), Some(1_000_000_000));
    assert_eq!(t("1970-01-01T00:00:01.5"), Some(1_500_000_000));
    assert_eq!(t("1970-01-01T01:00:01+01:00"), Some(1_000_000_000));
    assert_eq!(t("1600000000"), Some(1_600_000_000_000_000_000));
    assert_eq!(t("1600000000000"), Some(1_600_000_000_000_000_000));
    assert_eq!(t("1600000000000000000"), Some(1_600_000_000_000_000_000));
    assert_eq!(t("yesterday"), None);
    assert_eq!(t(""), None);
}

#[test]
fn files_and_folders_with_outputs_and_summed_metrics() {
    let dir = std::env::temp_dir().join(format!("doppel-eval-{}", std::process::id()));
    let input = dir.join("in");
    std::fs::create_dir_all(input.join("valve")).unwrap();
    std::fs::write(input.join("valve/0.csv"), skab_like("\r\n")).unwrap();
    std::fs::write(input.join("1.csv"), skab_like("\n")).unwrap();
    std::fs::write(input.join("notes.txt"), "not a csv").unwrap();
    let mut o = opts();
    o.out = Some(dir.join("out"));
    let report = eval_files(std::slice::from_ref(&input), &o).unwrap();
    let names: Vec<_> = report.files.iter().map(|f| f.file.as_str()).collect();
    assert_eq!(names, ["1.csv", "valve/0.csv"]);
    assert_eq!(report.overall.metrics.tp, 2 * report.files[0].metrics.tp);
    assert_eq!(report.groups.len(), 2);
    let out = std::fs::read_to_string(dir.join("out/valve/0.csv")).unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("timestamp,score,is_anomaly"));
    assert!(lines.next().unwrap().starts_with("2020-03-09 10:00:00,"));
    assert_eq!(out.lines().count(), 601);
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["overall"]["f1"].as_f64().unwrap() > 0.7);
    assert!(json["files"][0]["far"].is_number());
    std::fs::remove_dir_all(&dir).unwrap();
}

proptest! {
    #[test]
    fn any_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = eval_reader("fuzz", data.as_slice(), &opts());
    }

    #[test]
    fn any_text_never_panics(s in "[a-z0-9;,.\"\r\n -]{0,300}") {
        let _ = eval_reader("fuzz", s.as_bytes(), &opts());
    }
}
