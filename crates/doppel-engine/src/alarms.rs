//! Alarms: the lifecycle of what the anomaly detectors find, as operators see it.
//!
//! A twin's detector (in its shard) decides, reading by reading, whether the twin is in an
//! anomalous condition; [`AlarmBook`] turns those decisions into alarms: one alarm per fault
//! (a condition that clears and comes back within [`AlarmPolicy::reopen_within`] reopens the
//! same alarm instead of raising a new one), with a severity that only escalates, and an
//! explanation (which signals, expected vs observed, since when, each signal's part).
//!
//! Lifecycle: `active` (raised, not acknowledged) → `acknowledged` (an operator has seen it) →
//! `cleared` (the condition is gone, or an operator cleared it). `shelved` hides an alarm
//! until a time; it returns to `active` then if the condition is still present. Feedback
//! (false alarm / confirmed with a fault kind) is kept on the alarm: it is the labelled history
//! later training uses, and it adapts the twin's detector.
//!
//! The book is plain data (no IO, no clock): times come from readings and from the caller.
//! Persistence is an append-only JSON-lines log, one line per alarm version, replayed at open
//! and rewritten when it holds many stale versions.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use doppel_analytics::{ContributionKind, Score};
use doppel_model::{format_ts, Timestamp};
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// Where an alarm is in its lifecycle.
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
pub enum AlarmState {
    Active,
    Acknowledged,
    Shelved,
    Cleared,
}

impl AlarmState {
    pub fn parse(s: &str) -> Option<AlarmState> {
        Some(match s {
            "active" => AlarmState::Active,
            "acknowledged" => AlarmState::Acknowledged,
            "shelved" => AlarmState::Shelved,
            "cleared" => AlarmState::Cleared,
            _ => return None,
        })
    }

    pub const ALL: [AlarmState; 4] = [
        AlarmState::Active,
        AlarmState::Acknowledged,
        AlarmState::Shelved,
        AlarmState::Cleared,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Active => "active",
            AlarmState::Acknowledged => "acknowledged",
            AlarmState::Shelved => "shelved",
            AlarmState::Cleared => "cleared",
        }
    }

    /// Not cleared: the alarm still needs attention (or is shelved).
    pub fn is_open(self) -> bool {
        self != AlarmState::Cleared
    }
}

/// How urgent an alarm is. Ordered: `Warning < Major < Critical`.
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
pub enum Severity {
    Warning,
    Major,
    Critical,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s {
            "warning" => Severity::Warning,
            "major" => Severity::Major,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }

    /// Severity of a score: a value outside the model's declared normal range, or a
    /// deviation far beyond the threshold, is critical.
    fn of(score: &Score) -> Severity {
        let out_of_range = score
            .per_signal
            .iter()
            .any(|c| c.kind == ContributionKind::Range && c.score >= 0.5);
        if out_of_range || score.total >= 0.95 {
            Severity::Critical
        } else if score.total >= 0.8 {
            Severity::Major
        } else {
            Severity::Warning
        }
    }
}

/// One signal's part in an alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlarmSignal {
    pub signal: String,
    /// The detector that saw it: level, rate, stuck, dropout, range, shift, multivariate.
    #[schema(value_type = String)]
    pub kind: ContributionKind,
    /// Highest contribution of this signal during the alarm (0..1; 0.5 is the threshold).
    pub score: f64,
    /// What the twin's learned behaviour expected, at that highest contribution.
    pub expected: f64,
    /// What the signal read then (`null` for a dropout).
    pub observed: Option<f64>,
    /// When this signal first contributed to the alarm (RFC 3339).
    pub since: String,
    #[serde(rename = "since_ts")]
    pub since_ts: Timestamp,
}

/// Operator feedback on an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing was wrong: the twin's detector becomes less sensitive.
    FalseAlarm,
    /// A real fault: the detector becomes slightly more sensitive.
    Confirmed,
}

/// Feedback as stored on the alarm: the label later training uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Feedback {
    pub verdict: Verdict,
    /// The fault found, for a confirmed alarm (e.g. `bearing_wear`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Token id of the operator.
    pub by: String,
    pub at: String,
}

/// One step of an alarm's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transition {
    pub at: String,
    /// `raised`, `escalated`, `reopened`, `acknowledged`, `shelved`, `unshelved`,
    /// `cleared`, `feedback`.
    pub what: String,
    /// Token id of the operator; absent for the detector's own transitions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An alarm on one twin, with its explanation and history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alarm {
    pub id: String,
    pub twin: String,
    pub model: String,
    pub state: AlarmState,
    pub severity: Severity,
    /// True while the detector still sees the anomalous condition.
    pub condition: bool,
    /// Reading time since which the condition has been gone while the alarm stays open: it
    /// clears once that lasts [`AlarmPolicy::clear_after`] (a condition that returns
    /// meanwhile continues this alarm, not a new one). Not in the log: such an alarm is
    /// still open there, and after a restart the twin's next normal reading starts the delay
    /// again.
    #[serde(skip)]
    pub normal_since_ts: Option<Timestamp>,
    /// One-line summary, e.g. "bearing_temp above expected (level)".
    pub summary: String,
    /// Time of the reading that raised it (RFC 3339 and ns).
    pub raised_at: String,
    pub raised_ts: Timestamp,
    /// Time of the latest reading that kept it (or last kept it) active.
    pub last_ts: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleared_at: Option<String>,
    pub peak_score: f64,
    pub last_score: f64,
    /// How many times the condition came back while this alarm was open or recently cleared.
    pub occurrences: u32,
    /// Signals that contributed, highest score first.
    pub signals: Vec<AlarmSignal>,
    pub acknowledged: bool,
    /// Until when a shelved alarm stays hidden (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shelved_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shelved_until_ts: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Feedback>,
    pub history: Vec<Transition>,
}

/// Most contributing signals kept on an alarm.
const MAX_SIGNALS: usize = 8;
/// Most history entries kept on an alarm (the first and the latest ones).
const MAX_HISTORY: usize = 64;

impl Alarm {
    /// Back in sight: active, or acknowledged if an operator has seen it; not shelved.
    fn unhide(&mut self) {
        self.state = if self.acknowledged {
            AlarmState::Acknowledged
        } else {
            AlarmState::Active
        };
        self.shelved_until = None;
        self.shelved_until_ts = None;
    }

    /// Closes the alarm at `at` (by the detector when `by` is `None`).
    fn close(&mut self, at: Timestamp, by: Option<&str>, note: Option<&str>) {
        self.state = AlarmState::Cleared;
        self.condition = false;
        self.normal_since_ts = None;
        self.cleared_at = Some(format_ts(at));
        self.shelved_until = None;
        self.shelved_until_ts = None;
        self.push_history(at, "cleared", by, note);
    }

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

    /// Merges a scored reading's contributions into the explanation. A score names each
    /// (signal, kind) once, as `TwinDetector` makes them.
    fn absorb(&mut self, score: &Score) {
        self.last_score = score.total;
        self.peak_score = self.peak_score.max(score.total);
        self.last_ts = self.last_ts.max(score.ts);
        // Re-sorted and re-summarized only when a contribution changed the list: an open
        // alarm absorbs every scored reading of its twin, mostly with nothing new.
        let mut changed = false;
        for c in &score.per_signal {
            if c.score < 0.25 {
                continue;
            }
            // With the list full, one no stronger than all it holds would be cut again at
            // once (a stable sort puts it after equal scores).
            let floor = (self.signals.len() >= MAX_SIGNALS).then(|| {
                self.signals
                    .iter()
                    .map(|s| s.score)
                    .fold(f64::INFINITY, f64::min)
            });
            match self
                .signals
                .iter_mut()
                .find(|s| s.signal == *c.signal && s.kind == c.kind)
            {
                Some(s) => {
                    if c.score > s.score {
                        s.score = c.score;
                        s.expected = c.expected;
                        s.observed = c.observed;
                        changed = true;
                    }
                }
                None if floor.is_some_and(|f| c.score <= f) => {}
                None => {
                    self.signals.push(AlarmSignal {
                        signal: c.signal.to_string(),
                        kind: c.kind,
                        score: c.score,
                        expected: c.expected,
                        observed: c.observed,
                        since: format_ts(score.ts),
                        since_ts: score.ts,
                    });
                    changed = true;
                }
            }
        }
        if changed || self.summary.is_empty() {
            self.signals.sort_by(|a, b| b.score.total_cmp(&a.score));
            self.signals.truncate(MAX_SIGNALS);
            self.summary = summarize(&self.signals);
        }
    }
}

fn summarize(signals: &[AlarmSignal]) -> String {
    let Some(top) = signals.first() else {
        return "anomalous behaviour".to_string();
    };
    let how = match (top.kind, top.observed) {
        (ContributionKind::Dropout, _) => "stopped reporting".to_string(),
        (ContributionKind::Stuck, _) => "stuck at one value".to_string(),
        (ContributionKind::Range, Some(o)) if o > top.expected => {
            "above its normal range".to_string()
        }
        (ContributionKind::Range, _) => "below its normal range".to_string(),
        (ContributionKind::Rate, _) => "changing unusually fast".to_string(),
        (ContributionKind::Multivariate, _) => "inconsistent with the other signals".to_string(),
        (_, Some(o)) if o > top.expected => "above expected".to_string(),
        (_, _) => "below expected".to_string(),
    };
    let kind = serde_json::to_value(top.kind)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let others = signals.len() - 1;
    if others == 0 {
        format!("{} {how} ({kind})", top.signal)
    } else {
        format!("{} {how} ({kind}) and {others} more", top.signal)
    }
}

/// What changed in the book, for events, MQTT and webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlarmChange {
    Raised,
    Reopened,
    Escalated,
    Acknowledged,
    Shelved,
    Unshelved,
    Cleared,
    Feedback,
}

impl AlarmChange {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmChange::Raised => "raised",
            AlarmChange::Reopened => "reopened",
            AlarmChange::Escalated => "escalated",
            AlarmChange::Acknowledged => "acknowledged",
            AlarmChange::Shelved => "shelved",
            AlarmChange::Unshelved => "unshelved",
            AlarmChange::Cleared => "cleared",
            AlarmChange::Feedback => "feedback",
        }
    }
}

/// The default [`AlarmPolicy::clear_after`]: 10 s of reading time.
pub const CLEAR_AFTER: i64 = 10 * 1_000_000_000;

/// Tuning of the book.
#[derive(Debug, Clone)]
pub struct AlarmPolicy {
    /// A twin's condition that comes back within this many nanoseconds (reading time) of its
    /// alarm clearing reopens that alarm: one fault, one alarm.
    pub reopen_within: i64,
    /// Cleared alarms kept (newest first) beyond the open ones.
    pub keep_cleared: usize,
    /// Off-delay (ISA-18.2): an alarm clears by itself only once its condition has been gone
    /// for this many nanoseconds of reading time. A value hovering at a limit then makes one
    /// alarm that stays open, not a raise or reopen and a clear per crossing (chattering,
    /// which buries operators and costs a logged, published change each time). 0 clears at
    /// the first normal reading.
    pub clear_after: i64,
}

impl Default for AlarmPolicy {
    fn default() -> Self {
        AlarmPolicy {
            reopen_within: 15 * 60 * 1_000_000_000,
            keep_cleared: 10_000,
            clear_after: CLEAR_AFTER,
        }
    }
}

impl AlarmPolicy {
    /// The default policy without the off-delay: a condition's end clears at once.
    pub fn at_once() -> Self {
        AlarmPolicy {
            clear_after: 0,
            ..AlarmPolicy::default()
        }
    }
}

/// Errors of operator actions on alarms.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AlarmError {
    #[error("alarm `{0}` not found")]
    NotFound(String),
    #[error("alarm `{id}` is {state:?}: {why}")]
    Conflict {
        id: String,
        state: AlarmState,
        why: &'static str,
    },
}

/// Which alarms to list.
#[derive(Debug, Clone, Default)]
pub struct AlarmQuery {
    pub twin: Option<String>,
    pub states: Vec<AlarmState>,
    pub min_severity: Option<Severity>,
    pub limit: usize,
}

/// Every alarm, open and recently cleared.
#[derive(Debug, Default)]
pub struct AlarmBook {
    policy: AlarmPolicy,
    alarms: BTreeMap<u64, Alarm>,
    /// Twin → its latest alarm (open, or cleared and still reopenable).
    latest: HashMap<String, u64>,
    next_id: u64,
}

/// The alarm id in its public form.
fn alarm_id(n: u64) -> String {
    format!("A-{n:06}")
}

fn parse_id(id: &str) -> Option<u64> {
    id.strip_prefix("A-")?.parse().ok()
}

impl AlarmBook {
    pub fn new(policy: AlarmPolicy) -> Self {
        AlarmBook {
            policy,
            alarms: BTreeMap::new(),
            latest: HashMap::new(),
            next_id: 1,
        }
    }

    /// Applies a twin's scored reading. `was_anomaly` is the detector's decision before this
    /// reading. Returns the alarm and what changed, when something worth telling did.
    pub fn on_score(
        &mut self,
        twin: &str,
        model: &str,
        was_anomaly: bool,
        score: &Score,
    ) -> Option<(Alarm, AlarmChange)> {
        let ts = score.ts;
        let latest = self.latest.get(twin).copied();
        match (was_anomaly, score.is_anomaly) {
            (false, true) => {
                // Reopen the twin's latest alarm if it cleared only recently.
                if let Some(n) = latest {
                    let reopen = self.alarms.get(&n).is_some_and(|a| {
                        a.state == AlarmState::Cleared
                            && a.feedback.is_none()
                            && ts.saturating_sub(a.last_ts) <= self.policy.reopen_within
                    });
                    if reopen {
                        let a = self.alarms.get_mut(&n)?;
                        a.unhide();
                        a.condition = true;
                        a.cleared_at = None;
                        a.occurrences += 1;
                        a.severity = a.severity.max(Severity::of(score));
                        a.absorb(score);
                        a.push_history(ts, "reopened", None, None);
                        return Some((a.clone(), AlarmChange::Reopened));
                    }
                    // An open alarm whose condition had been reset by an operator clear,
                    // or had ended less than `clear_after` ago: the same alarm goes on.
                    if let Some(a) = self.alarms.get_mut(&n) {
                        if a.state.is_open() {
                            a.condition = true;
                            a.normal_since_ts = None;
                            a.absorb(score);
                            return None;
                        }
                    }
                }
                let n = self.next_id;
                self.next_id += 1;
                let mut a = Alarm {
                    id: alarm_id(n),
                    twin: twin.to_string(),
                    model: model.to_string(),
                    state: AlarmState::Active,
                    severity: Severity::of(score),
                    condition: true,
                    normal_since_ts: None,
                    summary: String::new(),
                    raised_at: format_ts(ts),
                    raised_ts: ts,
                    last_ts: ts,
                    cleared_at: None,
                    peak_score: score.total,
                    last_score: score.total,
                    occurrences: 1,
                    signals: Vec::new(),
                    acknowledged: false,
                    shelved_until: None,
                    shelved_until_ts: None,
                    feedback: None,
                    history: Vec::new(),
                };
                a.absorb(score);
                a.push_history(ts, "raised", None, None);
                self.latest.insert(twin.to_string(), n);
                self.alarms.insert(n, a.clone());
                self.trim();
                Some((a, AlarmChange::Raised))
            }
            (true, true) => {
                let a = self.alarms.get_mut(&latest?)?;
                if !a.state.is_open() {
                    return None;
                }
                a.absorb(score);
                let sev = Severity::of(score);
                let shelf_over = a.state == AlarmState::Shelved
                    && a.shelved_until_ts.is_some_and(|until| ts >= until);
                if shelf_over {
                    a.unhide();
                    a.push_history(ts, "unshelved", None, Some("shelf time over"));
                    return Some((a.clone(), AlarmChange::Unshelved));
                }
                if sev > a.severity {
                    a.severity = sev;
                    // An escalation needs a fresh look.
                    if a.state == AlarmState::Acknowledged {
                        a.state = AlarmState::Active;
                        a.acknowledged = false;
                    }
                    a.push_history(ts, "escalated", None, None);
                    return Some((a.clone(), AlarmChange::Escalated));
                }
                None
            }
            (true, false) => {
                let clear_after = self.policy.clear_after;
                let a = self.alarms.get_mut(&latest?)?;
                a.last_ts = a.last_ts.max(ts);
                a.condition = false;
                if !a.state.is_open() {
                    return None;
                }
                if clear_after > 0 {
                    a.normal_since_ts.get_or_insert(ts);
                    return None;
                }
                a.close(ts, None, Some("condition returned to normal"));
                Some((a.clone(), AlarmChange::Cleared))
            }
            (false, false) => {
                // The end of an off-delay (the detector task sends one normal score then).
                let clear_after = self.policy.clear_after;
                let a = self.alarms.get_mut(&latest?)?;
                let since = a.normal_since_ts?;
                if !a.state.is_open() || a.condition || ts.saturating_sub(since) < clear_after {
                    return None;
                }
                a.last_ts = a.last_ts.max(ts);
                a.close(ts, None, Some("condition returned to normal"));
                Some((a.clone(), AlarmChange::Cleared))
            }
        }
    }

    fn get_mut(&mut self, id: &str) -> Result<&mut Alarm, AlarmError> {
        parse_id(id)
            .and_then(|n| self.alarms.get_mut(&n))
            .ok_or_else(|| AlarmError::NotFound(id.to_string()))
    }

    pub fn get(&self, id: &str) -> Option<&Alarm> {
        self.alarms.get(&parse_id(id)?)
    }

    /// An operator has seen the alarm.
    pub fn acknowledge(
        &mut self,
        id: &str,
        by: &str,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<(Alarm, AlarmChange), AlarmError> {
        let a = self.get_mut(id)?;
        if a.acknowledged {
            return Err(AlarmError::Conflict {
                id: id.to_string(),
                state: a.state,
                why: "already acknowledged",
            });
        }
        a.acknowledged = true;
        if a.state == AlarmState::Active {
            a.state = AlarmState::Acknowledged;
        }
        a.push_history(now, "acknowledged", Some(by), note);
        Ok((a.clone(), AlarmChange::Acknowledged))
    }

    /// Hides an open alarm until `until`; it comes back if its condition outlasts that.
    pub fn shelve(
        &mut self,
        id: &str,
        until: Timestamp,
        by: &str,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<(Alarm, AlarmChange), AlarmError> {
        let a = self.get_mut(id)?;
        if !a.state.is_open() {
            return Err(AlarmError::Conflict {
                id: id.to_string(),
                state: a.state,
                why: "a cleared alarm cannot be shelved",
            });
        }
        a.state = AlarmState::Shelved;
        a.shelved_until = Some(format_ts(until));
        a.shelved_until_ts = Some(until);
        a.push_history(now, "shelved", Some(by), note);
        Ok((a.clone(), AlarmChange::Shelved))
    }

    pub fn unshelve(
        &mut self,
        id: &str,
        by: &str,
        now: Timestamp,
    ) -> Result<(Alarm, AlarmChange), AlarmError> {
        let a = self.get_mut(id)?;
        if a.state != AlarmState::Shelved {
            return Err(AlarmError::Conflict {
                id: id.to_string(),
                state: a.state,
                why: "only a shelved alarm can be unshelved",
            });
        }
        a.unhide();
        a.push_history(now, "unshelved", Some(by), None);
        Ok((a.clone(), AlarmChange::Unshelved))
    }

    /// An operator clears the alarm. If the condition persists, the twin's detector is reset
    /// by the caller so that it raises a new alarm after its usual persistence.
    pub fn clear(
        &mut self,
        id: &str,
        by: &str,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<(Alarm, AlarmChange), AlarmError> {
        let a = self.get_mut(id)?;
        if !a.state.is_open() {
            return Err(AlarmError::Conflict {
                id: id.to_string(),
                state: a.state,
                why: "already cleared",
            });
        }
        a.close(now, Some(by), note);
        let twin = a.twin.clone();
        let out = a.clone();
        // A cleared-by-operator alarm is not reopened: the next raise is a new alarm.
        self.latest.remove(&twin);
        Ok((out, AlarmChange::Cleared))
    }

    /// Records operator feedback (replacing earlier feedback on the same alarm).
    pub fn feedback(
        &mut self,
        id: &str,
        feedback: Feedback,
        now: Timestamp,
    ) -> Result<(Alarm, AlarmChange), AlarmError> {
        let a = self.get_mut(id)?;
        let note = match feedback.verdict {
            Verdict::FalseAlarm => "false alarm".to_string(),
            Verdict::Confirmed => match &feedback.fault_kind {
                Some(k) => format!("confirmed: {k}"),
                None => "confirmed".to_string(),
            },
        };
        let by = feedback.by.clone();
        let false_alarm = feedback.verdict == Verdict::FalseAlarm;
        a.feedback = Some(feedback);
        a.push_history(now, "feedback", Some(&by), Some(&note));
        // A false alarm is over: the twin's detector forgets its decision and learns the
        // situation as normal, so no end of the condition will come to clear it.
        if false_alarm && a.state.is_open() {
            a.close(now, Some(&by), Some("false alarm"));
            let (twin, out) = (a.twin.clone(), a.clone());
            self.latest.remove(&twin);
            return Ok((out, AlarmChange::Cleared));
        }
        Ok((a.clone(), AlarmChange::Feedback))
    }

    /// Alarms matching `q`, newest first.
    pub fn list(&self, q: &AlarmQuery) -> Vec<Alarm> {
        let limit = if q.limit == 0 { usize::MAX } else { q.limit };
        self.alarms
            .values()
            .rev()
            .filter(|a| q.twin.as_deref().is_none_or(|t| a.twin == t))
            .filter(|a| q.states.is_empty() || q.states.contains(&a.state))
            .filter(|a| q.min_severity.is_none_or(|s| a.severity >= s))
            .take(limit)
            .cloned()
            .collect()
    }

    /// The twin's open alarm, if any.
    pub fn open_for(&self, twin: &str) -> Option<&Alarm> {
        let n = self.latest.get(twin)?;
        self.alarms.get(n).filter(|a| a.state.is_open())
    }

    /// Counts of open alarms by state.
    pub fn counts(&self) -> BTreeMap<AlarmState, usize> {
        let mut out = BTreeMap::new();
        for a in self.alarms.values() {
            *out.entry(a.state).or_insert(0) += 1;
        }
        out
    }

    pub fn len(&self) -> usize {
        self.alarms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alarms.is_empty()
    }

    /// Forgets the alarms of a deleted twin.
    pub fn remove_twin(&mut self, twin: &str) {
        self.alarms.retain(|_, a| a.twin != twin);
        self.latest.remove(twin);
    }

    /// Drops the oldest cleared alarms beyond the policy's limit.
    fn trim(&mut self) {
        let cleared = self
            .alarms
            .values()
            .filter(|a| a.state == AlarmState::Cleared)
            .count();
        let mut excess = cleared.saturating_sub(self.policy.keep_cleared);
        if excess == 0 {
            return;
        }
        let drop: Vec<u64> = self
            .alarms
            .iter()
            .filter(|(_, a)| a.state == AlarmState::Cleared)
            .map(|(n, _)| *n)
            .take_while(|_| {
                let go = excess > 0;
                excess = excess.saturating_sub(1);
                go
            })
            .collect();
        for n in drop {
            if let Some(a) = self.alarms.remove(&n) {
                if self.latest.get(&a.twin) == Some(&n) {
                    self.latest.remove(&a.twin);
                }
            }
        }
    }

    /// Puts back an alarm read from the log (the latest version of each id wins).
    fn restore(&mut self, mut a: Alarm) {
        let Some(n) = parse_id(&a.id) else { return };
        // Read from JSON, its lists grew by doubling; the alarm is kept for long.
        a.signals.shrink_to_fit();
        a.history.shrink_to_fit();
        self.next_id = self.next_id.max(n + 1);
        let twin = a.twin.clone();
        let newer = self.latest.get(&twin).is_none_or(|&m| m <= n);
        // An alarm an operator cleared is never reopened (as before the restart).
        let operator_cleared = a.state == AlarmState::Cleared
            && a.history
                .last()
                .is_some_and(|t| t.what == "cleared" && t.by.is_some());
        self.alarms.insert(n, a);
        if newer {
            if operator_cleared {
                self.latest.remove(&twin);
            } else {
                self.latest.insert(twin, n);
            }
        }
    }
}

/// The alarm log: `alarms.jsonl` in the data directory, one JSON alarm per line, appended on
/// every change and fsynced, one fsync per group of changes the alarm service takes at once
/// (changes are usually rare: raise, escalate, operator actions, clear; a flapping fleet can
/// make hundreds a second).
#[derive(Debug)]
pub struct AlarmLog {
    file: crate::jsonl::JsonLines,
}

impl AlarmLog {
    /// Opens (or creates) the log and replays it into a book. A torn last line (crash while
    /// appending) is skipped and rewritten away.
    pub fn open(dir: &Path, policy: AlarmPolicy) -> Result<(AlarmLog, AlarmBook), EngineError> {
        let mut book = AlarmBook::new(policy);
        let (file, bad) =
            crate::jsonl::JsonLines::open(dir.join("alarms.jsonl"), "alarm", |r: Alarm| {
                book.restore(r)
            })?;
        book.trim();
        let mut log = AlarmLog { file };
        if bad > 0 || log.file.lines() > 2 * book.len() + 1000 {
            log.rewrite(&book)?;
        }
        Ok((log, book))
    }

    /// Appends one version durably; compacts the log when it is mostly stale versions.
    pub fn append(&mut self, record: &Alarm, book: &AlarmBook) -> Result<(), EngineError> {
        self.file.append(record)?;
        if self.is_stale(book.len()) {
            self.rewrite(book)?;
        }
        Ok(())
    }

    /// Appends versions durably, in order, with one write and one fsync for all of them
    /// (group commit). The caller compacts when [`AlarmLog::is_stale`].
    pub fn append_all<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a Alarm>,
    ) -> Result<(), EngineError> {
        self.file.append_all(records)
    }

    /// Whether the log is mostly stale versions for a book of `alarms` alarms.
    pub fn is_stale(&self, alarms: usize) -> bool {
        self.file.lines() > 4 * alarms + 1000
    }

    /// How many fsyncs appends have made since the log was opened.
    pub fn syncs(&self) -> u64 {
        self.file.syncs()
    }

    /// Replaces the log with one line per record (tmp, fsync, rename, fsync dir).
    pub fn rewrite(&mut self, book: &AlarmBook) -> Result<(), EngineError> {
        self.file.rewrite(book.alarms.values())
    }
}

/// Shared, cheap-to-clone handle for events.
pub type AlarmRef = Arc<Alarm>;

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_analytics::SignalContribution;
    use std::fs;

    const S: i64 = 1_000_000_000;

    fn score(ts: i64, total: f64, is_anomaly: bool, kind: ContributionKind) -> Score {
        Score {
            ts,
            total,
            is_anomaly,
            warming_up: false,
            per_signal: vec![SignalContribution {
                signal: Arc::from("bearing_temp"),
                kind,
                score: total,
                expected: 60.0,
                observed: Some(70.0),
            }],
        }
    }

    /// Feeds (score, anomaly) decisions in order and returns the changes.
    fn feed(book: &mut AlarmBook, steps: &[(i64, f64, bool)]) -> Vec<AlarmChange> {
        let mut was = false;
        let mut out = Vec::new();
        for &(ts, total, anomaly) in steps {
            let s = score(ts, total, anomaly, ContributionKind::Level);
            if let Some((_, c)) = book.on_score("p1", "pump", was, &s) {
                out.push(c);
            }
            was = anomaly;
        }
        out
    }

    /// What `absorb` did before it skipped unchanged lists: push every new contribution,
    /// sort, cut, summarize, each time.
    fn absorb_every_time(a: &mut Alarm, score: &Score) {
        a.last_score = score.total;
        a.peak_score = a.peak_score.max(score.total);
        a.last_ts = a.last_ts.max(score.ts);
        for c in score.per_signal.iter().filter(|c| c.score >= 0.25) {
            match a
                .signals
                .iter_mut()
                .find(|s| s.signal == *c.signal && s.kind == c.kind)
            {
                Some(s) if c.score > s.score => {
                    (s.score, s.expected, s.observed) = (c.score, c.expected, c.observed);
                }
                Some(_) => {}
                None => a.signals.push(AlarmSignal {
                    signal: c.signal.to_string(),
                    kind: c.kind,
                    score: c.score,
                    expected: c.expected,
                    observed: c.observed,
                    since: format_ts(score.ts),
                    since_ts: score.ts,
                }),
            }
        }
        a.signals.sort_by(|x, y| y.score.total_cmp(&x.score));
        a.signals.truncate(MAX_SIGNALS);
        a.summary = summarize(&a.signals);
    }

    proptest::proptest! {
        /// Skipping the sort and summary when nothing changed, and contributions too weak
        /// to stay, leaves the alarm exactly as absorbing everything would.
        #[test]
        fn absorbing_only_changes_matches_absorbing_everything(
            steps in proptest::collection::vec(
                proptest::collection::vec((0usize..12, 0usize..3, 0u8..8), 0..14), 1..30),
        ) {
            let mut book = AlarmBook::new(AlarmPolicy::default());
            let first = score(0, 0.9, true, ContributionKind::Level);
            let (mut fast, _) = book.on_score("p1", "pump", false, &first).unwrap();
            let mut slow = fast.clone();
            let kinds = [ContributionKind::Level, ContributionKind::Range, ContributionKind::Multivariate];
            for (k, contributions) in steps.into_iter().enumerate() {
                let s = Score {
                    ts: (k as i64 + 1) * S,
                    total: 0.8,
                    is_anomaly: true,
                    warming_up: false,
                    // A score names each (signal, kind) once, as a detector makes them.
                    per_signal: contributions
                        .into_iter()
                        .filter({
                            let mut seen = std::collections::HashSet::new();
                            move |&(sig, kind, _)| seen.insert((sig, kind))
                        })
                        .map(|(sig, kind, eighths)| SignalContribution {
                            signal: Arc::from(format!("s{sig}")),
                            kind: kinds[kind],
                            score: f64::from(eighths) / 8.0,
                            expected: 1.0,
                            observed: Some(f64::from(eighths)),
                        })
                        .collect(),
                };
                fast.absorb(&s);
                absorb_every_time(&mut slow, &s);
                proptest::prop_assert_eq!(
                    serde_json::to_value(&fast).unwrap(),
                    serde_json::to_value(&slow).unwrap()
                );
            }
        }
    }

    #[test]
    fn a_chattering_condition_keeps_one_open_alarm_until_normal_for_the_off_delay() {
        let mut book = AlarmBook::new(AlarmPolicy::default());
        let clear_after = AlarmPolicy::default().clear_after;
        assert!(clear_after > 2 * S);
        // In and out of the condition every second: one alarm, nothing else to tell.
        let mut steps = vec![(0, 0.1, false)];
        for k in 1..=20 {
            steps.push((k * S, if k % 2 == 1 { 0.6 } else { 0.3 }, k % 2 == 1));
        }
        use AlarmChange::*;
        assert_eq!(feed(&mut book, &steps), vec![Raised]);
        let a = book.get("A-000001").unwrap();
        assert!(a.state.is_open() && !a.condition);
        assert_eq!(a.normal_since_ts, Some(20 * S), "since the latest end");
        // A normal reading before the delay is over changes nothing; one after it clears.
        let normal = |ts| score(ts, 0.1, false, ContributionKind::Level);
        assert!(book
            .on_score("p1", "pump", false, &normal(20 * S + clear_after - 1))
            .is_none());
        let (a, c) = book
            .on_score("p1", "pump", false, &normal(20 * S + clear_after))
            .unwrap();
        assert_eq!((c, a.state), (Cleared, AlarmState::Cleared));
        assert_eq!(a.normal_since_ts, None);
        assert!(book
            .on_score("p1", "pump", false, &normal(21 * S + clear_after))
            .is_none());
        // Back within `reopen_within`: the same alarm reopens.
        let s = score(100 * S, 0.7, true, ContributionKind::Level);
        assert_eq!(book.on_score("p1", "pump", false, &s).unwrap().1, Reopened);
    }

    #[test]
    fn a_restored_alarm_holds_no_spare_room() {
        let mut book = AlarmBook::new(AlarmPolicy::at_once());
        let steps = [
            (0, 0.1, false),
            (S, 0.6, true),
            (2 * S, 0.85, true),
            (3 * S, 0.3, false),
            (60 * S, 0.7, true),
            (61 * S, 0.2, false),
            (62 * S, 0.7, true),
        ];
        feed(&mut book, &steps);
        let a = book.get("A-000001").unwrap().clone();
        assert!(a.history.len() >= 5, "{:?}", a.history);
        let mut again = AlarmBook::new(AlarmPolicy::at_once());
        again.restore(serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap());
        let b = again.get("A-000001").unwrap();
        assert_eq!((&b.history, &b.signals), (&a.history, &a.signals));
        assert_eq!(b.history.len(), b.history.capacity());
        assert_eq!(b.signals.len(), b.signals.capacity());
    }

    #[test]
    fn raise_escalate_clear_and_reopen_is_one_alarm() {
        let mut book = AlarmBook::new(AlarmPolicy::at_once());
        let changes = feed(
            &mut book,
            &[
                (0, 0.1, false),
                (S, 0.6, true),
                (2 * S, 0.85, true),
                (3 * S, 0.3, false),
                (60 * S, 0.7, true),
                (61 * S, 0.2, false),
            ],
        );
        use AlarmChange::*;
        assert_eq!(changes, vec![Raised, Escalated, Cleared, Reopened, Cleared]);
        assert_eq!(book.len(), 1);
        let a = book.get("A-000001").unwrap();
        assert_eq!(a.occurrences, 2);
        assert_eq!(a.severity, Severity::Major);
        assert_eq!(a.signals[0].signal, "bearing_temp");
        assert_eq!(a.signals[0].since_ts, S);
        assert!(a.summary.starts_with("bearing_temp above expected"));
        // Much later: a new alarm.
        let s = score(3600 * S, 0.7, true, ContributionKind::Level);
        let (a, c) = book.on_score("p1", "pump", false, &s).unwrap();
        assert_eq!((a.id.as_str(), c), ("A-000002", Raised));
    }

    #[test]
    fn operator_lifecycle() {
        let mut book = AlarmBook::new(AlarmPolicy::at_once());
        feed(&mut book, &[(S, 0.6, true)]);
        let id = "A-000001";
        let (a, _) = book.acknowledge(id, "op", Some("seen"), 2 * S).unwrap();
        assert_eq!(a.state, AlarmState::Acknowledged);
        assert!(matches!(
            book.acknowledge(id, "op", None, 2 * S),
            Err(AlarmError::Conflict { .. })
        ));
        let (a, _) = book.shelve(id, 10 * S, "op", None, 3 * S).unwrap();
        assert_eq!(a.state, AlarmState::Shelved);
        // The shelf expires while the condition is still present.
        let s = score(11 * S, 0.6, true, ContributionKind::Level);
        let (a, c) = book.on_score("p1", "pump", true, &s).unwrap();
        assert_eq!(
            (a.state, c),
            (AlarmState::Acknowledged, AlarmChange::Unshelved)
        );
        let fb = Feedback {
            verdict: Verdict::Confirmed,
            fault_kind: Some("bearing_wear".into()),
            note: None,
            by: "op".into(),
            at: format_ts(12 * S),
        };
        book.feedback(id, fb, 12 * S).unwrap();
        let (a, _) = book.clear(id, "op", None, 13 * S).unwrap();
        assert_eq!(a.state, AlarmState::Cleared);
        assert!(book.clear(id, "op", None, 13 * S).is_err());
        assert!(book.open_for("p1").is_none());
        assert_eq!(
            book.acknowledge("A-999", "op", None, 0),
            Err(AlarmError::NotFound("A-999".into()))
        );
        assert_eq!(
            book.acknowledge("nonsense", "op", None, 0).map(|_| ()),
            Err(AlarmError::NotFound("nonsense".into()))
        );
    }

    #[test]
    fn a_false_alarm_verdict_clears_an_open_alarm() {
        let mut book = AlarmBook::new(AlarmPolicy::at_once());
        feed(&mut book, &[(S, 0.6, true)]);
        let fb = Feedback {
            verdict: Verdict::FalseAlarm,
            fault_kind: None,
            note: None,
            by: "op".into(),
            at: format_ts(2 * S),
        };
        let (a, c) = book.feedback("A-000001", fb, 2 * S).unwrap();
        assert_eq!((a.state, c), (AlarmState::Cleared, AlarmChange::Cleared));
        assert!(book.open_for("p1").is_none());
        // The next anomaly is a new alarm, not the false one reopened.
        let s = score(3 * S, 0.7, true, ContributionKind::Level);
        let (a, _) = book.on_score("p1", "pump", false, &s).unwrap();
        assert_eq!(a.id, "A-000002");
    }

    #[test]
    fn out_of_range_is_critical() {
        let mut book = AlarmBook::new(AlarmPolicy::at_once());
        let s = score(S, 0.6, true, ContributionKind::Range);
        let (a, _) = book.on_score("p1", "pump", false, &s).unwrap();
        assert_eq!(a.severity, Severity::Critical);
        assert!(a.summary.contains("above its normal range"));
    }

    #[test]
    fn log_replays_latest_versions_and_survives_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, mut book) = AlarmLog::open(dir.path(), AlarmPolicy::at_once()).unwrap();
            for (ts, an) in [(S, true), (2 * S, false), (7200 * S, true)] {
                let s = score(ts, 0.7, an, ContributionKind::Level);
                let was = !an;
                if let Some((a, _)) = book.on_score("p1", "pump", was, &s) {
                    log.append(&a, &book).unwrap();
                }
            }
            let (a, _) = book.acknowledge("A-000002", "op", None, 7201 * S).unwrap();
            log.append(&a, &book).unwrap();
        }
        // A crash in the middle of an append.
        let p = dir.path().join("alarms.jsonl");
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut f, b"{\"id\":\"A-0000").unwrap();
        drop(f);
        let (_, book) = AlarmLog::open(dir.path(), AlarmPolicy::at_once()).unwrap();
        assert_eq!(book.len(), 2);
        assert_eq!(book.get("A-000001").unwrap().state, AlarmState::Cleared);
        assert_eq!(
            book.get("A-000002").unwrap().state,
            AlarmState::Acknowledged
        );
        assert_eq!(book.open_for("p1").unwrap().id, "A-000002");
        // The torn line was rewritten away; the next id continues.
        let text = fs::read_to_string(&p).unwrap();
        assert!(text
            .lines()
            .all(|l| serde_json::from_str::<Alarm>(l).is_ok()));
        let mut book = book;
        let (cleared, _) = book.clear("A-000002", "op", None, 8000 * S).unwrap();
        // Restored from the log, an operator-cleared alarm is not reopened either.
        let mut restored = AlarmBook::new(AlarmPolicy::at_once());
        restored.restore(book.get("A-000001").unwrap().clone());
        restored.restore(cleared);
        let s = score(8001 * S, 0.7, true, ContributionKind::Level);
        let (a, c) = restored.on_score("p1", "pump", false, &s).unwrap();
        assert_eq!((a.id.as_str(), c), ("A-000003", AlarmChange::Raised));
        let s = score(9000 * S, 0.7, true, ContributionKind::Level);
        let (a, _) = book.on_score("p1", "pump", false, &s).unwrap();
        assert_eq!(a.id, "A-000003");
    }
}
