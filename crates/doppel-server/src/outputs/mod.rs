//! Outputs: where engine events leave the process (WebSocket and SSE subscribers).

pub mod dashboard;
pub mod live;
