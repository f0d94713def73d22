//! Prometheus metrics of the engine. One registry per engine; the server adds its own
//! collectors to it and renders it at `GET /metrics`.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Counters and gauges describing the data path.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Points accepted and durable, by ingest source.
    pub ingest_points: IntCounterVec,
    /// Readings accepted, by ingest source.
    pub ingest_readings: IntCounterVec,
    /// Requests or messages refused, by source and reason.
    pub ingest_rejected: IntCounterVec,
    /// Seconds from validation to acknowledgement (durable and applied).
    pub ingest_latency: Histogram,
    /// Late readings: stored in history but older than the twin's state.
    pub late_readings: IntCounter,
    /// Events a slow subscriber skipped because it fell behind the live bus.
    pub events_skipped: IntCounter,
    /// Live subscribers connected now.
    pub subscribers: IntGauge,
    pub twins: IntGauge,
    pub models: IntGauge,
    /// Readings scored by the anomaly detectors.
    pub readings_scored: IntCounter,
    /// Alarm changes (raised, escalated, cleared, acknowledged...), by change.
    pub alarm_changes: IntCounterVec,
    /// Alarms kept, by state.
    pub alarms: IntGaugeVec,
    /// Alarm log appends that failed.
    pub alarm_log_errors: IntCounter,
    /// Anomaly scores that could not be written to history, or score updates dropped
    /// because the alarm service was busy.
    pub analytics_dropped: IntCounterVec,
    /// Maintenance advice changes (opened, updated, scheduled, done, withdrawn), by change.
    pub advice_changes: IntCounterVec,
    /// Advice items kept, by state.
    pub advice: IntGaugeVec,
    /// Advice log appends that failed.
    pub advice_log_errors: IntCounter,
    /// Retention cuts made (one per series whose old points were forgotten).
    pub retention_cuts: IntCounter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("doppel".into()), None).unwrap_or_default();
        let ingest_points = IntCounterVec::new(
            Opts::new("ingest_points_total", "Points accepted and durable"),
            &["source"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let ingest_readings = IntCounterVec::new(
            Opts::new("ingest_readings_total", "Readings accepted and durable"),
            &["source"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let ingest_rejected = IntCounterVec::new(
            Opts::new(
                "ingest_rejected_total",
                "Ingest requests or messages refused",
            ),
            &["source", "reason"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let ingest_latency = Histogram::with_opts(
            HistogramOpts::new("ingest_latency_seconds", "Validation to acknowledgement").buckets(
                vec![
                    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0,
                ],
            ),
        )
        .unwrap_or_else(|_| unreachable_metric());
        let late_readings = IntCounter::new(
            "late_readings_total",
            "Readings older than the twin's state: kept in history, state unchanged",
        )
        .unwrap_or_else(|_| unreachable_metric());
        let events_skipped = IntCounter::new(
            "live_events_skipped_total",
            "Live events skipped by subscribers that fell behind",
        )
        .unwrap_or_else(|_| unreachable_metric());
        let subscribers = IntGauge::new("live_subscribers", "Connected live subscribers")
            .unwrap_or_else(|_| unreachable_metric());
        let twins =
            IntGauge::new("twins", "Twins in the catalog").unwrap_or_else(|_| unreachable_metric());
        let models = IntGauge::new("models", "Asset models in the catalog")
            .unwrap_or_else(|_| unreachable_metric());
        let readings_scored = IntCounter::new(
            "anomaly_readings_scored_total",
            "Readings scored by the anomaly detectors",
        )
        .unwrap_or_else(|_| unreachable_metric());
        let alarm_changes = IntCounterVec::new(
            Opts::new("alarm_changes_total", "Alarm changes by kind"),
            &["change"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let alarms = IntGaugeVec::new(Opts::new("alarms", "Alarms kept, by state"), &["state"])
            .unwrap_or_else(|_| unreachable_metric());
        let alarm_log_errors = IntCounter::new(
            "alarm_log_errors_total",
            "Alarm changes that could not be appended to the alarm log",
        )
        .unwrap_or_else(|_| unreachable_metric());
        let analytics_dropped = IntCounterVec::new(
            Opts::new(
                "analytics_dropped_total",
                "Anomaly scores not stored or score updates not delivered, by reason",
            ),
            &["reason"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let advice_changes = IntCounterVec::new(
            Opts::new("advice_changes_total", "Maintenance advice changes by kind"),
            &["change"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let advice = IntGaugeVec::new(
            Opts::new("advice", "Maintenance advice items kept, by state"),
            &["state"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let advice_log_errors = IntCounter::new(
            "advice_log_errors_total",
            "Advice changes that could not be appended to the advice log",
        )
        .unwrap_or_else(|_| unreachable_metric());
        let retention_cuts = IntCounter::new(
            "retention_cuts_total",
            "Series whose points older than their model's retention were forgotten",
        )
        .unwrap_or_else(|_| unreachable_metric());
        for c in [
            Box::new(ingest_points.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(retention_cuts.clone()),
            Box::new(advice_changes.clone()),
            Box::new(advice.clone()),
            Box::new(advice_log_errors.clone()),
            Box::new(readings_scored.clone()),
            Box::new(alarm_changes.clone()),
            Box::new(alarms.clone()),
            Box::new(alarm_log_errors.clone()),
            Box::new(analytics_dropped.clone()),
            Box::new(ingest_readings.clone()),
            Box::new(ingest_rejected.clone()),
            Box::new(ingest_latency.clone()),
            Box::new(late_readings.clone()),
            Box::new(events_skipped.clone()),
            Box::new(subscribers.clone()),
            Box::new(twins.clone()),
            Box::new(models.clone()),
        ] {
            if let Err(e) = registry.register(c) {
                tracing::error!(error = %e, "metric registration failed");
            }
        }
        Metrics {
            registry,
            ingest_points,
            ingest_readings,
            ingest_rejected,
            ingest_latency,
            late_readings,
            events_skipped,
            subscribers,
            twins,
            models,
            readings_scored,
            alarm_changes,
            alarms,
            alarm_log_errors,
            analytics_dropped,
            advice_changes,
            advice,
            advice_log_errors,
            retention_cuts,
        }
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = String::new();
        let families = self.registry.gather();
        if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&families, &mut buf) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        buf
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Metric constructors fail only on malformed names or label sets, which are constants here;
/// a test (`metrics_render`) proves they are well formed.
#[allow(clippy::panic)]
fn unreachable_metric() -> ! {
    panic!("metric definition is malformed")
}

#[cfg(test)]
mod tests {
    #[test]
    fn metrics_render() {
        let m = super::Metrics::new();
        m.ingest_points.with_label_values(&["http"]).inc_by(3);
        let text = m.render();
        assert!(
            text.contains("doppel_ingest_points_total{source=\"http\"} 3"),
            "{text}"
        );
        assert!(text.contains("doppel_live_subscribers 0"), "{text}");
    }
}
