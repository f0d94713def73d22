//! NASA C-MAPSS turbofan files: reading the run-to-failure and the cut-short histories, the
//! true RUL list, and scoring a [`RulModel`] the way the literature does (RMSE and the PHM08
//! score over each test engine's last cycle).
//!
//! Rows are 26 whitespace-separated numbers: unit, cycle, 3 operational settings, 21
//! sensors. Parsing takes any `impl Read`; only the `*_file` functions open files.

use std::fs;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::EvalError;
use crate::rul::{HeldOut, RulModel, RulRun, RulStep};

/// Columns of a C-MAPSS row.
pub const COLUMNS: usize = 26;
const SETTINGS: usize = 3;

/// One engine's history as read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct CmapssUnit {
    pub unit: u32,
    /// Its steps, one per cycle, as a run named after the unit.
    pub run: RulRun,
}

fn parse_err(file: &str, line: usize, message: String) -> EvalError {
    EvalError::Parse {
        file: file.to_string(),
        line,
        message,
    }
}

/// Lines of a file with their 1-based numbers, `\r` removed, blank lines skipped.
fn lines<'a>(
    file: &'a str,
    data: &'a [u8],
) -> impl Iterator<Item = Result<(usize, &'a str), EvalError>> + 'a {
    data.split(|&b| b == b'\n')
        .enumerate()
        .map(move |(i, raw)| {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            std::str::from_utf8(raw)
                .map(|s| (i + 1, s))
                .map_err(|_| parse_err(file, i + 1, "not UTF-8 text".into()))
        })
        .filter(|r| r.as_ref().map_or(true, |(_, s)| !s.trim().is_empty()))
}

fn read_all<R: Read>(file: &str, mut reader: R) -> Result<Vec<u8>, EvalError> {
    let mut data = Vec::new();
    reader
        .read_to_end(&mut data)
        .map_err(|source| EvalError::Io {
            path: file.into(),
            source,
        })?;
    Ok(data)
}

/// Reads a train or test file: units in the order they appear, each unit's rows together
/// with consecutive cycles.
pub fn read_units<R: Read>(file: &str, reader: R) -> Result<Vec<CmapssUnit>, EvalError> {
    let data = read_all(file, reader)?;
    let mut units: Vec<CmapssUnit> = Vec::new();
    let mut last_cycle = 0u32;
    for item in lines(file, &data) {
        let (line, text) = item?;
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != COLUMNS {
            return Err(parse_err(
                file,
                line,
                format!("{} columns, expected {COLUMNS}", fields.len()),
            ));
        }
        let int = |i: usize, what: &str| {
            fields[i].parse::<u32>().map_err(|_| {
                parse_err(
                    file,
                    line,
                    format!("{what} {:?} is not a whole number", fields[i]),
                )
            })
        };
        let unit = int(0, "unit")?;
        let cycle = int(1, "cycle")?;
        let mut values = Vec::with_capacity(COLUMNS - 2);
        for (i, f) in fields[2..].iter().enumerate() {
            match f.parse::<f64>() {
                Ok(v) if v.is_finite() => values.push(v),
                _ => {
                    return Err(parse_err(
                        file,
                        line,
                        format!("column {} {f:?} is not a finite number", i + 3),
                    ))
                }
            }
        }
        let step = RulStep {
            settings: values[..SETTINGS].to_vec(),
            sensors: values[SETTINGS..].to_vec(),
        };
        match units.last_mut() {
            Some(u) if u.unit == unit => {
                if cycle != last_cycle + 1 {
                    return Err(parse_err(
                        file,
                        line,
                        format!("unit {unit}: cycle {cycle} follows cycle {last_cycle}"),
                    ));
                }
                u.run.steps.push(step);
            }
            _ => {
                if units.iter().any(|u| u.unit == unit) {
                    return Err(parse_err(
                        file,
                        line,
                        format!("unit {unit} appears again after other units"),
                    ));
                }
                units.push(CmapssUnit {
                    unit,
                    run: RulRun {
                        id: unit.to_string(),
                        steps: vec![step],
                    },
                });
            }
        }
        last_cycle = cycle;
    }
    if units.is_empty() {
        return Err(parse_err(file, 0, "no data rows".into()));
    }
    Ok(units)
}

/// Reads the true RUL list: one non-negative number a line, in unit order.
pub fn read_truth<R: Read>(file: &str, reader: R) -> Result<Vec<f64>, EvalError> {
    let data = read_all(file, reader)?;
    let mut out = Vec::new();
    for item in lines(file, &data) {
        let (line, text) = item?;
        let t = text.trim();
        match t.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => out.push(v),
            _ => {
                return Err(parse_err(
                    file,
                    line,
                    format!("{t:?} is not a non-negative number"),
                ))
            }
        }
    }
    Ok(out)
}

fn open(path: &Path) -> Result<fs::File, EvalError> {
    fs::File::open(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub fn read_units_file(path: &Path) -> Result<Vec<CmapssUnit>, EvalError> {
    read_units(&path.display().to_string(), open(path)?)
}

pub fn read_truth_file(path: &Path) -> Result<Vec<f64>, EvalError> {
    read_truth(&path.display().to_string(), open(path)?)
}

/// The PHM08 challenge's asymmetric cost of one prediction error `d = predicted − true`:
/// late predictions (d > 0) cost more than early ones.
pub fn phm08(d: f64) -> f64 {
    if d < 0.0 {
        (-d / 13.0).exp() - 1.0
    } else {
        (d / 10.0).exp() - 1.0
    }
}

/// One test engine's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineResult {
    pub unit: u32,
    /// Cycles seen before the prediction.
    pub cycles: usize,
    pub true_rul: f64,
    pub rul: f64,
    pub lower: f64,
    pub upper: f64,
}

/// The evaluation of a model on a test set, JSON-serializable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulReport {
    pub rmse: f64,
    pub phm08_score: f64,
    pub engines: usize,
    pub mae: f64,
    /// Share of engines whose true RUL lies in the prediction interval.
    pub coverage: f64,
    pub interval_coverage_target: f64,
    pub mean_interval_width: f64,
    /// Wall time of fitting, when the caller measured it (this crate has no clock).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_seconds: Option<f64>,
    pub train_runs: usize,
    pub train_steps: usize,
    pub regimes: usize,
    /// 1-based sensor numbers the model kept.
    pub sensors_used: Vec<usize>,
    pub features: usize,
    /// The model's own measurement on training runs it held out.
    pub held_out: HeldOut,
    pub per_engine: Vec<EngineResult>,
}

/// Predicts the RUL after each test engine's last cycle and compares with `truth` (same
/// order). Train figures in the report are left at zero for the caller to fill.
pub fn score(model: &RulModel, test: &[CmapssUnit], truth: &[f64]) -> Result<RulReport, EvalError> {
    if test.len() != truth.len() {
        return Err(EvalError::Mismatch {
            message: format!(
                "{} test engines but {} true RUL values",
                test.len(),
                truth.len()
            ),
        });
    }
    let mut per_engine = Vec::with_capacity(test.len());
    for (u, &t) in test.iter().zip(truth) {
        let e = model
            .predict(&u.run.steps)
            .map_err(|source| EvalError::Rul {
                what: format!("test unit {}", u.unit),
                source,
            })?;
        per_engine.push(EngineResult {
            unit: u.unit,
            cycles: u.run.steps.len(),
            true_rul: t,
            rul: e.rul,
            lower: e.lower,
            upper: e.upper,
        });
    }
    let n = per_engine.len().max(1) as f64;
    let d = |e: &EngineResult| e.rul - e.true_rul;
    Ok(RulReport {
        rmse: (per_engine.iter().map(|e| d(e).powi(2)).sum::<f64>() / n).sqrt(),
        phm08_score: per_engine.iter().map(|e| phm08(d(e))).sum(),
        engines: per_engine.len(),
        mae: per_engine.iter().map(|e| d(e).abs()).sum::<f64>() / n,
        coverage: per_engine
            .iter()
            .filter(|e| e.true_rul >= e.lower && e.true_rul <= e.upper)
            .count() as f64
            / n,
        interval_coverage_target: model.config().coverage,
        mean_interval_width: per_engine.iter().map(|e| e.upper - e.lower).sum::<f64>() / n,
        train_seconds: None,
        train_runs: 0,
        train_steps: 0,
        regimes: model.regimes(),
        sensors_used: model.sensors_used().iter().map(|i| i + 1).collect(),
        features: model.features(),
        held_out: model.held_out().clone(),
        per_engine,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(unit: u32, cycle: u32) -> String {
        let mut s = format!("{unit} {cycle} -0.0007 -0.0004 100.0");
        for i in 0..21 {
            s.push_str(&format!(" {}.5", 500 + i));
        }
        s.push_str("  ");
        s
    }

    #[test]
    fn reads_units_with_trailing_spaces_and_crlf() {
        let text = format!("{}\r\n{}\n{}\n\n", row(1, 1), row(1, 2), row(2, 1));
        let units = read_units("t.txt", text.as_bytes()).unwrap();
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].run.steps.len(), 2);
        assert_eq!(
            units[0].run.steps[0].settings,
            vec![-0.0007, -0.0004, 100.0]
        );
        assert_eq!(units[0].run.steps[0].sensors.len(), 21);
        assert_eq!(units[1].run.id, "2");
    }

    #[test]
    fn bad_rows_name_file_and_line() {
        let cases = [
            (
                format!("{}\n1 2 3\n", row(1, 1)),
                "t.txt:2: 3 columns, expected 26",
            ),
            (
                format!("{}\n{}\n", row(1, 1), row(1, 3)),
                "t.txt:2: unit 1: cycle 3 follows cycle 1",
            ),
            (
                format!("{}\n{}\n{}\n", row(1, 1), row(2, 1), row(1, 2)),
                "t.txt:3: unit 1 appears again after other units",
            ),
            (
                row(1, 1).replace("100.0", "x"),
                "t.txt:1: column 5 \"x\" is not a finite number",
            ),
            (
                row(1, 1).replacen("1 ", "-1 ", 1),
                "t.txt:1: unit \"-1\" is not a whole number",
            ),
            (String::new(), "t.txt:0: no data rows"),
        ];
        for (text, msg) in cases {
            let err = read_units("t.txt", text.as_bytes()).unwrap_err();
            assert_eq!(err.to_string(), msg);
        }
        let err = read_units("t.txt", &b"\xff\xfe\n"[..]).unwrap_err();
        assert_eq!(err.to_string(), "t.txt:1: not UTF-8 text");
    }

    #[test]
    fn truth_is_one_number_a_line() {
        assert_eq!(
            read_truth("r.txt", &b"112 \n98\r\n\n69\n"[..]).unwrap(),
            vec![112.0, 98.0, 69.0]
        );
        let err = read_truth("r.txt", &b"1\n-3\n"[..]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "r.txt:2: \"-3\" is not a non-negative number"
        );
    }

    #[test]
    fn phm08_punishes_late_more_than_early() {
        assert_eq!(phm08(0.0), 0.0);
        assert!((phm08(10.0) - (1f64.exp() - 1.0)).abs() < 1e-12);
        assert!((phm08(-13.0) - (1f64.exp() - 1.0)).abs() < 1e-12);
        assert!(phm08(20.0) > phm08(-20.0));
    }
}
