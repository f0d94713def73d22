//! Outputs: where engine events leave the process (WebSocket and SSE subscribers, the
//! dashboard, webhooks; MQTT alarm topics are published by the broker in `ingest/mqtt.rs`).

pub mod dashboard;
pub mod live;
pub mod webhooks;
