//! Retention enforcement: forgets the points of each twin's series older than its model's
//! retention period (`AssetModel::retention`), through the store's durable cut
//! (`Store::drop_before`). The clock is the twin's own newest reading, so simulated and
//! backfilled history is trimmed by its time, not the wall clock's (which is the fallback
//! for a twin without readings). Blocking: run it on a blocking thread.

use std::time::Duration;

use doppel_model::{Catalog, Timestamp};
use doppel_store::{Store, StoreError};

use crate::detect::SCORE_SIGNAL;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pass {
    /// Twins whose model has a retention.
    pub twins: usize,
    /// Series cut (each had points older than its cutoff).
    pub cuts: u64,
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// One pass over every twin whose model has a retention. A series is cut only when it holds
/// a point before its cutoff, so a pass over trimmed history writes nothing; a day of points
/// at most per cut. Twins of models
/// without retention are not looked at.
pub(crate) fn enforce(
    catalog: &Catalog,
    store: &Store,
    wall_now: Timestamp,
) -> Result<Pass, StoreError> {
    let mut pass = Pass::default();
    for twin in catalog.twins() {
        let Some(model) = catalog.model(&twin.model) else {
            continue;
        };
        let Some(retention) = &model.retention else {
            continue;
        };
        pass.twins += 1;
        let now = model
            .signals
            .iter()
            .filter_map(|s| store.last(&twin.id, &s.name))
            .map(|p| p.ts)
            .max()
            .unwrap_or(wall_now);
        let series = model
            .signals
            .iter()
            .map(|s| (s.name.as_str(), retention.period(&s.name)))
            .chain([(SCORE_SIGNAL, retention.default_period())]);
        for (signal, period) in series {
            let Some(period) = period else { continue };
            let cutoff = now.saturating_sub(nanos(period));
            let Some(mut first) = first_before(store, &twin.id, signal, cutoff)? else {
                continue;
            };
            // A cut rolls up what it forgets on the store's index thread, under the index
            // lock: a long history (retention set on a store that has years) is cut a day
            // of points at a time, so writes and queries never wait behind a year's rollup.
            loop {
                let step = first.saturating_add(CUT_STEP).min(cutoff);
                store.drop_before(&twin.id, Some(signal), step)?;
                if step >= cutoff {
                    break;
                }
                match first_before(store, &twin.id, signal, cutoff)? {
                    Some(ts) if ts >= step => first = ts,
                    // Nothing left, or the store kept what it could not read (or a late
                    // point arrived): the next pass goes on.
                    _ => break,
                }
            }
            pass.cuts += 1;
            tracing::debug!(twin = %twin.id, signal, cutoff, "retention cut");
        }
    }
    Ok(pass)
}

/// Most history one cut forgets: a day (86,400 points of a 1 Hz series, a few ms to roll up).
const CUT_STEP: Timestamp = 86_400 * 1_000_000_000;

/// The time of the first point of the series before `cutoff`.
fn first_before(
    store: &Store,
    twin: &str,
    signal: &str,
    cutoff: Timestamp,
) -> Result<Option<Timestamp>, StoreError> {
    Ok(store
        .range(twin, signal, Timestamp::MIN, cutoff, 1)?
        .first()
        .map(|p| p.ts))
}
