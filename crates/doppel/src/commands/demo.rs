//! `doppel demo`: a living plant in one command. Starts the full server (HTTP, live push,
//! MQTT) and feeds it from the built-in physics simulator: pumps on two cooling loops, an
//! office chiller and a hospital's MRI compressors, with faults that start within minutes
//! (bearing wear, misalignment, cavitation, a stuck damper, a helium leak, sensor faults).
//! The simulator's readings go through the same ingest pipeline as a device's, and its models
//! and twins are loaded through the public HTTP API from the same packs as
//! `examples/packs/`, so the demo doubles as an example of the API.
//!
//! Four retired pumps of the same model come with the plant: their histories (weeks before
//! the demo's own, written in the background once the plant is live) end in recorded
//! bearing failures, so the remaining-useful-life model is fitted seconds after start and
//! every live pump gets an estimate.
//!
//! Every run starts from a fresh data directory: the demo marks the directories it creates
//! and clears only those (or empty ones), never a directory holding anything else.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use doppel_engine::{Engine, IngestSource, MaintenanceKind, NewMaintenance};
use doppel_model::{Batch, Reading, Timestamp, Twin};
use doppel_sim::{seeded_rng, AssetKind, FaultKind, FaultSpec, Plant};
use indicatif::{ProgressBar, ProgressStyle};

use super::serve::{self, ServeArgs};
use super::sim::Api;
use super::DataDir;

/// The file that marks a directory as the demo's own, to be cleared at the next start.
const MARKER: &str = ".doppel-demo";

/// Flags of `doppel demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Directory for the demo's data, cleared at every start (see --keep). Only a directory
    /// the demo created (it holds a `.doppel-demo` marker) or an empty one is used.
    #[arg(
        long = "data-dir",
        env = "DOPPEL_DEMO_DATA_DIR",
        default_value = "./doppel-demo-data"
    )]
    pub data_dir: PathBuf,
    /// Keep the previous run's data (twins, history, tokens) instead of starting fresh.
    #[arg(long)]
    pub keep: bool,
    #[arg(long, env = "DOPPEL_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    #[arg(long, env = "DOPPEL_MQTT_ADDR", default_value = "127.0.0.1:1883")]
    pub mqtt_addr: SocketAddr,
    #[arg(long, env = "DOPPEL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Seed of the simulated plant: the same seed gives the same plant and faults.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Simulated history written before going live (e.g. 2h; 0s for none), only when the
    /// store is empty.
    #[arg(long, default_value = "2h", value_parser = humantime::parse_duration)]
    pub backfill: Duration,
    /// Simulated time per step.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub tick: Duration,
    /// Stop after this long (default: run until Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    #[arg(long, env = "DOPPEL_LOG", default_value = "warn")]
    pub log: String,
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    prepare_data_dir(&args.data_dir, args.keep)?;
    let serve_args = ServeArgs {
        data: DataDir {
            path: args.data_dir.clone(),
        },
        http_addr: args.http_addr,
        mqtt_addr: args.mqtt_addr,
        admin_token: args.admin_token.clone(),
        shards: None,
        anomaly: "on".to_string(),
        anomaly_warmup: 400,
        advice_every: 600,
        alarm_clear_after: 10,
        rul_every: 600,
        retention_every: 3600,
        store_checkpoint_bytes: doppel_store::StoreOptions::default().checkpoint_wal_bytes,
        store_chunk_points: doppel_store::StoreOptions::default().chunk_points,
        log: args.log.clone(),
        log_json: false,
    };
    serve::init_logs(&serve_args);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("doppel")
        .build()
        .context("starting the async runtime")?;
    rt.block_on(demo(args, serve_args))
}

fn now_ns() -> Timestamp {
    doppel_server::now_ns()
}

#[allow(clippy::print_stdout)]
async fn demo(args: DemoArgs, serve_args: ServeArgs) -> anyhow::Result<()> {
    let running = serve::start(&serve_args).await?;
    let engine = running.engine.clone();
    let mut plant = Plant::demo(args.seed);
    let token = match &running.admin_token {
        Some(t) => t.clone(),
        None => doppel_server::auth::create_token(
            &args.data_dir,
            doppel_server::Role::Admin,
            "doppel demo",
        )
        .context("creating a demo token")?,
    };
    let base = format!("http://{}", loopback(running.http_addr));
    let api = Api::new(&base, &token)?;
    let packs = plant.packs();
    for pack in &packs {
        api.load_pack(pack)
            .await
            .context("loading the demo packs through the HTTP API")?;
    }
    let dashboard = dashboard_url(&base).await;

    let tick_s = args.tick.as_secs_f64().max(0.001);
    let tick_ns = (tick_s * 1e9) as i64;
    let mut t = now_ns();
    let empty = engine.store().stats().points == 0;
    let history_start = t - i64::try_from(args.backfill.as_nanos()).unwrap_or(i64::MAX);
    if empty && !args.backfill.is_zero() {
        t = backfill(&engine, &mut plant, t, args.backfill, tick_s).await?;
    }

    let http = loopback(running.http_addr);
    println!();
    println!(
        "  The demo plant is running: {} twins, loaded through the API from the packs {} \
         (see examples/packs/).",
        plant.twins().len(),
        packs
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(url) = &dashboard {
        println!("  Dashboard: {url}");
    }
    println!("  Admin token: {token}");
    println!();
    println!("    curl -H 'Authorization: Bearer {token}' http://{http}/api/v1/twins");
    println!("    curl -H 'Authorization: Bearer {token}' http://{http}/api/v1/twins/pump-1");
    println!(
        "    curl -H 'Authorization: Bearer {token}' 'http://{http}/api/v1/twins/pump-1/signals/vib_bearing/history?step=5m&agg=max'"
    );
    println!(
        "    curl -N -H 'Authorization: Bearer {token}' 'http://{http}/api/v1/events?twin=pump-2'"
    );
    println!(
        "    curl -H 'Authorization: Bearer {token}' 'http://{http}/api/v1/alarms?state=active,acknowledged'"
    );
    println!(
        "    curl -H 'Authorization: Bearer {token}' 'http://{http}/api/v1/rul?model={}'",
        AssetKind::PumpMotor.model().id
    );
    println!(
        "    mosquitto_sub -p {} -u token -P {token} -t 'doppel/#' -v",
        running.mqtt_addr.port()
    );
    println!();
    println!("  Ctrl-C stops it.");

    if empty {
        // In the background: the plant is live at once, the RUL model follows in seconds.
        let engine = engine.clone();
        let seed = args.seed;
        tokio::spawn(async move {
            match retired_pumps(&engine, seed, history_start).await {
                Ok(()) => tracing::info!("retired pumps' histories and failures recorded"),
                Err(e) => tracing::warn!(error = %e, "retired pumps not recorded"),
            }
        });
    }
    let live = live_loop(&engine, &mut plant, t, tick_s, tick_ns);
    let stop = async {
        match args.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => serve::wait_for_signal().await,
        }
    };
    tokio::select! {
        res = live => res?,
        _ = stop => {}
    }
    running.stop().await
}

/// Makes `dir` ready for a run: created with the marker when missing; cleared (all but the
/// marker) when it holds the marker and `keep` is false; used as it is when empty. A
/// directory with other content and no marker is refused, so the demo never deletes data it
/// did not write.
fn prepare_data_dir(dir: &Path, keep: bool) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("reading {}", dir.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("opening {}", dir.display())),
    };
    let marker = dir.join(MARKER);
    let ours = marker.is_file();
    if !ours && !entries.is_empty() {
        bail!(
            "{} exists and was not created by `doppel demo` (it has no {MARKER} file); the demo \
             clears its data directory at every start, so it will not use this one. Pass \
             another --data-dir, or empty this directory first",
            dir.display()
        );
    }
    if ours && !keep {
        for e in entries {
            let path = e.path();
            if e.file_name() == MARKER {
                continue;
            }
            // `file_type` does not follow symlinks: a link is removed, never its target.
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            let removed = if is_dir {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.with_context(|| format!("clearing the demo data in {}", path.display()))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if !ours {
        std::fs::write(
            &marker,
            "Created by `doppel demo`, which clears this directory at every start \
             (unless --keep).\n",
        )
        .with_context(|| format!("writing {}", marker.display()))?;
    }
    Ok(())
}

/// The address to connect to for a listener bound to `addr` (an unspecified IP becomes the
/// loopback address).
fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// The dashboard's URL when the server serves one (an HTML page at `/`).
async fn dashboard_url(base: &str) -> Option<String> {
    let resp = reqwest::Client::new()
        .get(format!("{base}/"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let html = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    (resp.status().is_success() && html).then(|| format!("{base}/"))
}

/// Retired pumps simulated before the demo's history.
const RETIRED: usize = 4;
/// Seconds between their readings.
const RETIRED_STEP_S: f64 = 120.0;

/// Pumps of the demo's pump model that wore a bearing out before `end`: each runs healthy
/// for a day or two, then wears (days) until it fails; its readings go through ingest like
/// any device's and its failure is recorded, which fits the remaining-life model.
async fn retired_pumps(engine: &Engine, seed: u64, end: Timestamp) -> anyhow::Result<()> {
    const DAY: i64 = 86_400 * 1_000_000_000;
    let model = AssetKind::PumpMotor.model();
    let mut draws = super::eval_advice::Draws(seed ^ 0x7e71_7ed0);
    for i in 0..RETIRED {
        let id = format!("pump-r{}", i + 1);
        let twin: Twin = serde_json::from_value(serde_json::json!({
            "id": id,
            "model": model.id,
            "name": format!("Cooling pump P{} (retired)", 91 + i),
            "parent": "site-1",
            "properties": {"rated_power_kw": 30.0, "serial": format!("CP30-{:05}", 900 + i)},
        }))?;
        engine
            .put_twin(twin)
            .await
            .context("creating a retired pump")?;
        // Lives of four to twelve days, one after another, the last ending days before `end`.
        let start = end - (RETIRED - i) as i64 * 14 * DAY - DAY;
        let mut asset = AssetKind::PumpMotor.build(&id, draws.next());
        let onset = start + (draws.uniform(1.0, 2.0) * DAY as f64) as i64;
        asset
            .inject(FaultSpec::new(
                FaultKind::BearingWear,
                onset,
                draws.uniform(0.15, 0.35),
            ))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut rng = seeded_rng(draws.next());
        let dt = (RETIRED_STEP_S * 1e9) as i64;
        let mut batch = Batch::default();
        let mut t = start;
        while t < end - DAY && asset.failed_at().is_none() {
            let values = asset.step(t, RETIRED_STEP_S, &mut rng);
            if !values.is_empty() {
                batch.readings.push(Reading {
                    twin: id.clone(),
                    ts: t,
                    values,
                });
            }
            if batch.readings.len() >= 2_000 {
                let b = std::mem::take(&mut batch);
                engine
                    .ingest(b, IngestSource::Simulator, |i| format!("[{i}]."))
                    .await
                    .context("writing a retired pump's history")?;
            }
            t += dt;
        }
        if !batch.readings.is_empty() {
            engine
                .ingest(batch, IngestSource::Simulator, |i| format!("[{i}]."))
                .await
                .context("writing a retired pump's history")?;
        }
        let Some(failed) = asset.failed_at() else {
            tracing::warn!(twin = %id, "retired pump did not fail in its window");
            continue;
        };
        engine
            .record_maintenance(NewMaintenance {
                twin: id.clone(),
                kind: MaintenanceKind::Failure,
                at: Some(failed),
                failure_mode: Some(FaultKind::BearingWear.as_str().to_string()),
                note: Some("drive-end bearing seized; pump replaced".into()),
                by: "doppel demo".into(),
                source: None,
            })
            .await
            .context("recording a retired pump's failure")?;
    }
    Ok(())
}

/// Writes `span` of simulated history ending now, in large batches, with a progress bar.
async fn backfill(
    engine: &Engine,
    plant: &mut Plant,
    now: Timestamp,
    span: Duration,
    tick_s: f64,
) -> anyhow::Result<Timestamp> {
    let steps = (span.as_secs_f64() / tick_s).ceil() as u64;
    let tick_ns = (tick_s * 1e9) as i64;
    let mut t = now - steps as i64 * tick_ns;
    let bar = ProgressBar::new(steps);
    bar.set_style(
        ProgressStyle::with_template("  backfill {bar:40} {pos}/{len} steps  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut batch = Batch::default();
    for i in 0..steps {
        batch.readings.extend(plant.step(t, tick_s));
        t += tick_ns;
        if batch.readings.len() >= 2_000 || i + 1 == steps {
            let b = std::mem::take(&mut batch);
            engine
                .ingest(b, IngestSource::Simulator, |i| format!("[{i}]."))
                .await
                .context("writing simulated history")?;
            bar.set_position(i + 1);
        }
    }
    bar.finish_and_clear();
    Ok(t)
}

/// Steps the plant in real time and ingests every step. Ingest errors are logged, not fatal:
/// the demo keeps running.
async fn live_loop(
    engine: &Engine,
    plant: &mut Plant,
    mut t: Timestamp,
    tick_s: f64,
    tick_ns: i64,
) -> anyhow::Result<()> {
    let mut interval = tokio::time::interval(Duration::from_secs_f64(tick_s));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        // Follow the wall clock so live readings carry real time even after a slow backfill.
        t = (t + tick_ns).max(now_ns());
        let readings = plant.step(t, tick_s);
        if readings.is_empty() {
            continue;
        }
        if let Err(e) = engine
            .ingest(Batch { readings }, IngestSource::Simulator, |i| {
                format!("[{i}].")
            })
            .await
        {
            tracing::warn!(error = %e, "simulated readings refused");
        }
    }
}
