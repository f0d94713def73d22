//! `doppel sim dataset`: months of simulated history in seconds, without a server. Every
//! twin is independent, so twins are handed to one thread per core; each is stepped with the
//! allocation-free [`SimulatedTwin::step_into`] and its rows formatted straight into a
//! buffered file.
//!
//! Output in `--out`:
//! - `{twin}.csv`: `timestamp,<signals in model order>`, RFC 3339 UTC timestamps, an empty
//!   cell where a sensor dropped out;
//! - `{twin}.lp`: InfluxDB line protocol (`{model},twin={id} field=value,… {ns}`), ready for
//!   `POST /api/v1/write`;
//! - `ground_truth.json`: every fault that started, with onset, end and failure times;
//! - `catalog.json`: the models and twins (load them before the `.lp` files);
//! - `manifest.json`: the parameters, and the resolution each signal was rounded to.
//!
//! Values are rounded to a resolution of about 1/5000 of the signal's normal span (a 12-bit
//! sensor; e.g. 0.1 rpm, 0.01 m³/h, 0.0001 bar), which keeps files small without losing
//! anything the noise has not already blurred. The same flags give byte-identical files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::ValueEnum;
use doppel_model::{format_ts, SignalSpec, Timestamp, ValueKind};
use doppel_sim::{AssetKind, Plant, SimulatedTwin, RUN_START};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

const NS_PER_S: i64 = 1_000_000_000;
const NS_PER_DAY: i64 = 86_400 * NS_PER_S;
/// Rows between progress-bar updates.
const PROGRESS_EVERY: u64 = 16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Lp,
    Both,
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
    let queue = parking_lot::Mutex::new(plant.simulated_twins_mut().iter_mut());
    let results: Vec<anyhow::Result<()>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let next = queue.lock().next();
                        let Some(unit) = next else { return Ok(()) };
                        let n = write_twin(unit, &plan, &bar)?;
                        bytes.fetch_add(n, Ordering::Relaxed);
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
    println!(
        "{} {rows} rows ({:.1} MB) in {secs:.1} s: {:.2} M rows/s, {:.0} MB/s; {} faults in ground_truth.json",
        if a.discard { "generated (and discarded)" } else { "wrote" },
        bytes as f64 / 1e6,
        rows as f64 / secs / 1e6,
        bytes as f64 / secs / 1e6,
        plant.ground_truth().len(),
    );
    Ok(())
}

/// Steps one twin through the whole span, writing its CSV and/or line-protocol file.
/// Returns the bytes written.
fn write_twin(unit: &mut SimulatedTwin, plan: &Plan, bar: &ProgressBar) -> anyhow::Result<u64> {
    let model = unit.asset().model();
    let id = unit.twin().id.clone();
    let columns: Vec<Column> = model.signals.iter().map(Column::new).collect();
    let mut row = vec![0.0; columns.len()];
    let open = |ext: &str| -> anyhow::Result<(PathBuf, BufWriter<Box<dyn Write>>)> {
        let path = plan.out.join(format!("{id}.{ext}"));
        let inner: Box<dyn Write> = if plan.discard {
            Box::new(std::io::sink())
        } else {
            Box::new(File::create(&path).with_context(|| format!("creating {}", path.display()))?)
        };
        Ok((path, BufWriter::with_capacity(1 << 20, inner)))
    };
    let mut csv = if plan.csv { Some(open("csv")?) } else { None };
    let mut lp = if plan.lp { Some(open("lp")?) } else { None };
    let lp_prefix = format!("{},twin={id} ", model.id);
    let mut bytes = 0u64;
    let mut line: Vec<u8> = Vec::with_capacity(2_048);
    if let Some((path, w)) = &mut csv {
        line.extend_from_slice(b"timestamp");
        for c in &columns {
            line.push(b',');
            line.extend_from_slice(c.name.as_bytes());
        }
        line.push(b'\n');
        w.write_all(&line)
            .with_context(|| format!("writing {}", path.display()))?;
        bytes += line.len() as u64;
    }

    let mut clock = Clock::default();
    let mut pending = 0u64;
    for k in 0..plan.steps {
        let t = plan.start + k as i64 * plan.dt_ns;
        unit.step_into(t, plan.dt_s, &mut row);
        if let Some((path, w)) = &mut csv {
            line.clear();
            clock.write(t, &mut line);
            for (c, &v) in columns.iter().zip(&row) {
                line.push(b',');
                c.write(v, false, &mut line);
            }
            line.push(b'\n');
            w.write_all(&line)
                .with_context(|| format!("writing {}", path.display()))?;
            bytes += line.len() as u64;
        }
        if let Some((path, w)) = &mut lp {
            line.clear();
            line.extend_from_slice(lp_prefix.as_bytes());
            let mut fields = 0;
            for (c, &v) in columns.iter().zip(&row) {
                if v.is_nan() {
                    continue;
                }
                if fields > 0 {
                    line.push(b',');
                }
                line.extend_from_slice(c.name.as_bytes());
                line.push(b'=');
                c.write(v, true, &mut line);
                fields += 1;
            }
            if fields > 0 {
                line.push(b' ');
                line.extend_from_slice(itoa::Buffer::new().format(t).as_bytes());
                line.push(b'\n');
                w.write_all(&line)
                    .with_context(|| format!("writing {}", path.display()))?;
                bytes += line.len() as u64;
            }
        }
        pending += 1;
        if pending == PROGRESS_EVERY {
            bar.inc(pending);
            pending = 0;
        }
    }
    bar.inc(pending);
    for (path, mut w) in csv.into_iter().chain(lp) {
        w.flush()
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(bytes)
}

/// How one signal is written.
#[derive(Debug)]
struct Column {
    name: String,
    kind: ValueKind,
    /// Decimal places of a float signal, and 10^decimals as float and integer.
    decimals: u32,
    scale: f64,
    pow: i64,
}

impl Column {
    fn new(s: &SignalSpec) -> Column {
        let decimals = decimals_for(s);
        Column {
            name: s.name.clone(),
            kind: s.kind,
            decimals,
            scale: 10f64.powi(decimals as i32),
            pow: 10i64.pow(decimals),
        }
    }

    /// Appends `v` (a fast-path slot: NaN is a dropout, booleans 0/1) as CSV or, with
    /// `lp`, as a line-protocol field value (integers get their `i`).
    fn write(&self, v: f64, lp: bool, out: &mut Vec<u8>) {
        if v.is_nan() {
            return;
        }
        match self.kind {
            ValueKind::Bool => out.extend_from_slice(if v != 0.0 { b"true" } else { b"false" }),
            ValueKind::Int => {
                out.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
                if lp {
                    out.push(b'i');
                }
            }
            _ => write_fixed(v, self.decimals, self.scale, self.pow, out),
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

/// Writes `v` rounded to `decimals` places, without trailing zeros (`45.1`, `2950`, `-0.02`).
/// `scale` and `pow` are 10^decimals.
fn write_fixed(v: f64, decimals: u32, scale: f64, pow: i64, out: &mut Vec<u8>) {
    let scaled = (v * scale).round();
    if !scaled.is_finite() || scaled.abs() >= 9.0e15 {
        // Out of the exact integer range (or infinite): rare enough for the slow path.
        if v.is_finite() {
            out.extend_from_slice(format!("{v}").as_bytes());
        }
        return;
    }
    let mut q = scaled as i64;
    if q < 0 {
        out.push(b'-');
        q = -q;
    }
    out.extend_from_slice(itoa::Buffer::new().format(q / pow).as_bytes());
    let mut frac = q % pow;
    if frac == 0 {
        return;
    }
    let mut digits = decimals as usize;
    while frac % 10 == 0 {
        frac /= 10;
        digits -= 1;
    }
    out.push(b'.');
    let mut buf = itoa::Buffer::new();
    let s = buf.format(frac);
    out.extend(std::iter::repeat_n(b'0', digits.saturating_sub(s.len())));
    out.extend_from_slice(s.as_bytes());
}

/// RFC 3339 UTC timestamps, formatting the date only when the day changes.
#[derive(Debug, Default)]
struct Clock {
    day: Option<i64>,
    /// `YYYY-MM-DDT` of `day`.
    date: String,
}

impl Clock {
    fn write(&mut self, t: Timestamp, out: &mut Vec<u8>) {
        let day = t.div_euclid(NS_PER_DAY);
        if self.day != Some(day) {
            let s = format_ts(day * NS_PER_DAY);
            self.date = s
                .split_inclusive('T')
                .next()
                .unwrap_or_default()
                .to_string();
            self.day = Some(day);
        }
        out.extend_from_slice(self.date.as_bytes());
        let in_day = t - day * NS_PER_DAY;
        let secs = in_day / NS_PER_S;
        for (i, part) in [secs / 3_600, secs / 60 % 60, secs % 60]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                out.push(b':');
            }
            out.push(b'0' + (part / 10) as u8);
            out.push(b'0' + (part % 10) as u8);
        }
        let mut ns = in_day % NS_PER_S;
        if ns != 0 {
            let mut digits = 9;
            while ns % 10 == 0 {
                ns /= 10;
                digits -= 1;
            }
            out.push(b'.');
            let mut buf = itoa::Buffer::new();
            let s = buf.format(ns);
            out.extend(std::iter::repeat_n(b'0', digits - s.len()));
            out.extend_from_slice(s.as_bytes());
        }
        out.push(b'Z');
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

    fn fixed(v: f64, decimals: u32) -> String {
        let mut out = Vec::new();
        write_fixed(
            v,
            decimals,
            10f64.powi(decimals as i32),
            10i64.pow(decimals),
            &mut out,
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fixed_point_rounds_and_trims() {
        assert_eq!(fixed(45.1049, 2), "45.1");
        assert_eq!(fixed(2950.04, 1), "2950");
        assert_eq!(fixed(-0.0249, 2), "-0.02");
        assert_eq!(fixed(-0.0001, 2), "0");
        assert_eq!(fixed(0.00012, 4), "0.0001");
        assert_eq!(fixed(1.70005, 4), "1.7001");
        assert_eq!(fixed(123.0, 0), "123");
        assert_eq!(fixed(1e300, 2), format!("{}", 1e300));
        assert_eq!(fixed(f64::INFINITY, 2), "");
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let mut c = Clock::default();
        for t in [
            RUN_START,
            RUN_START + 13 * 3_600 * NS_PER_S + 5 * 60 * NS_PER_S + 9 * NS_PER_S,
            RUN_START + 86_400 * NS_PER_S - 1,
            RUN_START + 250_000_000,
            -1_500_000_000,
        ] {
            let mut out = Vec::new();
            c.write(t, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), format_ts(t));
        }
    }

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
}
