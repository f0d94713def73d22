//! Twin shards. Each twin's live state has exactly one owner: the shard task chosen by hashing
//! the twin id. A shard applies readings in the order it receives them, keeps per signal the
//! value with the newest timestamp (a late reading never moves state backwards), and publishes
//! events. No lock guards twin state: the shard's mailbox (a bounded channel) is the only way
//! in, and its bound is the back-pressure.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use doppel_model::{Timestamp, ValidatedReading, Value};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{Event, Metrics};

/// Latest value of each signal of one twin.
pub(crate) type TwinLive = HashMap<Arc<str>, (Timestamp, Value)>;

pub(crate) enum ShardCmd {
    /// Apply readings (already durable); answers how many were late.
    Apply {
        readings: Vec<ValidatedReading>,
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
        reply: oneshot::Sender<Option<TwinLive>>,
    },
    Remove {
        twin: Arc<str>,
    },
}

/// Index of the shard owning `twin`. Stable within a process (SipHash with fixed keys).
pub(crate) fn shard_of(twin: &str, shards: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    twin.hash(&mut h);
    (h.finish() % shards.max(1) as u64) as usize
}

pub(crate) fn spawn(
    capacity: usize,
    bus: broadcast::Sender<Arc<Event>>,
    metrics: Metrics,
) -> (mpsc::Sender<ShardCmd>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(capacity);
    let handle = tokio::spawn(run(rx, bus, metrics));
    (tx, handle)
}

async fn run(
    mut rx: mpsc::Receiver<ShardCmd>,
    bus: broadcast::Sender<Arc<Event>>,
    metrics: Metrics,
) {
    let mut twins: HashMap<Arc<str>, TwinLive> = HashMap::new();
    while let Some(cmd) = rx.recv().await {
        match cmd {
            ShardCmd::Apply { readings, done } => {
                let mut late_count = 0;
                for r in readings {
                    let live = twins.entry(r.twin.clone()).or_default();
                    let late = apply(live, r.ts, &r.values);
                    if late {
                        late_count += 1;
                    }
                    if bus.receiver_count() > 0 {
                        let values: BTreeMap<_, _> = r.values.into_iter().collect();
                        // Sending fails only when nobody listens, which is fine.
                        let _ = bus.send(Arc::new(Event::new(r.twin, r.model, r.ts, values, late)));
                    }
                }
                metrics.late_readings.inc_by(late_count as u64);
                let _ = done.send(late_count);
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
                let _ = reply.send(twins.get(&twin).cloned());
            }
            ShardCmd::Remove { twin } => {
                twins.remove(&twin);
            }
        }
    }
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
