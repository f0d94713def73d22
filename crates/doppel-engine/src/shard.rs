//! Twin shards. Each twin's live state has exactly one owner: the shard task chosen by hashing
//! the twin id. A shard applies readings in the order it receives them, keeps per signal the
//! value with the newest timestamp (a late reading never moves state backwards), and publishes
//! events. No lock guards twin state: the shard's mailbox (a bounded channel) is the only way
//! in, and its bound is the back-pressure. Each shard's twins' detectors are owned by the
//! shard's detector task, which the shard feeds, in its own order, through a second bounded
//! channel: applied readings to score, and the operator's commands for the detectors.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use doppel_model::{Catalog, SignalValues, Timestamp, ValidatedBatch, ValidatedReading, Value};
use doppel_store::Store;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::advice::AdviceBook;
use crate::advice_service::AdviceMsg;
use crate::alarm_service::AlarmInput;
use crate::detect::{self, Detectors, TwinHealth, SCORE_SIGNAL};
use crate::live::ReadingWatchers;
use crate::{EngineError, Event, Metrics};

/// Latest value of each signal of one twin.
/// A twin's newest value per signal. A vector sorted by name, not a hash map: a fleet keeps
/// one per twin, a twin has a handful of signals, and a map's buckets cost about twice the
/// entries (560 B for ten signals instead of about 1 KB).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TwinLive(Vec<(Arc<str>, Timestamp, Value)>);

impl TwinLive {
    fn find(&self, signal: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|e| (*e.0).cmp(signal))
    }

    /// The newest time and value of `signal`.
    pub(crate) fn get(&self, signal: &str) -> Option<(Timestamp, &Value)> {
        let i = self.find(signal).ok()?;
        self.0.get(i).map(|e| (e.1, &e.2))
    }

    /// Sets `signal` to `(ts, value)` unless it holds a newer time; whether it did.
    fn advance(&mut self, signal: &Arc<str>, ts: Timestamp, value: &Value) -> bool {
        // Names arrive interned (`intake::Names`): the same pointer as the one kept here,
        // found by comparing pointers before any string.
        let at = match self.0.iter().position(|e| Arc::ptr_eq(&e.0, signal)) {
            Some(i) => Ok(i),
            None => self.find(signal),
        };
        match at {
            Ok(i) => match self.0.get_mut(i) {
                Some(e) if e.1 <= ts => {
                    e.1 = ts;
                    e.2 = value.clone();
                    true
                }
                _ => false,
            },
            Err(i) => {
                // A twin gains signals once, on its first readings: no spare room kept.
                self.0.reserve_exact(1);
                self.0.insert(i, (signal.clone(), ts, value.clone()));
                true
            }
        }
    }

    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = (&Arc<str>, Timestamp, &Value)> {
        self.0.iter().map(|e| (&e.0, e.1, &e.2))
    }
}

impl FromIterator<(Arc<str>, (Timestamp, Value))> for TwinLive {
    fn from_iter<I: IntoIterator<Item = (Arc<str>, (Timestamp, Value))>>(iter: I) -> Self {
        let mut live = TwinLive::default();
        for (signal, (ts, value)) in iter {
            live.advance(&signal, ts, &value);
        }
        live
    }
}

/// Commands a shard's detector task may have queued; bounds how far scoring lags behind
/// the acknowledged readings.
const DETECT_QUEUE: usize = 4;

/// How often a shard saves its detectors when they have learned something new.
const SAVE_EVERY: Duration = Duration::from_secs(60);

/// A shard's part of a durable batch: the batch, shared with the store's index thread and
/// the other shards (no reading is copied), and which of its readings are the shard's.
pub(crate) struct ShardPart {
    pub(crate) batch: Arc<ValidatedBatch>,
    /// Indexes into `batch.readings`, ascending.
    pub(crate) which: Vec<u32>,
}

impl ShardPart {
    pub(crate) fn iter(&self) -> impl Iterator<Item = &ValidatedReading> {
        self.which
            .iter()
            .filter_map(|&i| self.batch.readings.get(i as usize))
    }
}

pub(crate) enum ShardCmd {
    /// Apply readings (already durable); answers how many were late.
    Apply {
        readings: ShardPart,
        /// The catalog the readings were validated against (models for new detectors).
        catalog: Arc<Catalog>,
        done: oneshot::Sender<usize>,
    },
    /// Seed state at startup from the store's last points (never moves state backwards).
    Seed {
        twin: Arc<str>,
        signal: Arc<str>,
        ts: Timestamp,
        value: Value,
    },
    Get {
        twin: Arc<str>,
        reply: oneshot::Sender<(Option<TwinLive>, Option<TwinHealth>)>,
    },
    Remove {
        twin: Arc<str>,
    },
    /// Operator feedback on the twin's alarm, for its detector.
    Feedback {
        twin: Arc<str>,
        false_alarm: bool,
    },
    /// An operator cleared the twin's alarm: forget the detector's alarm decision.
    ResetAlarm {
        twin: Arc<str>,
    },
    /// Maintenance was done on the twin for `failure_mode`: its advice tracker holds the mode
    /// off for a while.
    DismissAdvice {
        twin: Arc<str>,
        failure_mode: String,
    },
    /// Save the detectors now (shutdown).
    Save {
        done: oneshot::Sender<Result<(), EngineError>>,
    },
}

/// Index of the shard owning `twin`. Stable within a process (SipHash with fixed keys).
pub(crate) fn shard_of(twin: &str, shards: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    twin.hash(&mut h);
    (h.finish() % shards.max(1) as u64) as usize
}

/// What a shard works with besides its mailbox.
pub(crate) struct ShardCtx {
    pub bus: broadcast::Sender<Arc<Event>>,
    /// Whether anyone subscribed to reading events.
    pub reading_watchers: ReadingWatchers,
    pub metrics: Metrics,
    pub store: Arc<Store>,
    pub alarms: mpsc::Sender<AlarmInput>,
    /// The advice service, and its book (read for the labelled past cases of a model).
    pub advice: mpsc::Sender<AdviceMsg>,
    pub advice_book: Arc<parking_lot::Mutex<AdviceBook>>,
    /// `None` when anomaly detection is off.
    pub detectors: Option<Detectors>,
    /// Where the detectors are saved.
    pub state_path: PathBuf,
    /// The alarm book's off-delay, and the twins of this shard with an alarm open at start.
    pub clear_after: Timestamp,
    pub open_alarms: Vec<Arc<str>>,
}

/// What the shard's detector task is asked to do, in the order the shard saw it.
enum DetectCmd {
    /// Score readings the shard has applied (in its order, so in each twin's time order).
    Observe {
        readings: ShardPart,
        catalog: Arc<Catalog>,
    },
    Health {
        twin: Arc<str>,
        reply: oneshot::Sender<Option<TwinHealth>>,
    },
    Remove {
        twin: Arc<str>,
    },
    Feedback {
        twin: Arc<str>,
        false_alarm: bool,
    },
    ResetAlarm {
        twin: Arc<str>,
    },
    DismissAdvice {
        twin: Arc<str>,
        failure_mode: String,
    },
    Save {
        done: oneshot::Sender<Result<(), EngineError>>,
    },
}

/// What a shard's detector task works with.
struct DetectCtx {
    detectors: Detectors,
    metrics: Metrics,
    store: Arc<Store>,
    alarms: mpsc::Sender<AlarmInput>,
    advice: mpsc::Sender<AdviceMsg>,
    advice_book: Arc<parking_lot::Mutex<AdviceBook>>,
    state_path: PathBuf,
    /// The alarm book's off-delay (`AlarmPolicy::clear_after`).
    clear_after: Timestamp,
    /// Twins whose alarm waits out the off-delay: the reading time from which their next
    /// normal score goes to the alarm service (which then clears it), or `None` for a twin
    /// with an alarm open at start, whose next normal score starts the delay.
    holds: HashMap<Arc<str>, Option<Timestamp>>,
}

pub(crate) fn spawn(
    capacity: usize,
    ctx: ShardCtx,
) -> (mpsc::Sender<ShardCmd>, tokio::task::JoinHandle<()>) {
    let ShardCtx {
        bus,
        reading_watchers,
        metrics,
        store,
        alarms,
        advice,
        advice_book,
        detectors,
        state_path,
        clear_after,
        open_alarms,
    } = ctx;
    // The detectors get their own task fed by a short bounded channel: a shard applies and
    // acknowledges the next batches while earlier ones are being scored, and a full channel
    // holds the shard back, so scoring lags the acks by at most `DETECT_QUEUE` commands.
    let detect = detectors.map(|detectors| {
        let (tx, rx) = mpsc::channel(DETECT_QUEUE);
        let dctx = DetectCtx {
            detectors,
            metrics: metrics.clone(),
            store,
            alarms,
            advice,
            advice_book,
            state_path,
            clear_after,
            holds: open_alarms.into_iter().map(|t| (t, None)).collect(),
        };
        tokio::spawn(run_detectors(rx, dctx));
        tx
    });
    let (tx, rx) = mpsc::channel(capacity);
    let handle = tokio::spawn(run(rx, bus, reading_watchers, metrics, detect));
    (tx, handle)
}

async fn run(
    mut rx: mpsc::Receiver<ShardCmd>,
    bus: broadcast::Sender<Arc<Event>>,
    reading_watchers: ReadingWatchers,
    metrics: Metrics,
    detect: Option<mpsc::Sender<DetectCmd>>,
) {
    let mut twins: HashMap<Arc<str>, TwinLive> = HashMap::new();
    // A send fails only once the detector task is gone (shutdown); nothing to do then.
    let forward = |cmd: DetectCmd| {
        let detect = detect.clone();
        async move {
            if let Some(d) = detect {
                let _ = d.send(cmd).await;
            }
        }
    };
    while let Some(cmd) = rx.recv().await {
        match cmd {
            ShardCmd::Apply {
                readings,
                catalog,
                done,
            } => {
                let mut late_count = 0;
                for r in readings.iter() {
                    let live = twins.entry(r.twin.clone()).or_default();
                    let late = apply(live, r.ts, r.values.iter());
                    if late {
                        late_count += 1;
                    }
                    if reading_watchers.any() {
                        let values: BTreeMap<_, _> = r
                            .values
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        // Sending fails only when nobody listens, which is fine.
                        let _ = bus.send(Arc::new(Event::new(
                            r.twin.clone(),
                            r.model.clone(),
                            r.ts,
                            values,
                            late,
                        )));
                    }
                }
                metrics.late_readings.inc_by(late_count as u64);
                let _ = done.send(late_count);
                forward(DetectCmd::Observe { readings, catalog }).await;
            }
            ShardCmd::Seed {
                twin,
                signal,
                ts,
                value,
            } => {
                let live = twins.entry(twin).or_default();
                apply(live, ts, [(&signal, &value)]);
            }
            ShardCmd::Get { twin, reply } => {
                let live = twins.get(&twin).cloned();
                // Asked through the detector task's queue, so the health includes every
                // reading this shard applied before.
                let health = match &detect {
                    None => None,
                    Some(d) => {
                        let (tx, rx) = oneshot::channel();
                        let asked = d.send(DetectCmd::Health { twin, reply: tx }).await;
                        match asked {
                            Ok(()) => rx.await.ok().flatten(),
                            Err(_) => None,
                        }
                    }
                };
                let _ = reply.send((live, health));
            }
            ShardCmd::Remove { twin } => {
                twins.remove(&twin);
                forward(DetectCmd::Remove { twin }).await;
            }
            ShardCmd::Feedback { twin, false_alarm } => {
                forward(DetectCmd::Feedback { twin, false_alarm }).await;
            }
            ShardCmd::ResetAlarm { twin } => {
                forward(DetectCmd::ResetAlarm { twin }).await;
            }
            ShardCmd::DismissAdvice { twin, failure_mode } => {
                forward(DetectCmd::DismissAdvice { twin, failure_mode }).await;
            }
            ShardCmd::Save { done } => match &detect {
                None => {
                    let _ = done.send(Ok(()));
                }
                Some(d) => {
                    if let Err(e) = d.send(DetectCmd::Save { done }).await {
                        if let DetectCmd::Save { done } = e.0 {
                            let _ = done.send(Err(EngineError::ShuttingDown));
                        }
                    }
                }
            },
        }
    }
}

/// A shard's detector task: scores what the shard applied, stores the scores as
/// [`SCORE_SIGNAL`], hands alarm edges to the alarm service, and saves the detectors every
/// [`SAVE_EVERY`] when they learned something.
/// Whether a twin's score goes to the alarm service, and as following which decision
/// (`was_anomaly`). Scores go while the twin is or just stopped being anomalous; when it
/// stopped, the alarm waits out the book's off-delay, so one normal score goes again once
/// the delay has passed (or, for an alarm open at start, at the first normal reading, as
/// the end of the condition).
fn alarm_gate(
    holds: &mut HashMap<Arc<str>, Option<Timestamp>>,
    clear_after: Timestamp,
    twin: &Arc<str>,
    was: bool,
    score: &doppel_analytics::Score,
) -> Option<bool> {
    if score.is_anomaly {
        if !holds.is_empty() {
            holds.remove(twin);
        }
        return Some(was);
    }
    if was {
        if clear_after > 0 {
            holds.insert(twin.clone(), Some(score.ts.saturating_add(clear_after)));
        }
        return Some(true);
    }
    match holds.get(twin)? {
        None => {
            holds.insert(twin.clone(), Some(score.ts.saturating_add(clear_after)));
            Some(true)
        }
        Some(until) if score.ts >= *until => {
            holds.remove(twin);
            Some(false)
        }
        Some(_) => None,
    }
}

async fn run_detectors(mut rx: mpsc::Receiver<DetectCmd>, mut ctx: DetectCtx) {
    // Every score names its signal from this one list.
    let score_names: Arc<[Arc<str>]> = Arc::new([Arc::from(SCORE_SIGNAL)]);
    let mut save_tick = tokio::time::interval(SAVE_EVERY);
    save_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    save_tick.tick().await;
    let mut learned = false;
    loop {
        let cmd = tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd) => cmd,
                None => break,
            },
            _ = save_tick.tick() => {
                if learned {
                    learned = false;
                    if let Err(e) = save(&ctx).await {
                        tracing::warn!(error = %e, "saving detector state failed; retried later");
                        learned = true;
                    }
                }
                continue;
            }
        };
        match cmd {
            DetectCmd::Observe { readings, catalog } => {
                let mut scores = Vec::new();
                let mut alarm_inputs = Vec::new();
                let mut advice_msgs = Vec::new();
                for r in readings.iter() {
                    if let Some((was, score)) = ctx.detectors.observe(&catalog, r) {
                        learned = true;
                        if !score.warming_up {
                            // Three decimals: enough for a 0..1 score, and exact-decimal
                            // compression stores it in about a byte.
                            let v = (score.total * 1000.0).round() / 1000.0;
                            scores.push(ValidatedReading {
                                twin: r.twin.clone(),
                                model: r.model.clone(),
                                ts: r.ts,
                                values: {
                                    let mut values =
                                        SignalValues::with_capacity(score_names.clone(), 1);
                                    values.push(0, Value::Float(v));
                                    values
                                },
                            });
                        }
                        if let Some(was_anomaly) =
                            alarm_gate(&mut ctx.holds, ctx.clear_after, &r.twin, was, score)
                        {
                            alarm_inputs.push(AlarmInput::Score {
                                twin: r.twin.clone(),
                                model: r.model.clone(),
                                was_anomaly,
                                score: score.clone(),
                            });
                        }
                        let book = &ctx.advice_book;
                        let events = ctx
                            .detectors
                            .advise(&catalog, r, |model| book.lock().past_cases(model));
                        if !events.is_empty() {
                            advice_msgs.push(AdviceMsg::Events {
                                twin: r.twin.clone(),
                                model: r.model.clone(),
                                events,
                            });
                        }
                    }
                }
                if !scores.is_empty() {
                    ctx.metrics.readings_scored.inc_by(scores.len() as u64);
                    let metrics = ctx.metrics.clone();
                    ctx.store.write_batch_with(
                        Arc::new(ValidatedBatch { readings: scores }),
                        Box::new(move |res| {
                            if let Err(e) = res {
                                tracing::warn!(error = %e, "anomaly scores not stored");
                                metrics
                                    .analytics_dropped
                                    .with_label_values(&["store"])
                                    .inc();
                            }
                        }),
                    );
                }
                for input in alarm_inputs {
                    send_alarm_input(&ctx, input).await;
                }
                // Advice changes are rare (a few per fault): they always get through.
                for msg in advice_msgs {
                    let _ = ctx.advice.send(msg).await;
                }
            }
            DetectCmd::Health { twin, reply } => {
                let _ = reply.send(ctx.detectors.twins.get(&twin).map(|t| t.health()));
            }
            DetectCmd::Remove { twin } => {
                ctx.detectors.twins.remove(&twin);
                ctx.holds.remove(&twin);
                learned = true;
            }
            DetectCmd::Feedback { twin, false_alarm } => {
                if let Some(t) = ctx.detectors.twins.get_mut(&twin) {
                    t.det.feedback(false_alarm);
                    learned = true;
                }
            }
            DetectCmd::ResetAlarm { twin } => {
                // The operator closed the alarm: no off-delay left to wait out.
                ctx.holds.remove(&twin);
                if let Some(t) = ctx.detectors.twins.get_mut(&twin) {
                    t.det.reset_alarm();
                    learned = true;
                }
            }
            DetectCmd::DismissAdvice { twin, failure_mode } => {
                let dismissed = ctx.detectors.dismiss_advice(&twin, &failure_mode);
                // Saved at once (operator actions are rare): a crash must not bring back, as
                // open in the tracker, advice the book already has as done.
                if dismissed {
                    if let Err(e) = save(&ctx).await {
                        tracing::warn!(error = %e, "saving detector state failed; retried later");
                        learned = true;
                    }
                } else {
                    // The hold-off alone is saved with the next periodic save.
                    learned = true;
                }
            }
            DetectCmd::Save { done } => {
                let _ = done.send(save(&ctx).await);
                learned = false;
            }
        }
    }
}

/// Hands a score to the alarm service. The start and end of an anomaly always get through
/// (waiting if needed); updates while it lasts are dropped (counted) when the service is busy.
async fn send_alarm_input(ctx: &DetectCtx, input: AlarmInput) {
    let edge = matches!(&input, AlarmInput::Score { was_anomaly, score, .. } if *was_anomaly != score.is_anomaly);
    if edge {
        let _ = ctx.alarms.send(input).await;
    } else if ctx.alarms.try_send(input).is_err() {
        ctx.metrics
            .analytics_dropped
            .with_label_values(&["alarm_busy"])
            .inc();
    }
}

async fn save(ctx: &DetectCtx) -> Result<(), EngineError> {
    // Encoded here (this task owns the detectors) a piece at a time, each written off the
    // runtime's threads as it comes: the whole snapshot is never in memory (mid warm-up it
    // is many times the learned state).
    let mut enc = detect::Encoder::new(ctx.detectors.twins.iter(), &ctx.state_path)?;
    let (tx, mut rx) = mpsc::channel::<Option<Vec<u8>>>(2);
    let path = ctx.state_path.clone();
    let writer = tokio::task::spawn_blocking(move || {
        detect::write_pieces(&path, std::iter::from_fn(|| rx.blocking_recv()))
    });
    let mut encoded = Ok(());
    loop {
        let piece = match enc.next_piece(detect::PIECE_BYTES) {
            Ok(piece) => piece,
            Err(e) => {
                encoded = Err(e);
                break;
            }
        };
        let last = piece.is_none();
        // A closed channel means the writer failed; its error is the answer.
        if tx.send(piece).await.is_err() || last {
            break;
        }
    }
    drop(tx);
    let written = writer.await.map_err(|_| EngineError::ShuttingDown)?;
    encoded.and(written)
}

/// Applies one reading; returns true when no value advanced the state (a late reading).
fn apply<'a>(
    live: &mut TwinLive,
    ts: Timestamp,
    values: impl IntoIterator<Item = (&'a Arc<str>, &'a Value)>,
) -> bool {
    let mut advanced = false;
    for (signal, v) in values {
        advanced |= live.advance(signal, ts, v);
    }
    !advanced
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the arrival order, the state ends at the newest value per signal.
        #[test]
        fn state_is_order_independent(pts in proptest::collection::vec((0i64..50, 0u8..3, -100i64..100), 1..40)) {
            let sig = |i: u8| -> Arc<str> { Arc::from(format!("s{i}")) };
            let mut a = TwinLive::default();
            // Interned names (the same pointer each time) and fresh copies, mixed.
            let interned: Vec<Arc<str>> = (0..3).map(sig).collect();
            for (ts, s, v) in &pts {
                let name = if ts % 2 == 0 { interned[usize::from(*s)].clone() } else { sig(*s) };
                apply(&mut a, *ts, [(&name, &Value::Int(*v))]);
            }
            // Expected: per signal, the max ts; among equal ts the last arrival wins.
            let mut expected: HashMap<Arc<str>, (i64, Value)> = HashMap::new();
            for (ts, s, v) in &pts {
                let e = expected.entry(sig(*s)).or_insert((*ts, Value::Int(*v)));
                if *ts >= e.0 { *e = (*ts, Value::Int(*v)); }
            }
            let got: HashMap<Arc<str>, (i64, Value)> =
                a.iter().map(|(k, ts, v)| (k.clone(), (ts, v.clone()))).collect();
            prop_assert_eq!(&got, &expected);
            prop_assert!(a.0.windows(2).all(|w| w[0].0 < w[1].0));
            prop_assert_eq!(a.0.len(), a.0.capacity());
        }
    }
}
