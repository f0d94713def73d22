//! `doppel sim dataset`: months of simulated history in seconds, without a server. Every
//! twin is independent, so twins are handed to one thread per core; each is stepped with the
//! allocation-free [`SimulatedTwin::step_into`] and its rows formatted straight into a
//! buffered file.
//!
//! Output in `--out`:
//! - `{twin}.csv` (`{twin}.csv.zst` with `--compress zstd`): `timestamp,<signals in model order>`, RFC 3339 UTC timestamps, an empty
//!   cell where a sensor dropped out;
//! - `{twin}.lp` (or `.lp.zst`): InfluxDB line protocol (`{model},twin={id} field=value,… {ns}`), ready for
//!   `POST /api/v1/write`;
//! - `ground_truth.json`: every fault that started, with onset, end and failure times;
//! - `catalog.json`: the models and twins (load them before the `.lp` files);
//! - `manifest.json`: the parameters, and the resolution each signal was rounded to.
//!
//! Values are rounded to a resolution of about 1/5000 of the signal's normal span (a 12-bit
//! sensor; e.g. 0.1 rpm, 0.01 m³/h, 0.0001 bar), which keeps files small without losing
//! anything the noise has not already blurred. The same flags give byte-identical files.
//!
//! A month of a fleet at 1 Hz is tens of gigabytes of text, more than a disk takes in a
//! minute; `--compress zstd` writes standard zstd frames (`zstdcat`, pandas and DuckDB read
//! them directly) about ten times smaller, for less CPU than the disk time it saves.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::ValueEnum;
use doppel_model::{format_ts, SignalSpec, Timestamp, ValueKind};
use doppel_sim::{AssetKind, Plant, SimulatedTwin, RUN_START};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::rows::{Clock, RowWriter, Sink, NUMBER_MAX};
/// Rows between progress-bar updates.
const PROGRESS_EVERY: u64 = 16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Lp,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    None,
    Zstd,
}

/// Flags of `doppel sim dataset`.
#[derive(Debug, Clone, clap::Args)]
pub struct DatasetArgs {
    /// Directory to write into (created if missing; files of the same names are replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Simulated days of history.
    #[arg(long, default_value_t = 1.0)]
    pub days: f64,
    /// Simulated hours of history, instead of --days.
    #[arg(long, conflicts_with = "days")]
    pub hours: Option<f64>,
    /// Number of simulated assets.
    #[arg(long, default_value_t = 10)]
    pub twins: usize,
    /// Kinds of the assets, taken in turn: pump, chiller, mri.
    #[arg(long, value_delimiter = ',', default_value = "pump", value_parser = super::parse_kind)]
    pub kinds: Vec<AssetKind>,
    /// Seed: the same seed and flags give byte-identical files.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Simulated time between rows.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub dt: Duration,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: Format,
    /// Compress the row files (`.csv.zst`, `.lp.zst`).
    #[arg(long, value_enum, default_value = "none")]
    pub compress: Compression,
    /// zstd level with `--compress zstd`: -7 (fastest) … 19 (smallest); negative levels trade
    /// ratio for speed.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(-7..=19))]
    pub zstd_level: i32,
    /// Time of the first row (RFC 3339 or epoch ms; default 2026-01-05T00:00:00Z, a Monday).
    #[arg(long, value_parser = super::parse_start)]
    pub start: Option<Timestamp>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Simulate and format everything but write no row files: measures generation speed
    /// without the disk (the JSON files are still written).
    #[arg(long)]
    pub discard: bool,
}

/// What every worker needs to know about the run.
#[derive(Debug)]
struct Plan {
    out: PathBuf,
    start: Timestamp,
    dt_ns: i64,
    dt_s: f64,
    steps: u64,
    csv: bool,
    lp: bool,
    discard: bool,
    /// zstd level, when compressing.
    zstd: Option<i32>,
}

#[allow(clippy::print_stdout)]
pub fn run(a: DatasetArgs) -> anyhow::Result<()> {
    let days = a.hours.map_or(a.days, |h| h / 24.0);
    if !(days.is_finite() && days > 0.0) {
        bail!("--days and --hours must be positive numbers");
    }
    if a.twins == 0 {
        bail!("--twins must be at least 1");
    }
    let dt_ns = i64::try_from(a.dt.as_nanos()).unwrap_or(i64::MAX);
    if dt_ns <= 0 {
        bail!("--dt must be longer than zero");
    }
    let span_s = days * 86_400.0;
    let dt_s = dt_ns as f64 / 1e9;
    // Whole multiples of the step stay whole despite rounding in `days`.
    let exact = span_s / dt_s;
    let steps = if (exact - exact.round()).abs() < 1e-6 {
        exact.round()
    } else {
        exact.ceil()
    } as u64;
    let start = a.start.unwrap_or(RUN_START);
    let plan = Plan {
        out: a.out.clone(),
        start,
        dt_ns,
        dt_s,
        steps,
        csv: a.format != Format::Lp,
        lp: a.format != Format::Csv,
        discard: a.discard,
        zstd: (a.compress == Compression::Zstd).then_some(a.zstd_level),
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;

    let mut plant = Plant::fleet(a.seed, a.twins, &a.kinds, span_s);
    plant.begin(start);
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, a.twins);
    let rows = steps * a.twins as u64;
    println!(
        "sim dataset: {} twins × {} rows ({} at {}) = {rows} rows, {threads} threads → {}",
        a.twins,
        steps,
        humantime::format_duration(Duration::from_secs_f64(steps as f64 * dt_s)),
        humantime::format_duration(a.dt),
        a.out.display()
    );
    let bar = ProgressBar::new(rows);
    bar.set_style(
        ProgressStyle::with_template(
            "  {bar:40} {percent:>3}%  {human_pos}/{human_len} rows  {per_sec}  eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let began = Instant::now();
    let bytes = AtomicU64::new(0);
    let disk = AtomicU64::new(0);
    let queue = parking_lot::Mutex::new(plant.simulated_twins_mut().iter_mut());
    let results: Vec<anyhow::Result<()>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let next = queue.lock().next();
                        let Some(unit) = next else { return Ok(()) };
                        let (n, on_disk) = write_twin(unit, &plan, &bar)?;
                        bytes.fetch_add(n, Ordering::Relaxed);
                        disk.fetch_add(on_disk, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a dataset worker panicked")))
            })
            .collect()
    });
    for r in results {
        r?;
    }
    bar.finish_and_clear();
    let secs = began.elapsed().as_secs_f64();

    write_json(&a.out.join("ground_truth.json"), &ground_truth(&plant))?;
    write_json(
        &a.out.join("catalog.json"),
        &json!({"models": plant.models(), "twins": plant.twins()}),
    )?;
    write_json(&a.out.join("manifest.json"), &manifest(&a, &plant, &plan))?;
    let bytes = bytes.load(Ordering::Relaxed);
    let disk = disk.load(Ordering::Relaxed);
    let compressed = if plan.zstd.is_some() && !a.discard {
        format!(", {:.1} MB on disk", disk as f64 / 1e6)
    } else {
        String::new()
    };
    println!(
        "{} {rows} rows ({:.1} MB of text{compressed}) in {secs:.1} s: {:.2} M rows/s, {:.0} MB/s; {} faults in ground_truth.json",
        if a.discard { "generated (and discarded)" } else { "wrote" },
        bytes as f64 / 1e6,
        rows as f64 / secs / 1e6,
        bytes as f64 / secs / 1e6,
        plant.ground_truth().len(),
    );
    Ok(())
}

/// Steps one twin through the whole span, writing its CSV and/or line-protocol file.
/// Returns the bytes of text written and the bytes the files take on disk.
fn write_twin(
    unit: &mut SimulatedTwin,
    plan: &Plan,
    bar: &ProgressBar,
) -> anyhow::Result<(u64, u64)> {
    let model = unit.asset().model();
    let id = unit.twin().id.clone();
    let columns: Vec<Column> = model.signals.iter().map(Column::new).collect();
    let mut row = vec![0.0; columns.len()];
    let lp_prefix = format!("{},twin={id} ", model.id);
    // Bytes a row can take at most: prefix, timestamp, and per value a separator, its name
    // (line protocol), `=` and the number.
    let row_max = lp_prefix.len()
        + 64
        + columns
            .iter()
            .map(|c| c.name.len() + 2 + NUMBER_MAX)
            .sum::<usize>();
    let open = |ext: &str| -> anyhow::Result<(PathBuf, RowWriter)> {
        let suffix = if plan.zstd.is_some() { ".zst" } else { "" };
        let path = plan.out.join(format!("{id}.{ext}{suffix}"));
        let inner: Box<dyn Write> = if plan.discard {
            Box::new(std::io::sink())
        } else {
            Box::new(File::create(&path).with_context(|| format!("creating {}", path.display()))?)
        };
        let sink = match plan.zstd {
            Some(level) => Sink::zstd(inner, level)
                .with_context(|| format!("starting zstd for {}", path.display()))?,
            None => Sink::Plain(inner),
        };
        Ok((path, RowWriter::new(sink, row_max)))
    };
    let mut csv = if plan.csv { Some(open("csv")?) } else { None };
    let mut lp = if plan.lp { Some(open("lp")?) } else { None };
    if let Some((_, w)) = &mut csv {
        w.slice(b"timestamp");
        for c in &columns {
            w.byte(b',');
            w.slice(c.name.as_bytes());
        }
        w.byte(b'\n');
    }

    let mut clock = Clock::default();
    let mut pending = 0u64;
    for k in 0..plan.steps {
        let t = plan.start + k as i64 * plan.dt_ns;
        unit.step_into(t, plan.dt_s, &mut row);
        if let Some((path, w)) = &mut csv {
            clock.write(t, w);
            for (c, &v) in columns.iter().zip(&row) {
                w.byte(b',');
                c.write(v, false, w);
            }
            w.byte(b'\n');
            w.end_row()
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some((path, w)) = &mut lp {
            let mark = w.mark();
            w.slice(lp_prefix.as_bytes());
            let mut fields = 0;
            for (c, &v) in columns.iter().zip(&row) {
                if v.is_nan() {
                    continue;
                }
                if fields > 0 {
                    w.byte(b',');
                }
                w.slice(c.name.as_bytes());
                w.byte(b'=');
                c.write(v, true, w);
                fields += 1;
            }
            if fields == 0 {
                // Every signal dropped out: no line (one needs a field).
                w.truncate(mark);
            } else {
                w.byte(b' ');
                w.int(t);
                w.byte(b'\n');
                w.end_row()
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        pending += 1;
        if pending == PROGRESS_EVERY {
            bar.inc(pending);
            pending = 0;
        }
    }
    bar.inc(pending);
    let (mut bytes, mut disk) = (0, 0);
    for (path, w) in csv.into_iter().chain(lp) {
        bytes += w
            .finish()
            .with_context(|| format!("writing {}", path.display()))?;
        if !plan.discard {
            disk += std::fs::metadata(&path)
                .with_context(|| format!("reading the size of {}", path.display()))?
                .len();
        }
    }
    Ok((bytes, disk))
}

/// How one signal is written.
#[derive(Debug)]
struct Column {
    name: String,
    kind: ValueKind,
    /// Decimal places of a float signal, and 10^decimals.
    decimals: u32,
    scale: f64,
}

impl Column {
    fn new(s: &SignalSpec) -> Column {
        let decimals = decimals_for(s);
        Column {
            name: s.name.clone(),
            kind: s.kind,
            decimals,
            scale: 10f64.powi(decimals as i32),
        }
    }

    /// Writes `v` (a fast-path slot: NaN is a dropout, booleans 0/1) as CSV or, with
    /// `lp`, as a line-protocol field value (integers get their `i`).
    #[inline]
    fn write(&self, v: f64, lp: bool, out: &mut RowWriter) {
        if v.is_nan() {
            return;
        }
        match self.kind {
            ValueKind::Bool => out.slice(if v != 0.0 { b"true" } else { b"false" }),
            ValueKind::Int => {
                out.int(v as i64);
                if lp {
                    out.byte(b'i');
                }
            }
            _ => out.fixed(v, self.decimals, self.scale),
        }
    }

    /// The resolution values are rounded to (floats only).
    fn resolution(&self) -> Option<f64> {
        matches!(self.kind, ValueKind::Float).then(|| 1.0 / self.scale)
    }
}

/// Decimal places giving a resolution of at most 1/5000 of the signal's normal span (three
/// when it has none).
fn decimals_for(s: &SignalSpec) -> u32 {
    match (s.min, s.max) {
        (Some(lo), Some(hi)) if hi > lo => {
            (5_000.0 / (hi - lo)).log10().ceil().clamp(0.0, 6.0) as u32
        }
        _ => 3,
    }
}

fn ground_truth(plant: &Plant) -> serde_json::Value {
    let ts = |t: Option<Timestamp>| t.map(format_ts);
    plant
        .ground_truth()
        .into_iter()
        .map(|g| {
            let mut o = json!({
                "twin": g.asset_id,
                "kind": g.kind,
                "onset": format_ts(g.onset),
            });
            for (k, v) in [
                ("signal", g.signal),
                ("end", ts(g.end)),
                ("failure", ts(g.failure)),
            ] {
                if let Some(v) = v {
                    o[k] = json!(v);
                }
            }
            o
        })
        .collect()
}

fn manifest(a: &DatasetArgs, plant: &Plant, plan: &Plan) -> serde_json::Value {
    let mut resolution = serde_json::Map::new();
    for m in plant.models().iter().filter(|m| !m.signals.is_empty()) {
        let cols: serde_json::Map<_, _> = m
            .signals
            .iter()
            .map(Column::new)
            .filter_map(|c| c.resolution().map(|r| (c.name, json!(r))))
            .collect();
        resolution.insert(m.id.clone(), cols.into());
    }
    let last = plan.start + plan.steps.saturating_sub(1) as i64 * plan.dt_ns;
    json!({
        "seed": a.seed,
        "days": plan.steps as f64 * plan.dt_s / 86_400.0,
        "dt_s": plan.dt_s,
        "start": format_ts(plan.start),
        "last": format_ts(last),
        "rows_per_twin": plan.steps,
        "format": format!("{:?}", a.format).to_lowercase(),
        "compress": format!("{:?}", a.compress).to_lowercase(),
        "kinds": a.kinds.iter().map(|k| k.slug()).collect::<Vec<_>>(),
        "twins": plant.simulated_twins().iter().map(|u| u.twin().id.clone()).collect::<Vec<_>>(),
        "resolution": resolution,
    })
}

fn write_json(path: &Path, v: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(v)? + "\n";
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_follows_the_span() {
        let pump = AssetKind::PumpMotor.model();
        let col = |name: &str| {
            Column::new(pump.signals.iter().find(|s| s.name == name).unwrap())
                .resolution()
                .unwrap()
        };
        assert_eq!(col("speed"), 0.1);
        assert_eq!(col("flow"), 0.01);
        assert_eq!(col("suction_pressure"), 0.0001);
    }

    #[test]
    fn columns_write_every_kind() {
        let spec = |kind| SignalSpec {
            name: "x".into(),
            unit: String::new(),
            kind,
            min: Some(0.0),
            max: Some(100.0),
            role: doppel_model::SignalRole::Output,
            description: String::new(),
        };
        let write =
            |kind, v, lp| super::super::rows::collect(|w| Column::new(&spec(kind)).write(v, lp, w));
        assert_eq!(write(ValueKind::Float, 12.3456, false), "12.35");
        assert_eq!(write(ValueKind::Int, 42.0, false), "42");
        assert_eq!(write(ValueKind::Int, 42.0, true), "42i");
        assert_eq!(write(ValueKind::Bool, 1.0, true), "true");
        assert_eq!(write(ValueKind::Bool, 0.0, false), "false");
        assert_eq!(write(ValueKind::Float, f64::NAN, false), "");
    }
}
