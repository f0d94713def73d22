//! `doppel sim live`: steps a plant against a running server and sends every step, over HTTP
//! (bulk JSON or line protocol) or MQTT QoS 1. Simulated time runs `--speed` times faster than
//! the wall clock; when sending falls behind, the next send catches up with more steps.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use doppel_model::{format_ts, Reading, Timestamp};
use doppel_sim::{AssetKind, Plant};
use hdrhistogram::Histogram;
use parking_lot::Mutex;

use super::api::{push_lp, readings_json, topic, Api};
use super::mqtt::Publisher;
use crate::commands::bench::Protocol;
use crate::commands::serve::wait_for_signal;

/// Flags of `doppel sim live`.
#[derive(Debug, Clone, clap::Args)]
pub struct LiveArgs {
    /// Base URL of the server's HTTP API (models and twins are created through it).
    #[arg(long, env = "DOPPEL_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// MQTT broker address (host:port), for `--protocol mqtt`.
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub mqtt: String,
    /// Admin token (creates models and twins; a writer token is enough with --no-setup).
    #[arg(long, env = "DOPPEL_TOKEN", hide_env_values = true)]
    pub token: String,
    #[arg(long, value_enum, default_value = "http")]
    pub protocol: Protocol,
    /// Simulated seconds per wall-clock second (60: an hour of plant life per minute).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Seed of the plant: the same seed gives the same assets and faults.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Run a fleet of this many assets (see --kinds) instead of the demo plant; faults are
    /// spread over the first hour of wall-clock time.
    #[arg(long)]
    pub twins: Option<usize>,
    /// Kinds of the fleet's assets, taken in turn: pump, chiller, mri.
    #[arg(long, value_delimiter = ',', default_value = "pump", value_parser = super::parse_kind)]
    pub kinds: Vec<AssetKind>,
    /// Simulated time per step.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub tick: Duration,
    /// Simulated time of the first step (RFC 3339 or epoch ms; default: now).
    #[arg(long, value_parser = super::parse_start)]
    pub start: Option<Timestamp>,
    /// Stop after this much wall-clock time (default: run until Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Do not create the models and twins (they exist).
    #[arg(long)]
    pub no_setup: bool,
}

/// Most steps simulated for one send, so a long stall does not build one huge request.
const MAX_STEPS_PER_SEND: u64 = 2_000;

/// Where the readings go.
enum Sink {
    Http(Api),
    Lp(Api, HashMap<String, String>),
    Mqtt(Publisher),
}

impl Sink {
    async fn send(&mut self, readings: &[Reading]) -> anyhow::Result<()> {
        match self {
            Sink::Http(api) => api.post_readings(readings).await,
            Sink::Lp(api, models) => {
                let mut body = String::with_capacity(readings.len() * 400);
                for r in readings {
                    let model = models.get(&r.twin).map_or("reading", String::as_str);
                    push_lp(&mut body, model, r);
                }
                api.post_lp(body).await
            }
            Sink::Mqtt(publisher) => {
                let mut by_twin: BTreeMap<&str, Vec<Reading>> = BTreeMap::new();
                for r in readings {
                    by_twin.entry(&r.twin).or_default().push(r.clone());
                }
                for (twin, rs) in by_twin {
                    publisher
                        .publish(topic(twin), readings_json(&rs, false))
                        .await?;
                }
                Ok(())
            }
        }
    }
}

#[allow(clippy::print_stdout)]
pub async fn run(a: LiveArgs) -> anyhow::Result<()> {
    if !(a.speed.is_finite() && a.speed > 0.0) {
        bail!("--speed must be a positive number, not {}", a.speed);
    }
    let tick_s = a.tick.as_secs_f64();
    if tick_s <= 0.0 {
        bail!("--tick must be longer than zero");
    }
    let mut plant = match a.twins {
        Some(n) => Plant::fleet(a.seed, n, &a.kinds, 3_600.0 * a.speed),
        None => Plant::demo(a.seed),
    };
    let api = Api::new(&a.url, &a.token)?;
    if !a.no_setup {
        for pack in plant.packs() {
            api.load_pack(&pack).await?;
        }
    }
    let twins = plant.simulated_twins().len();
    let mut sink = match a.protocol {
        Protocol::Http => Sink::Http(api),
        Protocol::Lp => Sink::Lp(
            api,
            plant.twins().into_iter().map(|t| (t.id, t.model)).collect(),
        ),
        Protocol::Mqtt => {
            let id = format!("doppel-sim-live-{}", std::process::id());
            let latency = Arc::new(Mutex::new(Histogram::new(3)?));
            Sink::Mqtt(Publisher::connect(&a.mqtt, &a.token, &id, 100, latency).await?)
        }
    };

    let start = a.start.unwrap_or_else(doppel_server::now_ns);
    let tick_ns = (tick_s * 1e9).round() as i64;
    println!(
        "sim live: {twins} simulated twins ({}), {:?} to {}, {}× real time, {} steps from {}",
        if a.twins.is_some() {
            "fleet"
        } else {
            "demo plant"
        },
        a.protocol,
        match a.protocol {
            Protocol::Mqtt => &a.mqtt,
            _ => &a.url,
        },
        a.speed,
        humantime::format_duration(a.tick),
        format_ts(start),
    );

    let period = Duration::from_secs_f64((tick_s / a.speed).max(0.02));
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let began = Instant::now();
    let mut steps = 0u64;
    let mut sent = 0u64;
    let mut errors = 0u64;
    let mut last_report = Instant::now();
    let stop = async {
        match a.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => wait_for_signal().await,
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = interval.tick() => {}
        }
        let due = (began.elapsed().as_secs_f64() * a.speed / tick_s) as u64 + 1;
        let mut readings = Vec::new();
        let mut n = 0;
        while steps < due && n < MAX_STEPS_PER_SEND {
            readings.extend(plant.step(start + steps as i64 * tick_ns, tick_s));
            steps += 1;
            n += 1;
        }
        if readings.is_empty() {
            continue;
        }
        match sink.send(&readings).await {
            Ok(()) => sent += readings.len() as u64,
            Err(e) => {
                if let Sink::Mqtt(_) = sink {
                    return Err(e);
                }
                errors += 1;
                if errors == 1 || errors.is_multiple_of(100) {
                    tracing::warn!(error = %format!("{e:#}"), errors, "readings refused");
                    println!("send failed ({errors} so far): {e:#}");
                }
            }
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            println!(
                "{:>7.1}s  simulated {}  {} readings sent",
                began.elapsed().as_secs_f64(),
                format_ts(start + steps as i64 * tick_ns),
                sent
            );
        }
    }

    let acked = match sink {
        Sink::Mqtt(p) => {
            let published = p.published();
            let lost = p.errors();
            let acked = p.finish(Duration::from_secs(10)).await;
            println!("mqtt: {published} messages published, {acked} acknowledged, {lost} connection losses");
            Some(acked)
        }
        _ => None,
    };
    let wall = began.elapsed().as_secs_f64();
    println!(
        "sim live done: {steps} steps ({} simulated) in {wall:.1} s, {sent} readings sent{}, {errors} failed sends",
        humantime::format_duration(Duration::from_secs_f64(steps as f64 * tick_s)),
        acked.map_or(String::new(), |n| format!(" ({n} messages acknowledged)")),
    );
    if errors > 0 && sent == 0 {
        bail!("no readings were accepted");
    }
    Ok(())
}
