//! History of one signal: raw points, or aggregates per time bucket.

use axum::extract::{Path, Query, State};
use axum::Json;
use doppel_model::{format_ts, parse_time, Timestamp, Value};
use doppel_store::Agg;
use serde::{Deserialize, Serialize};

use super::auth::{Authed, Reader};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Default and maximum number of raw points per answer.
pub const DEFAULT_LIMIT: usize = 10_000;
pub const MAX_LIMIT: usize = 1_000_000;

/// History query. Times are RFC 3339 or epoch milliseconds.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct HistoryQuery {
    /// Start, inclusive (default: the beginning).
    pub from: Option<String>,
    /// End, exclusive (default: no end).
    pub to: Option<String>,
    /// Bucket width (`10s`, `1m`, `1h`, `1d`); with it the answer is aggregated.
    pub step: Option<String>,
    /// Aggregate per bucket: mean (default), min, max, first, last, count, sum, stddev
    /// (sample standard deviation; 0 for a bucket of one point).
    pub agg: Option<String>,
    /// Most raw points returned (default 10000, at most 1000000).
    pub limit: Option<usize>,
}

/// One raw point.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PointOut {
    pub time: String,
    pub ts: Timestamp,
    pub value: Value,
}

/// One bucket.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BucketOut {
    /// Start of the bucket.
    pub time: String,
    pub ts: Timestamp,
    pub value: f64,
    pub count: u64,
}

/// The answer: `points` for raw queries, `buckets` for aggregated ones.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct History {
    pub twin: String,
    pub signal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<Vec<PointOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<BucketOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub agg: Option<Agg>,
    /// True when `limit` cut the raw answer short.
    pub truncated: bool,
}

/// Reads a bucket width: `90s`, `1m`, `1h 30m`, `500ms`, or plain milliseconds.
pub fn parse_step(s: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::field(
            "step",
            format!("`{s}` is not a duration such as 10s, 1m, 1h, 1d"),
        )
    };
    let nanos = if let Ok(ms) = s.trim().parse::<i64>() {
        ms.checked_mul(1_000_000).ok_or_else(bad)?
    } else {
        let d = humantime::parse_duration(s.trim()).map_err(|_| bad())?;
        i64::try_from(d.as_nanos()).map_err(|_| bad())?
    };
    if nanos <= 0 {
        return Err(ApiError::field("step", "must be positive"));
    }
    Ok(nanos)
}

/// Reads the `agg` parameter (default mean).
fn parse_agg(a: Option<&str>) -> Result<Agg, ApiError> {
    match a {
        None | Some("") => Ok(Agg::Mean),
        Some(a) => Agg::parse(a).ok_or_else(|| {
            ApiError::field(
                "agg",
                format!("`{a}` is not one of mean, min, max, first, last, count, sum, stddev"),
            )
        }),
    }
}

fn time_param(name: &str, v: Option<&str>, default: Timestamp) -> Result<Timestamp, ApiError> {
    match v {
        None | Some("") => Ok(default),
        Some(t) => parse_time(t).map_err(|e| ApiError::field(name, e.to_string())),
    }
}

#[utoipa::path(get, path = "/api/v1/twins/{id}/signals/{signal}/history", tag = "history",
    params(("id" = String, Path), ("signal" = String, Path), HistoryQuery),
    responses((status = 200, body = History), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn history(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Path((id, signal)): Path<(String, String)>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<History>> {
    let from = time_param("from", q.from.as_deref(), i64::MIN)?;
    let to = time_param("to", q.to.as_deref(), i64::MAX)?;
    if from > to {
        return Err(ApiError::field("from", "is after `to`"));
    }
    let mut out = History {
        twin: id.clone(),
        signal: signal.clone(),
        points: None,
        buckets: None,
        step: None,
        agg: None,
        truncated: false,
    };
    if let Some(step) = q.step.as_deref() {
        let step_ns = parse_step(step)?;
        let agg = parse_agg(q.agg.as_deref())?;
        let buckets = s
            .engine
            .downsample(&id, &signal, from, to, step_ns, agg)
            .await?;
        out.buckets = Some(
            buckets
                .into_iter()
                .map(|b| BucketOut {
                    time: format_ts(b.start),
                    ts: b.start,
                    value: b.value,
                    count: b.count,
                })
                .collect(),
        );
        out.step = Some(step.to_string());
        out.agg = Some(agg);
    } else {
        if q.agg.is_some() {
            return Err(ApiError::field("agg", "needs `step`"));
        }
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ApiError::field(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let mut points = s.engine.history(&id, &signal, from, to, limit + 1).await?;
        out.truncated = points.len() > limit;
        points.truncate(limit);
        out.points = Some(
            points
                .into_iter()
                .map(|p| PointOut {
                    time: format_ts(p.ts),
                    ts: p.ts,
                    value: p.value,
                })
                .collect(),
        );
    }
    Ok(Json(out))
}

/// Fleet query: one signal across every twin of a model. Times are RFC 3339 or epoch ms.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct FleetQuery {
    /// Start of the bucketed range, inclusive (default: each twin's first point).
    pub from: Option<String>,
    /// End, exclusive (default: now); `last` is the latest point before it.
    pub to: Option<String>,
    /// Bucket width (`1m`, `1h`...); without it only each twin's last value is returned.
    pub step: Option<String>,
    /// Aggregate per bucket: mean (default), min, max, first, last, count, sum, stddev
    /// (sample standard deviation; 0 for a bucket of one point).
    pub agg: Option<String>,
    /// Order of the twins: `twin` (id, default), `desc` or `asc` (by last value; twins
    /// without a value last).
    pub order: Option<String>,
}

/// One twin in a fleet answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FleetTwin {
    pub twin: String,
    /// Latest point before `to` (absent when the twin never reported the signal).
    pub last: Option<PointOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<BucketOut>>,
}

/// The fleet view of one signal.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Fleet {
    pub model: String,
    pub signal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub agg: Option<Agg>,
    pub twins: Vec<FleetTwin>,
}

#[utoipa::path(get, path = "/api/v1/models/{id}/signals/{signal}/fleet", tag = "history",
    params(("id" = String, Path), ("signal" = String, Path), FleetQuery),
    responses((status = 200, body = Fleet), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn fleet(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Path((model, signal)): Path<(String, String)>,
    Query(q): Query<FleetQuery>,
) -> ApiResult<Json<Fleet>> {
    let from = time_param("from", q.from.as_deref(), i64::MIN)?;
    let to = time_param("to", q.to.as_deref(), i64::MAX)?;
    if from > to {
        return Err(ApiError::field("from", "is after `to`"));
    }
    let step = match q.step.as_deref() {
        Some(step) => Some((parse_step(step)?, parse_agg(q.agg.as_deref())?)),
        None if q.agg.is_some() => return Err(ApiError::field("agg", "needs `step`")),
        None => None,
    };
    let order = q.order.as_deref().unwrap_or("twin");
    if !["twin", "asc", "desc"].contains(&order) {
        return Err(ApiError::field(
            "order",
            format!("`{order}` is not one of twin, asc, desc"),
        ));
    }
    let series = s
        .engine
        .fleet_signal(&model, &signal, from, to, step)
        .await?;
    let mut twins: Vec<FleetTwin> = series
        .into_iter()
        .map(|f| FleetTwin {
            twin: f.twin,
            last: f.last.map(|p| PointOut {
                time: format_ts(p.ts),
                ts: p.ts,
                value: p.value,
            }),
            buckets: step.map(|_| {
                f.buckets
                    .into_iter()
                    .map(|b| BucketOut {
                        time: format_ts(b.start),
                        ts: b.start,
                        value: b.value,
                        count: b.count,
                    })
                    .collect()
            }),
        })
        .collect();
    if order != "twin" {
        // Twins without a numeric last value go last whatever the direction.
        let key = |t: &FleetTwin| t.last.as_ref().and_then(|p| p.value.as_f64());
        twins.sort_by(|a, b| match (key(a), key(b)) {
            (Some(x), Some(y)) if order == "desc" => y.total_cmp(&x),
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
    }
    Ok(Json(Fleet {
        model,
        signal,
        step: q.step,
        agg: step.map(|(_, a)| a),
        twins,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn steps() {
        assert_eq!(parse_step("1m").unwrap(), 60_000_000_000);
        assert_eq!(parse_step("500ms").unwrap(), 500_000_000);
        assert_eq!(parse_step("1000").unwrap(), 1_000_000_000);
        assert!(parse_step("0s").is_err());
        assert!(parse_step("fast").is_err());
        assert!(parse_step("-5").is_err());
    }
}
