//! The HTTP API: routes, OpenAPI document, health and metrics.

pub mod advice;
pub mod alarms;
pub mod auth;
pub mod body;
pub mod catalog;
pub mod history;
pub mod readings;
pub mod rul;
pub mod webhooks;
pub mod whatif;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ApiError;
use crate::outputs::{dashboard, live};
use crate::AppState;

struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, generated from the handlers' annotations.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "doppel", description = "Real-time digital-twin engine: models, twins, readings, history, live events, alarms, maintenance advice."),
    paths(
        catalog::list_models, catalog::create_model, catalog::get_model, catalog::put_model,
        catalog::delete_model, catalog::list_twins, catalog::create_twin, catalog::get_twin,
        catalog::put_twin, catalog::delete_twin, catalog::children, catalog::export,
        catalog::import, whatif::get_dynamics, whatif::fit_dynamics, whatif::scenarios,
        whatif::graph_scenarios, whatif::optimize, whatif::troubleshoot_twin, whatif::troubleshoot_alarm,
        readings::post_readings, readings::post_bulk, readings::write_lp,
        history::history, history::fleet, live::websocket, live::sse,
        alarms::list, alarms::get, alarms::acknowledge, alarms::clear, alarms::shelve,
        alarms::unshelve, alarms::feedback, advice::list, advice::get, advice::schedule,
        advice::done, rul::record, rul::list, rul::twin, rul::fleet, rul::model, rul::fit, rul::forecast,
        webhooks::list, webhooks::create, webhooks::delete,
    ),
    modifiers(&SecurityAddon),
    tags((name = "models"), (name = "twins"), (name = "readings"), (name = "history"), (name = "live"), (name = "alarms"), (name = "advice"), (name = "rul"), (name = "webhooks"), (name = "what-if"))
)]
pub struct ApiDoc;

async fn openapi(_: auth::Authed<auth::Reader>) -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.engine.metrics().render(),
    )
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such route; see /api/v1/openapi.json",
    )
}

/// Unknown `/api/...` paths (and non-GET requests) get the JSON 404; any other GET is the
/// web dashboard's.
async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let api = path == "/api" || path.starts_with("/api/");
    if !api && (method == Method::GET || method == Method::HEAD) {
        return dashboard::serve(&method, path, &headers);
    }
    not_found().await.into_response()
}

/// All routes.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/openapi.json", get(openapi))
        .route(
            "/models",
            get(catalog::list_models).post(catalog::create_model),
        )
        .route(
            "/models/{id}",
            get(catalog::get_model)
                .put(catalog::put_model)
                .delete(catalog::delete_model),
        )
        .route(
            "/twins",
            get(catalog::list_twins).post(catalog::create_twin),
        )
        .route(
            "/twins/{id}",
            get(catalog::get_twin)
                .put(catalog::put_twin)
                .delete(catalog::delete_twin),
        )
        .route("/models/{id}/signals/{signal}/fleet", get(history::fleet))
        .route("/catalog", get(catalog::export).post(catalog::import))
        .route(
            "/twins/{id}/dynamics",
            get(whatif::get_dynamics).post(whatif::fit_dynamics),
        )
        .route("/twins/{id}/scenarios", post(whatif::scenarios))
        .route("/scenarios", post(whatif::graph_scenarios))
        .route("/twins/{id}/optimize", post(whatif::optimize))
        .route("/twins/{id}/troubleshoot", get(whatif::troubleshoot_twin))
        .route("/alarms/{id}/troubleshoot", get(whatif::troubleshoot_alarm))
        .route("/twins/{id}/children", get(catalog::children))
        .route("/twins/{id}/readings", post(readings::post_readings))
        .route(
            "/twins/{id}/signals/{signal}/history",
            get(history::history),
        )
        .route("/readings", post(readings::post_bulk))
        .route("/write", post(readings::write_lp))
        .route("/alarms", get(alarms::list))
        .route("/alarms/{id}", get(alarms::get))
        .route("/alarms/{id}/ack", post(alarms::acknowledge))
        .route("/alarms/{id}/clear", post(alarms::clear))
        .route("/alarms/{id}/shelve", post(alarms::shelve))
        .route("/alarms/{id}/unshelve", post(alarms::unshelve))
        .route("/alarms/{id}/feedback", post(alarms::feedback))
        .route("/advice", get(advice::list))
        .route("/advice/{id}", get(advice::get))
        .route("/advice/{id}/schedule", post(advice::schedule))
        .route("/advice/{id}/done", post(advice::done))
        .route("/twins/{id}/maintenance", post(rul::record))
        .route("/maintenance", get(rul::list))
        .route("/twins/{id}/rul", get(rul::twin))
        .route("/rul", get(rul::fleet))
        .route("/twins/{id}/signals/{signal}/forecast", get(rul::forecast))
        .route("/models/{id}/rul", get(rul::model).post(rul::fit))
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/{id}", axum::routing::delete(webhooks::delete))
        .route("/stream", get(live::websocket))
        .route("/events", get(live::sse));
    Router::new()
        .nest("/api/v1", api)
        // InfluxDB compatibility: 1.x and 2.x write endpoints, ping, CREATE DATABASE.
        .route("/write", post(readings::write_lp))
        .route("/api/v2/write", post(readings::write_lp))
        .route(
            "/query",
            post(readings::influx_query).get(readings::influx_query),
        )
        .route(
            "/ping",
            get(readings::influx_ping).head(readings::influx_ping),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(body::MAX_BODY))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every documented API route is in the OpenAPI document with a bearer security scheme,
    /// so generated clients and fuzzers see the whole API.
    #[test]
    fn openapi_lists_every_route() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/api/v1/models",
            "/api/v1/models/{id}",
            "/api/v1/twins",
            "/api/v1/twins/{id}",
            "/api/v1/twins/{id}/children",
            "/api/v1/twins/{id}/readings",
            "/api/v1/twins/{id}/signals/{signal}/history",
            "/api/v1/models/{id}/signals/{signal}/fleet",
            "/api/v1/catalog",
            "/api/v1/twins/{id}/dynamics",
            "/api/v1/twins/{id}/scenarios",
            "/api/v1/scenarios",
            "/api/v1/twins/{id}/optimize",
            "/api/v1/twins/{id}/troubleshoot",
            "/api/v1/alarms/{id}/troubleshoot",
            "/api/v1/readings",
            "/api/v1/write",
            "/api/v1/stream",
            "/api/v1/events",
            "/api/v1/alarms",
            "/api/v1/alarms/{id}",
            "/api/v1/alarms/{id}/ack",
            "/api/v1/alarms/{id}/clear",
            "/api/v1/alarms/{id}/shelve",
            "/api/v1/alarms/{id}/unshelve",
            "/api/v1/alarms/{id}/feedback",
            "/api/v1/advice",
            "/api/v1/advice/{id}",
            "/api/v1/advice/{id}/schedule",
            "/api/v1/advice/{id}/done",
            "/api/v1/twins/{id}/maintenance",
            "/api/v1/maintenance",
            "/api/v1/twins/{id}/rul",
            "/api/v1/rul",
            "/api/v1/models/{id}/rul",
            "/api/v1/twins/{id}/signals/{signal}/forecast",
            "/api/v1/webhooks",
            "/api/v1/webhooks/{id}",
        ] {
            assert!(paths.contains_key(p), "{p} missing from OpenAPI");
        }
        let methods: usize = paths.values().map(|m| m.as_object().unwrap().len()).sum();
        assert_eq!(methods, 48, "every handler documented once");
        assert_eq!(
            doc["components"]["securitySchemes"]["token"]["scheme"],
            "bearer"
        );
        assert!(doc["components"]["schemas"]["AssetModel"].is_object());
    }
}
