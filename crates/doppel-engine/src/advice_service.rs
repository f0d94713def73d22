//! The advice service: one task owns the [`AdviceBook`]'s changes and its log. Shards send it
//! what their twins' advice trackers open, update and withdraw; operators' actions (schedule,
//! done) come from the API. Every change is appended to the log (fsync) before it is
//! published on the live bus and before the operator's request is answered.
//!
//! Readers (the API, a shard looking up past cases) lock the book briefly; only this task
//! writes to it.

use std::sync::Arc;

use doppel_analytics::{AdviceEvent, PastCase};
use doppel_model::Timestamp;
use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::advice::{
    AdviceBook, AdviceChange, AdviceError, AdviceItem, AdviceLog, AdviceState, Outcome,
};
use crate::{EngineError, Event, Metrics};

/// What the service is asked to do.
#[derive(Debug)]
pub(crate) enum AdviceMsg {
    /// A twin's tracker changed its advice at one evaluation.
    Events {
        twin: Arc<str>,
        model: Arc<str>,
        events: Vec<AdviceEvent>,
    },
    Operator {
        op: AdviceOp,
        reply: oneshot::Sender<Result<AdviceItem, EngineError>>,
    },
    RemoveTwin(String),
    /// Answered once everything sent before it is applied (a barrier).
    Flush(oneshot::Sender<()>),
    /// A labelled case of a model from elsewhere (an alarm confirmed with its fault kind).
    Case {
        model: String,
        case: PastCase,
    },
}

/// An operator's action on one advice item.
#[derive(Debug)]
pub(crate) enum AdviceOp {
    Schedule {
        id: String,
        for_ts: Timestamp,
        by: String,
        note: Option<String>,
        now: Timestamp,
    },
    Done {
        id: String,
        outcome: Outcome,
        by: String,
        note: Option<String>,
        now: Timestamp,
    },
}

pub(crate) fn spawn(
    book: Arc<Mutex<AdviceBook>>,
    log: AdviceLog,
    bus: broadcast::Sender<Arc<Event>>,
    metrics: Metrics,
) -> (mpsc::Sender<AdviceMsg>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(1024);
    let handle = tokio::spawn(run(rx, book, log, bus, metrics));
    (tx, handle)
}

async fn run(
    mut rx: mpsc::Receiver<AdviceMsg>,
    book: Arc<Mutex<AdviceBook>>,
    log: AdviceLog,
    bus: broadcast::Sender<Arc<Event>>,
    metrics: Metrics,
) {
    let log = Arc::new(Mutex::new(log));
    refresh_gauges(&book, &metrics);
    while let Some(msg) = rx.recv().await {
        match msg {
            AdviceMsg::Events {
                twin,
                model,
                events,
            } => {
                for e in events {
                    let ts = match &e {
                        AdviceEvent::Opened { advice } | AdviceEvent::Updated { advice } => {
                            advice.updated_at
                        }
                        AdviceEvent::Withdrawn { at, .. } => *at,
                    };
                    let changed = book.lock().on_event(&twin, &model, &e);
                    let Some((item, change)) = changed else {
                        continue;
                    };
                    // The tracker's change is real even when it cannot be persisted: it is
                    // published anyway; the log error is logged and counted.
                    if let Err(err) = persist(&log, &book, &item).await {
                        tracing::error!(error = %err, advice = %item.id, "advice log append failed");
                        metrics.advice_log_errors.inc();
                    }
                    publish(&bus, &metrics, item, change, ts);
                }
                refresh_gauges(&book, &metrics);
            }
            AdviceMsg::Operator { op, reply } => {
                let res = match apply_op(&book, op) {
                    Ok((item, change, ts)) => match persist(&log, &book, &item).await {
                        Ok(()) => {
                            publish(&bus, &metrics, item.clone(), change, ts);
                            refresh_gauges(&book, &metrics);
                            Ok(item)
                        }
                        Err(e) => {
                            metrics.advice_log_errors.inc();
                            Err(e)
                        }
                    },
                    Err(e) => Err(e),
                };
                let _ = reply.send(res);
            }
            AdviceMsg::Case { model, case } => book.lock().add_case(&model, case),
            AdviceMsg::Flush(done) => {
                let _ = done.send(());
            }
            AdviceMsg::RemoveTwin(twin) => {
                book.lock().remove_twin(&twin);
                let (log, b) = (log.clone(), book.clone());
                let res = tokio::task::spawn_blocking(move || {
                    let b = b.lock();
                    log.lock().rewrite(&b)
                })
                .await;
                if let Ok(Err(e)) = res {
                    tracing::error!(error = %e, "advice log rewrite failed");
                }
                refresh_gauges(&book, &metrics);
            }
        }
    }
}

fn apply_op(
    book: &Mutex<AdviceBook>,
    op: AdviceOp,
) -> Result<(AdviceItem, AdviceChange, Timestamp), EngineError> {
    let mut b = book.lock();
    let (res, now) = match op {
        AdviceOp::Schedule {
            id,
            for_ts,
            by,
            note,
            now,
        } => (b.schedule(&id, for_ts, &by, note.as_deref(), now), now),
        AdviceOp::Done {
            id,
            outcome,
            by,
            note,
            now,
        } => (b.done(&id, outcome, &by, note.as_deref(), now), now),
    };
    match res {
        Ok((a, c)) => Ok((a, c, now)),
        Err(AdviceError::NotFound(id)) => Err(EngineError::AdviceNotFound(id)),
        Err(e @ AdviceError::Conflict { .. }) => Err(EngineError::AdviceConflict(e.to_string())),
    }
}

async fn persist(
    log: &Arc<Mutex<AdviceLog>>,
    book: &Arc<Mutex<AdviceBook>>,
    item: &AdviceItem,
) -> Result<(), EngineError> {
    let (log, book, item) = (log.clone(), book.clone(), item.clone());
    tokio::task::spawn_blocking(move || {
        // The log first: the book's lock is only needed for its size.
        let mut log = log.lock();
        let book = book.lock();
        log.append(&item, &book)
    })
    .await
    .map_err(|_| EngineError::ShuttingDown)?
}

fn publish(
    bus: &broadcast::Sender<Arc<Event>>,
    metrics: &Metrics,
    item: AdviceItem,
    change: AdviceChange,
    ts: Timestamp,
) {
    metrics
        .advice_changes
        .with_label_values(&[change.as_str()])
        .inc();
    tracing::info!(advice = %item.id, twin = %item.twin, change = change.as_str(), failure_mode = %item.failure_mode, due_in_h = item.recommendation.due_in_h, "advice");
    let _ = bus.send(Arc::new(Event::advice(Arc::new(item), change, ts)));
}

fn refresh_gauges(book: &Mutex<AdviceBook>, metrics: &Metrics) {
    let counts = book.lock().counts();
    for state in AdviceState::ALL {
        let n = counts.get(&state).copied().unwrap_or(0);
        metrics
            .advice
            .with_label_values(&[state.as_str()])
            .set(n as i64);
    }
}
