//! Offline evaluation on labelled CSV files: each file is streamed in time order through a
//! fresh [`TwinDetector`] (no look-ahead; labels are only compared, never shown to the
//! detector) and pointwise precision, recall, F1, false-alarm and missed-alarm rates are
//! computed per file, per folder and overall.
//!
//! This is the only module that reads files, and only in [`eval_files`] (and, for the RUL
//! model on NASA's C-MAPSS files, in [`cmapss`]); parsing and scoring take any `impl Read`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::{DetectorConfig, RulError, Score, Timestamp, TwinDetector};

pub mod cmapss;

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{file}: CSV: {source}")]
    Csv {
        file: String,
        #[source]
        source: csv::Error,
    },
    #[error("{file}: no column named {column:?} (columns: {columns})")]
    NoSuchColumn {
        file: String,
        column: String,
        columns: String,
    },
    #[error("{file}: no numeric signal column")]
    NoSignals { file: String },
    #[error("no CSV file found in {inputs}")]
    NoInput { inputs: String },
    #[error("{file}:{line}: {message}")]
    Parse {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{message}")]
    Mismatch { message: String },
    #[error("{what}: {source}")]
    Rul {
        what: String,
        #[source]
        source: RulError,
    },
}

/// How to read the files and which detector to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvalOptions {
    /// Field separator; guessed from the header line (`;`, `,` or tab) when `None`.
    pub sep: Option<u8>,
    /// Time column; when `None`, a column named datetime/timestamp/time/date/ts, else the
    /// first column if it holds dates, else the row number as seconds.
    pub time_col: Option<String>,
    /// Label column (0/1); files without it are scored but not counted in the metrics.
    pub label_col: String,
    /// Columns that are neither signals nor the label (other label-like columns).
    pub ignore_cols: Vec<String>,
    /// Where to write `timestamp,score,is_anomaly` per input file (same relative path).
    pub out: Option<PathBuf>,
    pub detector: DetectorConfig,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            sep: None,
            time_col: None,
            label_col: "anomaly".into(),
            // SKAB's second label column; harmless elsewhere.
            ignore_cols: vec!["changepoint".into()],
            out: None,
            detector: DetectorConfig::default(),
        }
    }
}

/// Pointwise confusion counts and the rates derived from them (`None` where undefined).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    /// False alarm rate FP / (FP + TN).
    pub far: Option<f64>,
    /// Missed alarm rate FN / (FN + TP).
    pub mar: Option<f64>,
}

impl Metrics {
    fn add(&mut self, label: bool, predicted: bool) {
        match (label, predicted) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
            (true, false) => self.fn_ += 1,
        }
    }

    fn merge(&mut self, o: &Metrics) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.tn += o.tn;
        self.fn_ += o.fn_;
    }

    fn finish(mut self) -> Self {
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let (tp, fp, tn, fn_) = (self.tp, self.fp, self.tn, self.fn_);
        self.precision = ratio(tp, tp + fp);
        self.recall = ratio(tp, tp + fn_);
        self.f1 = ratio(2 * tp, 2 * tp + fp + fn_);
        self.far = ratio(fp, fp + tn);
        self.mar = ratio(fn_, fn_ + tp);
        self
    }

    pub fn labelled_rows(&self) -> u64 {
        self.tp + self.fp + self.tn + self.fn_
    }
}

/// What was odd in a file but did not stop its evaluation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Warnings {
    /// Columns ignored because most of their cells are not numbers.
    pub non_numeric_columns: Vec<String>,
    /// Cells of numeric columns that were empty, NaN or not a number (treated as missing).
    pub missing_cells: u64,
    /// Rows whose time could not be read (skipped).
    pub bad_times: u64,
    /// Rows whose label could not be read (scored, not counted).
    pub bad_labels: u64,
    /// Rows earlier than the row before them (the file was sorted by time before scoring).
    pub out_of_order: u64,
}

/// Results for one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileReport {
    pub file: String,
    pub rows: usize,
    pub labelled: bool,
    pub signals: Vec<String>,
    pub alarms: u64,
    #[serde(flatten)]
    pub metrics: Metrics,
    pub warnings: Warnings,
}

/// Summed results of a folder (the parent directory of each file's relative path) or of all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    pub group: String,
    pub files: usize,
    pub rows: usize,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// The whole evaluation, JSON-serializable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub files: Vec<FileReport>,
    pub groups: Vec<GroupReport>,
    pub overall: GroupReport,
}

/// One scored row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredRow {
    /// The time cell as written in the file (the row number when there is no time column).
    pub time: String,
    pub ts: Timestamp,
    pub score: f64,
    pub is_anomaly: bool,
    pub label: Option<bool>,
}

const NS: i64 = 1_000_000_000;

/// Reads a time cell: `YYYY-MM-DD hh:mm:ss[.fff]` (UTC), RFC 3339, or an epoch number whose
/// unit is guessed from its magnitude (s, ms, µs or ns).
pub fn parse_time_cell(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<f64>() {
        if !n.is_finite() {
            return None;
        }
        let a = n.abs();
        let ns = if a >= 1e17 {
            n
        } else if a >= 1e14 {
            n * 1e3
        } else if a >= 1e11 {
            n * 1e6
        } else {
            n * 1e9
        };
        return (ns.abs() < 9.2e18).then_some(ns as i64);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return dt.timestamp_nanos_opt();
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S%.f",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return dt.and_utc().timestamp_nanos_opt();
        }
    }
    None
}

fn parse_number(s: &str) -> Result<Option<f64>, ()> {
    let t = s.trim();
    if t.is_empty()
        || ["nan", "na", "n/a", "null", "none", "-"]
            .iter()
            .any(|m| t.eq_ignore_ascii_case(m))
    {
        return Ok(None);
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        Ok(_) => Ok(None),
        Err(_) => Err(()),
    }
}

fn guess_sep(data: &[u8]) -> u8 {
    let line = data.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let mut best = (b',', 0usize);
    for sep in [b';', b',', b'\t'] {
        let mut in_quotes = false;
        let mut n = 0;
        for &b in line {
            if b == b'"' {
                in_quotes = !in_quotes;
            } else if b == sep && !in_quotes {
                n += 1;
            }
        }
        if n > best.1 {
            best = (sep, n);
        }
    }
    best.0
}

/// Reads one CSV file from `reader` and scores it. `name` is only used in reports and errors.
pub fn eval_reader<R: Read>(
    name: &str,
    reader: R,
    opts: &EvalOptions,
) -> Result<(FileReport, Vec<ScoredRow>), EvalError> {
    eval_reader_with(name, reader, opts, |_, _| {})
}

/// [`eval_reader`] that also hands every full [`Score`] (with its explanation) and the row's
/// label to `inspect`, in time order.
pub fn eval_reader_with<R: Read, F: FnMut(&Score, Option<bool>)>(
    name: &str,
    mut reader: R,
    opts: &EvalOptions,
    mut inspect: F,
) -> Result<(FileReport, Vec<ScoredRow>), EvalError> {
    let mut data = Vec::new();
    reader.read_to_end(&mut data).map_err(|e| EvalError::Io {
        path: PathBuf::from(name),
        source: e,
    })?;
    let csv_err = |source| EvalError::Csv {
        file: name.to_string(),
        source,
    };
    let sep = opts.sep.unwrap_or_else(|| guess_sep(&data));
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(sep)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data.as_slice());
    let header: Vec<String> = rdr
        .headers()
        .map_err(csv_err)?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    let records: Vec<csv::StringRecord> =
        rdr.records().collect::<Result<_, _>>().map_err(csv_err)?;
    let find = |col: &str| header.iter().position(|h| h.eq_ignore_ascii_case(col));
    let no_col = |col: &str| EvalError::NoSuchColumn {
        file: name.to_string(),
        column: col.to_string(),
        columns: header.join(", "),
    };
    let time_idx = match &opts.time_col {
        Some(c) => Some(find(c).ok_or_else(|| no_col(c))?),
        None => ["datetime", "timestamp", "time", "date", "ts"]
            .iter()
            .find_map(|c| find(c))
            .or_else(|| {
                let first = records.first()?.get(0)?;
                (first.trim().parse::<f64>().is_err() && parse_time_cell(first).is_some())
                    .then_some(0)
            }),
    };
    let label_idx = find(&opts.label_col);
    let ignored: Vec<usize> = opts.ignore_cols.iter().filter_map(|c| find(c)).collect();
    let mut warnings = Warnings::default();
    let mut signal_cols = Vec::new();
    for (j, h) in header.iter().enumerate() {
        if Some(j) == time_idx || Some(j) == label_idx || ignored.contains(&j) {
            continue;
        }
        let (mut ok, mut bad) = (0usize, 0usize);
        for r in &records {
            match parse_number(r.get(j).unwrap_or("")) {
                Ok(Some(_)) => ok += 1,
                Ok(None) => {}
                Err(()) => bad += 1,
            }
        }
        if ok > bad {
            signal_cols.push(j);
        } else {
            warnings.non_numeric_columns.push(h.clone());
        }
    }
    if signal_cols.is_empty() {
        return Err(EvalError::NoSignals {
            file: name.to_string(),
        });
    }
    let names: Vec<String> = signal_cols.iter().map(|&j| header[j].clone()).collect();
    struct Row {
        time: String,
        ts: Timestamp,
        values: Vec<(usize, f64)>,
        label: Option<bool>,
    }
    let mut rows = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let (time, ts) = match time_idx {
            Some(t) => {
                let cell = r.get(t).unwrap_or("");
                match parse_time_cell(cell) {
                    Some(ts) => (cell.to_string(), ts),
                    None => {
                        warnings.bad_times += 1;
                        continue;
                    }
                }
            }
            None => (i.to_string(), i as i64 * NS),
        };
        let mut values = Vec::with_capacity(signal_cols.len());
        for (k, &j) in signal_cols.iter().enumerate() {
            match parse_number(r.get(j).unwrap_or("")) {
                Ok(Some(v)) => values.push((k, v)),
                _ => warnings.missing_cells += 1,
            }
        }
        let label = label_idx.and_then(|l| match parse_number(r.get(l).unwrap_or("")) {
            Ok(Some(v)) => Some(v > 0.5),
            _ => {
                warnings.bad_labels += 1;
                None
            }
        });
        rows.push(Row {
            time,
            ts,
            values,
            label,
        });
    }
    warnings.out_of_order = rows.windows(2).filter(|w| w[1].ts < w[0].ts).count() as u64;
    if warnings.out_of_order > 0 {
        rows.sort_by_key(|r| r.ts);
    }
    let mut det = TwinDetector::new(opts.detector.clone());
    let mut metrics = Metrics::default();
    let mut scored = Vec::with_capacity(rows.len());
    let mut alarms = 0;
    let mut prev = false;
    let mut buf: Vec<(&str, f64)> = Vec::with_capacity(names.len());
    for row in rows {
        buf.clear();
        buf.extend(row.values.iter().map(|&(k, v)| (names[k].as_str(), v)));
        let s = det.observe(row.ts, &buf);
        inspect(&s, row.label);
        if let Some(l) = row.label {
            metrics.add(l, s.is_anomaly);
        }
        alarms += u64::from(s.is_anomaly && !prev);
        prev = s.is_anomaly;
        scored.push(ScoredRow {
            time: row.time,
            ts: row.ts,
            score: s.total,
            is_anomaly: s.is_anomaly,
            label: row.label,
        });
    }
    let report = FileReport {
        file: name.to_string(),
        rows: scored.len(),
        labelled: label_idx.is_some(),
        signals: names,
        alarms,
        metrics: metrics.finish(),
        warnings,
    };
    Ok((report, scored))
}

/// Writes `timestamp,score,is_anomaly` rows.
pub fn write_scores<W: Write>(w: W, rows: &[ScoredRow]) -> Result<(), csv::Error> {
    let mut wtr = csv::Writer::from_writer(w);
    wtr.write_record(["timestamp", "score", "is_anomaly"])?;
    for r in rows {
        wtr.write_record([
            r.time.as_str(),
            &format!("{:.6}", r.score),
            if r.is_anomaly { "1" } else { "0" },
        ])?;
    }
    wtr.flush()?;
    Ok(())
}

fn collect_csv(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), EvalError> {
    let io_err = |source| EvalError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io_err)?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_csv(&p, out)?;
        } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
            out.push(p);
        }
    }
    Ok(())
}

/// Evaluates every CSV file among `inputs` (files, or directories walked recursively in name
/// order). A file's name in the report and its output path are relative to the directory it
/// was found in (its bare name for a file given directly).
pub fn eval_files(inputs: &[PathBuf], opts: &EvalOptions) -> Result<EvalReport, EvalError> {
    let mut jobs: Vec<(PathBuf, PathBuf)> = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found = Vec::new();
            collect_csv(input, &mut found)?;
            for p in found {
                let rel = p.strip_prefix(input).unwrap_or(&p).to_path_buf();
                jobs.push((p, rel));
            }
        } else {
            let rel = input
                .file_name()
                .map_or_else(|| input.clone(), PathBuf::from);
            jobs.push((input.clone(), rel));
        }
    }
    if jobs.is_empty() {
        return Err(EvalError::NoInput {
            inputs: inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let mut files = Vec::new();
    let mut groups: BTreeMap<String, (usize, usize, Metrics)> = BTreeMap::new();
    let mut overall = (0usize, 0usize, Metrics::default());
    for (path, rel) in jobs {
        let f = fs::File::open(&path).map_err(|e| EvalError::Io {
            path: path.clone(),
            source: e,
        })?;
        let name = rel.to_string_lossy().replace('\\', "/");
        let (report, rows) = eval_reader(&name, io::BufReader::new(f), opts)?;
        if let Some(out) = &opts.out {
            let dest = out.join(&rel);
            let io_err = |source| EvalError::Io {
                path: dest.clone(),
                source,
            };
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(io_err)?;
            }
            let w = io::BufWriter::new(fs::File::create(&dest).map_err(io_err)?);
            write_scores(w, &rows).map_err(|source| EvalError::Csv {
                file: dest.display().to_string(),
                source,
            })?;
        }
        let group = rel
            .parent()
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| ".".into());
        let g = groups.entry(group).or_default();
        for acc in [g, &mut overall] {
            acc.0 += 1;
            acc.1 += report.rows;
            acc.2.merge(&report.metrics);
        }
        files.push(report);
    }
    let group_report = |group: String, (files, rows, m): (usize, usize, Metrics)| GroupReport {
        group,
        files,
        rows,
        metrics: m.finish(),
    };
    Ok(EvalReport {
        files,
        groups: groups
            .into_iter()
            .map(|(g, acc)| group_report(g, acc))
            .collect(),
        overall: group_report("overall".into(), overall),
    })
}
