//! Loads the SKAB CSV files (../../shared/data/skab relative to the crate) as doppel would
//! store them: one series per file and numeric column, nanosecond timestamps, and a repeated
//! second keeping its last row (the store's last-write-wins). Shared by the codec test, the
//! bench and the `skab_bytes` example.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// One column of one file.
pub struct Series {
    pub file: String,
    pub column: String,
    pub ts: Vec<i64>,
    pub values: Vec<f64>,
}

/// The SKAB directory, or `None` (with a message) when it is not there.
pub fn dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/skab");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: SKAB data not found at {}", dir.display());
        None
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// "YYYY-MM-DD hh:mm:ss" as nanoseconds since the epoch.
fn parse_ts(s: &str) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(n(0..4)?, n(5..7)?, n(8..10)?);
    let secs = days * 86_400 + n(11..13)? * 3600 + n(14..16)? * 60 + n(17..19)?;
    Some(secs * 1_000_000_000)
}

/// Every numeric column of every CSV under `dir`, in a stable order.
pub fn load(dir: &Path) -> Vec<Series> {
    let mut files = Vec::new();
    for sub in ["anomaly-free", "other", "valve1", "valve2"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "csv") {
                files.push(e.path());
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let mut lines = text.lines();
        let Some(header) = lines.next() else { continue };
        let names: Vec<&str> = header.trim_end_matches('\r').split(';').skip(1).collect();
        let mut rows: Vec<(i64, Vec<f64>)> = Vec::new();
        for line in lines {
            let mut fields = line.trim_end_matches('\r').split(';');
            let Some(ts) = fields.next().and_then(parse_ts) else {
                continue;
            };
            let values: Vec<f64> = fields.filter_map(|f| f.parse().ok()).collect();
            if values.len() != names.len() {
                continue;
            }
            rows.push((ts, values));
        }
        // Stable sort keeps file order among equal seconds, so the last row wins below.
        rows.sort_by_key(|r| r.0);
        let mut dedup: Vec<(i64, Vec<f64>)> = Vec::with_capacity(rows.len());
        for r in rows {
            match dedup.last_mut() {
                Some(last) if last.0 == r.0 => *last = r,
                _ => dedup.push(r),
            }
        }
        let file = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .display()
            .to_string();
        for (i, name) in names.iter().enumerate() {
            out.push(Series {
                file: file.clone(),
                column: name.to_string(),
                ts: dedup.iter().map(|r| r.0).collect(),
                values: dedup.iter().map(|r| r.1[i]).collect(),
            });
        }
    }
    out
}

/// Label columns (0/1), reported apart from the sensor columns.
pub fn is_label(column: &str) -> bool {
    column == "anomaly" || column == "changepoint"
}
