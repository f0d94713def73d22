//! The simulator's side of doppel's public API: loading packs with `PUT`, sending readings as
//! bulk JSON, line protocol or MQTT messages, and the wire encodings of those readings.
//! `doppel demo` loads its packs through this too, so the demo exercises the same API a user
//! would.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{bail, Context};
use doppel_model::{format_ts, Reading, Value};
use doppel_sim::Pack;
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

/// A client of one server's HTTP API with one token.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// `base` is the server's URL, e.g. `http://127.0.0.1:8080` (a trailing `/` is ignored).
    pub fn new(base: &str, token: &str) -> anyhow::Result<Api> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        Ok(Api {
            client,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    /// Creates or replaces every model, then every twin of `pack`, in the pack's order.
    pub async fn load_pack(&self, pack: &Pack) -> anyhow::Result<()> {
        for m in &pack.models {
            self.put(&format!("/api/v1/models/{}", m.id), m)
                .await
                .with_context(|| format!("loading model `{}` of pack {}", m.id, pack.name))?;
        }
        for t in &pack.twins {
            self.put(&format!("/api/v1/twins/{}", t.id), t)
                .await
                .with_context(|| format!("loading twin `{}` of pack {}", t.id, pack.name))?;
        }
        Ok(())
    }

    async fn put(&self, path: &str, body: &impl Serialize) -> anyhow::Result<()> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .client
            .put(&url)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        check(resp, "PUT", &url).await
    }

    /// `POST /api/v1/readings` with the bulk JSON form.
    pub async fn post_readings(&self, readings: &[Reading]) -> anyhow::Result<()> {
        self.post_json(readings_json(readings, true)).await
    }

    /// `POST /api/v1/readings` with a body already in the bulk JSON form.
    pub async fn post_json(&self, body: String) -> anyhow::Result<()> {
        self.post("/api/v1/readings", "application/json", body)
            .await
    }

    /// `POST /api/v1/write?precision=ns` with InfluxDB line protocol.
    pub async fn post_lp(&self, body: String) -> anyhow::Result<()> {
        self.post("/api/v1/write?precision=ns", "text/plain", body)
            .await
    }

    async fn post(&self, path: &str, content_type: &str, body: String) -> anyhow::Result<()> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .client
            .post(&url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        check(resp, "POST", &url).await
    }
}

/// Turns a non-2xx answer into an error carrying the server's message.
async fn check(resp: reqwest::Response, method: &str, url: &str) -> anyhow::Result<()> {
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
        .unwrap_or(body);
    bail!("{method} {url}: {status}: {detail}")
}

/// The readings as doppel's JSON array; `with_twin` adds each reading's `twin` (the bulk
/// form), without it the array is for one twin's URL or MQTT topic. Timestamps are RFC 3339
/// with the shortest exact fraction, so nothing is rounded.
pub(crate) fn readings_json(readings: &[Reading], with_twin: bool) -> String {
    let wire: Vec<Wire<'_>> = readings.iter().map(|r| Wire(r, with_twin)).collect();
    serde_json::to_string(&wire).unwrap_or_else(|_| "[]".into())
}

struct Wire<'a>(&'a Reading, bool);

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Wire(r, with_twin) = self;
        let mut o = s.serialize_struct("Reading", 3)?;
        if *with_twin {
            o.serialize_field("twin", &r.twin)?;
        }
        o.serialize_field("ts", &format_ts(r.ts))?;
        o.serialize_field("values", &Values(&r.values))?;
        o.end()
    }
}

struct Values<'a>(&'a [(String, Value)]);

impl Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Appends `r` as one line of InfluxDB line protocol: measurement `model`, tag `twin`, one
/// field per value (integers with the `i` suffix), nanosecond timestamp. Ids and signal
/// names are plain identifiers, so nothing needs escaping.
pub(crate) fn push_lp(out: &mut String, model: &str, r: &Reading) {
    if r.values.is_empty() {
        return;
    }
    let _ = write!(out, "{model},twin={} ", r.twin);
    for (i, (k, v)) in r.values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = match v {
            Value::Float(x) => write!(out, "{k}={x}"),
            Value::Int(x) => write!(out, "{k}={x}i"),
            Value::Bool(b) => write!(out, "{k}={b}"),
            Value::String(s) => write!(out, "{k}={s:?}"),
        };
    }
    let _ = writeln!(out, " {}", r.ts);
}

/// Splits `host:port` for the MQTT client.
pub(crate) fn host_port(addr: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = addr
        .rsplit_once(':')
        .with_context(|| format!("--mqtt must be host:port, not `{addr}`"))?;
    let port = port
        .parse()
        .with_context(|| format!("--mqtt port `{port}` is not a port number"))?;
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

/// The topic a twin's readings are published to.
pub(crate) fn topic(twin: &str) -> String {
    format!("doppel/twins/{twin}/readings")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading() -> Reading {
        Reading {
            twin: "pump-1".into(),
            ts: 1_767_571_200_000_000_001,
            values: vec![
                ("flow".into(), Value::Float(110.0)),
                ("cycle_count".into(), Value::Int(42)),
                ("running".into(), Value::Bool(true)),
            ],
        }
    }

    #[test]
    fn json_keeps_nanoseconds_and_kinds() {
        let bulk = readings_json(&[reading()], true);
        assert_eq!(
            bulk,
            r#"[{"twin":"pump-1","ts":"2026-01-05T00:00:00.000000001Z","values":{"flow":110.0,"cycle_count":42,"running":true}}]"#
        );
        assert!(!readings_json(&[reading()], false).contains("twin"));
    }

    #[test]
    fn line_protocol_types_fields() {
        let mut s = String::new();
        push_lp(&mut s, "centrifugal_pump", &reading());
        assert_eq!(
            s,
            "centrifugal_pump,twin=pump-1 flow=110,cycle_count=42i,running=true 1767571200000000001\n"
        );
    }

    #[test]
    fn mqtt_address_parses() {
        assert_eq!(
            host_port("127.0.0.1:1883").unwrap(),
            ("127.0.0.1".into(), 1883)
        );
        assert_eq!(host_port("[::1]:1883").unwrap(), ("::1".into(), 1883));
        assert!(host_port("localhost").is_err());
        assert!(host_port("h:x").is_err());
    }
}
