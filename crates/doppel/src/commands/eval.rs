//! `doppel eval anomaly`: streams labelled CSV files through the same anomaly detectors the
//! engine runs (no look-ahead, labels only compared) and prints the JSON report
//! `{"files": [...], "groups": [...], "overall": {"precision", "recall", "f1", "far", "mar", ...}}`;
//! `doppel eval faults` does the same on a simulated fleet against its fault ground truth
//! (`eval_faults.rs`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;
use doppel_analytics::eval::{eval_files, EvalOptions};
use doppel_analytics::DetectorConfig;

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Score CSV files (or folders of them) with the anomaly detectors and report pointwise
    /// precision, recall, F1, false-alarm and missed-alarm rates as JSON.
    Anomaly(AnomalyArgs),
    /// Run a simulated fleet with injected process and sensor faults through the engine's
    /// detectors and report, as JSON, which faults were alarmed before failure, detection
    /// delays and false alarms per twin-day.
    Faults(super::eval_faults::FaultsArgs),
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
        EvalCommand::Faults(args) => super::eval_faults::run(args),
    }
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
