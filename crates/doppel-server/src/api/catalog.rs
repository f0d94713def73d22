//! Models and twins: create, read, replace, delete, list, children, state.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use doppel_engine::{ImportReceipt, TwinState};
use doppel_model::{parse_time, AssetModel, Twin, TwinFilter};
use serde::{Deserialize, Serialize};

use super::auth::{Admin, Authed, Reader};
use super::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// The whole catalog, or a part of it to import: the shape of `catalog.json` in the data
/// directory and of `doppel sim dataset`'s `catalog.json`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogDoc {
    /// A label for the document (a pack's name); not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub models: Vec<AssetModel>,
    #[serde(default)]
    pub twins: Vec<Twin>,
}

#[utoipa::path(get, path = "/api/v1/catalog", tag = "models",
    responses((status = 200, body = CatalogDoc)), security(("token" = [])))]
pub async fn export(_: Authed<Reader>, State(s): State<AppState>) -> Json<CatalogDoc> {
    let c = s.engine.catalog();
    Json(CatalogDoc {
        name: None,
        description: None,
        models: c.models().map(|m| (**m).clone()).collect(),
        twins: c.twins().map(|t| (**t).clone()).collect(),
    })
}

/// Creates or replaces many models and twins at once, all validated together (twins in any
/// order); one error refuses the whole import.
#[utoipa::path(post, path = "/api/v1/catalog", tag = "models", request_body = CatalogDoc,
    responses((status = 200, body = ImportReceipt), (status = 400, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn import(
    _: Authed<Admin>,
    State(s): State<AppState>,
    JsonBody(doc): JsonBody<CatalogDoc>,
) -> ApiResult<Json<ImportReceipt>> {
    Ok(Json(s.engine.import(doc.models, doc.twins).await?))
}

#[utoipa::path(get, path = "/api/v1/models", tag = "models",
    responses((status = 200, body = [AssetModel])), security(("token" = [])))]
pub async fn list_models(_: Authed<Reader>, State(s): State<AppState>) -> Json<Vec<AssetModel>> {
    Json(s.engine.catalog().models().map(|m| (**m).clone()).collect())
}

#[utoipa::path(post, path = "/api/v1/models", tag = "models", request_body = AssetModel,
    responses((status = 201, body = AssetModel), (status = 400, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn create_model(
    _: Authed<Admin>,
    State(s): State<AppState>,
    JsonBody(model): JsonBody<AssetModel>,
) -> ApiResult<(StatusCode, Json<AssetModel>)> {
    if s.engine.catalog().model(&model.id).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "model `{}` already exists; PUT /api/v1/models/{} replaces it",
                model.id, model.id
            ),
        ));
    }
    s.engine.put_model(model.clone()).await?;
    Ok((StatusCode::CREATED, Json(model)))
}

#[utoipa::path(get, path = "/api/v1/models/{id}", tag = "models", params(("id" = String, Path)),
    responses((status = 200, body = AssetModel), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn get_model(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<AssetModel>> {
    s.engine
        .catalog()
        .model(&id)
        .map(|m| Json((**m).clone()))
        .ok_or_else(|| ApiError::not_found(format!("model `{id}` not found")))
}

#[utoipa::path(put, path = "/api/v1/models/{id}", tag = "models", params(("id" = String, Path)),
    request_body = AssetModel,
    responses((status = 200, body = AssetModel), (status = 201, body = AssetModel),
              (status = 400, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn put_model(
    _: Authed<Admin>,
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(model): JsonBody<AssetModel>,
) -> ApiResult<(StatusCode, Json<AssetModel>)> {
    if model.id != id {
        return Err(ApiError::field(
            "id",
            format!("`{}` differs from `{id}` in the path", model.id),
        ));
    }
    let created = s.engine.put_model(model.clone()).await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(model),
    ))
}

#[utoipa::path(delete, path = "/api/v1/models/{id}", tag = "models", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn delete_model(
    _: Authed<Admin>,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.delete_model(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Filters of the twin list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TwinQuery {
    /// Only twins of this model.
    pub model: Option<String>,
    /// Only direct children of this twin.
    pub parent: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/twins", tag = "twins", params(TwinQuery),
    responses((status = 200, body = [Twin])), security(("token" = [])))]
pub async fn list_twins(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Query(q): Query<TwinQuery>,
) -> Json<Vec<Twin>> {
    // An empty parameter (`?model=`) means no filter, as HTML forms send it.
    let f = TwinFilter {
        model: q.model.filter(|m| !m.is_empty()),
        parent: q.parent.filter(|p| !p.is_empty()),
    };
    Json(
        s.engine
            .list_twins(&f)
            .into_iter()
            .map(|t| (*t).clone())
            .collect(),
    )
}

#[utoipa::path(post, path = "/api/v1/twins", tag = "twins", request_body = Twin,
    responses((status = 201, body = Twin), (status = 400, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn create_twin(
    _: Authed<Admin>,
    State(s): State<AppState>,
    JsonBody(twin): JsonBody<Twin>,
) -> ApiResult<(StatusCode, Json<Twin>)> {
    if s.engine.catalog().twin(&twin.id).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "twin `{}` already exists; PUT /api/v1/twins/{} replaces it",
                twin.id, twin.id
            ),
        ));
    }
    s.engine.put_twin(twin.clone()).await?;
    Ok((StatusCode::CREATED, Json(twin)))
}

#[utoipa::path(put, path = "/api/v1/twins/{id}", tag = "twins", params(("id" = String, Path)),
    request_body = Twin,
    responses((status = 200, body = Twin), (status = 201, body = Twin),
              (status = 400, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn put_twin(
    _: Authed<Admin>,
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(twin): JsonBody<Twin>,
) -> ApiResult<(StatusCode, Json<Twin>)> {
    if twin.id != id {
        return Err(ApiError::field(
            "id",
            format!("`{}` differs from `{id}` in the path", twin.id),
        ));
    }
    let created = s.engine.put_twin(twin.clone()).await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(twin),
    ))
}

#[utoipa::path(delete, path = "/api/v1/twins/{id}", tag = "twins", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)), security(("token" = [])))]
pub async fn delete_twin(
    _: Authed<Admin>,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.delete_twin(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Options of the twin state.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StateQuery {
    /// State as of this past time (RFC 3339 or epoch ms) instead of now.
    pub at: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/twins/{id}", tag = "twins",
    params(("id" = String, Path), StateQuery),
    responses((status = 200, body = TwinState), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn get_twin(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StateQuery>,
) -> ApiResult<Json<TwinState>> {
    let at = match q.at.as_deref() {
        None => None,
        Some(t) => Some(parse_time(t).map_err(|e| ApiError::field("at", e.to_string()))?),
    };
    Ok(Json(s.engine.twin_state(&id, at).await?))
}

#[utoipa::path(get, path = "/api/v1/twins/{id}/children", tag = "twins",
    params(("id" = String, Path)),
    responses((status = 200, body = [Twin]), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn children(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Twin>>> {
    Ok(Json(
        s.engine
            .children(&id)?
            .into_iter()
            .map(|t| (*t).clone())
            .collect(),
    ))
}
