//! Maintenance advice as operators work it: what a twin's [`AdviceTracker`] opens (in its
//! shard) becomes an [`AdviceItem`] here, with a lifecycle of its own.
//!
//! Lifecycle: `open` (the tracker advises it) → `scheduled` (an operator has planned the work:
//! when, who, a note) → `done` (with the outcome: the failure mode was `confirmed`, nothing was
//! found, or something `other`). While still open, an item is `withdrawn` when the tracker
//! withdraws it (its evidence went away). The outcome is kept as the label later training uses:
//! a confirmed item becomes a [`PastCase`] for later recommendations of the same model.
//!
//! The book is plain data (no IO, no clock): times come from the tracker's evaluations
//! (reading time) and from the caller. Persistence is an append-only JSON-lines log,
//! `advice.jsonl`, one line per item version, replayed at open and rewritten when it holds
//! many stale versions.
//!
//! [`AdviceTracker`]: doppel_analytics::AdviceTracker

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use doppel_analytics::advice::CaseSignal;
use doppel_analytics::{
    AdviceEvent, ContributionKind, MaintenanceAdvice, PastCase, Recommendation,
};
use doppel_model::{format_ts, SignalDirection, Timestamp};
use serde::{Deserialize, Serialize};

use crate::alarms::Transition;
use crate::EngineError;

/// Where an advice item is in its lifecycle.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AdviceState {
    Open,
    Scheduled,
    Done,
    Withdrawn,
}

impl AdviceState {
    pub const ALL: [AdviceState; 4] = [
        AdviceState::Open,
        AdviceState::Scheduled,
        AdviceState::Done,
        AdviceState::Withdrawn,
    ];

    pub fn parse(s: &str) -> Option<AdviceState> {
        Some(match s {
            "open" => AdviceState::Open,
            "scheduled" => AdviceState::Scheduled,
            "done" => AdviceState::Done,
            "withdrawn" => AdviceState::Withdrawn,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AdviceState::Open => "open",
            AdviceState::Scheduled => "scheduled",
            AdviceState::Done => "done",
            AdviceState::Withdrawn => "withdrawn",
        }
    }

    /// Still to be worked: open or scheduled.
    pub fn is_active(self) -> bool {
        matches!(self, AdviceState::Open | AdviceState::Scheduled)
    }
}

/// What the maintenance found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The advised failure mode was found.
    Confirmed,
    /// Nothing was found.
    NotFound,
    /// Something else (the note says what).
    Other,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Confirmed => "confirmed",
            Outcome::NotFound => "not_found",
            Outcome::Other => "other",
        }
    }
}

/// When the work is planned, and by whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Scheduled {
    /// When the work is planned (RFC 3339 and ns).
    #[serde(rename = "for")]
    pub for_time: String,
    pub for_ts: Timestamp,
    /// Token id of the operator who scheduled it.
    pub by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub at: String,
}

/// The result of the work: the label later training uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Done {
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Token id of the operator who closed it.
    pub by: String,
    pub at: String,
    pub at_ts: Timestamp,
}

/// One piece of maintenance advice on a twin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdviceItem {
    pub id: String,
    pub twin: String,
    pub model: String,
    /// The failure mode of the model's catalogue it names (e.g. `bearing_wear`).
    pub failure_mode: String,
    pub state: AdviceState,
    /// The latest recommendation: action, due-by, confidence, evidence, risk of waiting.
    #[schema(value_type = Object)]
    pub recommendation: Recommendation,
    /// The evaluation that opened it (reading time; RFC 3339 and ns).
    pub opened_at: String,
    pub opened_ts: Timestamp,
    /// The latest change of its recommendation (reading time).
    pub updated_at: String,
    pub updated_ts: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<Scheduled>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done: Option<Done>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<String>,
    pub history: Vec<Transition>,
}

/// Most history entries kept on an item (the first and the latest ones).
const MAX_HISTORY: usize = 64;
/// Most past cases per model handed to recommendations (the latest ones).
const MAX_CASES: usize = 200;

impl AdviceItem {
    fn push_history(&mut self, at: Timestamp, what: &str, by: Option<&str>, note: Option<&str>) {
        if self.history.len() >= MAX_HISTORY {
            self.history.remove(1);
        }
        self.history.push(Transition {
            at: format_ts(at),
            what: what.to_string(),
            by: by.map(String::from),
            note: note.map(String::from),
        });
    }

    fn set_recommendation(&mut self, a: &MaintenanceAdvice) {
        self.recommendation = a.recommendation.clone();
        self.updated_ts = a.updated_at;
        self.updated_at = format_ts(a.updated_at);
    }

    /// The labelled case a confirmed item teaches: its failure mode and the signals that
    /// showed it, each in the direction it moved.
    fn past_case(&self) -> Option<PastCase> {
        let done = self.done.as_ref()?;
        if done.outcome != Outcome::Confirmed {
            return None;
        }
        let signals = self
            .recommendation
            .evidence
            .iter()
            .filter(|e| e.strength > 0.0)
            .map(|e| CaseSignal {
                signal: e.signal.clone(),
                direction: e.observed_direction.unwrap_or(e.expected_direction),
            })
            .collect::<Vec<_>>();
        Some(PastCase {
            id: self.id.clone(),
            failure_mode: self.failure_mode.clone(),
            signals,
            ts: Some(self.updated_ts),
            note: done.note.clone().unwrap_or_default(),
        })
    }
}

/// What changed in the book, for events and MQTT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdviceChange {
    Opened,
    Updated,
    Scheduled,
    Done,
    Withdrawn,
}

impl AdviceChange {
    pub fn as_str(self) -> &'static str {
        match self {
            AdviceChange::Opened => "opened",
            AdviceChange::Updated => "updated",
            AdviceChange::Scheduled => "scheduled",
            AdviceChange::Done => "done",
            AdviceChange::Withdrawn => "withdrawn",
        }
    }
}

/// Errors of operator actions on advice.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AdviceError {
    #[error("advice `{0}` not found")]
    NotFound(String),
    #[error("advice `{id}` is {}: {why}", state.as_str())]
    Conflict {
        id: String,
        state: AdviceState,
        why: &'static str,
    },
}

/// Which advice to list.
#[derive(Debug, Clone, Default)]
pub struct AdviceQuery {
    pub twin: Option<String>,
    pub states: Vec<AdviceState>,
    pub limit: usize,
}

/// Every advice item, active and recently closed.
#[derive(Debug)]
pub struct AdviceBook {
    items: BTreeMap<u64, AdviceItem>,
    /// (twin, failure mode) → its active item.
    active: HashMap<(String, String), u64>,
    /// Model → the confirmed cases of its twins, oldest first.
    cases: HashMap<String, Vec<PastCase>>,
    /// Closed items kept beyond the active ones.
    keep_closed: usize,
    next_id: u64,
}

impl Default for AdviceBook {
    fn default() -> Self {
        AdviceBook::new(10_000)
    }
}

fn advice_id(n: u64) -> String {
    format!("V-{n:06}")
}

fn parse_id(id: &str) -> Option<u64> {
    id.strip_prefix("V-")?.parse().ok()
}

impl AdviceBook {
    pub fn new(keep_closed: usize) -> Self {
        AdviceBook {
            items: BTreeMap::new(),
            active: HashMap::new(),
            cases: HashMap::new(),
            keep_closed,
            next_id: 1,
        }
    }

    /// Applies one of a twin's tracker events. Returns the item and what changed, when
    /// something did. An `updated` advice the book has no active item for opens one (its
    /// opening was lost in a crash) unless the latest item of that twin and mode is done: the
    /// tracker had not yet heard of the maintenance. A withdrawal of scheduled work is noted
    /// but keeps it scheduled (the operator decides).
    pub fn on_event(
        &mut self,
        twin: &str,
        model: &str,
        event: &AdviceEvent,
    ) -> Option<(AdviceItem, AdviceChange)> {
        match event {
            AdviceEvent::Opened { advice } | AdviceEvent::Updated { advice } => {
                let key = (twin.to_string(), advice.failure_mode.clone());
                if let Some(item) = self.active.get(&key).and_then(|n| self.items.get_mut(n)) {
                    item.set_recommendation(advice);
                    item.push_history(advice.updated_at, "updated", None, None);
                    return Some((item.clone(), AdviceChange::Updated));
                }
                if matches!(event, AdviceEvent::Updated { .. }) {
                    let latest = self
                        .items
                        .values()
                        .rev()
                        .find(|a| a.twin == twin && a.failure_mode == advice.failure_mode);
                    if latest.is_some_and(|a| a.state == AdviceState::Done) {
                        return None;
                    }
                }
                let n = self.next_id;
                self.next_id += 1;
                let mut item = AdviceItem {
                    id: advice_id(n),
                    twin: twin.to_string(),
                    model: model.to_string(),
                    failure_mode: advice.failure_mode.clone(),
                    state: AdviceState::Open,
                    recommendation: advice.recommendation.clone(),
                    opened_at: format_ts(advice.opened_at),
                    opened_ts: advice.opened_at,
                    updated_at: format_ts(advice.updated_at),
                    updated_ts: advice.updated_at,
                    scheduled: None,
                    done: None,
                    withdrawn_at: None,
                    history: Vec::new(),
                };
                item.push_history(advice.opened_at, "opened", None, None);
                self.active.insert(key, n);
                self.items.insert(n, item.clone());
                self.trim();
                Some((item, AdviceChange::Opened))
            }
            AdviceEvent::Withdrawn { failure_mode, at } => {
                let key = (twin.to_string(), failure_mode.clone());
                let n = *self.active.get(&key)?;
                let item = self.items.get_mut(&n)?;
                if item.state == AdviceState::Scheduled {
                    item.push_history(*at, "evidence gone", None, None);
                    return None;
                }
                item.state = AdviceState::Withdrawn;
                item.withdrawn_at = Some(format_ts(*at));
                item.push_history(*at, "withdrawn", None, Some("the evidence went away"));
                self.active.remove(&key);
                Some((item.clone(), AdviceChange::Withdrawn))
            }
        }
    }

    fn get_mut(&mut self, id: &str) -> Result<&mut AdviceItem, AdviceError> {
        parse_id(id)
            .and_then(|n| self.items.get_mut(&n))
            .ok_or_else(|| AdviceError::NotFound(id.to_string()))
    }

    pub fn get(&self, id: &str) -> Option<&AdviceItem> {
        self.items.get(&parse_id(id)?)
    }

    /// Plans the work (again, if already scheduled).
    pub fn schedule(
        &mut self,
        id: &str,
        for_ts: Timestamp,
        by: &str,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<(AdviceItem, AdviceChange), AdviceError> {
        let item = self.get_mut(id)?;
        if !item.state.is_active() {
            return Err(AdviceError::Conflict {
                id: id.to_string(),
                state: item.state,
                why: "only open or scheduled advice can be scheduled",
            });
        }
        item.state = AdviceState::Scheduled;
        item.scheduled = Some(Scheduled {
            for_time: format_ts(for_ts),
            for_ts,
            by: by.to_string(),
            note: note.map(String::from),
            at: format_ts(now),
        });
        item.push_history(now, "scheduled", Some(by), note);
        Ok((item.clone(), AdviceChange::Scheduled))
    }

    /// The work is done; the outcome is kept as the item's label.
    pub fn done(
        &mut self,
        id: &str,
        outcome: Outcome,
        by: &str,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<(AdviceItem, AdviceChange), AdviceError> {
        let item = self.get_mut(id)?;
        if !item.state.is_active() {
            return Err(AdviceError::Conflict {
                id: id.to_string(),
                state: item.state,
                why: "only open or scheduled advice can be done",
            });
        }
        item.state = AdviceState::Done;
        item.done = Some(Done {
            outcome,
            note: note.map(String::from),
            by: by.to_string(),
            at: format_ts(now),
            at_ts: now,
        });
        item.push_history(now, "done", Some(by), Some(outcome.as_str()));
        let out = item.clone();
        self.active
            .remove(&(out.twin.clone(), out.failure_mode.clone()));
        self.learn(&out);
        Ok((out, AdviceChange::Done))
    }

    /// Keeps a confirmed item's case for its model.
    fn learn(&mut self, item: &AdviceItem) {
        if let Some(case) = item.past_case() {
            self.add_case(&item.model, case);
        }
    }

    /// Keeps a labelled case of `model` (an advice item done as confirmed, or an alarm
    /// confirmed with its fault kind); the latest [`MAX_CASES`] per model are kept.
    pub fn add_case(&mut self, model: &str, case: PastCase) {
        let cases = self.cases.entry(model.to_string()).or_default();
        cases.retain(|c| c.id != case.id);
        cases.push(case);
        if cases.len() > MAX_CASES {
            cases.remove(0);
        }
    }

    /// Confirmed cases of `model`'s twins, for recommendations.
    pub fn past_cases(&self, model: &str) -> Vec<PastCase> {
        self.cases.get(model).cloned().unwrap_or_default()
    }

    /// Items matching `q`, newest first.
    pub fn list(&self, q: &AdviceQuery) -> Vec<AdviceItem> {
        let limit = if q.limit == 0 { usize::MAX } else { q.limit };
        self.items
            .values()
            .rev()
            .filter(|a| q.twin.as_deref().is_none_or(|t| a.twin == t))
            .filter(|a| q.states.is_empty() || q.states.contains(&a.state))
            .take(limit)
            .cloned()
            .collect()
    }

    /// The twin's open and scheduled advice, soonest due first.
    pub fn active_for(&self, twin: &str) -> Vec<AdviceItem> {
        let mut v: Vec<AdviceItem> = self
            .active
            .iter()
            .filter(|((t, _), _)| t == twin)
            .filter_map(|(_, n)| self.items.get(n).cloned())
            .collect();
        v.sort_by(|a, b| {
            a.recommendation
                .due_by
                .cmp(&b.recommendation.due_by)
                .then(a.id.cmp(&b.id))
        });
        v
    }

    pub fn counts(&self) -> BTreeMap<AdviceState, usize> {
        let mut out = BTreeMap::new();
        for a in self.items.values() {
            *out.entry(a.state).or_insert(0) += 1;
        }
        out
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Forgets the advice of a deleted twin (its confirmed cases stay: they are the model's).
    pub fn remove_twin(&mut self, twin: &str) {
        self.items.retain(|_, a| a.twin != twin);
        self.active.retain(|(t, _), _| t != twin);
    }

    /// Drops the oldest closed items beyond the limit.
    fn trim(&mut self) {
        let closed = self.items.values().filter(|a| !a.state.is_active()).count();
        let excess = closed.saturating_sub(self.keep_closed);
        if excess == 0 {
            return;
        }
        let drop: Vec<u64> = self
            .items
            .iter()
            .filter(|(_, a)| !a.state.is_active())
            .map(|(n, _)| *n)
            .take(excess)
            .collect();
        for n in drop {
            self.items.remove(&n);
        }
    }

    /// Puts back an item read from the log (the latest version of each id wins).
    fn restore(&mut self, a: AdviceItem) {
        let Some(n) = parse_id(&a.id) else { return };
        self.next_id = self.next_id.max(n + 1);
        let key = (a.twin.clone(), a.failure_mode.clone());
        if a.state.is_active() {
            self.active.insert(key, n);
        } else if self.active.get(&key) == Some(&n) {
            self.active.remove(&key);
        }
        self.items.insert(n, a);
    }
}

/// The labelled case an alarm confirmed with its fault kind teaches: the fault kind as the
/// failure mode, and each explaining signal in the direction it moved.
pub fn alarm_case(alarm: &crate::Alarm) -> Option<PastCase> {
    let fb = alarm.feedback.as_ref()?;
    if fb.verdict != crate::Verdict::Confirmed {
        return None;
    }
    let failure_mode = fb.fault_kind.clone()?;
    let mut signals: Vec<CaseSignal> = Vec::new();
    for s in &alarm.signals {
        let direction = match (s.kind, s.observed) {
            (ContributionKind::Dropout | ContributionKind::Stuck, _) => continue,
            (ContributionKind::Rate, _) => SignalDirection::Noisy,
            (_, Some(o)) if o > s.expected => SignalDirection::Rising,
            (_, Some(o)) if o < s.expected => SignalDirection::Falling,
            _ => SignalDirection::Shift,
        };
        if !signals.iter().any(|c| c.signal == s.signal) {
            signals.push(CaseSignal {
                signal: s.signal.clone(),
                direction,
            });
        }
    }
    Some(PastCase {
        id: alarm.id.clone(),
        failure_mode,
        signals,
        ts: Some(alarm.raised_ts),
        note: fb.note.clone().unwrap_or_default(),
    })
}

/// The advice log: `advice.jsonl` in the data directory, one JSON item per line, appended
/// on every change and fsynced (changes are rare: a few per fault and operator action).
#[derive(Debug)]
pub struct AdviceLog {
    file: crate::jsonl::JsonLines,
}

impl AdviceLog {
    /// Opens (or creates) the log and replays it into a book. A torn last line (crash while
    /// appending) is skipped and rewritten away.
    pub fn open(dir: &Path) -> Result<(AdviceLog, AdviceBook), EngineError> {
        let mut book = AdviceBook::default();
        let (file, bad) =
            crate::jsonl::JsonLines::open(dir.join("advice.jsonl"), "advice", |r: AdviceItem| {
                book.restore(r)
            })?;
        let done: Vec<AdviceItem> = book
            .items
            .values()
            .filter(|a| a.state == AdviceState::Done)
            .cloned()
            .collect();
        for a in &done {
            book.learn(a);
        }
        book.trim();
        let mut log = AdviceLog { file };
        if bad > 0 || log.file.lines() > 2 * book.len() + 1000 {
            log.rewrite(&book)?;
        }
        Ok((log, book))
    }

    /// Appends one version durably; compacts the log when it is mostly stale versions.
    pub fn append(&mut self, record: &AdviceItem, book: &AdviceBook) -> Result<(), EngineError> {
        self.file.append(record)?;
        if self.file.lines() > 4 * book.len() + 1000 {
            self.rewrite(book)?;
        }
        Ok(())
    }

    /// Replaces the log with one line per record (tmp, fsync, rename, fsync dir).
    pub fn rewrite(&mut self, book: &AdviceBook) -> Result<(), EngineError> {
        self.file.rewrite(book.items.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_analytics::advice::{RiskOfWaiting, SignalEvidence};
    use doppel_model::Urgency;
    use std::fs;

    const H: i64 = 3_600 * 1_000_000_000;

    fn advice(mode: &str, opened: i64, updated: i64, due_by: i64) -> MaintenanceAdvice {
        MaintenanceAdvice {
            failure_mode: mode.to_string(),
            opened_at: opened,
            updated_at: updated,
            recommendation: Recommendation {
                failure_mode: mode.to_string(),
                name: "Bearing wear".into(),
                action: "inspect the drive-end bearing".into(),
                actions: vec!["inspect the drive-end bearing".into()],
                urgency: Urgency::High,
                due_by,
                due_in_h: (due_by - updated) as f64 / H as f64,
                confidence: 0.7,
                match_score: 0.7,
                coverage: 1.0,
                evidence: vec![SignalEvidence {
                    signal: "bearing_temp_de".into(),
                    expected_direction: SignalDirection::Rising,
                    observed_direction: Some(SignalDirection::Rising),
                    strength: 0.9,
                    weight: 1.0,
                    expected: Some(60.0),
                    observed: Some(75.0),
                    detector: None,
                    detector_score: None,
                    trend_per_hour: Some(0.4),
                    trend_t: Some(8.0),
                    limit: Some(90.0),
                    time_to_limit: None,
                }],
                similar_cases: Vec::new(),
                risk: RiskOfWaiting {
                    consequence: "bearing seizes".into(),
                    first_limit_signal: None,
                    limit_earliest: None,
                    limit_likely: None,
                    failure_likely: None,
                    failure_earliest: None,
                    summary: "seizure".into(),
                },
                summary: "bearing wear".into(),
            },
        }
    }

    fn opened(a: MaintenanceAdvice) -> AdviceEvent {
        AdviceEvent::Opened { advice: a }
    }

    #[test]
    fn lifecycle_open_update_schedule_done() {
        let mut book = AdviceBook::default();
        let (a, c) = book
            .on_event("p1", "pump", &opened(advice("bearing_wear", H, H, 20 * H)))
            .unwrap();
        assert_eq!(
            (a.id.as_str(), c, a.state),
            ("V-000001", AdviceChange::Opened, AdviceState::Open)
        );
        let up = AdviceEvent::Updated {
            advice: advice("bearing_wear", H, 2 * H, 10 * H),
        };
        let (a, c) = book.on_event("p1", "pump", &up).unwrap();
        assert_eq!((a.id.as_str(), c), ("V-000001", AdviceChange::Updated));
        assert_eq!(a.recommendation.due_by, 10 * H);
        assert_eq!(book.active_for("p1").len(), 1);
        assert!(book.active_for("p2").is_empty());
        let (a, _) = book
            .schedule("V-000001", 5 * H, "op", Some("crew B"), 3 * H)
            .unwrap();
        assert_eq!(a.state, AdviceState::Scheduled);
        assert_eq!(a.scheduled.as_ref().unwrap().for_ts, 5 * H);
        // A withdrawal while scheduled leaves the operator's plan alone.
        let w = AdviceEvent::Withdrawn {
            failure_mode: "bearing_wear".into(),
            at: 4 * H,
        };
        assert!(book.on_event("p1", "pump", &w).is_none());
        assert!(book.past_cases("pump").is_empty());
        let (a, c) = book
            .done(
                "V-000001",
                Outcome::Confirmed,
                "op",
                Some("spalled race"),
                6 * H,
            )
            .unwrap();
        assert_eq!((a.state, c), (AdviceState::Done, AdviceChange::Done));
        assert_eq!(a.done.as_ref().unwrap().outcome, Outcome::Confirmed);
        assert!(book.active_for("p1").is_empty());
        // The tracker's update from before it heard of the maintenance opens nothing.
        let late = AdviceEvent::Updated {
            advice: advice("bearing_wear", H, 6 * H, 7 * H),
        };
        assert!(book.on_event("p1", "pump", &late).is_none());
        // An update whose opening was lost opens the item.
        let (a, c) = book.on_event("p2", "pump", &late).unwrap();
        assert_eq!((a.twin.as_str(), c), ("p2", AdviceChange::Opened));
        // Wrong states and unknown ids.
        assert!(matches!(
            book.done("V-000001", Outcome::NotFound, "op", None, 7 * H),
            Err(AdviceError::Conflict { .. })
        ));
        assert!(matches!(
            book.schedule("V-000001", 8 * H, "op", None, 7 * H),
            Err(AdviceError::Conflict { .. })
        ));
        assert_eq!(
            book.done("V-9", Outcome::NotFound, "op", None, 0)
                .map(|_| ()),
            Err(AdviceError::NotFound("V-9".into()))
        );
        assert!(book.get("nonsense").is_none());
        // The confirmed outcome is a past case of the model.
        let cases = book.past_cases("pump");
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].failure_mode, "bearing_wear");
        assert_eq!(cases[0].signals[0].signal, "bearing_temp_de");
        assert!(book.past_cases("chiller").is_empty());
        // The same mode advised again later is a new item.
        let (a, _) = book
            .on_event(
                "p1",
                "pump",
                &opened(advice("bearing_wear", 40 * H, 40 * H, 60 * H)),
            )
            .unwrap();
        assert_eq!(a.id, "V-000003");
    }

    #[test]
    fn withdrawn_while_open_and_not_found_is_no_case() {
        let mut book = AdviceBook::default();
        book.on_event("p1", "pump", &opened(advice("seal_leak", H, H, 9 * H)))
            .unwrap();
        let w = AdviceEvent::Withdrawn {
            failure_mode: "seal_leak".into(),
            at: 8 * H,
        };
        let (a, c) = book.on_event("p1", "pump", &w).unwrap();
        assert_eq!(
            (a.state, c),
            (AdviceState::Withdrawn, AdviceChange::Withdrawn)
        );
        assert!(a.withdrawn_at.is_some());
        book.on_event(
            "p1",
            "pump",
            &opened(advice("seal_leak", 9 * H, 9 * H, 19 * H)),
        )
        .unwrap();
        book.done("V-000002", Outcome::NotFound, "op", None, 10 * H)
            .unwrap();
        assert!(book.past_cases("pump").is_empty());
        let q = AdviceQuery {
            states: vec![AdviceState::Withdrawn],
            ..Default::default()
        };
        assert_eq!(book.list(&q).len(), 1);
    }

    #[test]
    fn a_confirmed_alarm_is_a_case_of_its_fault_kind() {
        use crate::alarms::{AlarmBook, AlarmPolicy, Feedback};
        use doppel_analytics::{Score, SignalContribution};
        let mut alarms = AlarmBook::new(AlarmPolicy::at_once());
        let score = Score {
            ts: H,
            total: 0.7,
            is_anomaly: true,
            warming_up: false,
            per_signal: vec![SignalContribution {
                signal: std::sync::Arc::from("vib_bearing"),
                kind: ContributionKind::Level,
                score: 0.7,
                expected: 2.0,
                observed: Some(4.0),
            }],
        };
        let (a, _) = alarms.on_score("p1", "pump", false, &score).unwrap();
        assert!(alarm_case(&a).is_none(), "no feedback, no label");
        let fb = Feedback {
            verdict: crate::Verdict::Confirmed,
            fault_kind: Some("bearing_wear".into()),
            note: None,
            by: "op".into(),
            at: format_ts(2 * H),
        };
        let (a, _) = alarms.feedback(&a.id, fb, 2 * H).unwrap();
        let case = alarm_case(&a).unwrap();
        assert_eq!(case.failure_mode, "bearing_wear");
        assert_eq!(case.signals[0].signal, "vib_bearing");
        assert_eq!(case.signals[0].direction, SignalDirection::Rising);
        let mut book = AdviceBook::default();
        book.add_case("pump", case);
        assert_eq!(book.past_cases("pump").len(), 1);
    }

    #[test]
    fn log_replays_latest_versions_and_survives_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, mut book) = AdviceLog::open(dir.path()).unwrap();
            let (a, _) = book
                .on_event("p1", "pump", &opened(advice("bearing_wear", H, H, 9 * H)))
                .unwrap();
            log.append(&a, &book).unwrap();
            let (a, _) = book
                .on_event("p2", "pump", &opened(advice("bearing_wear", H, H, 9 * H)))
                .unwrap();
            log.append(&a, &book).unwrap();
            let (a, _) = book.schedule("V-000001", 3 * H, "op", None, 2 * H).unwrap();
            log.append(&a, &book).unwrap();
            let (a, _) = book
                .done("V-000001", Outcome::Confirmed, "op", None, 4 * H)
                .unwrap();
            log.append(&a, &book).unwrap();
        }
        let p = dir.path().join("advice.jsonl");
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut f, b"{\"id\":\"V-0000").unwrap();
        drop(f);
        let (_, mut book) = AdviceLog::open(dir.path()).unwrap();
        assert_eq!(book.len(), 2);
        let a = book.get("V-000001").unwrap();
        assert_eq!(a.state, AdviceState::Done);
        assert_eq!(a.history.last().unwrap().what, "done");
        assert_eq!(book.active_for("p2")[0].id, "V-000002");
        assert!(book.active_for("p1").is_empty());
        assert_eq!(
            book.past_cases("pump").len(),
            1,
            "cases come back with the log"
        );
        let text = fs::read_to_string(&p).unwrap();
        assert!(text
            .lines()
            .all(|l| serde_json::from_str::<AdviceItem>(l).is_ok()));
        let (a, _) = book
            .on_event(
                "p1",
                "pump",
                &opened(advice("bearing_wear", 50 * H, 50 * H, 60 * H)),
            )
            .unwrap();
        assert_eq!(a.id, "V-000003");
        book.remove_twin("p2");
        assert_eq!(book.len(), 2);
    }
}
