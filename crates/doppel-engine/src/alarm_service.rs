//! The alarm service: one task owns the [`AlarmBook`]'s changes and its log. Shards send it
//! their twins' scores while an anomaly starts, lasts or ends; operators' actions come from
//! the API. Every change is appended to the log (fsync) before it is published on the live
//! bus and before the operator's request is answered.
//!
//! Readers (the API listing alarms) lock the book briefly; only this task writes to it.

use std::sync::Arc;

use doppel_analytics::Score;
use doppel_model::Timestamp;
use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::alarms::{Alarm, AlarmBook, AlarmChange, AlarmError, AlarmLog, AlarmState, Feedback};
use crate::{EngineError, Event, Metrics};

/// What the service is asked to do.
#[derive(Debug)]
pub(crate) enum AlarmInput {
    /// A twin's scored reading while it was or became anomalous.
    Score {
        twin: Arc<str>,
        model: Arc<str>,
        was_anomaly: bool,
        score: Score,
    },
    Operator {
        op: OperatorOp,
        reply: oneshot::Sender<Result<Alarm, EngineError>>,
    },
    RemoveTwin(String),
    /// Answered once everything sent before it is applied (a barrier).
    Flush(oneshot::Sender<()>),
}

/// An operator's action on one alarm.
#[derive(Debug)]
pub(crate) enum OperatorOp {
    Acknowledge {
        id: String,
        by: String,
        note: Option<String>,
        now: Timestamp,
    },
    Shelve {
        id: String,
        until: Timestamp,
        by: String,
        note: Option<String>,
        now: Timestamp,
    },
    Unshelve {
        id: String,
        by: String,
        now: Timestamp,
    },
    Clear {
        id: String,
        by: String,
        note: Option<String>,
        now: Timestamp,
    },
    Feedback {
        id: String,
        feedback: Feedback,
        now: Timestamp,
    },
}

pub(crate) fn spawn(
    book: Arc<Mutex<AlarmBook>>,
    log: AlarmLog,
    bus: broadcast::Sender<Arc<Event>>,
    metrics: Metrics,
) -> (mpsc::Sender<AlarmInput>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(4096);
    let handle = tokio::spawn(run(rx, book, log, bus, metrics));
    (tx, handle)
}

async fn run(
    mut rx: mpsc::Receiver<AlarmInput>,
    book: Arc<Mutex<AlarmBook>>,
    log: AlarmLog,
    bus: broadcast::Sender<Arc<Event>>,
    metrics: Metrics,
) {
    let log = Arc::new(Mutex::new(log));
    refresh_gauges(&book, &metrics);
    while let Some(input) = rx.recv().await {
        match input {
            AlarmInput::Score {
                twin,
                model,
                was_anomaly,
                score,
            } => {
                let changed = book.lock().on_score(&twin, &model, was_anomaly, &score);
                if let Some((alarm, change)) = changed {
                    // A detector's change that cannot be persisted is still published: the
                    // condition is real; the log error is logged and counted.
                    if let Err(e) = persist(&log, &book, &alarm).await {
                        tracing::error!(error = %e, alarm = %alarm.id, "alarm log append failed");
                        metrics.alarm_log_errors.inc();
                    }
                    publish(&bus, &metrics, alarm, change, score.ts);
                    refresh_gauges(&book, &metrics);
                }
            }
            AlarmInput::Operator { op, reply } => {
                let res = apply_op(&book, op);
                let res = match res {
                    Ok((alarm, change, ts)) => match persist(&log, &book, &alarm).await {
                        Ok(()) => {
                            publish(&bus, &metrics, alarm.clone(), change, ts);
                            refresh_gauges(&book, &metrics);
                            Ok(alarm)
                        }
                        Err(e) => {
                            metrics.alarm_log_errors.inc();
                            Err(e)
                        }
                    },
                    Err(e) => Err(e),
                };
                let _ = reply.send(res);
            }
            AlarmInput::Flush(done) => {
                let _ = done.send(());
            }
            AlarmInput::RemoveTwin(twin) => {
                book.lock().remove_twin(&twin);
                let (log, b) = (log.clone(), book.clone());
                let res = tokio::task::spawn_blocking(move || {
                    let b = b.lock();
                    log.lock().rewrite(&b)
                })
                .await;
                if let Ok(Err(e)) = res {
                    tracing::error!(error = %e, "alarm log rewrite failed");
                }
                refresh_gauges(&book, &metrics);
            }
        }
    }
}

fn apply_op(
    book: &Mutex<AlarmBook>,
    op: OperatorOp,
) -> Result<(Alarm, AlarmChange, Timestamp), EngineError> {
    let mut b = book.lock();
    let (res, now) = match op {
        OperatorOp::Acknowledge { id, by, note, now } => {
            (b.acknowledge(&id, &by, note.as_deref(), now), now)
        }
        OperatorOp::Shelve {
            id,
            until,
            by,
            note,
            now,
        } => (b.shelve(&id, until, &by, note.as_deref(), now), now),
        OperatorOp::Unshelve { id, by, now } => (b.unshelve(&id, &by, now), now),
        OperatorOp::Clear { id, by, note, now } => (b.clear(&id, &by, note.as_deref(), now), now),
        OperatorOp::Feedback { id, feedback, now } => (b.feedback(&id, feedback, now), now),
    };
    match res {
        Ok((a, c)) => Ok((a, c, now)),
        Err(AlarmError::NotFound(id)) => Err(EngineError::AlarmNotFound(id)),
        Err(e @ AlarmError::Conflict { .. }) => Err(EngineError::AlarmConflict(e.to_string())),
    }
}

async fn persist(
    log: &Arc<Mutex<AlarmLog>>,
    book: &Arc<Mutex<AlarmBook>>,
    alarm: &Alarm,
) -> Result<(), EngineError> {
    let (log, book, alarm) = (log.clone(), book.clone(), alarm.clone());
    tokio::task::spawn_blocking(move || {
        let book = book.lock();
        log.lock().append(&alarm, &book)
    })
    .await
    .map_err(|_| EngineError::ShuttingDown)?
}

fn publish(
    bus: &broadcast::Sender<Arc<Event>>,
    metrics: &Metrics,
    alarm: Alarm,
    change: AlarmChange,
    ts: Timestamp,
) {
    metrics
        .alarm_changes
        .with_label_values(&[change.as_str()])
        .inc();
    tracing::info!(alarm = %alarm.id, twin = %alarm.twin, change = change.as_str(), severity = ?alarm.severity, summary = %alarm.summary, "alarm");
    let _ = bus.send(Arc::new(Event::alarm(Arc::new(alarm), change, ts)));
}

fn refresh_gauges(book: &Mutex<AlarmBook>, metrics: &Metrics) {
    let counts = book.lock().counts();
    for state in AlarmState::ALL {
        let n = counts.get(&state).copied().unwrap_or(0);
        metrics
            .alarms
            .with_label_values(&[state.as_str()])
            .set(n as i64);
    }
}
