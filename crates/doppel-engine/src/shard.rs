//! Twin shards. Each twin's live state has exactly one owner: the shard task chosen by hashing
//! the twin id. A shard applies readings in the order it receives them, keeps per signal the
//! value with the newest timestamp (a late reading never moves state backwards), and publishes
//! events. No lock guards twin state: the shard's mailbox (a bounded channel) is the only way
//! in, and its bound is the back-pressure.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use doppel_model::{Catalog, Timestamp, ValidatedReading, Value};
use doppel_store::{Row, Store};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::advice::AdviceBook;
use crate::advice_service::AdviceMsg;
use crate::alarm_service::AlarmInput;
use crate::detect::{self, Detectors, TwinHealth, SCORE_SIGNAL};
use crate::{EngineError, Event, Metrics};

/// Latest value of each signal of one twin.
pub(crate) type TwinLive = HashMap<Arc<str>, (Timestamp, Value)>;

/// How often a shard saves its detectors when they have learned something new.
const SAVE_EVERY: Duration = Duration::from_secs(60);

pub(crate) enum ShardCmd {
    /// Apply readings (already durable); answers how many were late.
    Apply {
        readings: Vec<ValidatedReading>,
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
}

pub(crate) fn spawn(
    capacity: usize,
    ctx: ShardCtx,
) -> (mpsc::Sender<ShardCmd>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(capacity);
    let handle = tokio::spawn(run(rx, ctx));
    (tx, handle)
}

async fn run(mut rx: mpsc::Receiver<ShardCmd>, mut ctx: ShardCtx) {
    let mut twins: HashMap<Arc<str>, TwinLive> = HashMap::new();
    let score_signal: Arc<str> = Arc::from(SCORE_SIGNAL);
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
            ShardCmd::Apply {
                readings,
                catalog,
                done,
            } => {
                let mut late_count = 0;
                let mut scores = Vec::new();
                let mut alarm_inputs = Vec::new();
                let mut advice_msgs = Vec::new();
                for r in readings {
                    let live = twins.entry(r.twin.clone()).or_default();
                    let late = apply(live, r.ts, &r.values);
                    if late {
                        late_count += 1;
                    }
                    if let Some(dets) = ctx.detectors.as_mut() {
                        if let Some((was, score)) = dets.observe(&catalog, &r) {
                            learned = true;
                            let events = dets.advise(&catalog, &r, &score, |model| {
                                ctx.advice_book.lock().past_cases(model)
                            });
                            if !events.is_empty() {
                                advice_msgs.push(AdviceMsg::Events {
                                    twin: r.twin.clone(),
                                    model: r.model.clone(),
                                    events,
                                });
                            }
                            if !score.warming_up {
                                // Three decimals: enough for a 0..1 score, and exact-decimal
                                // compression stores it in about a byte.
                                let v = (score.total * 1000.0).round() / 1000.0;
                                scores.push(Row {
                                    twin: r.twin.clone(),
                                    signal: score_signal.clone(),
                                    ts: r.ts,
                                    value: Value::Float(v),
                                });
                            }
                            if was || score.is_anomaly {
                                alarm_inputs.push(AlarmInput::Score {
                                    twin: r.twin.clone(),
                                    model: r.model.clone(),
                                    was_anomaly: was,
                                    score,
                                });
                            }
                        }
                    }
                    if ctx.bus.receiver_count() > 0 {
                        let values: BTreeMap<_, _> = r.values.into_iter().collect();
                        // Sending fails only when nobody listens, which is fine.
                        let _ = ctx
                            .bus
                            .send(Arc::new(Event::new(r.twin, r.model, r.ts, values, late)));
                    }
                }
                ctx.metrics.late_readings.inc_by(late_count as u64);
                let _ = done.send(late_count);
                if !scores.is_empty() {
                    ctx.metrics.readings_scored.inc_by(scores.len() as u64);
                    let metrics = ctx.metrics.clone();
                    ctx.store.write_with(
                        scores,
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
            ShardCmd::Seed {
                twin,
                signal,
                ts,
                value,
            } => {
                let live = twins.entry(twin).or_default();
                apply(live, ts, &[(signal, value)]);
            }
            ShardCmd::Get { twin, reply } => {
                let health = ctx
                    .detectors
                    .as_ref()
                    .and_then(|d| d.twins.get(&twin))
                    .map(|t| t.health());
                let _ = reply.send((twins.get(&twin).cloned(), health));
            }
            ShardCmd::Remove { twin } => {
                twins.remove(&twin);
                if let Some(d) = ctx.detectors.as_mut() {
                    d.twins.remove(&twin);
                    learned = true;
                }
            }
            ShardCmd::Feedback { twin, false_alarm } => {
                if let Some(t) = ctx.detectors.as_mut().and_then(|d| d.twins.get_mut(&twin)) {
                    t.det.feedback(false_alarm);
                    learned = true;
                }
            }
            ShardCmd::ResetAlarm { twin } => {
                if let Some(t) = ctx.detectors.as_mut().and_then(|d| d.twins.get_mut(&twin)) {
                    t.det.reset_alarm();
                    learned = true;
                }
            }
            ShardCmd::DismissAdvice { twin, failure_mode } => {
                let dismissed = ctx
                    .detectors
                    .as_mut()
                    .is_some_and(|d| d.dismiss_advice(&twin, &failure_mode));
                // Saved at once (operator actions are rare): a crash must not bring back, as
                // open in the tracker, advice the book already has as done.
                if dismissed {
                    if let Err(e) = save(&ctx).await {
                        tracing::warn!(error = %e, "saving detector state failed; retried later");
                        learned = true;
                    }
                } else if ctx.detectors.is_some() {
                    // The hold-off alone is saved with the next periodic save.
                    learned = true;
                }
            }
            ShardCmd::Save { done } => {
                let _ = done.send(save(&ctx).await);
                learned = false;
            }
        }
    }
}

/// Hands a score to the alarm service. The start and end of an anomaly always get through
/// (waiting if needed); updates while it lasts are dropped (counted) when the service is busy.
async fn send_alarm_input(ctx: &ShardCtx, input: AlarmInput) {
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

async fn save(ctx: &ShardCtx) -> Result<(), EngineError> {
    let Some(d) = ctx.detectors.as_ref() else {
        return Ok(());
    };
    // Encoded here (the shard owns the detectors), written off the runtime's threads.
    let bytes = detect::encode(&d.twins, &ctx.state_path)?;
    let path = ctx.state_path.clone();
    tokio::task::spawn_blocking(move || detect::write(&path, &bytes))
        .await
        .map_err(|_| EngineError::ShuttingDown)?
}

/// Applies one reading; returns true when no value advanced the state (a late reading).
fn apply(live: &mut TwinLive, ts: Timestamp, values: &[(Arc<str>, Value)]) -> bool {
    let mut advanced = false;
    for (signal, v) in values {
        match live.get_mut(signal) {
            Some(cur) if cur.0 > ts => {}
            Some(cur) => {
                *cur = (ts, v.clone());
                advanced = true;
            }
            None => {
                live.insert(signal.clone(), (ts, v.clone()));
                advanced = true;
            }
        }
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
        fn state_is_order_independent(mut pts in proptest::collection::vec((0i64..50, 0u8..3, -100i64..100), 1..40)) {
            let sig = |i: u8| -> Arc<str> { Arc::from(format!("s{i}")) };
            let mut a = TwinLive::new();
            for (ts, s, v) in &pts { apply(&mut a, *ts, &[(sig(*s), Value::Int(*v))]); }
            // Expected: per signal, the max ts; among equal ts the last arrival wins.
            let mut expected: HashMap<Arc<str>, (i64, Value)> = HashMap::new();
            for (ts, s, v) in &pts {
                let e = expected.entry(sig(*s)).or_insert((*ts, Value::Int(*v)));
                if *ts >= e.0 { *e = (*ts, Value::Int(*v)); }
            }
            prop_assert_eq!(&a, &expected);
            pts.sort_by_key(|p| p.0);
            let maxes: HashMap<_, _> = expected.iter().map(|(k, v)| (k.clone(), v.0)).collect();
            for (k, (ts, _)) in &a { prop_assert_eq!(maxes[k], *ts); }
        }
    }
}
