//! `doppel store stats`: the size of a stopped server's history (series, points, bytes of WAL
//! and segment files, chunks, rollups kept past retention, the largest series).
//!
//! It opens the store like a server start does (the same torn-tail repair and removal of
//! files a crashed checkpoint left), writes nothing and does not checkpoint at close. The
//! store's directory lock makes it refuse a data directory a running server has open.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use doppel_store::{SeriesStats, Store, StoreError, StoreOptions, StoreStats};
use serde::Serialize;

use super::DataDir;

#[derive(Debug, clap::Subcommand)]
pub enum StoreCommand {
    /// Series, points, bytes on disk and the largest series of a stopped server's history.
    Stats(StatsArgs),
}

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub data: DataDir,
    /// How many series to list, largest first.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The figures `doppel store stats` prints.
#[derive(Debug, Serialize)]
struct Report {
    series: usize,
    points: u64,
    chunks: u64,
    open_points: u64,
    wal_bytes: u64,
    segment_files: u64,
    segment_bytes: u64,
    /// Minute and hour rollups of points retention forgot (part of the segment bytes once
    /// checkpointed).
    rollup_blocks: u64,
    rollup_bytes: u64,
    bytes: u64,
    /// `None` for an empty store.
    bytes_per_point: Option<f64>,
    top: Vec<SeriesStats>,
}

impl Report {
    fn new(stats: StoreStats, mut series: Vec<SeriesStats>, top: usize) -> Report {
        let bytes = stats.wal_bytes + stats.segment_bytes;
        series.sort_by(|a, b| {
            b.points
                .cmp(&a.points)
                .then_with(|| (&a.twin, &a.signal).cmp(&(&b.twin, &b.signal)))
        });
        series.truncate(top);
        Report {
            series: stats.series,
            points: stats.points,
            chunks: stats.chunks,
            open_points: stats.open_points,
            wal_bytes: stats.wal_bytes,
            segment_files: stats.segment_files,
            segment_bytes: stats.segment_bytes,
            rollup_blocks: stats.rollup_blocks,
            rollup_bytes: stats.rollup_bytes,
            bytes,
            bytes_per_point: (stats.points > 0).then(|| bytes as f64 / stats.points as f64),
            top: series,
        }
    }
}

pub fn run(cmd: StoreCommand) -> anyhow::Result<()> {
    match cmd {
        StoreCommand::Stats(args) => stats(args),
    }
}

fn stats(args: StatsArgs) -> anyhow::Result<()> {
    let dir = args.data.path.join("history");
    anyhow::ensure!(
        dir.is_dir(),
        "{} holds no history (no `history` directory): is it a doppel data directory?",
        args.data.path.display()
    );
    let opts = StoreOptions {
        checkpoint_on_close: false,
        checkpoint_wal_bytes: u64::MAX,
        ..StoreOptions::default()
    };
    let store = match Store::open(&dir, opts) {
        Err(StoreError::Locked { .. }) => anyhow::bail!(
            "{} is in use by a running server: stop it first",
            args.data.path.display()
        ),
        other => other.with_context(|| format!("opening the history in {}", dir.display()))?,
    };
    let report = Report::new(store.stats(), store.series_stats(), args.top);
    store.close().context("closing the store")?;
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        render(&args.data.path, &report)
    };
    // `doppel store stats | head` closing the pipe early is not an error.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// The text form of the report.
fn render(data_dir: &Path, report: &Report) -> String {
    let mut out = String::new();
    let _ = write_report(&mut out, data_dir, report);
    out
}

fn write_report(out: &mut String, data_dir: &Path, report: &Report) -> std::fmt::Result {
    writeln!(out, "history of {}", data_dir.display())?;
    writeln!(out, "  series          {}", report.series)?;
    writeln!(
        out,
        "  points          {} ({} not yet in a chunk)",
        report.points, report.open_points
    )?;
    writeln!(out, "  chunks          {}", report.chunks)?;
    writeln!(out, "  WAL             {}", bytes(report.wal_bytes))?;
    writeln!(
        out,
        "  segment files   {} in {} files",
        bytes(report.segment_bytes),
        report.segment_files
    )?;
    writeln!(
        out,
        "  rollups         {} in {} blocks (minute and hour, past retention)",
        bytes(report.rollup_bytes),
        report.rollup_blocks
    )?;
    writeln!(out, "  on disk         {}", bytes(report.bytes))?;
    match report.bytes_per_point {
        Some(b) => writeln!(out, "  bytes/point     {b:.3}")?,
        None => writeln!(out, "  bytes/point     -")?,
    }
    if !report.top.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "  {:<24} {:<24} {:>12} {:>8} {:>12} {:>12}",
            "twin", "signal", "points", "chunks", "chunk bytes", "rollup bytes"
        )?;
        for s in &report.top {
            writeln!(
                out,
                "  {:<24} {:<24} {:>12} {:>8} {:>12} {:>12}",
                clip(&s.twin),
                clip(&s.signal),
                s.points,
                s.chunks,
                s.chunk_bytes,
                s.rollup_bytes
            )?;
        }
    }
    Ok(())
}

/// Bytes with a binary unit, e.g. `6.5 MiB (6815744 bytes)`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64;
    let mut unit = "";
    for u in UNITS {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit} ({n} bytes)")
}

/// Names longer than a column keep their start and end.
fn clip(name: &Arc<str>) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= 24 {
        return name.to_string();
    }
    let head: String = chars[..11].iter().collect();
    let tail: String = chars[chars.len() - 12..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_figures_pick_a_readable_unit() {
        assert_eq!(bytes(0), "0 bytes");
        assert_eq!(bytes(1023), "1023 bytes");
        assert_eq!(bytes(1536), "1.5 KiB (1536 bytes)");
        assert_eq!(bytes(6_815_744), "6.5 MiB (6815744 bytes)");
    }

    #[test]
    fn long_names_are_clipped_in_the_middle() {
        assert_eq!(clip(&Arc::from("pump-1")), "pump-1");
        let long: Arc<str> = Arc::from("abcdefghijklmnopqrstuvwxyz0123");
        assert_eq!(clip(&long), "abcdefghijk…stuvwxyz0123");
    }
}
