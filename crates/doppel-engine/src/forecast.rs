//! Forecasts of one signal of a twin from its stored history: bucket means at the asked
//! step (`Store::downsample`), complete buckets only, the analytics crate's damped-trend
//! exponential smoothing with prediction intervals, and when the forecast crosses the
//! signal's declared normal range. Read-only.

use doppel_analytics::forecast::{forecast, time_to_threshold, Forecast, ForecastConfig};
use doppel_analytics::{RegularSeries, Threshold, TimeToThreshold};
use doppel_model::{format_ts, Catalog, Timestamp, ValidationErrors, ValueKind};
use doppel_store::{Agg, Store};
use serde::Serialize;

use crate::EngineError;

/// What to forecast.
#[derive(Debug, Clone, Copy)]
pub struct ForecastSpec {
    /// Bucket width (ns).
    pub step: i64,
    /// Buckets ahead.
    pub horizon: usize,
    /// History read back from the last complete bucket (ns).
    pub history: i64,
}

/// A signal's forecast with its limits.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SignalForecast {
    pub twin: String,
    pub signal: String,
    pub unit: String,
    /// End of the last complete bucket fitted (RFC 3339): "now" for the forecast.
    pub origin: String,
    #[schema(value_type = Object)]
    pub forecast: Forecast,
    /// When the forecast crosses each declared limit of the signal (`min`, `max`).
    #[schema(value_type = Vec<Object>)]
    pub limits: Vec<TimeToThreshold>,
}

pub(crate) fn signal_forecast(
    store: &Store,
    catalog: &Catalog,
    twin: &str,
    signal: &str,
    spec: ForecastSpec,
) -> Result<SignalForecast, EngineError> {
    let model = crate::whatif::twin_model(catalog, twin)?;
    let s = model
        .signal(signal)
        .ok_or_else(|| EngineError::SignalNotFound {
            twin: twin.to_string(),
            signal: signal.to_string(),
        })?;
    if !matches!(s.kind, ValueKind::Float | ValueKind::Int) {
        let mut e = ValidationErrors::new();
        e.push(
            "signal",
            format!("`{signal}` is {:?}, not a number", s.kind),
        );
        return Err(EngineError::Invalid(e));
    }
    let last = store.last(twin, signal).ok_or_else(|| {
        EngineError::NotEnoughHistory(format!("`{twin}` has no readings of `{signal}`"))
    })?;
    // Complete buckets only: the one holding the newest reading is still filling.
    let to: Timestamp = last.ts.div_euclid(spec.step).saturating_mul(spec.step);
    let from = to.saturating_sub(spec.history);
    let points: Vec<(Timestamp, f64)> = store
        .downsample(twin, signal, from, to, spec.step, Agg::Mean)?
        .into_iter()
        .filter(|b| b.count > 0)
        .map(|b| (b.start, b.value))
        .collect();
    let series = RegularSeries::from_points(&points, spec.step)
        .map_err(|e| EngineError::NotEnoughHistory(e.to_string()))?;
    let config = ForecastConfig {
        horizon: spec.horizon,
        max_points: points.len().max(2),
        ..ForecastConfig::default()
    };
    let f = forecast(&series, &config).map_err(|e| {
        EngineError::NotEnoughHistory(format!(
            "{e} (`{signal}` has {} complete buckets of {} s in the window)",
            points.len(),
            spec.step / 1_000_000_000
        ))
    })?;
    let limits = [(s.min, false), (s.max, true)]
        .into_iter()
        .filter_map(|(v, upper)| v.map(|value| Threshold { value, upper }))
        .map(|t| time_to_threshold(&f, t))
        .collect();
    Ok(SignalForecast {
        twin: twin.to_string(),
        signal: signal.to_string(),
        unit: s.unit.clone(),
        origin: format_ts(f.origin),
        forecast: f,
        limits,
    })
}
