//! The live bus: every applied reading, every alarm change and every maintenance-advice
//! change becomes an [`Event`]
//! broadcast to subscribers (WebSocket, SSE, the MQTT alarm topics, webhooks). The bus is a bounded ring: a subscriber
//! that falls behind skips the oldest events (counted in `live_events_skipped_total`) and
//! never slows ingest.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use doppel_model::{format_ts, Timestamp, Value};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::advice::{AdviceChange, AdviceItem};
use crate::alarms::{Alarm, AlarmChange};
use crate::Metrics;

/// One reading applied to a twin, or one change of an alarm or of advice on a twin.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Event {
    #[schema(value_type = String)]
    pub twin: Arc<str>,
    #[schema(value_type = String)]
    pub model: Arc<str>,
    /// RFC 3339 time of the reading (for an alarm change: of the reading or action behind it).
    pub time: String,
    /// Nanoseconds since the epoch, same instant as `time`.
    pub ts: Timestamp,
    /// `"type": "reading"` with `values` and `late`, `"type": "alarm"` with `change`
    /// and `alarm`, or `"type": "advice"` with `change` and `advice`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub body: EventBody,
    #[serde(skip)]
    json: OnceLock<Arc<str>>,
}

/// What an event carries.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    Reading {
        values: BTreeMap<Arc<str>, Value>,
        /// True when the reading is older than the twin's state: it went to history only.
        late: bool,
    },
    Alarm {
        change: AlarmChange,
        alarm: Arc<Alarm>,
    },
    Advice {
        change: AdviceChange,
        advice: Arc<AdviceItem>,
    },
}

impl Event {
    pub fn new(
        twin: Arc<str>,
        model: Arc<str>,
        ts: Timestamp,
        values: BTreeMap<Arc<str>, Value>,
        late: bool,
    ) -> Event {
        Event {
            twin,
            model,
            time: format_ts(ts),
            ts,
            body: EventBody::Reading { values, late },
            json: OnceLock::new(),
        }
    }

    /// An alarm change as an event.
    pub fn alarm(alarm: Arc<Alarm>, change: AlarmChange, ts: Timestamp) -> Event {
        Event {
            twin: Arc::from(alarm.twin.as_str()),
            model: Arc::from(alarm.model.as_str()),
            time: format_ts(ts),
            ts,
            body: EventBody::Alarm { change, alarm },
            json: OnceLock::new(),
        }
    }

    /// A maintenance-advice change as an event.
    pub fn advice(advice: Arc<AdviceItem>, change: AdviceChange, ts: Timestamp) -> Event {
        Event {
            twin: Arc::from(advice.twin.as_str()),
            model: Arc::from(advice.model.as_str()),
            time: format_ts(ts),
            ts,
            body: EventBody::Advice { change, advice },
            json: OnceLock::new(),
        }
    }

    /// The reading's values, for a reading event.
    pub fn values(&self) -> Option<&BTreeMap<Arc<str>, Value>> {
        match &self.body {
            EventBody::Reading { values, .. } => Some(values),
            EventBody::Alarm { .. } | EventBody::Advice { .. } => None,
        }
    }

    /// The event as JSON, serialized once however many subscribers send it.
    pub fn json(&self) -> Arc<str> {
        self.json
            .get_or_init(|| serde_json::to_string(self).unwrap_or_default().into())
            .clone()
    }
}

/// Which events a subscriber wants. Empty sets mean "all".
#[derive(Debug, Clone)]
pub struct EventFilter {
    pub twins: HashSet<String>,
    pub models: HashSet<String>,
    pub signals: HashSet<String>,
    pub readings: bool,
    pub alarms: bool,
    pub advice: bool,
}

impl Default for EventFilter {
    fn default() -> Self {
        EventFilter {
            twins: HashSet::new(),
            models: HashSet::new(),
            signals: HashSet::new(),
            readings: true,
            alarms: true,
            advice: true,
        }
    }
}

impl EventFilter {
    /// Builds a filter from comma-separated lists as given in query strings.
    pub fn from_lists(twins: Option<&str>, models: Option<&str>, signals: Option<&str>) -> Self {
        let split = |s: Option<&str>| -> HashSet<String> {
            s.map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
        };
        EventFilter {
            twins: split(twins),
            models: split(models),
            signals: split(signals),
            readings: true,
            alarms: true,
            advice: true,
        }
    }

    /// Restricts the filter to event types named in a comma-separated list (`reading`,
    /// `alarm`, `advice`); `None` keeps all. Unknown names are returned as an error.
    pub fn with_types(mut self, types: Option<&str>) -> Result<Self, String> {
        let Some(types) = types else { return Ok(self) };
        self.readings = false;
        self.alarms = false;
        self.advice = false;
        for t in types.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match t {
                "reading" | "readings" => self.readings = true,
                "alarm" | "alarms" => self.alarms = true,
                "advice" => self.advice = true,
                other => {
                    return Err(format!(
                        "unknown event type {other:?}; use reading, alarm, advice"
                    ))
                }
            }
        }
        Ok(self)
    }

    /// The event as this subscriber should see it: `None` when filtered out, the event itself
    /// when it passes whole, or a copy restricted to the wanted signals.
    pub fn apply(&self, ev: &Arc<Event>) -> Option<Arc<Event>> {
        if !self.twins.is_empty() && !self.twins.contains(&*ev.twin) {
            return None;
        }
        if !self.models.is_empty() && !self.models.contains(&*ev.model) {
            return None;
        }
        let (values, late) = match &ev.body {
            EventBody::Alarm { alarm, .. } => {
                let wanted = self.alarms
                    && (self.signals.is_empty()
                        || alarm
                            .signals
                            .iter()
                            .any(|s| self.signals.contains(&s.signal)));
                return wanted.then(|| ev.clone());
            }
            EventBody::Advice { advice, .. } => {
                let wanted = self.advice
                    && (self.signals.is_empty()
                        || advice
                            .recommendation
                            .evidence
                            .iter()
                            .any(|e| self.signals.contains(&e.signal)));
                return wanted.then(|| ev.clone());
            }
            EventBody::Reading { values, late } => (values, *late),
        };
        if !self.readings {
            return None;
        }
        if self.signals.is_empty() || values.keys().all(|k| self.signals.contains(&**k)) {
            return Some(ev.clone());
        }
        let values: BTreeMap<_, _> = values
            .iter()
            .filter(|(k, _)| self.signals.contains(&***k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if values.is_empty() {
            return None;
        }
        Some(Arc::new(Event::new(
            ev.twin.clone(),
            ev.model.clone(),
            ev.ts,
            values,
            late,
        )))
    }
}

/// How many subscriptions want reading events. Shards build a reading's event only while
/// one does: the alarm-only subscribers (MQTT alarm topics, webhooks) are always there, and
/// building and waking them for every reading would cost ingest for nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReadingWatchers(Arc<AtomicUsize>);

impl ReadingWatchers {
    pub(crate) fn any(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 0
    }
}

/// A subscriber's view of the bus.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Arc<Event>>,
    filter: EventFilter,
    metrics: Metrics,
    /// Counted in while this subscription wants readings.
    watchers: Option<ReadingWatchers>,
    /// Events this subscriber skipped because it was too slow.
    pub skipped: u64,
}

impl Subscription {
    pub(crate) fn new(
        rx: broadcast::Receiver<Arc<Event>>,
        filter: EventFilter,
        metrics: Metrics,
        watchers: &ReadingWatchers,
    ) -> Self {
        metrics.subscribers.inc();
        let watchers = filter.readings.then(|| {
            watchers.0.fetch_add(1, Ordering::Relaxed);
            watchers.clone()
        });
        Subscription {
            rx,
            filter,
            metrics,
            watchers,
            skipped: 0,
        }
    }

    /// The next event that passes the filter; `None` when the bus is closed (shutdown).
    pub async fn next(&mut self) -> Option<Arc<Event>> {
        loop {
            match self.rx.recv().await {
                Ok(ev) => {
                    if let Some(ev) = self.filter.apply(&ev) {
                        return Some(ev);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    self.skipped += n;
                    self.metrics.events_skipped.inc_by(n);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.metrics.subscribers.dec();
        if let Some(w) = &self.watchers {
            w.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev() -> Arc<Event> {
        let mut v = BTreeMap::new();
        v.insert(Arc::from("a"), Value::Float(1.0));
        v.insert(Arc::from("b"), Value::Bool(true));
        Arc::new(Event::new("p1".into(), "pump".into(), 0, v, false))
    }

    #[test]
    fn filters() {
        let f = EventFilter::from_lists(Some("p1, p2"), None, Some("b"));
        let e = f.apply(&ev()).unwrap();
        assert_eq!(e.values().unwrap().len(), 1);
        assert!(EventFilter::from_lists(Some("p3"), None, None)
            .apply(&ev())
            .is_none());
        assert!(EventFilter::from_lists(None, Some("motor"), None)
            .apply(&ev())
            .is_none());
        assert!(EventFilter::from_lists(None, None, Some("zz"))
            .apply(&ev())
            .is_none());
        assert!(EventFilter::default().apply(&ev()).is_some());
        assert!(ev().json().contains("\"time\":\"1970-01-01T00:00:00Z\""));
        assert!(ev().json().contains("\"type\":\"reading\""));
        let only_alarms = EventFilter::default().with_types(Some("alarm")).unwrap();
        assert!(only_alarms.apply(&ev()).is_none());
        assert!(EventFilter::default().with_types(Some("nope")).is_err());
        let only_advice = EventFilter::default().with_types(Some("advice")).unwrap();
        assert!(only_advice.advice && !only_advice.alarms && !only_advice.readings);
        assert!(only_advice.apply(&ev()).is_none());
    }
}
