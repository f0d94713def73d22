//! Writing readings over HTTP: doppel's JSON form and InfluxDB line protocol (doppel's own
//! `/api/v1/write` plus the InfluxDB 1.x `/write` and 2.x `/api/v2/write` endpoints, so an
//! unmodified Telegraf or Influx client writes to doppel).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use doppel_engine::{IngestReceipt, IngestSource};
use doppel_model::{Precision, ValidationErrors};
use serde::Deserialize;

use super::auth::{Authed, Writer};
use crate::error::{ApiError, ApiResult};
use crate::ingest::{json, line_protocol};
use crate::{now_ns, AppState};

fn rejected(s: &AppState, source: IngestSource, errs: ValidationErrors) -> ApiError {
    s.engine
        .metrics()
        .ingest_rejected
        .with_label_values(&[source.as_str(), "decode"])
        .inc();
    ApiError::invalid(errs)
}

/// Readings of one twin: `{"ts": ..., "values": {...}}` or an array of those.
#[utoipa::path(post, path = "/api/v1/twins/{id}/readings", tag = "readings",
    params(("id" = String, Path)),
    request_body(content = Object, description = "`{\"ts\": \"2026-01-31T12:00:00Z\" | 1769860800000, \"values\": {\"bearing_temp\": 71.2}}` or an array of those; `ts` optional"),
    responses((status = 200, body = IngestReceipt), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn post_readings(
    _: Authed<Writer>,
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<IngestReceipt>> {
    if s.engine.catalog().twin(&id).is_none() {
        s.engine
            .metrics()
            .ingest_rejected
            .with_label_values(&["http", "unknown_twin"])
            .inc();
        return Err(ApiError::not_found(format!("twin `{id}` not found")));
    }
    let now = now_ns();
    let label = json::label(json::is_array(&body));
    if let Some(readings) = json::decode_fast(&body, Some(&id), now) {
        let receipt = s
            .engine
            .ingest_readings(readings, IngestSource::Http, label)
            .await?;
        return Ok(Json(receipt));
    }
    let batch = json::decode_for_twin(&body, &id, now).map_err(|_| {
        rejected(
            &s,
            IngestSource::Http,
            json::explain(&body, Some(&id), now, &s.engine.catalog()),
        )
    })?;
    let receipt = s.engine.ingest(batch, IngestSource::Http, label).await?;
    Ok(Json(receipt))
}

/// Readings of several twins: an array of `{"twin": ..., "ts": ..., "values": {...}}`.
#[utoipa::path(post, path = "/api/v1/readings", tag = "readings",
    request_body(content = Object, description = "array of `{\"twin\": \"pump-1\", \"ts\": ..., \"values\": {...}}`"),
    responses((status = 200, body = IngestReceipt), (status = 400, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn post_bulk(
    _: Authed<Writer>,
    State(s): State<AppState>,
    body: Bytes,
) -> ApiResult<Json<IngestReceipt>> {
    let now = now_ns();
    let label = json::label(json::is_array(&body));
    if let Some(readings) = json::decode_fast(&body, None, now) {
        let receipt = s
            .engine
            .ingest_readings(readings, IngestSource::Http, label)
            .await?;
        return Ok(Json(receipt));
    }
    let batch = json::decode_bulk(&body, now).map_err(|_| {
        rejected(
            &s,
            IngestSource::Http,
            json::explain(&body, None, now, &s.engine.catalog()),
        )
    })?;
    let receipt = s.engine.ingest(batch, IngestSource::Http, label).await?;
    Ok(Json(receipt))
}

/// Query of the line-protocol endpoints. `db`, `rp`, `org`, `bucket`, `u`, `p` are accepted
/// for compatibility and ignored (`p` may carry the token).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct WriteQuery {
    /// Timestamp precision: ns (default), us, ms, s.
    pub precision: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/write", tag = "readings", params(WriteQuery),
    request_body(content = String, content_type = "text/plain",
        description = "InfluxDB line protocol; the `twin` tag or the measurement names the twin"),
    responses((status = 204), (status = 400, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn write_lp(
    _: Authed<Writer>,
    State(s): State<AppState>,
    Query(q): Query<WriteQuery>,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let precision = match q.precision.as_deref() {
        None | Some("") => Precision::Nanoseconds,
        Some(p) => Precision::parse(p).ok_or_else(|| {
            ApiError::field("precision", format!("`{p}` is not one of ns, us, ms, s"))
        })?,
    };
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::field("body", format!("not UTF-8: {e}")))?;
    let decoded = line_protocol::decode(text, precision, now_ns())
        .map_err(|e| rejected(&s, IngestSource::LineProtocol, e))?;
    let line_protocol::Decoded { readings, lines } = decoded;
    s.engine
        .ingest_readings(
            readings,
            IngestSource::LineProtocol,
            line_protocol::label(&lines),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// InfluxDB 1.x `/query`: Telegraf sends `CREATE DATABASE` before writing. doppel has no
/// databases (twins are addressed directly), so that statement succeeds with no effect and
/// anything else is refused.
pub async fn influx_query(
    _: Authed<Writer>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let form: Vec<(String, String)> = url_form(std::str::from_utf8(&body).unwrap_or_default());
    let stmt = q
        .get("q")
        .cloned()
        .or_else(|| form.into_iter().find(|(k, _)| k == "q").map(|(_, v)| v))
        .unwrap_or_default();
    if stmt
        .trim_start()
        .to_ascii_uppercase()
        .starts_with("CREATE DATABASE")
    {
        return Ok(Json(serde_json::json!({"results": [{"statement_id": 0}]})));
    }
    Err(ApiError::field(
        "q",
        "doppel accepts only CREATE DATABASE here; query history with /api/v1/twins/{id}/signals/{signal}/history",
    ))
}

/// InfluxDB's `/ping`, which clients call to check the server.
pub async fn influx_ping() -> impl IntoResponse {
    (
        StatusCode::NO_CONTENT,
        [("X-Influxdb-Version", "1.8-doppel")],
    )
}

fn url_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace('+', " ").replace("%20", " ")))
        .collect()
}
