//! `doppel bench ingest`: a load generator that drives a running doppel (or any server that
//! speaks the same protocols) and reports throughput and latency percentiles.
//!
//! It creates a model with `--signals` float signals and `--twins` twins (needs an admin
//! token), then for `--duration` sends batches of `--batch` readings from `--concurrency`
//! workers over one protocol: doppel's HTTP JSON, InfluxDB line protocol, or MQTT QoS 1.
//! Each request or message counts only when acknowledged (HTTP 2xx / PUBACK).
//!
//! With `--points`, every worker encodes its share of the bodies before the clock starts
//! (as TSBS generates its data before loading it), so the generator's own formatting does
//! not take CPU from the server being measured on the same machine; a worker that sends
//! more than its share encodes the rest as it goes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Drive ingest and report acknowledged points per second.
    Ingest(IngestArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// POST /api/v1/readings (doppel JSON, bulk form).
    Http,
    /// POST /api/v1/write (InfluxDB line protocol).
    Lp,
    /// PUBLISH QoS 1 to doppel/twins/{id}/readings.
    Mqtt,
}

#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    #[arg(long, value_enum, default_value = "lp")]
    pub protocol: Protocol,
    /// Base URL of the HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// MQTT broker address (host:port).
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub mqtt: String,
    /// Admin token (creates the bench model and twins).
    #[arg(long, env = "DOPPEL_TOKEN")]
    pub token: String,
    #[arg(long, default_value_t = 100)]
    pub twins: usize,
    #[arg(long, default_value_t = 10)]
    pub signals: usize,
    /// Readings per request (HTTP) or per message (MQTT). Points = readings × signals.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// How long to send, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Skip creating the model and twins (they exist, or the target is a peer such as
    /// InfluxDB or Mosquitto that has no models).
    #[arg(long)]
    pub no_setup: bool,
    /// Path (and query) line protocol is posted to; `/write?db=bench` targets InfluxDB 1.x.
    #[arg(long, default_value = "/api/v1/write?precision=ns")]
    pub lp_path: String,
    /// Stop after this many acknowledged points (in addition to --duration), so two servers
    /// can be compared on the same data.
    #[arg(long)]
    pub points: Option<u64>,
    /// MQTT: QoS 1 messages each client keeps in flight (sent, not yet acknowledged). 1
    /// measures the ack latency one message at a time; gateways pipeline (rumqttc allows
    /// 100 by default, paho 10).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub inflight: u16,
    /// With --points, encode the bodies while sending instead of before the run.
    #[arg(long)]
    pub no_pregenerate: bool,
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cmd {
        BenchCommand::Ingest(args) => rt.block_on(ingest(args)),
    }
}

struct Stats {
    points: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

/// Whether `--points` acknowledged points have been sent. Workers may overshoot by at most
/// one batch each (MQTT: `--inflight` batches); the report counts what was acknowledged.
fn reached(a: &IngestArgs, stats: &Stats) -> bool {
    a.points
        .is_some_and(|p| stats.points.load(Ordering::Relaxed) >= p)
}

fn twin_id(i: usize) -> String {
    format!("bench-{i:05}")
}

async fn setup(client: &reqwest::Client, a: &IngestArgs) -> anyhow::Result<()> {
    let signals: Vec<_> = (0..a.signals)
        .map(|s| json!({"name": format!("s{s}"), "unit": "u"}))
        .collect();
    let model = json!({"id": "bench", "name": "Load generator model", "signals": signals});
    let r = client
        .put(format!("{}/api/v1/models/bench", a.url))
        .bearer_auth(&a.token)
        .json(&model)
        .send()
        .await
        .context("connecting to the server")?;
    if !r.status().is_success() {
        bail!(
            "creating the bench model: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    for i in 0..a.twins {
        let r = client
            .put(format!("{}/api/v1/twins/{}", a.url, twin_id(i)))
            .bearer_auth(&a.token)
            .json(&json!({"id": twin_id(i), "model": "bench"}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("creating twin {}: {}", twin_id(i), r.status());
        }
    }
    Ok(())
}

/// Start of the generated time range: the wall clock when the run starts, so runs made one
/// after the other (a line-protocol run, then an MQTT run) never overwrite each other's
/// timestamps. Readings are 1 µs apart per worker.
fn base_ts() -> i64 {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *BASE.get_or_init(doppel_server::now_ns)
}

const STEP_NS: i64 = 1_000;

/// Worker `w` writes only its own twins (`w`, `w + concurrency`, ...), as each device writes
/// its own data, so every series receives increasing timestamps from one writer.
fn twin_of(a: &IngestArgs, worker: usize, r: usize) -> String {
    let per_worker = (a.twins / a.concurrency.max(1)).max(1);
    twin_id((worker + a.concurrency.max(1) * (r % per_worker)) % a.twins.max(1))
}

fn lp_body(a: &IngestArgs, worker: usize, seq: &mut i64) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(a.batch * (20 + a.signals * 12));
    for r in 0..a.batch {
        *seq += 1;
        let twin = twin_of(a, worker, r);
        let _ = write!(s, "{twin} ");
        for k in 0..a.signals {
            let v = 50.0 + ((*seq + k as i64) % 1000) as f64 * 0.01;
            let _ = write!(s, "{}s{k}={v}", if k == 0 { "" } else { "," });
        }
        let _ = writeln!(s, " {}", base_ts() + *seq * STEP_NS);
    }
    s
}

fn json_readings(a: &IngestArgs, worker: usize, seq: &mut i64, twin: Option<&str>) -> String {
    let mut out = Vec::with_capacity(a.batch);
    for r in 0..a.batch {
        *seq += 1;
        let mut values = serde_json::Map::new();
        for k in 0..a.signals {
            values.insert(
                format!("s{k}"),
                json!(50.0 + ((*seq + k as i64) % 1000) as f64 * 0.01),
            );
        }
        // RFC 3339 carries the nanoseconds that epoch milliseconds cannot.
        let ts = doppel_model::format_ts(base_ts() + *seq * STEP_NS);
        let mut o = json!({"ts": ts, "values": values});
        if twin.is_none() {
            o["twin"] = json!(twin_of(a, worker, r));
        }
        out.push(o);
    }
    serde_json::to_string(&out).unwrap_or_default()
}

/// A worker's bodies, in sending order: those encoded before the run, then new ones.
struct Bodies {
    worker: usize,
    seq: i64,
    ready: std::collections::VecDeque<bytes::Bytes>,
}

impl Bodies {
    /// Encodes `count` bodies ahead (none without `--points` or with `--no-pregenerate`).
    fn new(a: &IngestArgs, worker: usize) -> Self {
        let mut b = Bodies {
            worker,
            seq: 0,
            ready: Default::default(),
        };
        if let (Some(points), false) = (a.points, a.no_pregenerate) {
            let per_body = (a.batch * a.signals).max(1) as u64;
            let count = points
                .div_ceil(per_body)
                .div_ceil(a.concurrency.max(1) as u64)
                + 1;
            for _ in 0..count {
                let body = b.encode(a);
                b.ready.push_back(body);
            }
        }
        b
    }

    fn encode(&mut self, a: &IngestArgs) -> bytes::Bytes {
        let w = self.worker;
        bytes::Bytes::from(match a.protocol {
            Protocol::Lp => lp_body(a, w, &mut self.seq),
            Protocol::Http => json_readings(a, w, &mut self.seq, None),
            Protocol::Mqtt => json_readings(a, w, &mut self.seq, Some(&twin_id(w % a.twins))),
        })
    }

    fn next(&mut self, a: &IngestArgs) -> bytes::Bytes {
        match self.ready.pop_front() {
            Some(b) => b,
            None => self.encode(a),
        }
    }
}

#[allow(clippy::print_stdout)]
async fn ingest(a: IngestArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency * 2)
        .build()?;
    if !a.no_setup {
        setup(&client, &a).await?;
    }
    let stats = Arc::new(Stats {
        points: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        latency_us: Mutex::new(Histogram::new(3)?),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let encoding = Instant::now();
    let bodies: Vec<Bodies> = {
        let a = &a;
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..a.concurrency)
                .map(|w| s.spawn(move || Bodies::new(a, w)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .map_err(|_| anyhow::anyhow!("encoding bodies failed"))
                })
                .collect::<anyhow::Result<_>>()
        })?
    };
    if a.points.is_some() && !a.no_pregenerate {
        eprintln!(
            "encoded {} bodies in {:.2} s before the run",
            bodies.iter().map(|b| b.ready.len()).sum::<usize>(),
            encoding.elapsed().as_secs_f64()
        );
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for bodies in bodies {
        let (a, stats, stop, client) = (a.clone(), stats.clone(), stop.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            match a.protocol {
                Protocol::Http | Protocol::Lp => {
                    http_worker(&a, bodies, &client, &stats, &stop).await
                }
                Protocol::Mqtt => mqtt_worker(&a, bodies, &stats, &stop).await,
            }
        }));
    }
    let mut last = 0;
    let mut next_report = Duration::from_secs(1);
    // Checked often so that the run ends (and is timed) when its last point is acked, not
    // at the next whole second.
    while started.elapsed() < a.duration && !reached(&a, &stats) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if started.elapsed() >= next_report {
            next_report += Duration::from_secs(1);
            let p = stats.points.load(Ordering::Relaxed);
            println!(
                "{:>5.1}s  {:>12} points/s",
                started.elapsed().as_secs_f64(),
                p - last
            );
            last = p;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        if let Ok(Err(e)) = t.await {
            println!("worker error: {e:#}");
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let points = stats.points.load(Ordering::Relaxed);
    let h = stats.latency_us.lock();
    println!(
        "{}",
        json!({
            "protocol": format!("{:?}", a.protocol).to_lowercase(),
            "twins": a.twins, "signals": a.signals, "batch": a.batch, "concurrency": a.concurrency,
            "seconds": (secs * 100.0).round() / 100.0,
            "points": points,
            "points_per_sec": (points as f64 / secs).round(),
            "requests": stats.requests.load(Ordering::Relaxed),
            "errors": stats.errors.load(Ordering::Relaxed),
            "latency_ms": {
                "p50": h.value_at_quantile(0.5) as f64 / 1000.0,
                "p99": h.value_at_quantile(0.99) as f64 / 1000.0,
                "max": h.max() as f64 / 1000.0,
            }
        })
    );
    Ok(())
}

async fn http_worker(
    a: &IngestArgs,
    mut bodies: Bodies,
    client: &reqwest::Client,
    stats: &Stats,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let (url, ctype) = match a.protocol {
        Protocol::Lp => (format!("{}{}", a.url, a.lp_path), "text/plain"),
        _ => (format!("{}/api/v1/readings", a.url), "application/json"),
    };
    while !stop.load(Ordering::Relaxed) && !reached(a, stats) {
        let body = bodies.next(a);
        let t = Instant::now();
        let r = client
            .post(&url)
            .bearer_auth(&a.token)
            .header("content-type", ctype)
            .body(body)
            .send()
            .await;
        let ok = matches!(&r, Ok(resp) if resp.status().is_success());
        if ok {
            stats
                .points
                .fetch_add((a.batch * a.signals) as u64, Ordering::Relaxed);
            let _ = stats
                .latency_us
                .lock()
                .record(t.elapsed().as_micros() as u64);
        } else {
            let n = stats.errors.fetch_add(1, Ordering::Relaxed);
            if n == 0 {
                match r {
                    Ok(resp) => eprintln!(
                        "first error: {} {}",
                        resp.status(),
                        resp.text().await.unwrap_or_default()
                    ),
                    Err(e) => eprintln!("first error: {e}"),
                }
            }
        }
        stats.requests.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

async fn mqtt_worker(
    a: &IngestArgs,
    mut bodies: Bodies,
    stats: &Stats,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let (host, port) = a
        .mqtt
        .rsplit_once(':')
        .context("--mqtt must be host:port")?;
    let w = bodies.worker;
    let mut opts = MqttOptions::new(format!("doppel-bench-{w}"), host, port.parse()?);
    opts.set_credentials("token", a.token.clone());
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(64 * 1024 * 1024, 64 * 1024 * 1024);
    let window = usize::from(a.inflight);
    opts.set_inflight(a.inflight);
    let (client, mut events) = AsyncClient::new(opts, window + 1);
    let topic = format!("doppel/twins/{}/readings", twin_id(w % a.twins));
    // At most `--inflight` messages unacknowledged per worker; each PUBACK (durable for
    // doppel) releases the next. A broker acknowledges QoS 1 messages in the order it got
    // them (MQTT 3.1.1, 4.6), so the oldest send time is the one an ack answers.
    let mut pending: std::collections::VecDeque<Instant> =
        std::collections::VecDeque::with_capacity(window);
    let mut done = false;
    loop {
        while !done && pending.len() < window {
            if stop.load(Ordering::Relaxed) || reached(a, stats) {
                done = true;
                break;
            }
            client
                .publish_bytes(topic.as_str(), QoS::AtLeastOnce, false, bodies.next(a))
                .await?;
            pending.push_back(Instant::now());
        }
        if done && pending.is_empty() {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(30), events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => {
                if let Some(t) = pending.pop_front() {
                    stats
                        .points
                        .fetch_add((a.batch * a.signals) as u64, Ordering::Relaxed);
                    stats.requests.fetch_add(1, Ordering::Relaxed);
                    let _ = stats
                        .latency_us
                        .lock()
                        .record(t.elapsed().as_micros() as u64);
                }
            }
            Ok(Ok(Event::Incoming(Packet::ConnAck(c))))
                if c.code != rumqttc::ConnectReturnCode::Success =>
            {
                bail!("MQTT connection refused: {:?}", c.code);
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                bail!("MQTT: {e}");
            }
            Err(_) => bail!("no PUBACK within 30 s"),
        }
    }
    let _ = client.disconnect().await;
    Ok(())
}
