//! `doppel demo`: a living plant in one command. Starts the full server (HTTP, live push,
//! MQTT) and feeds it from the built-in physics simulator: pumps on two cooling loops, an
//! office chiller and a hospital's MRI compressors, with faults that start within minutes
//! (bearing wear, misalignment, cavitation, a stuck damper, a helium leak, sensor faults).
//! The simulator's readings go through the same ingest pipeline as a device's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use doppel_engine::{Engine, IngestSource};
use doppel_model::{Batch, Timestamp};
use doppel_sim::Plant;
use indicatif::{ProgressBar, ProgressStyle};

use super::serve::{self, ServeArgs};
use super::DataDir;

/// Flags of `doppel demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Directory for the demo's data (kept between runs).
    #[arg(
        long = "data-dir",
        env = "DOPPEL_DEMO_DATA_DIR",
        default_value = "./doppel-demo-data"
    )]
    pub data_dir: PathBuf,
    #[arg(long, env = "DOPPEL_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    #[arg(long, env = "DOPPEL_MQTT_ADDR", default_value = "127.0.0.1:1883")]
    pub mqtt_addr: SocketAddr,
    #[arg(long, env = "DOPPEL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Seed of the simulated plant: the same seed gives the same plant and faults.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Simulated history written before going live (e.g. 2h; 0s for none), only into an
    /// empty data directory.
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
    let serve_args = ServeArgs {
        data: DataDir {
            path: args.data_dir.clone(),
        },
        http_addr: args.http_addr,
        mqtt_addr: args.mqtt_addr,
        admin_token: args.admin_token.clone(),
        shards: None,
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
    for m in plant.models() {
        engine
            .put_model(m)
            .await
            .context("loading the demo models")?;
    }
    for t in plant.twins() {
        engine.put_twin(t).await.context("loading the demo twins")?;
    }
    let token = match &running.admin_token {
        Some(t) => t.clone(),
        None => doppel_server::auth::create_token(
            &args.data_dir,
            doppel_server::Role::Admin,
            "doppel demo",
        )
        .context("creating a demo token")?,
    };

    let tick_s = args.tick.as_secs_f64().max(0.001);
    let tick_ns = (tick_s * 1e9) as i64;
    let mut t = now_ns();
    let empty = engine.store().stats().points == 0;
    if empty && !args.backfill.is_zero() {
        t = backfill(&engine, &mut plant, t, args.backfill, tick_s).await?;
    }

    let http = running.http_addr;
    println!();
    println!(
        "  The demo plant is running: {} twins.",
        plant.twins().len()
    );
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
        "    mosquitto_sub -p {} -u token -P {token} -t 'doppel/#' -v",
        running.mqtt_addr.port()
    );
    println!();
    println!("  Ctrl-C stops it.");

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
