//! doppel's network face. Every protocol is a thin adapter: decode into a `Batch` or a query,
//! call the engine, encode the answer. Nothing here owns twin state.
//!
//! - `api/`: the HTTP API (axum) with its OpenAPI document;
//! - `ingest/`: decoders (JSON, line protocol) and the embedded MQTT broker;
//! - `outputs/`: live push over WebSocket and Server-Sent Events, webhooks, the dashboard;
//! - `auth.rs`: tokens and roles; `error.rs`: the one mapping of errors to HTTP.

pub mod api;
pub mod auth;
pub mod error;
mod files;
pub mod ingest;
pub mod outputs;

use std::net::SocketAddr;
use std::sync::Arc;

use doppel_engine::Engine;
use tokio_util::sync::CancellationToken;

pub use auth::{Authenticator, Bootstrap, Role};

/// Shared by every request handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub auth: Arc<Authenticator>,
    /// Cancelled when the server shuts down; long-lived streams end on it.
    pub shutdown: CancellationToken,
    pub webhooks: Arc<outputs::webhooks::Webhooks>,
}

/// Current time in nanoseconds since the epoch: the time given to readings without one.
pub fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Starts the HTTP server on `listener`; resolves when `state.shutdown` fires and every
/// in-flight request has finished.
pub async fn serve_http(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    let app = api::router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}
