//! The virtual testing ground over HTTP: a twin's learned dynamics, what-if scenarios,
//! optimization of its inputs and troubleshooting of a time window or an alarm.

use axum::extract::{Path, Query, State};
use axum::Json;
use doppel_analytics::sysid::{
    Cause, FitConfig, GraphLink, OptimizeResult, OptimizeSpec, ScenarioSpec, TroubleshootConfig,
};
use doppel_engine::whatif::{GraphAnswer, ModelSummary, WhatIfAnswer};
use doppel_model::{parse_time, Timestamp};
use serde::{Deserialize, Serialize};

use super::auth::{Authed, Reader, Writer};
use super::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::{now_ns, AppState};

/// A twin's identified dynamics: per output, how well it predicts held-out history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Dynamics {
    pub twin: String,
    #[schema(value_type = Object)]
    #[serde(flatten)]
    pub summary: ModelSummary,
}

/// Refit request: the history span (default: the week before the last reading) and fit
/// settings (default: a 30 s model step, 1 h quality horizon).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FitRequest {
    pub from: Option<String>,
    pub to: Option<String>,
    #[schema(value_type = Object)]
    #[serde(default)]
    pub config: Option<FitConfig>,
}

fn time_field(name: &str, v: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    match v {
        None | Some("") | Some("now") => Ok(None),
        Some(t) => parse_time(t)
            .map(Some)
            .map_err(|e| ApiError::field(name, e.to_string())),
    }
}

#[utoipa::path(get, path = "/api/v1/twins/{id}/dynamics", tag = "what-if",
    params(("id" = String, Path)),
    responses((status = 200, body = Dynamics), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn get_dynamics(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Dynamics>> {
    match s.engine.identified(&id)? {
        Some(m) => Ok(Json(Dynamics {
            twin: id,
            summary: ModelSummary::of(&m),
        })),
        None => Err(ApiError::not_found(format!(
            "twin `{id}` has no identified dynamics yet; POST /api/v1/twins/{id}/dynamics fits them"
        ))),
    }
}

#[utoipa::path(post, path = "/api/v1/twins/{id}/dynamics", tag = "what-if",
    params(("id" = String, Path)), request_body = FitRequest,
    responses((status = 200, body = Dynamics), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn fit_dynamics(
    _: Authed<Writer>,
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Dynamics>> {
    // The body is optional: none (or empty) refits with the defaults.
    let req: FitRequest = if body.iter().all(u8::is_ascii_whitespace) {
        FitRequest::default()
    } else {
        super::body::parse(&body)?
    };
    let from = time_field("from", req.from.as_deref())?;
    let to = time_field("to", req.to.as_deref())?;
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(ApiError::field("from", "must be before `to`"));
        }
    }
    let m = s
        .engine
        .identify(&id, from, to, req.config.unwrap_or_default())
        .await?;
    Ok(Json(Dynamics {
        twin: id,
        summary: ModelSummary::of(&m),
    }))
}

/// One scenario: a name to tell it apart, and what changes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NamedScenario {
    pub name: Option<String>,
    /// `horizon_s`, `output_step_s` (default 1), `changes` (per input: `{"signal", "kind":
    /// "step", "at_s", "value"}`, `ramp` with `from_s`, `to_s`, `to_value`, or `profile`
    /// with `points: [[t_s, value]...]`) and `baseline` (`hold` or `repeat_day`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub spec: ScenarioSpec,
}

/// What-if request: where to start (default: the twin's last reading; or a past time) and
/// the scenarios to compare with the baseline (none: the baseline alone, a forecast).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenariosRequest {
    pub start: Option<String>,
    #[serde(default)]
    pub scenarios: Vec<NamedScenario>,
    /// Horizon of the baseline when no scenario is given, seconds (default 3600).
    pub horizon_s: Option<f64>,
}

/// Most scenarios compared in one request.
const MAX_SCENARIOS: usize = 16;

#[utoipa::path(post, path = "/api/v1/twins/{id}/scenarios", tag = "what-if",
    params(("id" = String, Path)), request_body = ScenariosRequest,
    responses((status = 200, body = WhatIfAnswer), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn scenarios(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ScenariosRequest>,
) -> ApiResult<Json<WhatIfAnswer>> {
    let start = time_field("start", req.start.as_deref())?;
    if req.scenarios.len() > MAX_SCENARIOS {
        return Err(ApiError::field(
            "scenarios",
            format!("at most {MAX_SCENARIOS} scenarios per request"),
        ));
    }
    let list: Vec<(Option<String>, ScenarioSpec)> = req
        .scenarios
        .into_iter()
        .map(|n| (n.name, n.spec))
        .collect();
    // With no scenario, the baseline alone (a forecast), about a thousand points long.
    let h = req.horizon_s.unwrap_or(3_600.0);
    let alone = ScenarioSpec::baseline(h, (h / 1_000.0).max(1.0));
    Ok(Json(s.engine.scenarios(&id, start, list, alone).await?))
}

/// One twin of a linked scenario and what changes on it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct GraphTwin {
    pub twin: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub spec: ScenarioSpec,
}

/// A linked scenario: twins (each with its horizon, step and changes) and links feeding an
/// upstream twin's output to a downstream twin's input along a relation between them.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphRequest {
    pub start: Option<String>,
    pub twins: Vec<GraphTwin>,
    /// `{"from_twin", "from_signal", "to_twin", "to_signal"}`.
    #[schema(value_type = Vec<Object>)]
    #[serde(default)]
    pub links: Vec<GraphLink>,
}

#[utoipa::path(post, path = "/api/v1/scenarios", tag = "what-if", request_body = GraphRequest,
    responses((status = 200, body = GraphAnswer), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn graph_scenarios(
    _: Authed<Reader>,
    State(s): State<AppState>,
    JsonBody(req): JsonBody<GraphRequest>,
) -> ApiResult<Json<GraphAnswer>> {
    let start = time_field("start", req.start.as_deref())?;
    if req.twins.is_empty() || req.twins.len() > MAX_SCENARIOS {
        return Err(ApiError::field(
            "twins",
            format!("between 1 and {MAX_SCENARIOS} twins"),
        ));
    }
    let nodes = req.twins.into_iter().map(|t| (t.twin, t.spec)).collect();
    Ok(Json(
        s.engine.graph_scenarios(start, nodes, req.links).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/twins/{id}/optimize", tag = "what-if",
    params(("id" = String, Path)), request_body(content = Object),
    responses((status = 200, body = Object), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn optimize(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(spec): JsonBody<OptimizeSpec>,
) -> ApiResult<Json<OptimizeResult>> {
    Ok(Json(s.engine.optimize(&id, spec).await?))
}

/// Troubleshooting window: `from` (required for a twin) to `to` (default now).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct WindowQuery {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Ranked candidate causes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Troubleshooting {
    pub twin: String,
    pub from: Timestamp,
    pub to: Timestamp,
    #[schema(value_type = Vec<Object>)]
    pub causes: Vec<Cause>,
}

#[utoipa::path(get, path = "/api/v1/twins/{id}/troubleshoot", tag = "what-if",
    params(("id" = String, Path), WindowQuery),
    responses((status = 200, body = Troubleshooting), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn troubleshoot_twin(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<WindowQuery>,
) -> ApiResult<Json<Troubleshooting>> {
    let from = time_field("from", q.from.as_deref())?
        .ok_or_else(|| ApiError::field("from", "the start of the window to explain is required"))?;
    let to = time_field("to", q.to.as_deref())?.unwrap_or_else(now_ns);
    if from >= to {
        return Err(ApiError::field("from", "must be before `to`"));
    }
    let causes = s
        .engine
        .troubleshoot(&id, from, to, TroubleshootConfig::default())
        .await?;
    Ok(Json(Troubleshooting {
        twin: id,
        from,
        to,
        causes,
    }))
}

#[utoipa::path(get, path = "/api/v1/alarms/{id}/troubleshoot", tag = "what-if",
    params(("id" = String, Path)),
    responses((status = 200, body = Troubleshooting), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn troubleshoot_alarm(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Troubleshooting>> {
    let alarm = s.engine.alarm(&id)?;
    // The window opens a little before the alarm (detectors raise after the first signs) and
    // closes at its last reading.
    let lead = 30 * 60 * 1_000_000_000i64;
    let from = alarm.raised_ts.saturating_sub(lead);
    let to = alarm.last_ts.saturating_add(1).max(from + 1);
    let causes = s
        .engine
        .troubleshoot(&alarm.twin, from, to, TroubleshootConfig::default())
        .await?;
    Ok(Json(Troubleshooting {
        twin: alarm.twin,
        from,
        to,
        causes,
    }))
}
