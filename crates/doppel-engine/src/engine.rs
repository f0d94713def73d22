//! The engine: catalog, store, shards and live bus behind one async API used by every server
//! (HTTP, MQTT) and command.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use doppel_analytics::{AdviceConfig, DetectorConfig};
use doppel_model::{
    format_ts, AssetModel, Batch, Catalog, ModelError, ReadingRef, Timestamp, Twin, TwinFilter,
    ValidatedBatch, Value, ValueKind,
};
use doppel_store::{Agg, Bucket, Point, Store, StoreOptions};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::advice::{AdviceBook, AdviceItem, AdviceLog, AdviceQuery, AdviceState, Outcome};
use crate::advice_service::{self, AdviceMsg, AdviceOp};
use crate::alarm_service::{self, AlarmInput, OperatorOp};
use crate::alarms::{Alarm, AlarmBook, AlarmLog, AlarmPolicy, AlarmQuery, Feedback, Verdict};
use crate::detect::{self, Detectors, TwinHealth, SCORE_SIGNAL};
use crate::intake::Names;
use crate::live::ReadingWatchers;
use crate::retention;
use crate::rul::{self, MaintenanceEvent, NewMaintenance, Rul, RulModelInfo, TwinRul};
use crate::shard::{self, ShardCmd, ShardCtx, TwinLive};
use crate::whatif::{self, Identified, WhatIfAnswer};
use crate::{catalog_file, EngineError, EventFilter, Metrics, Subscription};
use doppel_analytics::sysid::{
    Cause, FitConfig, GraphLink, OptimizeResult, OptimizeSpec, ScenarioSpec, TroubleshootConfig,
};

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    /// Number of twin shards (tasks owning twin state).
    pub shards: usize,
    /// Mailbox size of each shard, in commands.
    pub shard_capacity: usize,
    /// Events kept on the live bus for slow subscribers before they skip.
    pub bus_capacity: usize,
    pub store: StoreOptions,
    /// Run the anomaly detectors on every reading (alarms, `.anomaly_score` history).
    pub anomaly_detection: bool,
    /// Settings of every twin's detector.
    pub detector: DetectorConfig,
    pub alarm_policy: AlarmPolicy,
    /// Reading time between two maintenance-advice evaluations of a twin (only twins whose
    /// model has failure modes are advised).
    pub advice_every: std::time::Duration,
    /// Settings of every twin's advice tracker.
    pub advice: AdviceConfig,
    /// Wall-clock time between two refreshes of every twin's remaining-life estimate (the
    /// estimates the advice trackers read).
    pub rul_every: std::time::Duration,
    /// Wall-clock time between two retention passes (models with a `retention` lose the
    /// points older than it; the first pass runs at open).
    pub retention_every: std::time::Duration,
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        EngineConfig {
            data_dir: data_dir.into(),
            shards: (cpus * 2).clamp(2, 64),
            shard_capacity: 1024,
            bus_capacity: 16_384,
            store: StoreOptions::default(),
            anomaly_detection: true,
            detector: DetectorConfig::default(),
            alarm_policy: AlarmPolicy::default(),
            advice_every: std::time::Duration::from_secs(600),
            advice: AdviceConfig::default(),
            rul_every: std::time::Duration::from_secs(600),
            retention_every: std::time::Duration::from_secs(3600),
        }
    }
}

/// Where a batch came from, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestSource {
    Http,
    LineProtocol,
    Mqtt,
    /// The built-in plant simulator (`doppel demo`).
    Simulator,
}

impl IngestSource {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestSource::Http => "http",
            IngestSource::LineProtocol => "line_protocol",
            IngestSource::Mqtt => "mqtt",
            IngestSource::Simulator => "simulator",
        }
    }
}

/// What an accepted batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IngestReceipt {
    pub readings: usize,
    pub points: usize,
    /// Readings older than the twin's state: stored in history, state unchanged.
    pub late: usize,
}

/// The latest (or as-of) value of one signal.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SignalState {
    pub value: Option<Value>,
    /// RFC 3339 time of `value`.
    pub time: Option<String>,
    /// Nanoseconds since the epoch of `value`.
    pub ts: Option<Timestamp>,
    pub unit: String,
    pub kind: ValueKind,
}

/// A twin with its model and the state of every signal.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TwinState {
    #[serde(flatten)]
    pub twin: Twin,
    #[schema(value_type = Object)]
    pub model_info: ModelInfo,
    /// State as of this time when asked for a past state (`?at=`), else absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    pub signals: BTreeMap<String, SignalState>,
    /// What the twin's anomaly detector says now (absent for a past state or before the
    /// first numeric reading).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<TwinHealth>,
    /// The twin's open alarm, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm: Option<Alarm>,
    /// The twin's open and scheduled maintenance advice, soonest due first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub advice: Vec<AdviceItem>,
}

/// What an [`Engine::import`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportReceipt {
    pub models_created: usize,
    pub models_replaced: usize,
    pub twins_created: usize,
    pub twins_replaced: usize,
}

/// One twin's part of a fleet view ([`Engine::fleet_signal`]).
#[derive(Debug, Clone, Serialize)]
pub struct FleetSeries {
    pub twin: String,
    /// The latest point at or before the end of the range.
    pub last: Option<Point>,
    /// Buckets over the range, when a step was asked for.
    pub buckets: Vec<Bucket>,
}

/// The parts of a twin's model shown with its state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModelInfo {
    pub id: String,
    pub name: String,
    pub version: u32,
}

/// The running engine.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    catalog: RwLock<Arc<Catalog>>,
    catalog_write: tokio::sync::Mutex<()>,
    /// Interned names for the validation fast path.
    names: Names,
    store: Arc<Store>,
    shards: Vec<mpsc::Sender<ShardCmd>>,
    bus: broadcast::Sender<Arc<crate::Event>>,
    reading_watchers: ReadingWatchers,
    metrics: Metrics,
    closing: AtomicBool,
    alarm_book: Arc<Mutex<AlarmBook>>,
    alarm_tx: mpsc::Sender<AlarmInput>,
    advice_book: Arc<Mutex<AdviceBook>>,
    advice_tx: mpsc::Sender<AdviceMsg>,
    whatif: Arc<whatif::Models>,
    rul: Arc<Rul>,
}

/// `[from, to)` with an open end (`Timestamp::MIN` / `MAX`) clamped to the series' first and
/// last data a downsample at `step` would use (`Store::downsample_span`: points, and rollups
/// past retention at whole-minute steps); `None` when an open end meets a series without data
/// (or an open start one whose data begins at or after `to`).
fn clamp_open_ends(
    store: &Store,
    twin: &str,
    signal: &str,
    from: Timestamp,
    to: Timestamp,
    step: i64,
) -> Option<(Timestamp, Timestamp)> {
    if from != Timestamp::MIN && to != Timestamp::MAX {
        return Some((from, to));
    }
    let (first, last) = store.downsample_span(twin, signal, step)?;
    if from == Timestamp::MIN && first >= to {
        return None;
    }
    let from = if from == Timestamp::MIN { first } else { from };
    let to = if to == Timestamp::MAX {
        last.saturating_add(1).max(from)
    } else {
        to
    };
    Some((from, to))
}

impl Engine {
    /// Opens the data directory: loads the catalog, replays history, seeds twin state.
    pub async fn open(config: EngineConfig) -> Result<Arc<Engine>, EngineError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| EngineError::Persist {
            path: dir.clone(),
            source,
        })?;
        let catalog = catalog_file::load(&dir)?;
        let store_dir = dir.join("history");
        let opts = config.store.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(store_dir, opts))
            .await
            .map_err(|e| EngineError::Persist {
                path: dir.clone(),
                source: std::io::Error::other(e),
            })??;
        let store = Arc::new(store);
        let metrics = Metrics::new();
        let (bus, _) = broadcast::channel(config.bus_capacity.max(16));
        let reading_watchers = ReadingWatchers::default();
        let (advice_log, advice_book) = {
            let d = dir.clone();
            tokio::task::spawn_blocking(move || AdviceLog::open(&d))
                .await
                .map_err(|e| EngineError::Persist {
                    path: dir.clone(),
                    source: std::io::Error::other(e),
                })??
        };
        let advice_book = Arc::new(Mutex::new(advice_book));
        let rul = {
            let d = dir.clone();
            Arc::new(
                tokio::task::spawn_blocking(move || Rul::open(&d))
                    .await
                    .map_err(|e| EngineError::Persist {
                        path: dir.clone(),
                        source: std::io::Error::other(e),
                    })??,
            )
        };
        let (advice_tx, _) = advice_service::spawn(
            advice_book.clone(),
            advice_log,
            bus.clone(),
            metrics.clone(),
        );
        let (log, book, saved) = {
            let (d, policy) = (dir.clone(), config.alarm_policy.clone());
            let detectors = config.anomaly_detection;
            let shards = config.shards.max(1);
            tokio::task::spawn_blocking(move || {
                let (log, book) = AlarmLog::open(&d, policy)?;
                let saved = if detectors {
                    detect::load_all(&d, shards)
                } else {
                    Default::default()
                };
                Ok::<_, EngineError>((log, book, saved))
            })
            .await
            .map_err(|e| EngineError::Persist {
                path: dir.clone(),
                source: std::io::Error::other(e),
            })??
        };
        // Alarms confirmed with their fault kind are labelled cases for advice too.
        for a in book.list(&AlarmQuery::default()).into_iter().rev() {
            if let Some(case) = crate::advice::alarm_case(&a) {
                advice_book.lock().add_case(&a.model, case);
            }
        }
        let n = config.shards.max(1);
        let mut open_alarms: Vec<Vec<Arc<str>>> = (0..n).map(|_| Vec::new()).collect();
        for a in book.list(&AlarmQuery::default()) {
            if a.state.is_open() {
                open_alarms[shard::shard_of(&a.twin, n)].push(Arc::from(a.twin.as_str()));
            }
        }
        let alarm_book = Arc::new(Mutex::new(book));
        let (alarm_tx, _) =
            alarm_service::spawn(alarm_book.clone(), log, bus.clone(), metrics.clone());
        let mut per_shard: Vec<std::collections::HashMap<_, _>> =
            (0..n).map(|_| Default::default()).collect();
        for (twin, ta) in saved {
            per_shard[shard::shard_of(&twin, n)].insert(twin, ta);
        }
        let shards: Vec<_> = per_shard
            .into_iter()
            .zip(open_alarms)
            .enumerate()
            .map(|(i, (saved, open_alarms))| {
                let ctx = ShardCtx {
                    bus: bus.clone(),
                    reading_watchers: reading_watchers.clone(),
                    metrics: metrics.clone(),
                    store: store.clone(),
                    alarms: alarm_tx.clone(),
                    advice: advice_tx.clone(),
                    advice_book: advice_book.clone(),
                    detectors: config.anomaly_detection.then(|| {
                        Detectors::new(config.detector.clone(), saved)
                            .with_advice(config.advice.clone(), config.advice_every)
                            .with_rul(rul.board.clone())
                    }),
                    state_path: detect::state_path(&dir, i),
                    clear_after: config.alarm_policy.clear_after,
                    open_alarms,
                };
                shard::spawn(config.shard_capacity.max(1), ctx).0
            })
            .collect();
        metrics.twins.set(catalog.twin_count() as i64);
        metrics.models.set(catalog.models().count() as i64);
        let engine = Arc::new(Engine {
            config,
            catalog: RwLock::new(Arc::new(catalog)),
            catalog_write: tokio::sync::Mutex::new(()),
            names: Names::default(),
            store,
            shards,
            bus,
            reading_watchers,
            metrics,
            closing: AtomicBool::new(false),
            alarm_book,
            alarm_tx,
            advice_book,
            advice_tx,
            whatif: Arc::new(whatif::Models::new(&dir)),
            rul,
        });
        spawn_rul_refresh(Arc::downgrade(&engine), engine.config.rul_every);
        spawn_retention(Arc::downgrade(&engine), engine.config.retention_every);
        let store = engine.store.clone();
        let latest = tokio::task::spawn_blocking(move || store.latest_all())
            .await
            .unwrap_or_default();
        let seeded = latest.len();
        for (twin, signal, p) in latest {
            // Derived series (the anomaly score) are history, not twin state.
            if &*signal == SCORE_SIGNAL {
                continue;
            }
            let tx = &engine.shards[shard::shard_of(&twin, engine.shards.len())];
            let _ = tx
                .send(ShardCmd::Seed {
                    twin,
                    signal,
                    ts: p.ts,
                    value: p.value,
                })
                .await;
        }
        tracing::info!(
            series = seeded,
            twins = engine.catalog().twin_count(),
            "engine open"
        );
        Ok(engine)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A consistent snapshot of all models and twins.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().clone()
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Validates, stores durably, applies and publishes a batch. Nothing is stored unless the
    /// whole batch is valid. Returns once the batch is durable, in twin state and on the bus.
    /// `label(i)` names reading `i` in error paths (`"[3]."`, `"line 4: "`).
    pub async fn ingest(
        &self,
        batch: Batch,
        source: IngestSource,
        label: impl Fn(usize) -> String,
    ) -> Result<IngestReceipt, EngineError> {
        let (started, catalog) = self.ingest_start()?;
        let fast = self.names.validate(&catalog, &batch);
        let validated = match fast.map_or_else(|| catalog.validate_batch(batch, label), Ok) {
            Ok(v) => v,
            Err(e) => {
                self.metrics
                    .ingest_rejected
                    .with_label_values(&[source.as_str(), "invalid"])
                    .inc();
                return Err(EngineError::Invalid(e));
            }
        };
        self.ingest_validated(validated, catalog, source, started)
            .await
    }

    /// [`Engine::ingest`] of readings whose names borrow from the request (line protocol):
    /// a valid batch is validated without copying a name; anything else goes the owned way,
    /// which reports every error.
    pub async fn ingest_readings(
        &self,
        readings: Vec<ReadingRef<'_>>,
        source: IngestSource,
        label: impl Fn(usize) -> String,
    ) -> Result<IngestReceipt, EngineError> {
        let (started, catalog) = self.ingest_start()?;
        match self.names.validate_readings(&catalog, &readings) {
            Some(validated) => {
                drop(readings);
                self.ingest_validated(validated, catalog, source, started)
                    .await
            }
            None => {
                let batch = Batch {
                    readings: readings.into_iter().map(ReadingRef::into_owned).collect(),
                };
                self.ingest(batch, source, label).await
            }
        }
    }

    /// The start of an ingest: refused while closing, else its start time and the catalog
    /// snapshot it validates against.
    fn ingest_start(&self) -> Result<(Instant, Arc<Catalog>), EngineError> {
        if self.closing.load(Ordering::Acquire) {
            return Err(EngineError::ShuttingDown);
        }
        Ok((Instant::now(), self.catalog()))
    }

    async fn ingest_validated(
        &self,
        validated: ValidatedBatch,
        catalog: Arc<Catalog>,
        source: IngestSource,
        started: Instant,
    ) -> Result<IngestReceipt, EngineError> {
        let readings = validated.readings.len();
        let points = validated.points();
        if points == 0 {
            return Ok(IngestReceipt {
                readings,
                points,
                late: 0,
            });
        }
        let validated = Arc::new(validated);
        if let Err(e) = self.write_durably(&validated).await {
            self.metrics
                .ingest_rejected
                .with_label_values(&[source.as_str(), "storage"])
                .inc();
            return Err(e);
        }
        let late = self.apply(validated, catalog).await?;
        self.metrics
            .ingest_points
            .with_label_values(&[source.as_str()])
            .inc_by(points as u64);
        self.metrics
            .ingest_readings
            .with_label_values(&[source.as_str()])
            .inc_by(readings as u64);
        self.metrics
            .ingest_latency
            .observe(started.elapsed().as_secs_f64());
        Ok(IngestReceipt {
            readings,
            points,
            late,
        })
    }

    async fn write_durably(&self, batch: &Arc<ValidatedBatch>) -> Result<(), EngineError> {
        let (tx, rx) = oneshot::channel();
        self.store.write_batch_with(
            batch.clone(),
            Box::new(move |res| {
                let _ = tx.send(res);
            }),
        );
        match rx.await {
            Ok(res) => res.map_err(EngineError::Store),
            Err(_) => Err(EngineError::ShuttingDown),
        }
    }

    /// Hands each shard its part of a durable batch (shared, not copied: the store's index
    /// thread may still be reading it) and waits until every part is applied.
    async fn apply(
        &self,
        batch: Arc<ValidatedBatch>,
        catalog: Arc<Catalog>,
    ) -> Result<usize, EngineError> {
        let n = self.shards.len();
        let mut per_shard: Vec<Vec<u32>> = (0..n).map(|_| Vec::new()).collect();
        for (i, r) in batch.readings.iter().enumerate() {
            per_shard[shard::shard_of(&r.twin, n)].push(i as u32);
        }
        let mut waits = Vec::new();
        for (i, which) in per_shard.into_iter().enumerate() {
            if which.is_empty() {
                continue;
            }
            let (done, rx) = oneshot::channel();
            self.shards[i]
                .send(ShardCmd::Apply {
                    readings: shard::ShardPart {
                        batch: batch.clone(),
                        which,
                    },
                    catalog: catalog.clone(),
                    done,
                })
                .await
                .map_err(|_| EngineError::ShuttingDown)?;
            waits.push(rx);
        }
        let mut late = 0;
        for w in waits {
            late += w.await.map_err(|_| EngineError::ShuttingDown)?;
        }
        Ok(late)
    }

    /// Subscribes to live events passing `filter`.
    pub fn subscribe(&self, filter: EventFilter) -> Subscription {
        Subscription::new(
            self.bus.subscribe(),
            filter,
            self.metrics.clone(),
            &self.reading_watchers,
        )
    }

    /// Applies a change to a copy of the catalog, persists it, then publishes it.
    async fn change_catalog<T>(
        &self,
        f: impl FnOnce(&mut Catalog) -> Result<T, ModelError>,
    ) -> Result<T, EngineError> {
        if self.closing.load(Ordering::Acquire) {
            return Err(EngineError::ShuttingDown);
        }
        let _guard = self.catalog_write.lock().await;
        let mut next = (*self.catalog()).clone();
        let out = f(&mut next)?;
        let next = Arc::new(next);
        let dir = self.config.data_dir.clone();
        let to_save = next.clone();
        tokio::task::spawn_blocking(move || catalog_file::save(&dir, &to_save))
            .await
            .map_err(|e| EngineError::Persist {
                path: catalog_file::path(&self.config.data_dir),
                source: std::io::Error::other(e),
            })??;
        self.metrics.twins.set(next.twin_count() as i64);
        self.metrics.models.set(next.models().count() as i64);
        *self.catalog.write() = next;
        Ok(out)
    }

    /// Creates or replaces many models and twins in one catalog change (one write of the
    /// catalog file): the way to load a plant of thousands of twins. Everything is
    /// validated together, twins in any order (parents and relation targets may come later
    /// in the list); one error refuses the whole import and changes nothing.
    pub async fn import(
        &self,
        models: Vec<AssetModel>,
        twins: Vec<Twin>,
    ) -> Result<ImportReceipt, EngineError> {
        self.change_catalog(move |c| {
            let mut receipt = ImportReceipt::default();
            let mut all_models: BTreeMap<String, AssetModel> =
                c.models().map(|m| (m.id.clone(), (**m).clone())).collect();
            for m in models {
                match all_models.insert(m.id.clone(), m) {
                    None => receipt.models_created += 1,
                    Some(_) => receipt.models_replaced += 1,
                }
            }
            let mut all_twins: BTreeMap<String, Twin> =
                c.twins().map(|t| (t.id.clone(), (**t).clone())).collect();
            for t in twins {
                match all_twins.insert(t.id.clone(), t) {
                    None => receipt.twins_created += 1,
                    Some(_) => receipt.twins_replaced += 1,
                }
            }
            *c = Catalog::from_parts(
                all_models.into_values().collect(),
                all_twins.into_values().collect(),
            )
            .map_err(ModelError::Invalid)?;
            Ok(receipt)
        })
        .await
    }

    /// Creates or replaces a model; returns true when it was created.
    pub async fn put_model(&self, model: AssetModel) -> Result<bool, EngineError> {
        self.change_catalog(|c| {
            let created = c.model(&model.id).is_none();
            c.put_model(model).map(|()| created)
        })
        .await
    }

    pub async fn delete_model(&self, id: &str) -> Result<(), EngineError> {
        self.change_catalog(|c| c.delete_model(id).map(|_| ()))
            .await?;
        self.rul.remove_model(id);
        Ok(())
    }

    /// Creates or replaces a twin; returns true when it was created.
    pub async fn put_twin(&self, twin: Twin) -> Result<bool, EngineError> {
        self.change_catalog(|c| {
            let created = c.twin(&twin.id).is_none();
            c.put_twin(twin).map(|()| created)
        })
        .await
    }

    /// Deletes a twin with its history and state.
    pub async fn delete_twin(&self, id: &str) -> Result<(), EngineError> {
        self.change_catalog(|c| c.delete_twin(id).map(|_| ()))
            .await?;
        let store = self.store.clone();
        let twin = id.to_string();
        tokio::task::spawn_blocking(move || store.delete_twin(&twin))
            .await
            .map_err(|e| EngineError::Persist {
                path: self.config.data_dir.clone(),
                source: std::io::Error::other(e),
            })??;
        self.whatif.remove(id);
        self.rul.remove_twin(id);
        let twin: Arc<str> = Arc::from(id);
        let tx = &self.shards[shard::shard_of(&twin, self.shards.len())];
        let _ = tx.send(ShardCmd::Remove { twin }).await;
        let _ = self
            .alarm_tx
            .send(AlarmInput::RemoveTwin(id.to_string()))
            .await;
        let _ = self
            .advice_tx
            .send(AdviceMsg::RemoveTwin(id.to_string()))
            .await;
        Ok(())
    }

    pub fn list_twins(&self, filter: &TwinFilter) -> Vec<Arc<Twin>> {
        self.catalog().list_twins(filter)
    }

    pub fn children(&self, id: &str) -> Result<Vec<Arc<Twin>>, EngineError> {
        let c = self.catalog();
        if c.twin(id).is_none() {
            return Err(EngineError::TwinNotFound(id.to_string()));
        }
        Ok(c.children(id))
    }

    /// A twin with the latest value of every signal, or its state as of `at`.
    pub async fn twin_state(
        &self,
        id: &str,
        at: Option<Timestamp>,
    ) -> Result<TwinState, EngineError> {
        let catalog = self.catalog();
        let twin = catalog
            .twin(id)
            .ok_or_else(|| EngineError::TwinNotFound(id.to_string()))?;
        let model = catalog
            .model(&twin.model)
            .ok_or_else(|| EngineError::Model(ModelError::ModelNotFound(twin.model.clone())))?;
        let mut health = None;
        let live: TwinLive = match at {
            None => {
                let key: Arc<str> = Arc::from(id);
                let (reply, rx) = oneshot::channel();
                self.shards[shard::shard_of(&key, self.shards.len())]
                    .send(ShardCmd::Get { twin: key, reply })
                    .await
                    .map_err(|_| EngineError::ShuttingDown)?;
                let (live, h) = rx.await.map_err(|_| EngineError::ShuttingDown)?;
                health = h;
                live.unwrap_or_default()
            }
            Some(t) => {
                let store = self.store.clone();
                let twin_id = id.to_string();
                tokio::task::spawn_blocking(move || store.as_of(&twin_id, t))
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(s, p)| (s, (p.ts, p.value)))
                    .collect()
            }
        };
        let signals = model
            .signals
            .iter()
            .map(|s| {
                let cur = live.get(s.name.as_str());
                (
                    s.name.clone(),
                    SignalState {
                        value: cur.map(|c| c.1.clone()),
                        time: cur.map(|c| format_ts(c.0)),
                        ts: cur.map(|c| c.0),
                        unit: s.unit.clone(),
                        kind: s.kind,
                    },
                )
            })
            .collect();
        Ok(TwinState {
            twin: (**twin).clone(),
            model_info: ModelInfo {
                id: model.id.clone(),
                name: model.name.clone(),
                version: model.version,
            },
            at: at.map(format_ts),
            signals,
            alarm: match at {
                None => self.alarm_book.lock().open_for(id).cloned(),
                Some(_) => None,
            },
            advice: match at {
                None => self.advice_book.lock().active_for(id),
                Some(_) => Vec::new(),
            },
            health,
        })
    }

    fn check_signal(&self, twin: &str, signal: &str) -> Result<(), EngineError> {
        let c = self.catalog();
        let t = c
            .twin(twin)
            .ok_or_else(|| EngineError::TwinNotFound(twin.to_string()))?;
        let known = signal == SCORE_SIGNAL
            || c.model(&t.model)
                .is_some_and(|m| m.signal(signal).is_some());
        if !known {
            return Err(EngineError::SignalNotFound {
                twin: twin.to_string(),
                signal: signal.to_string(),
            });
        }
        Ok(())
    }

    /// Raw points of one signal with `from <= ts < to`, at most `limit`.
    pub async fn history(
        &self,
        twin: &str,
        signal: &str,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<Point>, EngineError> {
        self.check_signal(twin, signal)?;
        let (store, twin, signal) = (self.store.clone(), twin.to_string(), signal.to_string());
        Ok(
            tokio::task::spawn_blocking(move || store.range(&twin, &signal, from, to, limit))
                .await
                .map_err(|_| EngineError::ShuttingDown)??,
        )
    }

    /// Aggregates of one signal per `step`-wide bucket.
    pub async fn downsample(
        &self,
        twin: &str,
        signal: &str,
        from: Timestamp,
        to: Timestamp,
        step: i64,
        agg: Agg,
    ) -> Result<Vec<Bucket>, EngineError> {
        self.check_signal(twin, signal)?;
        let (store, twin, signal) = (self.store.clone(), twin.to_string(), signal.to_string());
        Ok(tokio::task::spawn_blocking(move || {
            // Open ends (no `from` / `to`) mean "all the data": clamp them to the series'
            // first and last data (points, and rollups past retention at whole-minute steps)
            // so the bucket count reflects the data, not i64's range.
            let (from, to) = match clamp_open_ends(&store, &twin, &signal, from, to, step) {
                Some(range) => range,
                None => return Ok(Vec::new()),
            };
            store.downsample(&twin, &signal, from, to, step, agg)
        })
        .await
        .map_err(|_| EngineError::ShuttingDown)??)
    }

    /// One signal across every twin of `model` (the fleet view), twins in id order: per twin
    /// its last point at or before `to` and, with a `step`, its buckets over `[from, to)`.
    pub async fn fleet_signal(
        &self,
        model: &str,
        signal: &str,
        from: Timestamp,
        to: Timestamp,
        step: Option<(i64, Agg)>,
    ) -> Result<Vec<FleetSeries>, EngineError> {
        let c = self.catalog();
        let m = c
            .model(model)
            .ok_or_else(|| ModelError::ModelNotFound(model.to_string()))?;
        if signal != SCORE_SIGNAL && m.signal(signal).is_none() {
            return Err(EngineError::SignalNotFound {
                twin: format!("(any twin of model {model})"),
                signal: signal.to_string(),
            });
        }
        let mut twins: Vec<String> = c
            .twins()
            .filter(|t| t.model == model)
            .map(|t| t.id.clone())
            .collect();
        twins.sort();
        let (store, signal) = (self.store.clone(), signal.to_string());
        tokio::task::spawn_blocking(move || {
            twins
                .into_iter()
                .map(|twin| {
                    let last = if to == Timestamp::MAX {
                        store.last(&twin, &signal)
                    } else {
                        store.last_at(&twin, &signal, to.saturating_sub(1))
                    };
                    let buckets = match step {
                        Some((step, agg)) => {
                            match clamp_open_ends(&store, &twin, &signal, from, to, step) {
                                Some((lo, hi)) if lo < hi => {
                                    store.downsample(&twin, &signal, lo, hi, step, agg)?
                                }
                                _ => Vec::new(),
                            }
                        }
                        None => Vec::new(),
                    };
                    Ok(FleetSeries {
                        twin,
                        last,
                        buckets,
                    })
                })
                .collect::<Result<Vec<_>, EngineError>>()
        })
        .await
        .map_err(|_| EngineError::ShuttingDown)?
    }

    /// Identifies `twin`'s dynamics from its history in `[from, to)` (default: the week
    /// before its last reading), keeps the model (memory and disk) and returns it.
    pub async fn identify(
        &self,
        twin: &str,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        config: FitConfig,
    ) -> Result<Arc<Identified>, EngineError> {
        let (store, catalog, models) = (self.store.clone(), self.catalog(), self.whatif.clone());
        let twin = twin.to_string();
        tokio::task::spawn_blocking(move || {
            let id = whatif::identify(&store, &catalog, &twin, from, to, &config)?;
            models.put(id)
        })
        .await
        .map_err(|_| EngineError::ShuttingDown)?
    }

    /// `twin`'s identified model, if it has one.
    pub fn identified(&self, twin: &str) -> Result<Option<Arc<Identified>>, EngineError> {
        if self.catalog().twin(twin).is_none() {
            return Err(EngineError::TwinNotFound(twin.to_string()));
        }
        Ok(self.whatif.get(twin))
    }

    /// The twin's model: identified now with the defaults when it has none yet, and refitted
    /// (same model step) once the history has grown by `whatif::refit_after` since the fit.
    /// A refit that fails keeps the previous model.
    async fn model_for(&self, twin: &str) -> Result<Arc<Identified>, EngineError> {
        let Some(m) = self.identified(twin)? else {
            return self.identify(twin, None, None, FitConfig::default()).await;
        };
        let catalog = self.catalog();
        let last = catalog
            .twin(twin)
            .and_then(|t| catalog.model(&t.model))
            .and_then(|model| whatif::last_reading(&self.store, twin, model));
        let grown = last.map_or(0, |l| l.saturating_sub(m.history_to));
        if grown < whatif::refit_after(&m) {
            return Ok(m);
        }
        let config = FitConfig {
            step_s: m.model.step_s,
            ..FitConfig::default()
        };
        match self.identify(twin, None, None, config).await {
            Ok(fresh) => {
                tracing::info!(twin, "what-if model refitted on the grown history");
                Ok(fresh)
            }
            Err(e) => {
                tracing::warn!(twin, error = %e, "refit failed; keeping the previous model");
                Ok(m)
            }
        }
    }

    /// Simulates what-if scenarios on `twin` from `start` (default: its last reading) with its
    /// learned model, against the baseline (nothing changed). Reads only: the twin's state and
    /// history are untouched. Without scenarios, `alone` says the baseline's horizon and step.
    pub async fn scenarios(
        &self,
        twin: &str,
        start: Option<Timestamp>,
        scenarios: Vec<(Option<String>, ScenarioSpec)>,
        alone: ScenarioSpec,
    ) -> Result<WhatIfAnswer, EngineError> {
        let id = self.model_for(twin).await?;
        let (store, catalog) = (self.store.clone(), self.catalog());
        let twin = twin.to_string();
        tokio::task::spawn_blocking(move || {
            let start = start.unwrap_or(id.history_to).max(i64::MIN + 1);
            let tail = whatif::tail(&store, &catalog, &twin, id.model.step_s, start)?;
            whatif::run_scenarios(&id, &tail, &scenarios, alone)
        })
        .await
        .map_err(|_| EngineError::ShuttingDown)?
    }

    /// Simulates linked twins together: each link feeds an upstream twin's predicted output to
    /// a downstream twin's input, and must follow a relation between the two (either way).
    /// Every twin starts from its history up to `start` (default: the earliest of their last
    /// readings, so all start together). Compared with the same graph without changes.
    pub async fn graph_scenarios(
        &self,
        start: Option<Timestamp>,
        nodes: Vec<(String, ScenarioSpec)>,
        links: Vec<GraphLink>,
    ) -> Result<whatif::GraphAnswer, EngineError> {
        let catalog = self.catalog();
        let mut errs = doppel_model::ValidationErrors::new();
        let related = |a: &str, b: &str| {
            catalog
                .twin(a)
                .is_some_and(|t| t.relations.iter().any(|r| r.target == b))
        };
        for (i, l) in links.iter().enumerate() {
            if !(related(&l.from_twin, &l.to_twin) || related(&l.to_twin, &l.from_twin)) {
                errs.push(
                    format!("links[{i}]"),
                    format!(
                        "`{}` and `{}` have no relation between them; a change propagates only along relations",
                        l.from_twin, l.to_twin
                    ),
                );
            }
        }
        errs.into_result().map_err(EngineError::Invalid)?;
        let mut models = Vec::with_capacity(nodes.len());
        for (twin, spec) in nodes {
            models.push((self.model_for(&twin).await?, spec));
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let start = start.unwrap_or_else(|| {
                models
                    .iter()
                    .map(|(id, _)| id.history_to)
                    .min()
                    .unwrap_or(Timestamp::MAX)
            });
            let mut full = Vec::with_capacity(models.len());
            for (id, spec) in models {
                let tail = whatif::tail(&store, &catalog, &id.twin, id.model.step_s, start)?;
                full.push((id, spec, tail));
            }
            whatif::run_graph(&full, &links)
        })
        .await
        .map_err(|_| EngineError::ShuttingDown)?
    }

    /// Searches `twin`'s inputs for the settings that best meet `spec`, from its last reading.
    pub async fn optimize(
        &self,
        twin: &str,
        spec: OptimizeSpec,
    ) -> Result<OptimizeResult, EngineError> {
        let id = self.model_for(twin).await?;
        let (store, catalog) = (self.store.clone(), self.catalog());
        let twin = twin.to_string();
        tokio::task::spawn_blocking(move || {
            let tail = whatif::tail(&store, &catalog, &twin, id.model.step_s, id.history_to)?;
            whatif::optimize(&id, &tail, &spec)
        })
        .await
        .map_err(|_| EngineError::ShuttingDown)?
    }

    /// Ranks candidate causes of what happened to `twin` in `[from, to)`: which signal left
    /// its baseline first, which learned relation broke, which related twin deviated earlier.
    pub async fn troubleshoot(
        &self,
        twin: &str,
        from: Timestamp,
        to: Timestamp,
        config: TroubleshootConfig,
    ) -> Result<Vec<Cause>, EngineError> {
        let (store, catalog, models) = (self.store.clone(), self.catalog(), self.whatif.clone());
        let twin = twin.to_string();
        tokio::task::spawn_blocking(move || {
            whatif::troubleshoot(&store, &catalog, &models, &twin, from, to, &config)
        })
        .await
        .map_err(|_| EngineError::ShuttingDown)?
    }

    /// Alarms matching `q`, newest first.
    pub fn alarms(&self, q: &AlarmQuery) -> Vec<Alarm> {
        self.alarm_book.lock().list(q)
    }

    pub fn alarm(&self, id: &str) -> Result<Alarm, EngineError> {
        self.alarm_book
            .lock()
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::AlarmNotFound(id.to_string()))
    }

    async fn alarm_op(&self, op: OperatorOp) -> Result<Alarm, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.alarm_tx
            .send(AlarmInput::Operator { op, reply })
            .await
            .map_err(|_| EngineError::ShuttingDown)?;
        rx.await.map_err(|_| EngineError::ShuttingDown)?
    }

    async fn to_twin_shard(&self, twin: &str, cmd: impl FnOnce(Arc<str>) -> ShardCmd) {
        let key: Arc<str> = Arc::from(twin);
        let tx = &self.shards[shard::shard_of(&key, self.shards.len())];
        let _ = tx.send(cmd(key)).await;
    }

    /// An operator has seen the alarm (`by`: the token id).
    pub async fn acknowledge_alarm(
        &self,
        id: &str,
        by: &str,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<Alarm, EngineError> {
        self.alarm_op(OperatorOp::Acknowledge {
            id: id.to_string(),
            by: by.to_string(),
            note,
            now,
        })
        .await
    }

    pub async fn shelve_alarm(
        &self,
        id: &str,
        until: Timestamp,
        by: &str,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<Alarm, EngineError> {
        self.alarm_op(OperatorOp::Shelve {
            id: id.to_string(),
            until,
            by: by.to_string(),
            note,
            now,
        })
        .await
    }

    pub async fn unshelve_alarm(
        &self,
        id: &str,
        by: &str,
        now: Timestamp,
    ) -> Result<Alarm, EngineError> {
        self.alarm_op(OperatorOp::Unshelve {
            id: id.to_string(),
            by: by.to_string(),
            now,
        })
        .await
    }

    /// Clears the alarm; the twin's detector forgets its alarm decision, so a condition that
    /// persists is raised again as a new alarm.
    pub async fn clear_alarm(
        &self,
        id: &str,
        by: &str,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<Alarm, EngineError> {
        let alarm = self
            .alarm_op(OperatorOp::Clear {
                id: id.to_string(),
                by: by.to_string(),
                note,
                now,
            })
            .await?;
        self.to_twin_shard(&alarm.twin, |twin| ShardCmd::ResetAlarm { twin })
            .await;
        Ok(alarm)
    }

    /// Records feedback on an alarm and adapts the twin's detector: a false alarm makes it
    /// less sensitive (and lets it learn the situation as normal), a confirmed one slightly
    /// more. The alarm keeps the label for later training.
    pub async fn alarm_feedback(
        &self,
        id: &str,
        verdict: Verdict,
        fault_kind: Option<String>,
        note: Option<String>,
        by: &str,
        now: Timestamp,
    ) -> Result<Alarm, EngineError> {
        let feedback = Feedback {
            verdict,
            fault_kind,
            note,
            by: by.to_string(),
            at: format_ts(now),
        };
        let alarm = self
            .alarm_op(OperatorOp::Feedback {
                id: id.to_string(),
                feedback,
                now,
            })
            .await?;
        let false_alarm = verdict == Verdict::FalseAlarm;
        self.to_twin_shard(&alarm.twin, |twin| ShardCmd::Feedback { twin, false_alarm })
            .await;
        if let Some(case) = crate::advice::alarm_case(&alarm) {
            let model = alarm.model.clone();
            let _ = self.advice_tx.send(AdviceMsg::Case { model, case }).await;
        }
        Ok(alarm)
    }

    /// Advice matching `q`, newest first.
    pub fn advice(&self, q: &AdviceQuery) -> Vec<AdviceItem> {
        self.advice_book.lock().list(q)
    }

    pub fn advice_item(&self, id: &str) -> Result<AdviceItem, EngineError> {
        self.advice_book
            .lock()
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::AdviceNotFound(id.to_string()))
    }

    async fn advice_op(&self, op: AdviceOp) -> Result<AdviceItem, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.advice_tx
            .send(AdviceMsg::Operator { op, reply })
            .await
            .map_err(|_| EngineError::ShuttingDown)?;
        rx.await.map_err(|_| EngineError::ShuttingDown)?
    }

    /// Plans the advised work for `for_ts` (`by`: the token id).
    pub async fn schedule_advice(
        &self,
        id: &str,
        for_ts: Timestamp,
        by: &str,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<AdviceItem, EngineError> {
        self.advice_op(AdviceOp::Schedule {
            id: id.to_string(),
            for_ts,
            by: by.to_string(),
            note,
            now,
        })
        .await
    }

    /// The advised work is done, with its outcome (kept on the item as its label; a confirmed
    /// one becomes a past case for the model's later recommendations). The twin is
    /// maintained: its tracker holds the failure mode off for a while, and its detector
    /// forgets its alarm decision and its open alarm is cleared, as an operator's clear does.
    pub async fn advice_done(
        &self,
        id: &str,
        outcome: Outcome,
        note: Option<String>,
        by: &str,
        now: Timestamp,
    ) -> Result<AdviceItem, EngineError> {
        let item = self
            .advice_op(AdviceOp::Done {
                id: id.to_string(),
                outcome,
                by: by.to_string(),
                note,
                now,
            })
            .await?;
        let failure_mode = item.failure_mode.clone();
        self.to_twin_shard(&item.twin, |twin| ShardCmd::DismissAdvice {
            twin,
            failure_mode,
        })
        .await;
        self.clear_twin_alarm(
            &item.twin,
            by,
            format!("maintenance done ({})", item.id),
            now,
        )
        .await;
        if outcome == Outcome::Confirmed {
            // The confirmed work renewed the asset: its remaining life restarts from here.
            let repair = NewMaintenance {
                twin: item.twin.clone(),
                kind: rul::MaintenanceKind::Repair,
                at: None,
                failure_mode: Some(item.failure_mode.clone()),
                note: None,
                by: by.to_string(),
                source: Some(format!("advice {}", item.id)),
            };
            if let Err(e) = self.record_maintenance(repair).await {
                tracing::warn!(error = %e, advice = %item.id, "repair not recorded after maintenance");
            }
        }
        Ok(item)
    }

    /// Waits until everything acknowledged for `twin` before this call is scored and its
    /// alarm and advice changes are applied: the twin's shard answers after its detector
    /// queue, then each service after its queue.
    async fn settle(&self, twin: &str) -> Result<(), EngineError> {
        let key: Arc<str> = Arc::from(twin);
        let (reply, rx) = oneshot::channel();
        self.shards[shard::shard_of(&key, self.shards.len())]
            .send(ShardCmd::Get { twin: key, reply })
            .await
            .map_err(|_| EngineError::ShuttingDown)?;
        rx.await.map_err(|_| EngineError::ShuttingDown)?;
        let (done, rx) = oneshot::channel();
        self.alarm_tx
            .send(AlarmInput::Flush(done))
            .await
            .map_err(|_| EngineError::ShuttingDown)?;
        rx.await.map_err(|_| EngineError::ShuttingDown)?;
        let (done, rx) = oneshot::channel();
        self.advice_tx
            .send(AdviceMsg::Flush(done))
            .await
            .map_err(|_| EngineError::ShuttingDown)?;
        rx.await.map_err(|_| EngineError::ShuttingDown)
    }

    /// The twin was maintained: its open alarm is cleared (as an operator's clear, with
    /// `note`), or, without one, its detector forgets its alarm decision.
    async fn clear_twin_alarm(&self, twin: &str, by: &str, note: String, now: Timestamp) {
        let open_alarm = self.alarm_book.lock().open_for(twin).map(|a| a.id.clone());
        match open_alarm {
            Some(alarm) => match self.clear_alarm(&alarm, by, Some(note), now).await {
                // Cleared meanwhile by its condition or an operator: nothing left to do.
                Ok(_) | Err(EngineError::AlarmConflict(_)) => {}
                // The maintenance is recorded whatever happens to the alarm.
                Err(e) => {
                    tracing::warn!(error = %e, alarm = %alarm, "alarm not cleared after maintenance")
                }
            },
            None => {
                self.to_twin_shard(twin, |twin| ShardCmd::ResetAlarm { twin })
                    .await
            }
        }
    }

    /// Records a maintenance event on a twin (durably, before answering). The twin was
    /// maintained: its open alarm is cleared. A failure also closes its open and scheduled
    /// advice (`confirmed` when it named the failure's mode, `other` otherwise) and refits
    /// its model's remaining-life model in the background.
    pub async fn record_maintenance(
        &self,
        new: NewMaintenance,
    ) -> Result<MaintenanceEvent, EngineError> {
        let catalog = self.catalog();
        let model = whatif::twin_model(&catalog, &new.twin)?.clone();
        rul::validate(&model, &new)?;
        self.settle(&new.twin).await?;
        let at = match new.at {
            Some(at) => at,
            None => whatif::last_reading(&self.store, &new.twin, &model)
                .unwrap_or_else(rul::wall_now_ns),
        };
        let event = MaintenanceEvent {
            id: String::new(),
            twin: new.twin.clone(),
            model: model.id.clone(),
            kind: new.kind,
            at,
            time: format_ts(at),
            failure_mode: new.failure_mode,
            note: new.note,
            by: new.by,
            source: new.source,
        };
        let rul = self.rul.clone();
        let event = tokio::task::spawn_blocking(move || rul.book.lock().record(event))
            .await
            .map_err(|_| EngineError::ShuttingDown)??;
        self.rul.remove_twin(&event.twin);
        tracing::info!(twin = %event.twin, id = %event.id, kind = ?event.kind, "maintenance recorded");
        let now = rul::wall_now_ns();
        if event.kind == rul::MaintenanceKind::Failure {
            // The failure settles the twin's open advice: right if it named the failure's
            // mode (a labelled case for later advice), otherwise something else happened.
            let active = self.advice(&AdviceQuery {
                twin: Some(event.twin.clone()),
                states: vec![AdviceState::Open, AdviceState::Scheduled],
                limit: usize::MAX,
            });
            for a in active {
                let named = event.failure_mode.as_deref() == Some(a.failure_mode.as_str());
                let outcome = if named {
                    Outcome::Confirmed
                } else {
                    Outcome::Other
                };
                let mode = event.failure_mode.as_deref().unwrap_or("unknown mode");
                let op = AdviceOp::Done {
                    id: a.id.clone(),
                    outcome,
                    by: event.by.clone(),
                    note: Some(format!("the asset failed ({mode}; {})", event.id)),
                    now,
                };
                match self.advice_op(op).await {
                    Ok(_) | Err(EngineError::AdviceConflict(_)) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, advice = %a.id, "advice not closed after a failure")
                    }
                }
            }
        }
        let note = format!("{:?} recorded ({})", event.kind, event.id).to_lowercase();
        self.clear_twin_alarm(&event.twin, &event.by, note, now)
            .await;
        if event.kind == rul::MaintenanceKind::Failure {
            let rul = self.rul.clone();
            let (store, model_id) = (self.store.clone(), model.id.clone());
            let catalog = self.catalog.read().clone();
            tokio::spawn(async move {
                match fit_rul(rul, store, catalog, model_id.clone(), false).await {
                    Ok(_) | Err(EngineError::NotEnoughHistory(_)) => {}
                    Err(e) => tracing::warn!(model = %model_id, error = %e, "RUL fit failed"),
                }
            });
        }
        Ok(event)
    }

    /// Recorded maintenance events, oldest first.
    pub fn maintenance(&self, twin: Option<&str>, model: Option<&str>) -> Vec<MaintenanceEvent> {
        self.rul.book.lock().list(twin, model)
    }

    /// Fits the model's remaining-life model now from every recorded failure (409 when
    /// fewer than the minimum have history before them).
    pub async fn fit_rul(&self, model: &str) -> Result<RulModelInfo, EngineError> {
        let catalog = self.catalog();
        let m = catalog
            .model(model)
            .ok_or_else(|| EngineError::Model(ModelError::ModelNotFound(model.to_string())))?
            .clone();
        fit_rul(
            self.rul.clone(),
            self.store.clone(),
            catalog,
            model.to_string(),
            true,
        )
        .await?;
        Ok(self.rul.info(&m))
    }

    /// The model's remaining-life model: fitted or not, on which runs, every fit's error.
    pub fn rul_model(&self, model: &str) -> Result<RulModelInfo, EngineError> {
        let catalog = self.catalog();
        let m = catalog
            .model(model)
            .ok_or_else(|| EngineError::Model(ModelError::ModelNotFound(model.to_string())))?;
        Ok(self.rul.info(m))
    }

    /// A twin's remaining useful life now.
    pub async fn twin_rul(&self, twin: &str) -> Result<TwinRul, EngineError> {
        let (rul, store, catalog, twin) = (
            self.rul.clone(),
            self.store.clone(),
            self.catalog(),
            twin.to_string(),
        );
        tokio::task::spawn_blocking(move || rul.estimate(&store, &catalog, &twin))
            .await
            .map_err(|_| EngineError::ShuttingDown)?
    }

    /// Every twin's remaining useful life (of one model, or all; twins of models without
    /// numeric outputs left out), estimated ones first, shortest first.
    pub async fn fleet_rul(&self, model: Option<&str>) -> Result<Vec<TwinRul>, EngineError> {
        let catalog = self.catalog();
        if let Some(m) = model {
            if catalog.model(m).is_none() {
                return Err(EngineError::Model(ModelError::ModelNotFound(m.to_string())));
            }
        }
        let (rul, store, model) = (
            self.rul.clone(),
            self.store.clone(),
            model.map(str::to_string),
        );
        tokio::task::spawn_blocking(move || {
            // Twins whose model has no numeric output (sites, lines, rooms) have no life to
            // estimate and are left out.
            let wears = |model: &str| {
                catalog.model(model).is_some_and(|m| {
                    !doppel_analytics::FleetLayout::for_model(m)
                        .sensors
                        .is_empty()
                })
            };
            let mut out: Vec<TwinRul> = catalog
                .twins()
                .filter(|t| model.as_ref().is_none_or(|m| &t.model == m))
                .filter(|t| wears(&t.model))
                .filter_map(|t| rul.estimate(&store, &catalog, &t.id).ok())
                .collect();
            out.sort_by(|a, b| {
                let key = |r: &TwinRul| r.rul_h.unwrap_or(f64::INFINITY);
                key(a).total_cmp(&key(b)).then_with(|| a.twin.cmp(&b.twin))
            });
            out
        })
        .await
        .map_err(|_| EngineError::ShuttingDown)
    }

    /// A forecast of one numeric signal of a twin from its history, with when it crosses
    /// the signal's declared limits.
    pub async fn forecast(
        &self,
        twin: &str,
        signal: &str,
        spec: crate::ForecastSpec,
    ) -> Result<crate::SignalForecast, EngineError> {
        let (store, catalog) = (self.store.clone(), self.catalog());
        let (twin, signal) = (twin.to_string(), signal.to_string());
        tokio::task::spawn_blocking(move || {
            crate::forecast::signal_forecast(&store, &catalog, &twin, &signal, spec)
        })
        .await
        .map_err(|_| EngineError::ShuttingDown)?
    }

    /// One retention pass now (it also runs every `EngineConfig::retention_every`): for each
    /// twin whose model has a retention, forgets the points of each series older than its
    /// period before the twin's newest reading. Returns the number of series cut.
    pub async fn enforce_retention(&self) -> Result<u64, EngineError> {
        if self.closing.load(Ordering::Acquire) {
            return Err(EngineError::ShuttingDown);
        }
        retention_pass(self.catalog(), self.store.clone(), self.metrics.clone()).await
    }

    /// Stops accepting input and closes the store after its last group commit. Every
    /// acknowledged reading is already durable; this makes the WAL end cleanly.
    pub async fn shutdown(&self) -> Result<(), EngineError> {
        self.closing.store(true, Ordering::Release);
        for tx in &self.shards {
            let (done, rx) = oneshot::channel();
            if tx.send(ShardCmd::Save { done }).await.is_ok() {
                if let Ok(Err(e)) = rx.await {
                    tracing::warn!(error = %e, "detector state not saved");
                }
            }
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.close())
            .await
            .map_err(|_| EngineError::ShuttingDown)??;
        tracing::info!("engine closed");
        Ok(())
    }
}

/// Fits `model`'s remaining-life model on a blocking thread (one fit at a time), then
/// refreshes the estimates of its twins. Unless `force`d, a model already fitted on every
/// recorded failure is kept (failures recorded in a burst queue one fit, not one each).
async fn fit_rul(
    rul: Arc<Rul>,
    store: Arc<Store>,
    catalog: Arc<Catalog>,
    model: String,
    force: bool,
) -> Result<(), EngineError> {
    let _one = rul.fitting.lock().await;
    let m = catalog
        .model(&model)
        .ok_or_else(|| EngineError::Model(ModelError::ModelNotFound(model.clone())))?
        .clone();
    let r = rul.clone();
    tokio::task::spawn_blocking(move || {
        let events = r.book.lock().list(None, Some(&m.id));
        let previous = r.model(&m.id);
        if !force && previous.as_ref().is_some_and(|p| p.failures == rul::failures_of(&events, &m.id)) {
            return Ok(());
        }
        let seed = doppel_analytics::RulConfig::default().seed;
        let fitted = rul::fit(&store, &m, &events, previous.as_deref(), seed)?;
        let last = fitted.fits.last().cloned();
        r.put(fitted)?;
        if let Some(f) = last {
            tracing::info!(model = %m.id, runs = f.runs, cv_rmse_h = f.cv_rmse_h, secs = f.train_secs, "RUL model fitted");
        }
        for t in catalog.twins().filter(|t| t.model == m.id) {
            let _ = r.estimate(&store, &catalog, &t.id);
        }
        Ok::<_, EngineError>(())
    })
    .await
    .map_err(|_| EngineError::ShuttingDown)?
}

/// Every `every` (the first time at once), runs `pass` with the engine, until the engine
/// is dropped or closing. The pass gets what it needs from the engine and drops it before
/// its first await, so the task never keeps the engine alive.
fn spawn_periodic<F, Fut>(engine: std::sync::Weak<Engine>, every: std::time::Duration, pass: F)
where
    F: Fn(Arc<Engine>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(std::time::Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(e) = engine.upgrade() else { return };
            if e.closing.load(Ordering::Acquire) {
                return;
            }
            pass(e).await;
        }
    });
}

/// Every `every`, re-estimates the remaining life of each twin whose model has a fitted
/// RUL model (cached per twin-hour, so only twins with a new hour are recomputed); the
/// estimates go to the board the advice trackers read.
fn spawn_rul_refresh(engine: std::sync::Weak<Engine>, every: std::time::Duration) {
    spawn_periodic(engine, every, |e| {
        let (rul, store, catalog) = (e.rul.clone(), e.store.clone(), e.catalog());
        drop(e);
        async move {
            let _ = tokio::task::spawn_blocking(move || {
                for t in catalog.twins() {
                    if rul.model(&t.model).is_some() {
                        let _ = rul.estimate(&store, &catalog, &t.id);
                    }
                }
            })
            .await;
        }
    });
}

/// One retention pass on a blocking thread, counted in `doppel_retention_cuts_total`.
async fn retention_pass(
    catalog: Arc<Catalog>,
    store: Arc<Store>,
    metrics: Metrics,
) -> Result<u64, EngineError> {
    let pass = tokio::task::spawn_blocking(move || {
        retention::enforce(&catalog, &store, rul::wall_now_ns())
    })
    .await
    .map_err(|_| EngineError::ShuttingDown)??;
    metrics.retention_cuts.inc_by(pass.cuts);
    if pass.cuts > 0 {
        tracing::info!(twins = pass.twins, series = pass.cuts, "retention applied");
    }
    Ok(pass.cuts)
}

/// Every `every` (the first time at once), runs a retention pass.
fn spawn_retention(engine: std::sync::Weak<Engine>, every: std::time::Duration) {
    spawn_periodic(engine, every, |e| {
        let (catalog, store, metrics) = (e.catalog(), e.store.clone(), e.metrics.clone());
        drop(e);
        async move {
            if let Err(err) = retention_pass(catalog, store, metrics).await {
                tracing::warn!(error = %err, "retention pass failed");
            }
        }
    });
}
