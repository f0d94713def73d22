//! `doppel eval anomaly`: streams labelled CSV files through the same anomaly detectors the
//! engine runs (no look-ahead, labels only compared) and prints the JSON report
//! `{"files": [...], "groups": [...], "overall": {"precision", "recall", "f1", "far", "mar", ...}}`;
//! `doppel eval faults` does the same on a simulated fleet against its fault ground truth
//! (`eval_faults.rs`).
//!
//! `doppel eval rul`: fits the remaining-useful-life model on C-MAPSS run-to-failure engines,
//! predicts the cut-short test engines and prints
//! `{"rmse", "phm08_score", "engines", "mae", "coverage", "train_seconds", ..., "per_engine": [...]}`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Subcommand;
use doppel_analytics::eval::cmapss;
use doppel_analytics::eval::{eval_files, EvalOptions};
use doppel_analytics::DetectorConfig;
use doppel_analytics::{RulConfig, RulModel, RulRun};

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Score CSV files (or folders of them) with the anomaly detectors and report pointwise
    /// precision, recall, F1, false-alarm and missed-alarm rates as JSON.
    Anomaly(AnomalyArgs),
    /// Run a simulated fleet with injected process and sensor faults through the engine's
    /// detectors and report, as JSON, which faults were alarmed before failure, detection
    /// delays and false alarms per twin-day.
    Faults(super::eval_faults::FaultsArgs),
    /// Run pumps whose bearings wear to failure, healthy twins and twins with other faults
    /// through the detectors, forecasts and maintenance advice, and report as JSON how often
    /// bearing-wear advice came a day or more before the failure and how much advice was
    /// false per twin-month.
    Advice(super::eval_advice::AdviceArgs),
    /// Fit the remaining-useful-life model on C-MAPSS run-to-failure engines and report RMSE
    /// and the PHM08 score on the test engines' last cycles as JSON.
    Rul(RulArgs),
    /// Simulate pumps whose bearings wear to failure and report, as JSON, how the RUL model
    /// the engine learns from recorded failures improves with the number of failures
    /// (RMSE in hours on held-out pumps for each fleet size).
    FleetRul(super::eval_fleet_rul::FleetRulArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct RulArgs {
    /// Run-to-failure histories (C-MAPSS train_FD00x.txt).
    #[arg(long)]
    pub train: PathBuf,
    /// Histories cut before failure (test_FD00x.txt).
    #[arg(long)]
    pub test: PathBuf,
    /// True RUL after each test engine's last cycle, one a line (RUL_FD00x.txt).
    #[arg(long)]
    pub truth: PathBuf,
    /// Seed of the model's sampling (row and feature subsets, cross-validation folds).
    #[arg(long, default_value_t = RulConfig::default().seed)]
    pub seed: u64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct AnomalyArgs {
    /// A CSV file or a directory (walked recursively for *.csv). May be repeated.
    #[arg(long, required = true)]
    pub input: Vec<PathBuf>,
    /// Field separator (one character); guessed from the header when absent.
    #[arg(long)]
    pub sep: Option<String>,
    /// Time column (default: datetime/timestamp/time/date/ts, else the first column if it
    /// holds dates, else the row number).
    #[arg(long = "time-col")]
    pub time_col: Option<String>,
    /// Label column (0/1). Files without it are scored but not counted.
    #[arg(long = "label-col", default_value = "anomaly")]
    pub label_col: String,
    /// A column that is neither a signal nor the label. May be repeated.
    #[arg(long = "ignore-col")]
    pub ignore_col: Vec<String>,
    /// Write `timestamp,score,is_anomaly` per input file under this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub detector: DetectorConfigArg,
}

/// Detector settings other than the defaults the engine runs.
#[derive(Debug, Clone, clap::Args)]
pub struct DetectorConfigArg {
    /// Detector settings overriding the defaults: a JSON object (`{"persist_n": 8}`) or a
    /// file holding one. For tuning experiments; the engine runs the defaults.
    #[arg(long = "detector-config")]
    pub detector_config: Option<String>,
}

impl DetectorConfigArg {
    pub fn config(&self) -> anyhow::Result<DetectorConfig> {
        let Some(arg) = &self.detector_config else {
            return Ok(DetectorConfig::default());
        };
        let text = if arg.trim_start().starts_with('{') {
            arg.clone()
        } else {
            std::fs::read_to_string(arg).with_context(|| format!("reading {arg}"))?
        };
        serde_json::from_str(&text).context("--detector-config")
    }
}

pub fn run(cmd: EvalCommand) -> anyhow::Result<()> {
    match cmd {
        EvalCommand::Anomaly(args) => anomaly(args),
        EvalCommand::Rul(args) => rul(args),
        EvalCommand::Faults(args) => super::eval_faults::run(args),
        EvalCommand::Advice(args) => super::eval_advice::run(args),
        EvalCommand::FleetRul(args) => super::eval_fleet_rul::run(args),
    }
}

fn rul(args: RulArgs) -> anyhow::Result<()> {
    let train = cmapss::read_units_file(&args.train)?;
    let test = cmapss::read_units_file(&args.test)?;
    let truth = cmapss::read_truth_file(&args.truth)?;
    let runs: Vec<RulRun> = train.into_iter().map(|u| u.run).collect();
    let config = RulConfig {
        seed: args.seed,
        ..RulConfig::default()
    };
    let started = Instant::now();
    let model = RulModel::fit(&runs, &config).context("fitting the RUL model")?;
    let train_seconds = started.elapsed().as_secs_f64();
    let mut report = cmapss::score(&model, &test, &truth).context("RUL evaluation")?;
    report.train_seconds = Some((train_seconds * 1000.0).round() / 1000.0);
    report.train_runs = runs.len();
    report.train_steps = runs.iter().map(|r| r.steps.len()).sum();
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &report)?;
    writeln!(out)?;
    Ok(())
}

fn anomaly(args: AnomalyArgs) -> anyhow::Result<()> {
    let sep = match args.sep.as_deref() {
        None => None,
        Some("\\t") | Some("tab") => Some(b'\t'),
        Some(s) if s.len() == 1 => Some(s.as_bytes()[0]),
        Some(s) => bail!("--sep must be one ASCII character, got {s:?}"),
    };
    let opts = EvalOptions {
        sep,
        time_col: args.time_col,
        label_col: args.label_col,
        ignore_cols: args.ignore_col,
        out: args.out,
        detector: args.detector.config()?,
    };
    let report = eval_files(&args.input, &opts).context("anomaly evaluation")?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &report)?;
    writeln!(out)?;
    Ok(())
}
