//! Webhook registration (admin only): alarm changes are POSTed, signed, to these URLs.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use doppel_model::format_ts;
use serde::{Deserialize, Serialize};

use super::auth::{Admin, Authed};
use super::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::outputs::webhooks::{Webhook, WebhookError};
use crate::{now_ns, AppState};

/// A webhook to register.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `http://host:port/path` receiving `POST`s with the alarm event as JSON.
    pub url: String,
    /// Shared secret (at least 16 characters) for `X-Doppel-Signature`; generated if absent.
    pub secret: Option<String>,
    /// Only these twins' alarms (default: all).
    #[serde(default)]
    pub twins: Vec<String>,
}

/// Registered webhooks (secrets are not shown).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<Webhook>,
}

fn map(e: WebhookError) -> ApiError {
    match e {
        WebhookError::Url(m) => ApiError::field(
            if m.starts_with("secret") {
                "secret"
            } else {
                "url"
            },
            m,
        ),
        WebhookError::NotFound(_) => ApiError::not_found(e.to_string()),
        WebhookError::Persist { .. } => {
            tracing::error!(error = %e, "webhooks not saved");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = WebhookList)), security(("token" = [])))]
pub async fn list(_: Authed<Admin>, State(s): State<AppState>) -> Json<WebhookList> {
    Json(WebhookList {
        webhooks: s.webhooks.list(),
    })
}

#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses((status = 201, body = Webhook, description = "with its secret, shown only now"),
              (status = 400, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn create(
    _: Authed<Admin>,
    State(s): State<AppState>,
    JsonBody(b): JsonBody<NewWebhook>,
) -> ApiResult<(StatusCode, Json<Webhook>)> {
    for (i, t) in b.twins.iter().enumerate() {
        doppel_model::validate_id(t).map_err(|e| ApiError::field(format!("twins[{i}]"), e))?;
    }
    let hooks = s.webhooks.clone();
    let hook = tokio::task::spawn_blocking(move || {
        hooks.create(b.url, b.secret, b.twins, format_ts(now_ns()))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(map)?;
    Ok((StatusCode::CREATED, Json(hook)))
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn delete(
    _: Authed<Admin>,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let hooks = s.webhooks.clone();
    tokio::task::spawn_blocking(move || hooks.delete(&id))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(map)?;
    Ok(StatusCode::NO_CONTENT)
}
