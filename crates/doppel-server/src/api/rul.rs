//! Remaining useful life and the maintenance events it learns from: record a failure or a
//! repair on a twin (writers), list events, read a twin's RUL, the fleet's (shortest first)
//! and a model's fit with the error of every fit so far (readers), refit now (writers); a
//! signal's forecast with when it crosses its declared limits (readers).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use doppel_engine::{
    ForecastSpec, MaintenanceEvent, MaintenanceKind, NewMaintenance, RulModelInfo, SignalForecast,
    TwinRul,
};
use doppel_model::parse_time;
use serde::{Deserialize, Serialize};

use super::auth::{Authed, Reader, Writer};
use super::body;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// A maintenance event to record.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceBody {
    /// `failure` (the asset failed: a run to failure for the RUL model, and a renewal) or
    /// `repair` (renewed without failing).
    pub kind: Option<String>,
    /// When: RFC 3339 or epoch milliseconds (default: the twin's newest reading).
    pub at: Option<String>,
    /// The failure mode, an id of the model's failure-mode catalogue.
    pub failure_mode: Option<String>,
    pub note: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/twins/{id}/maintenance", tag = "rul",
    params(("id" = String, Path)), request_body = MaintenanceBody,
    responses((status = 201, body = MaintenanceEvent), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn record(
    who: Authed<Writer>,
    State(s): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<MaintenanceEvent>)> {
    let b: MaintenanceBody = body::optional(&bytes)?;
    let kind = match b.kind.as_deref() {
        None => return Err(ApiError::field("kind", "required: failure or repair")),
        Some(k) => MaintenanceKind::parse(k).ok_or_else(|| {
            ApiError::field("kind", format!("unknown kind {k:?}; use failure or repair"))
        })?,
    };
    let at = match b.at.as_deref() {
        Some(t) => Some(parse_time(t).map_err(|e| ApiError::field("at", e.to_string()))?),
        None => None,
    };
    let event = s
        .engine
        .record_maintenance(NewMaintenance {
            twin: id,
            kind,
            at,
            failure_mode: b.failure_mode,
            note: b.note,
            by: who.who,
            source: None,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(event)))
}

/// Which events to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct MaintenanceQuery {
    pub twin: Option<String>,
    pub model: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MaintenanceList {
    /// Oldest first.
    pub events: Vec<MaintenanceEvent>,
}

#[utoipa::path(get, path = "/api/v1/maintenance", tag = "rul", params(MaintenanceQuery),
    responses((status = 200, body = MaintenanceList)), security(("token" = [])))]
pub async fn list(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Query(q): Query<MaintenanceQuery>,
) -> Json<MaintenanceList> {
    Json(MaintenanceList {
        events: s.engine.maintenance(q.twin.as_deref(), q.model.as_deref()),
    })
}

#[utoipa::path(get, path = "/api/v1/twins/{id}/rul", tag = "rul", params(("id" = String, Path)),
    responses((status = 200, body = TwinRul), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn twin(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<TwinRul>> {
    Ok(Json(s.engine.twin_rul(&id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct FleetQuery {
    /// Only twins of this model.
    pub model: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FleetRul {
    /// Estimated twins first, shortest remaining life first.
    pub twins: Vec<TwinRul>,
}

#[utoipa::path(get, path = "/api/v1/rul", tag = "rul", params(FleetQuery),
    responses((status = 200, body = FleetRul), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn fleet(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Query(q): Query<FleetQuery>,
) -> ApiResult<Json<FleetRul>> {
    Ok(Json(FleetRul {
        twins: s.engine.fleet_rul(q.model.as_deref()).await?,
    }))
}

#[utoipa::path(get, path = "/api/v1/models/{id}/rul", tag = "rul", params(("id" = String, Path)),
    responses((status = 200, body = RulModelInfo), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn model(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<RulModelInfo>> {
    Ok(Json(s.engine.rul_model(&id)?))
}

#[utoipa::path(post, path = "/api/v1/models/{id}/rul", tag = "rul", params(("id" = String, Path)),
    responses((status = 200, body = RulModelInfo), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn fit(
    _: Authed<Writer>,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<RulModelInfo>> {
    Ok(Json(s.engine.fit_rul(&id).await?))
}

/// What to forecast.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ForecastQuery {
    /// Bucket width: `1h` (default), `10m`, `1d`... (at least a minute).
    pub step: Option<String>,
    /// Buckets ahead (default 168, at most 2000).
    pub horizon: Option<usize>,
    /// History fitted on, back from the last complete bucket (default `14d`).
    pub history: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/twins/{id}/signals/{signal}/forecast", tag = "rul",
    params(("id" = String, Path), ("signal" = String, Path), ForecastQuery),
    responses((status = 200, body = SignalForecast), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn forecast(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Path((id, signal)): Path<(String, String)>,
    Query(q): Query<ForecastQuery>,
) -> ApiResult<Json<SignalForecast>> {
    const MINUTE: i64 = 60_000_000_000;
    let step = match q.step.as_deref() {
        Some(v) => super::history::parse_step(v)?,
        None => 60 * MINUTE,
    };
    if step < MINUTE {
        return Err(ApiError::field("step", "at least 1m"));
    }
    let horizon = q.horizon.unwrap_or(168);
    if horizon == 0 || horizon > 2_000 {
        return Err(ApiError::field("horizon", "between 1 and 2000 buckets"));
    }
    let history = match q.history.as_deref() {
        Some(v) => super::history::parse_step(v).map_err(|_| {
            ApiError::field(
                "history",
                format!("`{v}` is not a duration such as 3d, 14d"),
            )
        })?,
        None => 14 * 24 * 60 * MINUTE,
    };
    if history / step > 20_000 {
        return Err(ApiError::field(
            "history",
            "at most 20000 buckets of `step`: widen the step or shorten the history",
        ));
    }
    let spec = ForecastSpec {
        step,
        horizon,
        history,
    };
    Ok(Json(s.engine.forecast(&id, &signal, spec).await?))
}
