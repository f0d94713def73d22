//! The in-memory series index: every point of every (twin, signal), sorted by time.
//!
//! Kept behind this small API (insert, delete, visit a time range, latest at a time) because a
//! later version replaces the plain vectors with sealed, compressed chunks; callers in
//! `store.rs` must not depend on how a series is laid out.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use doppel_model::Timestamp;

use crate::{Point, Row};

/// All series, grouped by twin so deleting a twin or answering `as_of` touches only its own.
#[derive(Default)]
pub(crate) struct Index {
    twins: HashMap<Arc<str>, HashMap<Arc<str>, Series>>,
    points: u64,
}

/// One series: points strictly ascending by `ts` (no two share a timestamp).
#[derive(Default)]
struct Series {
    points: Vec<Point>,
}

impl Series {
    /// Inserts or replaces the point at `ts`; returns whether the series grew.
    fn upsert(&mut self, ts: Timestamp, value: doppel_model::Value) -> bool {
        // Readings nearly always arrive in time order, so appending is the common case and
        // costs no search.
        match self.points.last_mut() {
            None => {}
            Some(last) if last.ts < ts => {}
            Some(last) if last.ts == ts => {
                last.value = value;
                return false;
            }
            Some(_) => {
                return match self.points.binary_search_by_key(&ts, |p| p.ts) {
                    Ok(i) => {
                        self.points[i].value = value;
                        false
                    }
                    Err(i) => {
                        self.points.insert(i, Point { ts, value });
                        true
                    }
                };
            }
        }
        self.points.push(Point { ts, value });
        true
    }

    /// The points with `from <= ts < to`.
    fn slice(&self, from: Timestamp, to: Timestamp) -> &[Point] {
        let lo = self.points.partition_point(|p| p.ts < from);
        let hi = self.points.partition_point(|p| p.ts < to);
        self.points.get(lo..hi).unwrap_or(&[])
    }

    /// The latest point with `ts <= at`.
    fn last_at(&self, at: Timestamp) -> Option<&Point> {
        let n = self.points.partition_point(|p| p.ts <= at);
        n.checked_sub(1).and_then(|i| self.points.get(i))
    }
}

impl Index {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Stores `row`; a point at the same (twin, signal, ts) is replaced, not duplicated.
    pub(crate) fn insert(&mut self, row: Row) {
        // `entry` keeps the existing key, so replayed rows share one `Arc` per name.
        let series = self
            .twins
            .entry(row.twin)
            .or_default()
            .entry(row.signal)
            .or_default();
        if series.upsert(row.ts, row.value) {
            self.points += 1;
        }
    }

    /// Forgets everything stored for `twin` so far.
    pub(crate) fn delete_twin(&mut self, twin: &str) {
        if let Some(signals) = self.twins.remove(twin) {
            let n: usize = signals.values().map(|s| s.points.len()).sum();
            self.points -= n as u64;
        }
    }

    fn series(&self, twin: &str, signal: &str) -> Option<&Series> {
        self.twins.get(twin)?.get(signal)
    }

    /// Calls `f` on each point with `from <= ts < to`, ascending, until it breaks.
    pub(crate) fn visit_range<B>(
        &self,
        twin: &str,
        signal: &str,
        from: Timestamp,
        to: Timestamp,
        mut f: impl FnMut(&Point) -> ControlFlow<B>,
    ) -> ControlFlow<B> {
        if let Some(series) = self.series(twin, signal) {
            for p in series.slice(from, to) {
                f(p)?;
            }
        }
        ControlFlow::Continue(())
    }

    /// Up to `limit` points with `from <= ts < to`, ascending.
    pub(crate) fn range(
        &self,
        twin: &str,
        signal: &str,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Vec<Point> {
        match self.series(twin, signal) {
            Some(s) => s.slice(from, to).iter().take(limit).cloned().collect(),
            None => Vec::new(),
        }
    }

    /// The latest point with `ts <= at`.
    pub(crate) fn last_at(&self, twin: &str, signal: &str, at: Timestamp) -> Option<Point> {
        self.series(twin, signal)?.last_at(at).cloned()
    }

    /// For each signal of `twin`, its latest point with `ts <= at`, sorted by signal name.
    pub(crate) fn as_of(&self, twin: &str, at: Timestamp) -> Vec<(Arc<str>, Point)> {
        let Some(signals) = self.twins.get(twin) else {
            return Vec::new();
        };
        let mut out: Vec<(Arc<str>, Point)> = signals
            .iter()
            .filter_map(|(name, s)| Some((name.clone(), s.last_at(at)?.clone())))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The last point of every series, sorted by (twin, signal).
    pub(crate) fn latest_all(&self) -> Vec<(Arc<str>, Arc<str>, Point)> {
        let mut out: Vec<(Arc<str>, Arc<str>, Point)> = self
            .twins
            .iter()
            .flat_map(|(twin, signals)| {
                signals.iter().filter_map(move |(signal, s)| {
                    Some((twin.clone(), signal.clone(), s.points.last()?.clone()))
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }

    pub(crate) fn series_count(&self) -> usize {
        self.twins.values().map(HashMap::len).sum()
    }

    pub(crate) fn point_count(&self) -> u64 {
        self.points
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use doppel_model::Value;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn row(twin: &str, signal: &str, ts: i64, v: i64) -> Row {
        Row {
            twin: twin.into(),
            signal: signal.into(),
            ts,
            value: Value::Int(v),
        }
    }

    #[test]
    fn out_of_order_and_duplicates_land_sorted_once() {
        let mut ix = Index::new();
        for (ts, v) in [(5, 1), (1, 2), (9, 3), (5, 4), (3, 5), (9, 6)] {
            ix.insert(row("t", "s", ts, v));
        }
        let got: Vec<(i64, Value)> = ix
            .range("t", "s", i64::MIN, i64::MAX, usize::MAX)
            .into_iter()
            .map(|p| (p.ts, p.value))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, Value::Int(2)),
                (3, Value::Int(5)),
                (5, Value::Int(4)),
                (9, Value::Int(6))
            ]
        );
        assert_eq!(ix.point_count(), 4);
        assert_eq!(ix.last_at("t", "s", 4).unwrap().ts, 3);
        assert_eq!(ix.last_at("t", "s", 0), None);
        assert_eq!(ix.range("t", "s", 3, 9, 10).len(), 2);
        assert_eq!(ix.range("t", "s", 3, 9, 1).len(), 1);
    }

    #[test]
    fn delete_twin_keeps_counts_right() {
        let mut ix = Index::new();
        ix.insert(row("a", "x", 1, 1));
        ix.insert(row("a", "y", 1, 1));
        ix.insert(row("b", "x", 1, 1));
        ix.delete_twin("a");
        ix.delete_twin("nope");
        assert_eq!(ix.series_count(), 1);
        assert_eq!(ix.point_count(), 1);
        assert!(ix.as_of("a", i64::MAX).is_empty());
        ix.insert(row("a", "x", 0, 7));
        assert_eq!(ix.latest_all().len(), 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn agrees_with_a_btreemap(
            ops in proptest::collection::vec((-20i64..20, any::<i64>()), 0..60),
            from in -25i64..25, len in 0i64..50, at in -25i64..25,
        ) {
            let mut ix = Index::new();
            let mut model = BTreeMap::new();
            for (ts, v) in ops {
                ix.insert(row("t", "s", ts, v));
                model.insert(ts, v);
            }
            let to = from + len;
            let want: Vec<(i64, i64)> = model.range(from..to).map(|(&t, &v)| (t, v)).collect();
            let got: Vec<(i64, i64)> = ix
                .range("t", "s", from, to, usize::MAX)
                .into_iter()
                .map(|p| match p.value { Value::Int(v) => (p.ts, v), _ => unreachable!() })
                .collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(ix.point_count(), model.len() as u64);
            let want_last = model.range(..=at).next_back().map(|(&t, _)| t);
            prop_assert_eq!(ix.last_at("t", "s", at).map(|p| p.ts), want_last);
        }
    }
}
