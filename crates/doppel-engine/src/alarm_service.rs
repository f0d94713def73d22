//! The alarm service: one task owns the [`AlarmBook`]'s changes and its log. Shards send it
//! their twins' scores while an anomaly starts, lasts or ends; operators' actions come from
//! the API. Every change is appended to the log (fsync) before it is published on the live
//! bus and before the operator's request is answered; the changes of every input already
//! queued (up to [`MAX_GROUP`]) share one write and one fsync (group commit).
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
    let handle = tokio::spawn(run(rx, book, Arc::new(Mutex::new(log)), bus, metrics));
    (tx, handle)
}

/// Most inputs the service takes at once; their changes share one write and one fsync.
const MAX_GROUP: usize = 256;

/// The outcome of one input of a group, told only once the group's changes are durable.
enum Outcome {
    /// A change of the book: published, and answered to the operator whose action it was.
    Change {
        /// Shared with the append and the event, so the version is not copied.
        alarm: Arc<Alarm>,
        change: AlarmChange,
        ts: Timestamp,
        reply: Option<oneshot::Sender<Result<Alarm, EngineError>>>,
    },
    /// An operator's action the book refused (it may rest on a change of the same group,
    /// e.g. "already acknowledged", so it waits for the group too).
    Refused {
        reply: oneshot::Sender<Result<Alarm, EngineError>>,
        error: EngineError,
    },
    /// A barrier: answered once every input before it is applied and told.
    Barrier(oneshot::Sender<()>),
}

async fn run(
    mut rx: mpsc::Receiver<AlarmInput>,
    book: Arc<Mutex<AlarmBook>>,
    log: Arc<Mutex<AlarmLog>>,
    bus: broadcast::Sender<Arc<Event>>,
    metrics: Metrics,
) {
    refresh_gauges(&book, &metrics);
    let mut inputs = Vec::with_capacity(MAX_GROUP);
    let mut group = Vec::new();
    // Group commit, as the WAL does: take every input already queued (up to `MAX_GROUP`),
    // apply each to the book in order, append the resulting versions with one fsync, and
    // only then publish them and answer the operators.
    while rx.recv_many(&mut inputs, MAX_GROUP).await > 0 {
        for input in inputs.drain(..) {
            match input {
                AlarmInput::Score {
                    twin,
                    model,
                    was_anomaly,
                    score,
                } => {
                    let changed = book.lock().on_score(&twin, &model, was_anomaly, &score);
                    if let Some((alarm, change)) = changed {
                        group.push(Outcome::Change {
                            alarm: Arc::new(alarm),
                            change,
                            ts: score.ts,
                            reply: None,
                        });
                    }
                }
                AlarmInput::Operator { op, reply } => match apply_op(&book, op) {
                    Ok((alarm, change, ts)) => group.push(Outcome::Change {
                        alarm: Arc::new(alarm),
                        change,
                        ts,
                        reply: Some(reply),
                    }),
                    Err(error) => group.push(Outcome::Refused { reply, error }),
                },
                AlarmInput::Flush(done) => group.push(Outcome::Barrier(done)),
                AlarmInput::RemoveTwin(twin) => {
                    // The rewrite writes the whole book: the group's changes go first, in
                    // their own commit, so the log keeps their order.
                    commit(&log, &book, &bus, &metrics, std::mem::take(&mut group)).await;
                    book.lock().remove_twin(&twin);
                    let (log, b) = (log.clone(), book.clone());
                    let res = tokio::task::spawn_blocking(move || {
                        // Log before book, as in `append_group`.
                        let mut log = log.lock();
                        log.rewrite(&b.lock())
                    })
                    .await;
                    if let Ok(Err(e)) = res {
                        tracing::error!(error = %e, "alarm log rewrite failed");
                    }
                    refresh_gauges(&book, &metrics);
                }
            }
        }
        commit(&log, &book, &bus, &metrics, std::mem::take(&mut group)).await;
    }
}

/// Appends the group's alarm versions to the log with one write and one fsync, then tells:
/// publishes each change and answers each operator, in the order they were applied.
async fn commit(
    log: &Arc<Mutex<AlarmLog>>,
    book: &Arc<Mutex<AlarmBook>>,
    bus: &broadcast::Sender<Arc<Event>>,
    metrics: &Metrics,
    group: Vec<Outcome>,
) {
    if group.is_empty() {
        return;
    }
    let versions: Vec<Arc<Alarm>> = group
        .iter()
        .filter_map(|o| match o {
            Outcome::Change { alarm, .. } => Some(alarm.clone()),
            Outcome::Refused { .. } | Outcome::Barrier(_) => None,
        })
        .collect();
    let changes = versions.len();
    let persisted = if versions.is_empty() {
        Ok(())
    } else {
        let (log, book) = (log.clone(), book.clone());
        tokio::task::spawn_blocking(move || append_group(&log, &book, &versions))
            .await
            .unwrap_or(Err(EngineError::ShuttingDown))
    };
    if let Err(e) = &persisted {
        tracing::error!(error = %e, changes, "alarm log append failed");
        metrics.alarm_log_errors.inc_by(changes as u64);
    }
    for outcome in group {
        match outcome {
            // A detector's change that cannot be persisted is still published: the
            // condition is real; the log error is logged and counted.
            Outcome::Change {
                alarm,
                change,
                ts,
                reply: None,
            } => publish(bus, metrics, alarm, change, ts),
            Outcome::Change {
                alarm,
                change,
                ts,
                reply: Some(reply),
            } => {
                let res = match &persisted {
                    Ok(()) => {
                        let answer = (*alarm).clone();
                        publish(bus, metrics, alarm, change, ts);
                        Ok(answer)
                    }
                    Err(e) => Err(copy_error(e)),
                };
                let _ = reply.send(res);
            }
            Outcome::Refused { reply, error } => {
                let _ = reply.send(Err(error));
            }
            Outcome::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
    refresh_gauges(book, metrics);
}

/// Appends `versions` durably (one write, one fsync); then compacts the log if it is mostly
/// stale versions. A failed compaction is only logged: the versions are already durable.
fn append_group(
    log: &Mutex<AlarmLog>,
    book: &Mutex<AlarmBook>,
    versions: &[Arc<Alarm>],
) -> Result<(), EngineError> {
    let mut log = log.lock();
    log.append_all(versions.iter().map(|a| &**a))?;
    let book = book.lock();
    if log.is_stale(book.len()) {
        if let Err(e) = log.rewrite(&book) {
            tracing::warn!(error = %e, "alarm log compaction failed; retried at the next append");
        }
    }
    Ok(())
}

/// The group's append error, for each operator whose change was in the group.
fn copy_error(e: &EngineError) -> EngineError {
    match e {
        EngineError::Persist { path, source } => EngineError::Persist {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        _ => EngineError::ShuttingDown,
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

fn publish(
    bus: &broadcast::Sender<Arc<Event>>,
    metrics: &Metrics,
    alarm: Arc<Alarm>,
    change: AlarmChange,
    ts: Timestamp,
) {
    metrics
        .alarm_changes
        .with_label_values(&[change.as_str()])
        .inc();
    tracing::info!(alarm = %alarm.id, twin = %alarm.twin, change = change.as_str(), severity = ?alarm.severity, summary = %alarm.summary, "alarm");
    let _ = bus.send(Arc::new(Event::alarm(alarm, change, ts)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarms::AlarmPolicy;
    use crate::EventBody;
    use doppel_analytics::{ContributionKind, SignalContribution};

    const S: i64 = 1_000_000_000;

    fn score(twin: &str, ts: i64, was_anomaly: bool, is_anomaly: bool) -> AlarmInput {
        AlarmInput::Score {
            twin: Arc::from(twin),
            model: Arc::from("pump"),
            was_anomaly,
            score: Score {
                ts,
                total: if is_anomaly { 0.7 } else { 0.2 },
                is_anomaly,
                warming_up: false,
                per_signal: vec![SignalContribution {
                    signal: Arc::from("bearing_temp"),
                    kind: ContributionKind::Level,
                    score: 0.7,
                    expected: 60.0,
                    observed: Some(70.0),
                }],
            },
        }
    }

    fn told(ev: &Event) -> (String, AlarmChange, Alarm) {
        match &ev.body {
            EventBody::Alarm { change, alarm } => (alarm.id.clone(), *change, (**alarm).clone()),
            _ => panic!("not an alarm event"),
        }
    }

    /// The alarm versions in complete lines of the log (a later group may be half written
    /// while a test reads: its unfinished last line is not counted).
    fn logged(dir: &std::path::Path) -> Vec<Alarm> {
        let text = std::fs::read_to_string(dir.join("alarms.jsonl")).unwrap();
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        complete
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Inputs queued together are applied in order, appended with one fsync, and told in
    /// that order; a refusal waits for the group like a change.
    #[tokio::test]
    async fn a_queued_group_takes_one_fsync_and_is_told_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (log, book) = AlarmLog::open(dir.path(), AlarmPolicy::at_once()).unwrap();
        let (book, log) = (Arc::new(Mutex::new(book)), Arc::new(Mutex::new(log)));
        let (bus, mut sub) = broadcast::channel(64);
        let (tx, rx) = mpsc::channel(64);
        let (ack, acked) = oneshot::channel();
        let (ack2, acked2) = oneshot::channel();
        let op = |reply| AlarmInput::Operator {
            op: OperatorOp::Acknowledge {
                id: "A-000002".into(),
                by: "op".into(),
                note: None,
                now: 4 * S,
            },
            reply,
        };
        for input in [
            score("p1", S, false, true),     // A-000001 raised
            score("p2", S, false, true),     // A-000002 raised
            score("p2", 2 * S, true, true),  // no change
            score("p1", 2 * S, true, false), // A-000001 cleared
            score("p1", 3 * S, false, true), // A-000001 reopened
            op(ack),                         // A-000002 acknowledged
            op(ack2),                        // refused: already acknowledged
        ] {
            tx.try_send(input).unwrap();
        }
        drop(tx);
        run(rx, book.clone(), log.clone(), bus, Metrics::new()).await;

        assert_eq!(log.lock().syncs(), 1);
        let mut events = Vec::new();
        while let Ok(ev) = sub.try_recv() {
            events.push(told(&ev));
        }
        use AlarmChange::*;
        let expected = [
            ("A-000001", Raised),
            ("A-000002", Raised),
            ("A-000001", Cleared),
            ("A-000001", Reopened),
            ("A-000002", Acknowledged),
        ];
        let got: Vec<_> = events.iter().map(|(id, c, _)| (id.as_str(), *c)).collect();
        assert_eq!(got, expected);
        // The log holds exactly the versions told, in the same order.
        let versions: Vec<_> = events.into_iter().map(|(_, _, a)| a).collect();
        assert_eq!(logged(dir.path()), versions);
        let a = acked.await.unwrap().unwrap();
        assert_eq!(a.state, AlarmState::Acknowledged);
        assert!(matches!(
            acked2.await.unwrap(),
            Err(EngineError::AlarmConflict(_))
        ));
    }

    /// Whatever the grouping, every change a subscriber is told is already in the file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_is_told_before_it_is_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (log, book) = AlarmLog::open(dir.path(), AlarmPolicy::at_once()).unwrap();
        let (book, log) = (Arc::new(Mutex::new(book)), Arc::new(Mutex::new(log)));
        let (bus, mut sub) = broadcast::channel(4096);
        let (tx, rx) = mpsc::channel(16);
        let service = tokio::spawn(run(rx, book, log.clone(), bus, Metrics::new()));
        let feeder = tokio::spawn(async move {
            // Ten twins flapping: raise, clear, reopen... 200 changes in groups of any size.
            for i in 0..20i64 {
                for t in 0..10 {
                    let twin = format!("t{t}");
                    let on = i % 2 == 0;
                    tx.send(score(&twin, (i + 1) * S, !on, on)).await.unwrap();
                }
            }
        });
        let mut seen = 0;
        while seen < 200 {
            let ev = sub.recv().await.unwrap();
            let (_, _, alarm) = told(&ev);
            assert!(
                logged(dir.path()).contains(&alarm),
                "{} told before it was logged",
                alarm.id
            );
            seen += 1;
        }
        feeder.await.unwrap();
        service.await.unwrap();
        let syncs = log.lock().syncs();
        assert!((1..=200).contains(&syncs), "{syncs} fsyncs");
    }
}
