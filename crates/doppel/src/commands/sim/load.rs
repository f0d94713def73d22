//! `doppel sim load`: the benchmark load generator. A producer thread steps a fleet of N
//! simulated pumps (or other kinds) and releases readings at R per second in total, round robin
//! over the twins, so every twin reports at R/N Hz with timestamps that follow the wall clock;
//! `--concurrency` workers send them over HTTP JSON, line protocol or MQTT QoS 1. A reading
//! counts once the server acknowledged it (2xx or PUBACK, both sent only after the WAL fsync).
//!
//! Unlike `doppel bench ingest`, which sends synthetic values as fast as it can, this offers a
//! fixed rate of realistic readings, like a plant would; when the server cannot keep up the
//! bounded queue fills, the producer falls behind and the report says so.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use doppel_model::Reading;
use doppel_sim::{AssetKind, Plant};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde_json::json;

use super::api::{push_lp, readings_json, topic, Api};
use super::mqtt::Publisher;
use crate::commands::bench::Protocol;

/// Flags of `doppel sim load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Base URL of the server's HTTP API.
    #[arg(long, env = "DOPPEL_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// MQTT broker address (host:port), for `--protocol mqtt`.
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub mqtt: String,
    /// Admin token (creates the fleet's models and twins).
    #[arg(long, env = "DOPPEL_TOKEN", hide_env_values = true)]
    pub token: String,
    #[arg(long, value_enum, default_value = "http")]
    pub protocol: Protocol,
    /// Simulated twins.
    #[arg(long, default_value_t = 100)]
    pub twins: usize,
    /// Readings per second in total (each reading is one twin's full set of signals).
    #[arg(long, default_value_t = 1_000.0)]
    pub rate: f64,
    /// How long to offer load.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Readings per request (HTTP, line protocol) or per message (MQTT, all of one twin).
    /// Default: about 20 requests per second in total over HTTP, one reading per message
    /// over MQTT.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Concurrent HTTP requests, or MQTT connections.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Kinds of the fleet's assets, taken in turn: pump, chiller, mri.
    #[arg(long, value_delimiter = ',', default_value = "pump", value_parser = super::parse_kind)]
    pub kinds: Vec<AssetKind>,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Do not create the models and twins (they exist from an earlier run).
    #[arg(long)]
    pub no_setup: bool,
}

/// One request's or message's worth of encoded readings.
#[derive(Debug)]
struct Chunk {
    topic: Option<String>,
    body: String,
    readings: u64,
    points: u64,
}

#[derive(Debug)]
struct Stats {
    readings: AtomicU64,
    points: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    latency_us: Arc<Mutex<Histogram<u64>>>,
}

#[allow(clippy::print_stdout)]
pub async fn run(a: LoadArgs) -> anyhow::Result<()> {
    if !(a.rate.is_finite() && a.rate > 0.0) {
        bail!("--rate must be a positive number of readings per second");
    }
    if a.twins == 0 || a.concurrency == 0 {
        bail!("--twins and --concurrency must be at least 1");
    }
    let batch = a.batch.unwrap_or(match a.protocol {
        Protocol::Mqtt => 1,
        _ => ((a.rate / 20.0) as usize).clamp(1, 1_000),
    });
    let batch = batch.max(1);
    let mut plant = Plant::fleet(a.seed, a.twins, &a.kinds, a.duration.as_secs_f64());
    let api = Api::new(&a.url, &a.token)?;
    if !a.no_setup {
        for pack in plant.packs() {
            api.load_pack(&pack).await?;
        }
    }
    let stats = Arc::new(Stats {
        readings: AtomicU64::new(0),
        points: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        latency_us: Arc::new(Mutex::new(Histogram::new(3)?)),
    });

    // Connect every MQTT client before the clock starts.
    let mut publishers = Vec::new();
    if a.protocol == Protocol::Mqtt {
        for w in 0..a.concurrency {
            let id = format!("doppel-sim-load-{}-{w}", std::process::id());
            let p =
                Publisher::connect(&a.mqtt, &a.token, &id, 64, stats.latency_us.clone()).await?;
            publishers.push(p);
        }
    }

    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(a.concurrency * 2);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let start_ts = doppel_server::now_ns();
    let models: std::collections::HashMap<String, String> =
        plant.twins().into_iter().map(|t| (t.id, t.model)).collect();
    let producer = {
        let (stop, protocol, rate) = (stop.clone(), a.protocol, a.rate);
        tokio::task::spawn_blocking(move || {
            produce(
                &mut plant, &models, protocol, rate, batch, start_ts, started, &stop, &tx,
            )
        })
    };

    let mut workers = Vec::new();
    if a.protocol == Protocol::Mqtt {
        for mut p in publishers {
            let (rx, stats) = (rx.clone(), stats.clone());
            workers.push(tokio::spawn(async move {
                let mut readings = 0;
                let mut points = 0;
                loop {
                    let chunk = rx.lock().await.recv().await;
                    let Some(c) = chunk else { break };
                    p.publish(c.topic.unwrap_or_default(), c.body).await?;
                    readings += c.readings;
                    points += c.points;
                }
                // Messages carry `batch` readings each; count what was acknowledged.
                let published = p.published();
                let acked = p.finish(Duration::from_secs(30)).await;
                let per = if published == 0 {
                    0.0
                } else {
                    acked as f64 / published as f64
                };
                stats
                    .readings
                    .fetch_add((readings as f64 * per) as u64, Ordering::Relaxed);
                stats
                    .points
                    .fetch_add((points as f64 * per) as u64, Ordering::Relaxed);
                stats.requests.fetch_add(acked, Ordering::Relaxed);
                stats
                    .errors
                    .fetch_add(published - acked.min(published), Ordering::Relaxed);
                anyhow::Ok(())
            }));
        }
    } else {
        for _ in 0..a.concurrency {
            let (rx, stats, api) = (rx.clone(), stats.clone(), api.clone());
            let lp = a.protocol == Protocol::Lp;
            workers.push(tokio::spawn(async move {
                loop {
                    let chunk = rx.lock().await.recv().await;
                    let Some(c) = chunk else { break };
                    let t = Instant::now();
                    let res = if lp {
                        api.post_lp(c.body).await
                    } else {
                        api.post_json(c.body).await
                    };
                    stats.requests.fetch_add(1, Ordering::Relaxed);
                    match res {
                        Ok(()) => {
                            let _ = stats
                                .latency_us
                                .lock()
                                .record(t.elapsed().as_micros() as u64);
                            stats.readings.fetch_add(c.readings, Ordering::Relaxed);
                            stats.points.fetch_add(c.points, Ordering::Relaxed);
                        }
                        Err(e) => {
                            if stats.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("first error: {e:#}");
                            }
                        }
                    }
                }
                anyhow::Ok(())
            }));
        }
    }

    println!(
        "sim load: {} twins, {} readings/s offered ({:.2} Hz per twin), {:?}, batch {batch}, concurrency {}",
        a.twins,
        a.rate,
        a.rate / a.twins as f64,
        a.protocol,
        a.concurrency
    );
    let mut last = 0;
    while started.elapsed() < a.duration && !producer.is_finished() {
        let left = a.duration.saturating_sub(started.elapsed());
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        let r = stats.readings.load(Ordering::Relaxed);
        if a.protocol != Protocol::Mqtt {
            println!(
                "{:>5.1}s  {:>9} readings/s acknowledged",
                started.elapsed().as_secs_f64(),
                r - last
            );
        }
        last = r;
    }
    stop.store(true, Ordering::Relaxed);
    let sending = started.elapsed().as_secs_f64();
    let offered = producer.await.context("load producer")??;
    for w in workers {
        match w.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => println!("worker error: {e:#}"),
            Err(e) => println!("worker failed: {e}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let readings = stats.readings.load(Ordering::Relaxed);
    let points = stats.points.load(Ordering::Relaxed);
    let h = stats.latency_us.lock();
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    // The producer releases whole batches, so it may be up to one batch short of the clock.
    let kept_up = (offered + batch as u64) as f64 >= 0.99 * a.rate * sending;
    println!(
        "{}",
        json!({
            "protocol": format!("{:?}", a.protocol).to_lowercase(),
            "twins": a.twins, "signals_per_reading": points.checked_div(readings).unwrap_or(0),
            "batch": batch, "concurrency": a.concurrency,
            "rate_offered": a.rate,
            "seconds": (secs * 100.0).round() / 100.0,
            "readings_offered": offered,
            "readings_acked": readings,
            "readings_per_sec": (readings as f64 / secs).round(),
            "points_per_sec": (points as f64 / secs).round(),
            "kept_up": kept_up,
            "requests": stats.requests.load(Ordering::Relaxed),
            "errors": stats.errors.load(Ordering::Relaxed),
            "latency_ms": {"p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "max": h.max() as f64 / 1000.0},
        })
    );
    if readings == 0 {
        bail!("the server acknowledged no readings");
    }
    Ok(())
}

/// Steps the fleet and hands out chunks at `rate` readings/s until `stop`; returns how many
/// readings it offered. Runs on its own thread: simulation and encoding are CPU work.
#[allow(clippy::too_many_arguments)]
fn produce(
    plant: &mut Plant,
    models: &std::collections::HashMap<String, String>,
    protocol: Protocol,
    rate: f64,
    batch: usize,
    start_ts: i64,
    started: Instant,
    stop: &AtomicBool,
    tx: &tokio::sync::mpsc::Sender<Chunk>,
) -> anyhow::Result<u64> {
    plant.begin(start_ts);
    let units = plant.simulated_twins_mut();
    let n = units.len().max(1);
    // Each twin reports every n/rate seconds of simulated time, which is wall time here.
    let dt_s = n as f64 / rate;
    let dt_ns = (dt_s * 1e9).round().max(1.0) as i64;
    let mut steps = vec![0i64; n];
    let mut cursor = 0usize;
    let mut offered = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due_at = (offered + batch as u64) as f64 / rate;
        let now = started.elapsed().as_secs_f64();
        if due_at > now {
            std::thread::sleep(Duration::from_secs_f64((due_at - now).min(0.05)));
            continue;
        }
        let mut readings: Vec<Reading> = Vec::with_capacity(batch);
        // MQTT messages belong to one twin; HTTP requests go round robin over all twins.
        let one_twin = protocol == Protocol::Mqtt;
        for _ in 0..batch {
            let i = cursor % n;
            if !one_twin {
                cursor += 1;
            }
            let Some(u) = units.get_mut(i) else { break };
            let t = start_ts + steps[i] * dt_ns;
            steps[i] += 1;
            readings.extend(u.step(t, dt_s));
        }
        if one_twin {
            cursor += 1;
        }
        offered += batch as u64;
        if readings.is_empty() {
            continue;
        }
        let points = readings.iter().map(|r| r.values.len() as u64).sum();
        let chunk = match protocol {
            Protocol::Http => Chunk {
                topic: None,
                body: readings_json(&readings, true),
                readings: readings.len() as u64,
                points,
            },
            Protocol::Lp => {
                let mut body = String::with_capacity(readings.len() * 400);
                for r in &readings {
                    let model = models.get(&r.twin).map_or("reading", String::as_str);
                    push_lp(&mut body, model, r);
                }
                Chunk {
                    topic: None,
                    body,
                    readings: readings.len() as u64,
                    points,
                }
            }
            Protocol::Mqtt => Chunk {
                topic: Some(topic(&readings[0].twin)),
                body: readings_json(&readings, false),
                readings: readings.len() as u64,
                points,
            },
        };
        if tx.blocking_send(chunk).is_err() {
            break;
        }
    }
    Ok(offered)
}
