//! Alarms: list and read (readers), and the operator's actions (writers and admins):
//! acknowledge, shelve for a while, unshelve, clear, and feedback (false alarm / confirmed
//! with a fault kind). Every action is recorded on the alarm with the token id that made it.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::Json;
use doppel_engine::{Alarm, AlarmQuery, AlarmState, Severity, Verdict};
use doppel_model::parse_time;
use serde::{Deserialize, Serialize};

use super::auth::{Authed, Reader, Writer};
use super::body;
use crate::error::{ApiError, ApiResult};
use crate::{now_ns, AppState};

/// Default and largest number of alarms per answer.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;
/// Longest shelving allowed: a shelved alarm must come back eventually.
const MAX_SHELVE_NS: i64 = 7 * 24 * 3600 * 1_000_000_000;

/// Which alarms to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AlarmListQuery {
    /// Only this twin's alarms.
    pub twin: Option<String>,
    /// Comma-separated states: active, acknowledged, shelved, cleared (default: all).
    pub state: Option<String>,
    /// Minimum severity: warning, major, critical.
    pub severity: Option<String>,
    /// Most alarms returned, newest first (default 100, at most 10000).
    pub limit: Option<usize>,
}

/// The answer to a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlarmList {
    pub alarms: Vec<Alarm>,
}

#[utoipa::path(get, path = "/api/v1/alarms", tag = "alarms", params(AlarmListQuery),
    responses((status = 200, body = AlarmList), (status = 400, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn list(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Query(q): Query<AlarmListQuery>,
) -> ApiResult<Json<AlarmList>> {
    let mut states = Vec::new();
    for part in q.state.as_deref().unwrap_or("").split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        states.push(AlarmState::parse(part).ok_or_else(|| {
            ApiError::field(
                "state",
                format!("unknown state {part:?}; use active, acknowledged, shelved, cleared"),
            )
        })?);
    }
    let min_severity = match q.severity.as_deref() {
        None | Some("") => None,
        Some(v) => Some(Severity::parse(v).ok_or_else(|| {
            ApiError::field(
                "severity",
                format!("unknown severity {v:?}; use warning, major, critical"),
            )
        })?),
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let alarms = s.engine.alarms(&AlarmQuery {
        twin: q.twin,
        states,
        min_severity,
        limit,
    });
    Ok(Json(AlarmList { alarms }))
}

#[utoipa::path(get, path = "/api/v1/alarms/{id}", tag = "alarms", params(("id" = String, Path)),
    responses((status = 200, body = Alarm), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn get(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Alarm>> {
    Ok(Json(s.engine.alarm(&id)?))
}

/// An operator's note with an action (the body may be empty).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    pub note: Option<String>,
}

/// Parses an optional JSON body: empty means the default.
fn optional<T: Default + serde::de::DeserializeOwned>(bytes: &Bytes) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    body::parse(bytes)
}

#[utoipa::path(post, path = "/api/v1/alarms/{id}/ack", tag = "alarms",
    params(("id" = String, Path)), request_body(content = NoteBody, description = "optional"),
    responses((status = 200, body = Alarm), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn acknowledge(
    who: Authed<Writer>,
    State(s): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<Alarm>> {
    let b: NoteBody = optional(&bytes)?;
    let a = s
        .engine
        .acknowledge_alarm(&id, &who.who, b.note, now_ns())
        .await?;
    Ok(Json(a))
}

#[utoipa::path(post, path = "/api/v1/alarms/{id}/clear", tag = "alarms",
    params(("id" = String, Path)), request_body(content = NoteBody, description = "optional"),
    responses((status = 200, body = Alarm), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn clear(
    who: Authed<Writer>,
    State(s): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<Alarm>> {
    let b: NoteBody = optional(&bytes)?;
    Ok(Json(
        s.engine
            .clear_alarm(&id, &who.who, b.note, now_ns())
            .await?,
    ))
}

/// How long to shelve: `for` (a duration such as `30m`, `2h`) or `until` (a time).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShelveBody {
    #[serde(rename = "for")]
    pub duration: Option<String>,
    /// RFC 3339 or epoch milliseconds.
    pub until: Option<String>,
    pub note: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/alarms/{id}/shelve", tag = "alarms",
    params(("id" = String, Path)), request_body = ShelveBody,
    responses((status = 200, body = Alarm), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn shelve(
    who: Authed<Writer>,
    State(s): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<Alarm>> {
    let b: ShelveBody = optional(&bytes)?;
    let now = now_ns();
    let until = match (b.duration.as_deref(), b.until.as_deref()) {
        (Some(d), None) => {
            let d = humantime::parse_duration(d).map_err(|e| {
                ApiError::field("for", format!("not a duration ({e}); e.g. 30m, 2h"))
            })?;
            now.saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        }
        (None, Some(t)) => parse_time(t).map_err(|e| ApiError::field("until", e.to_string()))?,
        _ => {
            return Err(ApiError::field(
                "for",
                "give exactly one of `for` (a duration) or `until` (a time)",
            ))
        }
    };
    if until <= now {
        return Err(ApiError::field("until", "must be in the future"));
    }
    if until - now > MAX_SHELVE_NS {
        return Err(ApiError::field("for", "at most 7 days"));
    }
    Ok(Json(
        s.engine
            .shelve_alarm(&id, until, &who.who, b.note, now)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/alarms/{id}/unshelve", tag = "alarms",
    params(("id" = String, Path)),
    responses((status = 200, body = Alarm), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn unshelve(
    who: Authed<Writer>,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Alarm>> {
    Ok(Json(
        s.engine.unshelve_alarm(&id, &who.who, now_ns()).await?,
    ))
}

/// An operator's verdict on an alarm.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    /// `false_alarm` or `confirmed`.
    pub verdict: Verdict,
    /// The fault found (e.g. `bearing_wear`), for a confirmed alarm.
    pub fault_kind: Option<String>,
    pub note: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/alarms/{id}/feedback", tag = "alarms",
    params(("id" = String, Path)), request_body = FeedbackBody,
    responses((status = 200, body = Alarm), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn feedback(
    who: Authed<Writer>,
    State(s): State<AppState>,
    Path(id): Path<String>,
    body::JsonBody(b): body::JsonBody<FeedbackBody>,
) -> ApiResult<Json<Alarm>> {
    if let Some(k) = &b.fault_kind {
        doppel_model::validate_id(k).map_err(|e| ApiError::field("fault_kind", e))?;
        if b.verdict == Verdict::FalseAlarm {
            return Err(ApiError::field(
                "fault_kind",
                "a false alarm has no fault kind",
            ));
        }
    }
    Ok(Json(
        s.engine
            .alarm_feedback(&id, b.verdict, b.fault_kind, b.note, &who.who, now_ns())
            .await?,
    ))
}
