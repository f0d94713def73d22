//! `doppel eval faults`: runs a simulated fleet with scheduled process and sensor faults (and
//! a few twins that stay healthy), streams every twin's readings in time order through one
//! [`TwinDetector`] per twin, exactly as the engine would (`TwinDetector::for_model` with
//! `DetectorConfig::default()`), and scores the alarms against the simulator's ground truth.
//!
//! Definitions (the report's vocabulary):
//! - an **alarm** is a rising edge of [`Score::is_anomaly`](doppel_analytics::Score): the
//!   reading at which a twin's detector goes from "normal" to "in alarm";
//! - a fault's **window** on its twin runs from its onset to its end plus `grace_s` (faults
//!   with a duration), to the end of the run (faults without one), and, once a fault has made
//!   the asset fail, for good (a dead asset is expected to alarm);
//! - a fault is **alarmed** by the first alarm raised at or after its onset; an alarm already
//!   standing at onset was raised for something else, so it is flagged but not credited (the
//!   fault needs that alarm to clear and a new one to be raised);
//! - its **deadline** is its failure time when it made the asset fail, else the end of its
//!   window; it is **detected in time** when alarmed by then (and `detected_before_failure`
//!   says the same for faults that caused a failure);
//! - a **false alarm** is an alarm raised on a twin at a time inside none of that twin's fault
//!   windows (process or sensor); false alarms per twin-day divide their number by the twins'
//!   monitored time, every twin's run after its detector's warm-up.
//!
//! Every twin first runs healthy for the detector's warm-up (`warmup` readings), so no fault
//! starts while its detector is still learning; the fleet's fault schedule (onsets over the
//! first 70 % of `--days`) starts after that lead-in.

use std::time::{Duration, Instant};

use anyhow::bail;
use doppel_analytics::{ContributionKind, DetectorConfig, TwinDetector};
use doppel_model::{format_ts, Timestamp, Twin, ValueKind};
use doppel_sim::{AssetKind, FaultKind, GroundTruth, Plant, SimulatedTwin, RUN_START};
use serde::Serialize;

const NS_PER_S: f64 = 1e9;
const DAY_S: f64 = 86_400.0;

/// Flags of `doppel eval faults`.
#[derive(Debug, Clone, clap::Args)]
pub struct FaultsArgs {
    /// Simulated assets with seeded faults (about two in three get a process fault, one in
    /// three a sensor fault).
    #[arg(long, default_value_t = 24)]
    pub twins: usize,
    /// Extra assets that never get a fault, one kind after another.
    #[arg(long, default_value_t = 3)]
    pub healthy: usize,
    /// Simulated days of the fault schedule (after each twin's warm-up lead-in).
    #[arg(long, default_value_t = 2.0)]
    pub days: f64,
    /// Seed of the fleet: the same flags give the same report (bar the timing figures).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Simulated seconds between two readings of a twin.
    #[arg(long = "rate-secs", default_value_t = 1.0)]
    pub rate_secs: f64,
    /// Kinds of the assets, taken in turn: pump, chiller, mri.
    #[arg(long, value_delimiter = ',', default_value = "pump,chiller,mri",
          value_parser = super::sim::parse_kind)]
    pub kinds: Vec<AssetKind>,
    /// Seconds after a fault ends during which alarms are still put down to it (the process
    /// settling back: thermal lags are tens of minutes).
    #[arg(long = "grace-secs", default_value_t = 3_600.0)]
    pub grace_secs: f64,
    /// Worker threads (default: one per core). Twins are independent.
    #[arg(long)]
    pub threads: Option<usize>,
    /// List every false alarm with the signal and detector that raised it.
    #[arg(long)]
    pub details: bool,
    #[command(flatten)]
    pub detector: super::eval::DetectorConfigArg,
}

/// What to run: the flags without the output options.
#[derive(Debug, Clone)]
pub struct FaultsOptions {
    pub twins: usize,
    pub healthy: usize,
    pub days: f64,
    pub seed: u64,
    pub rate_secs: f64,
    pub kinds: Vec<AssetKind>,
    pub grace_secs: f64,
    pub threads: usize,
    pub config: DetectorConfig,
}

impl FaultsOptions {
    fn from_args(a: &FaultsArgs) -> anyhow::Result<Self> {
        if !(a.days.is_finite() && a.days > 0.0) {
            bail!("--days must be a positive number");
        }
        if !(a.rate_secs.is_finite() && a.rate_secs > 0.0) {
            bail!("--rate-secs must be a positive number");
        }
        if !(a.grace_secs.is_finite() && a.grace_secs >= 0.0) {
            bail!("--grace-secs must be a number ≥ 0");
        }
        if a.twins + a.healthy == 0 {
            bail!("--twins and --healthy cannot both be 0");
        }
        let threads = a
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        Ok(FaultsOptions {
            twins: a.twins,
            healthy: a.healthy,
            days: a.days,
            seed: a.seed,
            rate_secs: a.rate_secs,
            kinds: a.kinds.clone(),
            grace_secs: a.grace_secs,
            threads,
            config: a.detector.config()?,
        })
    }
}

/// One alarm of one twin: when it was raised (and cleared), and what raised it.
#[derive(Debug, Clone, Serialize)]
pub struct Alarm {
    #[serde(serialize_with = "ser_ts")]
    pub raised: Timestamp,
    #[serde(serialize_with = "ser_opt_ts")]
    pub cleared: Option<Timestamp>,
    /// The highest contribution at the rising edge.
    pub signal: Option<String>,
    pub detector: Option<ContributionKind>,
}

/// One injected fault and how the detector did on it.
#[derive(Debug, Clone, Serialize)]
pub struct FaultOutcome {
    pub twin: String,
    pub kind: FaultKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(serialize_with = "ser_ts")]
    pub onset: Timestamp,
    #[serde(serialize_with = "ser_opt_ts")]
    pub end: Option<Timestamp>,
    #[serde(serialize_with = "ser_opt_ts")]
    pub failure: Option<Timestamp>,
    #[serde(serialize_with = "ser_opt_ts")]
    pub first_alarm: Option<Timestamp>,
    /// Seconds from onset to the first alarm.
    pub delay_s: Option<f64>,
    /// For faults that made the asset fail: alarmed before the failure.
    pub detected_before_failure: Option<bool>,
    /// Alarmed by the deadline (failure, else end of the fault's window).
    pub detected_in_time: bool,
    /// An alarm raised before the onset was still standing at it (not credited).
    pub alarm_standing_at_onset: bool,
    /// What raised the alarm that detected it.
    pub alarm_signal: Option<String>,
    pub alarm_detector: Option<ContributionKind>,
}

/// Detection figures over a set of faults.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub kind: String,
    pub faults: usize,
    pub detected_in_time: usize,
    pub share_detected_in_time: f64,
    /// Faults that made their asset fail, and how many of them were alarmed before.
    pub failures: usize,
    pub alarmed_before_failure: usize,
    pub share_alarmed_before_failure: Option<f64>,
    /// Faults whose twin was already in alarm at their onset.
    pub standing_at_onset: usize,
    /// Over the faults detected in time.
    pub median_delay_s: Option<f64>,
    pub p90_delay_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FaultFamily {
    pub overall: Summary,
    pub per_kind: Vec<Summary>,
    pub faults: Vec<FaultOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FalseAlarm {
    pub twin: String,
    #[serde(serialize_with = "ser_ts")]
    pub raised: Timestamp,
    pub signal: Option<String>,
    pub detector: Option<ContributionKind>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FalseAlarms {
    pub count: usize,
    pub twin_days: f64,
    pub per_twin_day: f64,
    /// The same over the twins that never had a fault.
    pub healthy_twins: usize,
    pub healthy_count: usize,
    pub healthy_per_twin_day: Option<f64>,
    /// Alarms raised inside fault windows (each fault alarms at least once when detected;
    /// more means the alarm chattered or re-raised).
    pub alarms_in_fault_windows: usize,
    /// By the detector that raised them (highest contribution at the rising edge).
    pub by_detector: Vec<(String, usize)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub list: Vec<FalseAlarm>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Speed {
    pub readings: u64,
    /// Time spent in `TwinDetector::observe`, summed over threads.
    pub detect_seconds: f64,
    pub readings_per_second: f64,
    pub us_per_reading: f64,
    pub signals_per_reading: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Params {
    pub twins: usize,
    pub healthy: usize,
    pub days: f64,
    pub seed: u64,
    pub rate_secs: f64,
    pub kinds: Vec<&'static str>,
    pub grace_secs: f64,
    /// Healthy run before the fault schedule starts: the detector's warm-up.
    pub lead_in_s: f64,
    pub warmup_readings: usize,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct FaultsReport {
    pub params: Params,
    pub process: FaultFamily,
    pub sensor: FaultFamily,
    pub false_alarms: FalseAlarms,
    pub speed: Speed,
}

/// What running one twin gave.
#[derive(Debug)]
struct TwinRun {
    id: String,
    truth: Vec<GroundTruth>,
    failed_at: Option<Timestamp>,
    alarms: Vec<Alarm>,
    readings: u64,
    signals: usize,
    detect: Duration,
}

pub fn run(a: FaultsArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let opts = FaultsOptions::from_args(&a)?;
    let mut report = evaluate(&opts)?;
    if !a.details {
        report.false_alarms.list.clear();
    }
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &report)?;
    writeln!(out)?;
    Ok(())
}

/// Simulates the fleet, runs the detectors and scores them. Twins are spread over
/// `opts.threads` threads; the result does not depend on how many.
pub fn evaluate(opts: &FaultsOptions) -> anyhow::Result<FaultsReport> {
    let horizon_s = opts.days * DAY_S;
    let dt_ns = (opts.rate_secs * NS_PER_S).round().max(1.0) as i64;
    let warmup = opts.config.warmup.max(2);
    let lead_in_ns = warmup as i64 * dt_ns;
    let steps = warmup as u64 + (horizon_s * NS_PER_S / dt_ns as f64).ceil() as u64;
    let start = RUN_START;
    let end = start + (steps as i64 - 1) * dt_ns;

    let mut plant = Plant::fleet(opts.seed, opts.twins, &opts.kinds, horizon_s);
    let kinds = if opts.kinds.is_empty() {
        &[AssetKind::PumpMotor][..]
    } else {
        &opts.kinds
    };
    for i in 0..opts.healthy {
        let kind = kinds[i % kinds.len()];
        let id = format!("{}-healthy-{:02}", kind.slug(), i + 1);
        let twin = Twin {
            id: id.clone(),
            model: kind.model().id,
            name: format!("Healthy {}", kind.name()),
            parent: None,
            properties: Default::default(),
            relations: Vec::new(),
        };
        let seed = opts.seed.rotate_left(17) ^ 0x4ea1_7e55_0000_0000 ^ i as u64;
        plant.add_asset(twin, kind.build(&id, seed));
    }
    // The fault schedule starts after the lead-in; stepping from `start` runs it healthy.
    plant.begin(start + lead_in_ns);

    let queue = parking_lot::Mutex::new(plant.simulated_twins_mut().iter_mut());
    let threads = opts.threads.clamp(1, opts.twins + opts.healthy);
    let runs: Vec<TwinRun> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let next = queue.lock().next();
                        let Some(unit) = next else { break };
                        done.push(run_twin(unit, start, dt_ns, steps, &opts.config));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    if runs.len() != opts.twins + opts.healthy {
        bail!("a detection worker panicked");
    }
    let mut runs = runs;
    runs.sort_by(|a, b| a.id.cmp(&b.id));

    let grace_ns = (opts.grace_secs * NS_PER_S) as i64;
    let mut process = Vec::new();
    let mut sensor = Vec::new();
    let mut false_list = Vec::new();
    let mut in_windows = 0;
    let mut healthy_twins = 0;
    let mut healthy_false = 0;
    for r in &runs {
        let windows: Vec<(Timestamp, Timestamp)> = r
            .truth
            .iter()
            .map(|g| (g.onset, window_end(g, end, grace_ns)))
            .collect();
        for a in &r.alarms {
            let explained = windows
                .iter()
                .any(|&(from, to)| (from..=to).contains(&a.raised))
                || r.failed_at.is_some_and(|f| a.raised >= f);
            if explained {
                in_windows += 1;
            } else {
                false_list.push(FalseAlarm {
                    twin: r.id.clone(),
                    raised: a.raised,
                    signal: a.signal.clone(),
                    detector: a.detector,
                });
                if r.truth.is_empty() {
                    healthy_false += 1;
                }
            }
        }
        if r.truth.is_empty() {
            healthy_twins += 1;
        }
        for g in &r.truth {
            let o = outcome(g, r, end, grace_ns);
            if g.kind.is_sensor() {
                sensor.push(o);
            } else {
                process.push(o);
            }
        }
    }
    let monitored_days = (end - (start + lead_in_ns)) as f64 / NS_PER_S / DAY_S;
    let twin_days = runs.len() as f64 * monitored_days;
    let healthy_days = healthy_twins as f64 * monitored_days;
    let mut by_detector: Vec<(String, usize)> = Vec::new();
    for f in &false_list {
        let k = f
            .detector
            .map_or_else(|| "unknown".to_string(), |d| detector_name(d).to_string());
        match by_detector.iter_mut().find(|(n, _)| *n == k) {
            Some((_, c)) => *c += 1,
            None => by_detector.push((k, 1)),
        }
    }
    by_detector.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));

    let readings: u64 = runs.iter().map(|r| r.readings).sum();
    let detect: f64 = runs.iter().map(|r| r.detect.as_secs_f64()).sum();
    let signals: f64 = runs
        .iter()
        .map(|r| r.signals as f64 * r.readings as f64)
        .sum();
    Ok(FaultsReport {
        params: Params {
            twins: opts.twins,
            healthy: opts.healthy,
            days: opts.days,
            seed: opts.seed,
            rate_secs: dt_ns as f64 / NS_PER_S,
            kinds: kinds.iter().map(|k| k.slug()).collect(),
            grace_secs: opts.grace_secs,
            lead_in_s: lead_in_ns as f64 / NS_PER_S,
            warmup_readings: warmup,
        },
        process: family(process),
        sensor: family(sensor),
        false_alarms: FalseAlarms {
            count: false_list.len(),
            twin_days,
            per_twin_day: ratio(false_list.len() as f64, twin_days).unwrap_or(0.0),
            healthy_twins,
            healthy_count: healthy_false,
            healthy_per_twin_day: ratio(healthy_false as f64, healthy_days),
            alarms_in_fault_windows: in_windows,
            by_detector,
            list: false_list,
        },
        speed: Speed {
            readings,
            detect_seconds: detect,
            readings_per_second: ratio(readings as f64, detect).unwrap_or(0.0),
            us_per_reading: ratio(detect * 1e6, readings as f64).unwrap_or(0.0),
            signals_per_reading: ratio(signals, readings as f64).unwrap_or(0.0),
        },
    })
}

/// Steps one twin through the whole run, then streams its readings through a fresh
/// detector (simulation and detection apart, so the detection time is measured alone).
fn run_twin(
    unit: &mut SimulatedTwin,
    start: Timestamp,
    dt_ns: i64,
    steps: u64,
    config: &DetectorConfig,
) -> TwinRun {
    let model = unit.asset().model();
    let width = model.signals.len();
    let numeric: Vec<usize> = (0..width)
        .filter(|&i| matches!(model.signals[i].kind, ValueKind::Float | ValueKind::Int))
        .collect();
    let dt_s = dt_ns as f64 / NS_PER_S;
    let mut rows = vec![0.0; width * steps as usize];
    for (k, row) in rows.chunks_exact_mut(width).enumerate() {
        unit.step_into(start + k as i64 * dt_ns, dt_s, row);
    }

    let mut det = TwinDetector::for_model(&model, config.clone());
    // NaN (a dropout) is what the detector takes as "not reported"; keeping every slot keeps
    // the signal order fixed, which the detector's name lookup is fastest on.
    let mut values: Vec<(&str, f64)> = numeric
        .iter()
        .map(|&i| (model.signals[i].name.as_str(), f64::NAN))
        .collect();
    let mut alarms: Vec<Alarm> = Vec::new();
    let mut was = false;
    let began = Instant::now();
    for (k, row) in rows.chunks_exact(width).enumerate() {
        let ts = start + k as i64 * dt_ns;
        for (v, &i) in values.iter_mut().zip(&numeric) {
            v.1 = row[i];
        }
        let score = det.observe(ts, &values);
        if score.is_anomaly && !was {
            let top = score.per_signal.first();
            alarms.push(Alarm {
                raised: ts,
                cleared: None,
                signal: top.map(|c| c.signal.to_string()),
                detector: top.map(|c| c.kind),
            });
        } else if !score.is_anomaly && was {
            if let Some(a) = alarms.last_mut() {
                a.cleared = Some(ts);
            }
        }
        was = score.is_anomaly;
    }
    let detect = began.elapsed();
    TwinRun {
        id: unit.twin().id.clone(),
        truth: unit.asset().ground_truth(),
        failed_at: unit.asset().failed_at(),
        alarms,
        readings: steps,
        signals: numeric.len(),
        detect,
    }
}

/// Where a fault's window ends (see the module doc).
fn window_end(g: &GroundTruth, run_end: Timestamp, grace_ns: i64) -> Timestamp {
    if g.failure.is_some() {
        Timestamp::MAX
    } else if let Some(e) = g.end {
        e.saturating_add(grace_ns)
    } else {
        run_end
    }
}

fn outcome(g: &GroundTruth, r: &TwinRun, run_end: Timestamp, grace_ns: i64) -> FaultOutcome {
    // The first alarm raised at or after onset. One already standing then was raised for
    // something else: it is reported, not credited.
    let hit = r.alarms.iter().find(|a| a.raised >= g.onset);
    let first = hit.map(|a| a.raised);
    let standing = r
        .alarms
        .iter()
        .any(|a| a.raised < g.onset && a.cleared.is_none_or(|c| c > g.onset));
    let deadline = g
        .failure
        .unwrap_or_else(|| window_end(g, run_end, grace_ns));
    let in_time = first.is_some_and(|t| t <= deadline);
    FaultOutcome {
        twin: r.id.clone(),
        kind: g.kind,
        signal: g.signal.clone(),
        onset: g.onset,
        end: g.end,
        failure: g.failure,
        first_alarm: first,
        delay_s: first.map(|t| (t - g.onset) as f64 / NS_PER_S),
        detected_before_failure: g.failure.map(|f| first.is_some_and(|t| t < f)),
        detected_in_time: in_time,
        alarm_standing_at_onset: standing,
        alarm_signal: hit.and_then(|a| a.signal.clone()),
        alarm_detector: hit.and_then(|a| a.detector),
    }
}

fn family(mut faults: Vec<FaultOutcome>) -> FaultFamily {
    faults.sort_by(|a, b| (a.kind.as_str(), &a.twin).cmp(&(b.kind.as_str(), &b.twin)));
    let mut kinds: Vec<FaultKind> = faults.iter().map(|f| f.kind).collect();
    kinds.dedup();
    let per_kind = kinds
        .iter()
        .map(|k| {
            let of: Vec<&FaultOutcome> = faults.iter().filter(|f| f.kind == *k).collect();
            summary(k.as_str(), &of)
        })
        .collect();
    let all: Vec<&FaultOutcome> = faults.iter().collect();
    FaultFamily {
        overall: summary("all", &all),
        per_kind,
        faults,
    }
}

fn summary(kind: &str, faults: &[&FaultOutcome]) -> Summary {
    let detected = faults.iter().filter(|f| f.detected_in_time).count();
    let failures = faults.iter().filter(|f| f.failure.is_some()).count();
    let before = faults
        .iter()
        .filter(|f| f.detected_before_failure == Some(true))
        .count();
    let mut delays: Vec<f64> = faults
        .iter()
        .filter(|f| f.detected_in_time)
        .filter_map(|f| f.delay_s)
        .collect();
    delays.sort_by(f64::total_cmp);
    Summary {
        kind: kind.to_string(),
        faults: faults.len(),
        detected_in_time: detected,
        share_detected_in_time: ratio(detected as f64, faults.len() as f64).unwrap_or(0.0),
        failures,
        alarmed_before_failure: before,
        share_alarmed_before_failure: ratio(before as f64, failures as f64),
        standing_at_onset: faults.iter().filter(|f| f.alarm_standing_at_onset).count(),
        median_delay_s: quantile(&delays, 0.5),
        p90_delay_s: quantile(&delays, 0.9),
    }
}

/// Nearest-rank quantile of sorted values.
pub(super) fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i])
}

pub(super) fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

fn detector_name(k: ContributionKind) -> &'static str {
    match k {
        ContributionKind::Level => "level",
        ContributionKind::Rate => "rate",
        ContributionKind::Stuck => "stuck",
        ContributionKind::Dropout => "dropout",
        ContributionKind::Range => "range",
        ContributionKind::Shift => "shift",
        ContributionKind::Multivariate => "multivariate",
    }
}

pub(super) fn ser_ts<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_ts(*t))
}

pub(super) fn ser_opt_ts<S: serde::Serializer>(
    t: &Option<Timestamp>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format_ts(*t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small fleet at a coarse step (seconds in a debug build): every process fault that
    /// fails its asset is alarmed before the failure, every other one is alarmed in its
    /// window (or falls while its twin is already in alarm), and false alarms stay bounded.
    /// Fails when a detector change misses a fault or starts crying wolf.
    #[test]
    fn small_fleet_faults_are_alarmed_before_failure() {
        let opts = FaultsOptions {
            twins: 6,
            healthy: 1,
            days: 2.0,
            seed: 7,
            rate_secs: 10.0,
            kinds: vec![
                AssetKind::PumpMotor,
                AssetKind::Chiller,
                AssetKind::MriCompressor,
            ],
            grace_secs: 3_600.0,
            threads: 2,
            config: DetectorConfig::default(),
        };
        let r = evaluate(&opts).unwrap();
        let p = &r.process.overall;
        assert!(p.faults >= 3, "too few process faults to test: {p:?}");
        assert!(p.failures >= 1, "no fault ran to failure: {p:?}");
        for f in &r.process.faults {
            // A fault that fails its asset needs an alarm of its own before the failure.
            assert_ne!(f.detected_before_failure, Some(false), "late: {f:?}");
            // Any other needs one in its window, unless the twin was in alarm all along.
            assert!(
                f.detected_in_time || f.alarm_standing_at_onset,
                "missed: {f:?}"
            );
        }
        let fa = &r.false_alarms;
        assert!(
            fa.per_twin_day <= 6.0,
            "{} false alarms per twin-day ({:?})",
            fa.per_twin_day,
            fa.by_detector
        );
        assert_eq!(r.speed.readings, 7 * (400 + 2 * 86_400 / 10));
    }
}
