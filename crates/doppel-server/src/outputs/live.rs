//! Live push: WebSocket `GET /api/v1/stream` and Server-Sent Events `GET /api/v1/events`,
//! filtered by `twin`, `model` and `signal` (comma-separated lists). Each message is one
//! event as JSON. A subscriber that falls behind skips events (it is told how many, and they
//! are counted in `doppel_live_events_skipped_total`); one that stops reading is cut off after
//! [`SEND_TIMEOUT`]. Ingest never waits for subscribers.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::Response;
use doppel_engine::{EventBody, EventFilter, Subscription};
use futures::{Stream, StreamExt};
use serde::Deserialize;

use crate::api::auth::{Authed, Reader};
use crate::error::ApiError;
use crate::AppState;

/// A subscriber that cannot take a message for this long is disconnected.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Which events to receive; each a comma-separated list, absent means all.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StreamQuery {
    pub twin: Option<String>,
    pub model: Option<String>,
    pub signal: Option<String>,
    /// Event types: `reading`, `alarm`, `advice` (default all).
    #[serde(rename = "type")]
    pub types: Option<String>,
}

impl StreamQuery {
    fn filter(&self) -> Result<EventFilter, ApiError> {
        EventFilter::from_lists(
            self.twin.as_deref(),
            self.model.as_deref(),
            self.signal.as_deref(),
        )
        .with_types(self.types.as_deref())
        .map_err(|e| ApiError::field("type", e))
    }
}

fn lagged_json(n: u64) -> String {
    format!("{{\"type\":\"lagged\",\"skipped\":{n}}}")
}

#[utoipa::path(get, path = "/api/v1/stream", tag = "live", params(StreamQuery),
    responses((status = 101, description = "WebSocket; each text message is an Event as JSON")),
    security(("token" = [])))]
pub async fn websocket(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Query(q): Query<StreamQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let sub = s.engine.subscribe(q.filter()?);
    Ok(ws.on_upgrade(move |socket| run_ws(socket, sub, s)))
}

async fn run_ws(mut socket: WebSocket, mut sub: Subscription, s: AppState) {
    let mut reported = 0;
    loop {
        tokio::select! {
            _ = s.shutdown.cancelled() => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            ev = sub.next() => {
                let Some(ev) = ev else { break };
                if sub.skipped > reported {
                    let msg = Message::Text(lagged_json(sub.skipped - reported).into());
                    reported = sub.skipped;
                    if !send(&mut socket, msg).await { break; }
                }
                if !send(&mut socket, Message::Text(ev.json().to_string().into())).await {
                    break;
                }
            }
        }
    }
}

async fn send(socket: &mut WebSocket, msg: Message) -> bool {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(msg)).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            tracing::info!("live subscriber too slow; disconnected");
            false
        }
    }
}

#[utoipa::path(get, path = "/api/v1/events", tag = "live", params(StreamQuery),
    responses((status = 200, content_type = "text/event-stream",
        description = "`event: reading`, `event: alarm` or `event: advice` with an Event as JSON; `event: lagged` when events were skipped")),
    security(("token" = [])))]
pub async fn sse(
    _: Authed<Reader>,
    State(s): State<AppState>,
    Query(q): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let sub = s.engine.subscribe(q.filter()?);
    let shutdown = s.shutdown.clone();
    let stream = futures::stream::unfold((sub, 0u64), move |(mut sub, reported)| {
        let shutdown = shutdown.clone();
        async move {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return None,
                ev = sub.next() => ev?,
            };
            let mut out = Vec::with_capacity(2);
            let mut reported = reported;
            if sub.skipped > reported {
                out.push(Ok(SseEvent::default()
                    .event("lagged")
                    .data(lagged_json(sub.skipped - reported))));
                reported = sub.skipped;
            }
            let name = match ev.body {
                EventBody::Reading { .. } => "reading",
                EventBody::Alarm { .. } => "alarm",
                EventBody::Advice { .. } => "advice",
            };
            out.push(Ok(SseEvent::default().event(name).data(&*ev.json())));
            Some((futures::stream::iter(out), (sub, reported)))
        }
    })
    .flatten();
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
