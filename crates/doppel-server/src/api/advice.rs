//! Maintenance advice: list and read (readers), and the maintenance lifecycle (writers and
//! admins): schedule the work, then mark it done with its outcome (`confirmed`, `not_found`,
//! `other`). Marking it done holds the failure mode off on the twin and clears the twin's
//! alarm; the outcome stays on the item as its label.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::Json;
use doppel_engine::{AdviceItem, AdviceQuery, AdviceState, Outcome};
use doppel_model::parse_time;
use serde::{Deserialize, Serialize};

use super::auth::{Authed, Reader, Writer};
use super::body;
use crate::error::{ApiError, ApiResult};
use crate::{now_ns, AppState};

/// Default and largest number of items per answer.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;
/// Longest note kept on an item.
const MAX_NOTE: usize = 4_096;

/// Which advice to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AdviceListQuery {
    /// Only this twin's advice.
    pub twin: Option<String>,
    /// Comma-separated states: open, scheduled, done, withdrawn (default: all).
    pub state: Option<String>,
    /// Most items returned, newest first (default 100, at most 10000).
    pub limit: Option<usize>,
}

/// The answer to a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdviceList {
    pub advice: Vec<AdviceItem>,
}

#[utoipa::path(get, path = "/api/v1/advice", tag = "advice", params(AdviceListQuery),
    responses((status = 200, body = AdviceList), (status = 400, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn list(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Query(q): Query<AdviceListQuery>,
) -> ApiResult<Json<AdviceList>> {
    let mut states = Vec::new();
    for part in q.state.as_deref().unwrap_or("").split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        states.push(AdviceState::parse(part).ok_or_else(|| {
            ApiError::field(
                "state",
                format!("unknown state {part:?}; use open, scheduled, done, withdrawn"),
            )
        })?);
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let advice = s.engine.advice(&AdviceQuery {
        twin: q.twin,
        states,
        limit,
    });
    Ok(Json(AdviceList { advice }))
}

#[utoipa::path(get, path = "/api/v1/advice/{id}", tag = "advice", params(("id" = String, Path)),
    responses((status = 200, body = AdviceItem), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn get(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<AdviceItem>> {
    Ok(Json(s.engine.advice_item(&id)?))
}

/// When the work is planned.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    /// When the work is planned: RFC 3339 or epoch milliseconds.
    #[serde(rename = "for")]
    pub for_time: Option<String>,
    pub note: Option<String>,
}

/// What the maintenance found.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoneBody {
    /// `confirmed` (the failure mode was found), `not_found` or `other` (say what in `note`).
    pub outcome: Option<Outcome>,
    pub note: Option<String>,
}

fn check_note(note: &Option<String>) -> ApiResult<()> {
    match note {
        Some(n) if n.len() > MAX_NOTE => {
            Err(ApiError::field("note", format!("at most {MAX_NOTE} bytes")))
        }
        _ => Ok(()),
    }
}

#[utoipa::path(post, path = "/api/v1/advice/{id}/schedule", tag = "advice",
    params(("id" = String, Path)), request_body = ScheduleBody,
    responses((status = 200, body = AdviceItem), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn schedule(
    who: Authed<Writer>,
    State(s): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<AdviceItem>> {
    let b: ScheduleBody = body::optional(&bytes)?;
    let Some(when) = b.for_time.as_deref() else {
        return Err(ApiError::field(
            "for",
            "required: when the work is planned (RFC 3339 or epoch milliseconds)",
        ));
    };
    let for_ts = parse_time(when).map_err(|e| ApiError::field("for", e.to_string()))?;
    check_note(&b.note)?;
    Ok(Json(
        s.engine
            .schedule_advice(&id, for_ts, &who.who, b.note, now_ns())
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/advice/{id}/done", tag = "advice",
    params(("id" = String, Path)), request_body = DoneBody,
    responses((status = 200, body = AdviceItem), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn done(
    who: Authed<Writer>,
    State(s): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<AdviceItem>> {
    let b: DoneBody = body::optional(&bytes)?;
    let Some(outcome) = b.outcome else {
        return Err(ApiError::field(
            "outcome",
            "required: confirmed, not_found or other",
        ));
    };
    check_note(&b.note)?;
    let no_note = b.note.as_deref().is_none_or(|n| n.trim().is_empty());
    if outcome == Outcome::Other && no_note {
        return Err(ApiError::field(
            "note",
            "say what was found when the outcome is `other`",
        ));
    }
    Ok(Json(
        s.engine
            .advice_done(&id, outcome, b.note, &who.who, now_ns())
            .await?,
    ))
}
