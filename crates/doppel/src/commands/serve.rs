//! `doppel serve`: opens the data directory, starts the HTTP API and the MQTT broker, and
//! shuts down in order on Ctrl-C or SIGTERM: stop accepting input, let in-flight requests
//! finish, stop the broker, close the store (final fsync).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use doppel_engine::{Engine, EngineConfig};
use doppel_server::ingest::mqtt::MqttBroker;
use doppel_server::outputs::webhooks::Webhooks;
use doppel_server::{AppState, Authenticator, Bootstrap};
use doppel_store::StoreOptions;
use tokio_util::sync::CancellationToken;

use super::DataDir;

/// Flags of `doppel serve`; each has an environment variable and a default.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataDir,
    /// Address of the HTTP API, live push and dashboard (port 0: any free port).
    #[arg(long, env = "DOPPEL_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// Address of the embedded MQTT broker (port 0: any free port).
    #[arg(long, env = "DOPPEL_MQTT_ADDR", default_value = "127.0.0.1:1883")]
    pub mqtt_addr: SocketAddr,
    /// Admin token to accept instead of generating one at first start (kept in memory only).
    #[arg(long, env = "DOPPEL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Number of twin shards (default: twice the CPU count).
    #[arg(long, env = "DOPPEL_SHARDS")]
    pub shards: Option<usize>,
    /// Run the anomaly detectors on every reading (alarms and the `.anomaly_score` series).
    #[arg(long, env = "DOPPEL_ANOMALY", default_value = "on", value_parser = ["on", "off"])]
    pub anomaly: String,
    /// Readings each twin's detector learns from before it scores (its warm-up).
    #[arg(long, env = "DOPPEL_ANOMALY_WARMUP", default_value_t = 400)]
    pub anomaly_warmup: usize,
    /// Reading-time seconds between two maintenance-advice evaluations of a twin.
    #[arg(long, env = "DOPPEL_ADVICE_EVERY", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub advice_every: u64,
    /// Reading-time seconds a twin's condition must stay normal before its alarm clears by
    /// itself (off-delay: a value hovering at a limit keeps one alarm open instead of
    /// chattering); 0 clears at the first normal reading.
    #[arg(long, env = "DOPPEL_ALARM_CLEAR_AFTER", default_value_t = 10)]
    pub alarm_clear_after: u64,
    /// Wall-clock seconds between two refreshes of every twin's remaining-life estimate.
    #[arg(long, env = "DOPPEL_RUL_EVERY", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub rul_every: u64,
    /// Wall-clock seconds between two retention passes (models with a `retention` forget
    /// history older than it; the first pass runs at start).
    #[arg(long, env = "DOPPEL_RETENTION_EVERY", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub retention_every: u64,
    /// WAL bytes written between two automatic checkpoints of the history store (chunks to
    /// segment files, WAL segments deleted). Smaller: shorter restart replay, more
    /// checkpoints. The crash tests lower it to checkpoint every few writes.
    #[arg(long, env = "DOPPEL_STORE_CHECKPOINT_BYTES", default_value_t = StoreOptions::default().checkpoint_wal_bytes)]
    pub store_checkpoint_bytes: u64,
    /// Points per series buffered before they seal into a compressed chunk (1..=32768).
    #[arg(long, env = "DOPPEL_STORE_CHUNK_POINTS", default_value_t = StoreOptions::default().chunk_points)]
    pub store_chunk_points: usize,
    /// Log filter, e.g. `info`, `doppel=debug` (also RUST_LOG).
    #[arg(long, env = "DOPPEL_LOG", default_value = "info")]
    pub log: String,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "DOPPEL_LOG_JSON")]
    pub log_json: bool,
}

pub fn init_logs(args: &ServeArgs) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logs(&args);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("doppel")
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let running = start(&args).await?;
    wait_for_signal().await;
    running.stop().await
}

/// A started server: engine, HTTP and MQTT listening. `doppel demo` drives one too.
pub struct Running {
    pub engine: Arc<Engine>,
    pub http_addr: SocketAddr,
    pub mqtt_addr: SocketAddr,
    /// The admin token when it was generated now (shown once) or given in the environment.
    pub admin_token: Option<String>,
    shutdown: CancellationToken,
    mqtt: MqttBroker,
    http_task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Opens the data directory and starts every listener; prints the effective config.
#[allow(clippy::print_stdout)]
pub async fn start(args: &ServeArgs) -> anyhow::Result<Running> {
    let dir = args.data.path.clone();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut config = EngineConfig::new(&dir);
    if let Some(n) = args.shards {
        config.shards = n.max(1);
    }
    config.anomaly_detection = args.anomaly == "on";
    config.detector.warmup = args.anomaly_warmup.max(10);
    config.advice_every = std::time::Duration::from_secs(args.advice_every);
    config.alarm_policy.clear_after =
        i64::try_from(args.alarm_clear_after.saturating_mul(1_000_000_000)).unwrap_or(i64::MAX);
    config.rul_every = std::time::Duration::from_secs(args.rul_every);
    config.retention_every = std::time::Duration::from_secs(args.retention_every);
    config.store.checkpoint_wal_bytes = args.store_checkpoint_bytes.max(1);
    config.store.chunk_points = args.store_chunk_points.clamp(1, 32_768);
    println!("doppel {} starting", env!("CARGO_PKG_VERSION"));
    println!("  data dir     {}", dir.display());
    println!("  http         {}", args.http_addr);
    println!("  mqtt         {}", args.mqtt_addr);
    println!("  shards       {}", config.shards);
    println!(
        "  anomaly      {} (warm-up {} readings per twin)",
        args.anomaly, config.detector.warmup
    );
    println!(
        "  store        checkpoint every {} WAL bytes, {} points per chunk",
        config.store.checkpoint_wal_bytes, config.store.chunk_points
    );
    println!(
        "  admin token  {}",
        if args.admin_token.is_some() {
            "from DOPPEL_ADMIN_TOKEN"
        } else {
            "from data dir"
        }
    );

    let (auth, bootstrap) =
        Authenticator::open(&dir, args.admin_token.as_deref()).context("opening the token file")?;
    let admin_token = match &bootstrap {
        Bootstrap::Generated(token) => {
            println!();
            println!("  First start: an admin token was created. It is shown only now:");
            println!();
            println!("    {token}");
            println!();
            println!("  Use it as `Authorization: Bearer <token>` or MQTT username `token`, password <token>.");
            println!("  `doppel token create --role reader` makes more.");
            println!();
            Some(token.clone())
        }
        Bootstrap::FromEnv => args.admin_token.clone(),
        Bootstrap::Existing(_) => None,
    };
    let engine = Engine::open(config)
        .await
        .context("opening the data directory")?;
    let shutdown = CancellationToken::new();
    let webhooks = Arc::new(Webhooks::open(&dir, &engine).context("reading webhooks.json")?);
    webhooks.start(&engine, shutdown.clone());
    let state = AppState {
        engine: engine.clone(),
        auth: Arc::new(auth),
        shutdown: shutdown.clone(),
        webhooks,
    };

    let http = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding HTTP to {}", args.http_addr))?;
    let http_addr = http.local_addr()?;
    let mqtt = MqttBroker::start(args.mqtt_addr, state.clone())
        .await
        .with_context(|| format!("starting MQTT on {}", args.mqtt_addr))?;
    let mqtt_addr = mqtt.local_addr();
    let http_task = tokio::spawn(doppel_server::serve_http(http, state));
    println!("listening http={http_addr} mqtt={mqtt_addr}");
    tracing::info!(%http_addr, %mqtt_addr, "doppel ready");
    Ok(Running {
        engine,
        http_addr,
        mqtt_addr,
        admin_token,
        shutdown,
        mqtt,
        http_task,
    })
}

impl Running {
    /// Stops in order: input first (HTTP, live streams, MQTT), then the store's final fsync.
    #[allow(clippy::print_stdout)]
    pub async fn stop(self) -> anyhow::Result<()> {
        tracing::info!("shutting down: stopping input");
        self.shutdown.cancel();
        self.mqtt.shutdown().await;
        match self.http_task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server ended with an error"),
            Err(e) => tracing::warn!(error = %e, "HTTP task failed"),
        }
        self.engine.shutdown().await.context("closing the store")?;
        println!("doppel stopped");
        Ok(())
    }
}

pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
