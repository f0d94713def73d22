//! Webhooks: alarm changes POSTed as JSON to URLs that admins register, each body signed
//! with the webhook's secret so the receiver can check it came from this doppel.
//!
//! - Registration (`/api/v1/webhooks`, admin) is kept in `webhooks.json` in the data
//!   directory (replaced atomically). The secret is kept too: signing needs it.
//! - Each delivery carries `X-Doppel-Event: alarm.<change>`, `X-Doppel-Delivery` (unique id),
//!   `X-Doppel-Timestamp` (Unix seconds) and `X-Doppel-Signature: sha256=<hex>`, the
//!   HMAC-SHA256 of `"<timestamp>.<body>"` with the secret (the timestamp makes a replayed
//!   body detectable).
//! - Each webhook has its own worker and bounded queue, so a slow receiver delays only its
//!   own deliveries. A failure (connection error, timeout, 5xx, 408, 429) is retried with
//!   exponential backoff up to [`MAX_ATTEMPTS`]; other 4xx answers are final. Everything is
//!   counted in `doppel_webhook_deliveries_total{result}`.
//! - Targets are `http://` URLs (no TLS client is built in); put a TLS-terminating proxy in
//!   front of an https receiver.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use doppel_engine::{Engine, EventBody, EventFilter};
use hmac::{Hmac, Mac};
use parking_lot::RwLock;
use prometheus::{IntCounterVec, Opts};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Delivery attempts per event and webhook, the first included.
pub const MAX_ATTEMPTS: u32 = 6;
/// Wait before the first retry; doubled each time, at most [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Time allowed for one delivery.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Events waiting per webhook; beyond that new ones are dropped (counted).
const QUEUE: usize = 1024;

/// A registered webhook.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// Only these twins' alarms (empty: all twins).
    #[serde(default)]
    pub twins: Vec<String>,
    /// Shared secret for `X-Doppel-Signature`. Shown only when the webhook is created.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub secret: String,
    pub created: String,
}

/// Errors of webhook registration.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("url: {0}")]
    Url(String),
    #[error("webhook `{0}` not found")]
    NotFound(String),
    #[error("could not persist {path}: {source}")]
    Persist {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The registered webhooks and their delivery.
#[derive(Debug)]
pub struct Webhooks {
    path: PathBuf,
    hooks: Arc<RwLock<Vec<Webhook>>>,
    deliveries: IntCounterVec,
}

impl Webhooks {
    /// Loads `webhooks.json` from `dir` (none yet: no webhooks) and registers the metrics.
    pub fn open(dir: &Path, engine: &Engine) -> Result<Webhooks, WebhookError> {
        let path = dir.join("webhooks.json");
        let hooks: Vec<Webhook> = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| WebhookError::Persist {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(WebhookError::Persist { path, source }),
        };
        let deliveries = IntCounterVec::new(
            Opts::new(
                "webhook_deliveries_total",
                "Webhook delivery attempts by result: delivered, retried, failed, dropped",
            ),
            &["result"],
        )
        .map_err(|e| WebhookError::Persist {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        if let Err(e) = engine
            .metrics()
            .registry
            .register(Box::new(deliveries.clone()))
        {
            tracing::warn!(error = %e, "webhook metrics not registered");
        }
        Ok(Webhooks {
            path,
            hooks: Arc::new(RwLock::new(hooks)),
            deliveries,
        })
    }

    /// Every webhook, secrets left out.
    pub fn list(&self) -> Vec<Webhook> {
        self.hooks
            .read()
            .iter()
            .map(|h| Webhook {
                secret: String::new(),
                ..h.clone()
            })
            .collect()
    }

    /// Registers a webhook; a secret is generated when none is given. Returns it with its
    /// secret (the only time the secret is shown).
    pub fn create(
        &self,
        url: String,
        secret: Option<String>,
        twins: Vec<String>,
        now: String,
    ) -> Result<Webhook, WebhookError> {
        check_url(&url)?;
        let random = |n| {
            crate::files::random_hex(n).map_err(|e| WebhookError::Persist {
                path: self.path.clone(),
                source: std::io::Error::other(e.to_string()),
            })
        };
        let secret = match secret {
            Some(s) if s.len() >= 16 => s,
            Some(_) => return Err(WebhookError::Url("secret: at least 16 characters".into())),
            None => random(24)?,
        };
        let hook = Webhook {
            id: format!("wh_{}", random(6)?),
            url,
            twins,
            secret,
            created: now,
        };
        let mut hooks = self.hooks.write();
        let mut next = hooks.clone();
        next.push(hook.clone());
        self.save(&next)?;
        *hooks = next;
        Ok(hook)
    }

    pub fn delete(&self, id: &str) -> Result<(), WebhookError> {
        let mut hooks = self.hooks.write();
        let next: Vec<Webhook> = hooks.iter().filter(|h| h.id != id).cloned().collect();
        if next.len() == hooks.len() {
            return Err(WebhookError::NotFound(id.to_string()));
        }
        self.save(&next)?;
        *hooks = next;
        Ok(())
    }

    fn save(&self, hooks: &[Webhook]) -> Result<(), WebhookError> {
        let io = |source| WebhookError::Persist {
            path: self.path.clone(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(hooks).map_err(|e| io(e.into()))?;
        crate::files::write_atomic(&self.path, &bytes).map_err(io)
    }

    /// Starts delivering alarm changes; ends with `shutdown`.
    pub fn start(self: &Arc<Self>, engine: &Engine, shutdown: CancellationToken) {
        let filter = EventFilter::default()
            .with_types(Some("alarm"))
            .unwrap_or_default();
        let mut sub = engine.subscribe(filter);
        let this = self.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .unwrap_or_default();
            let mut workers: HashMap<String, mpsc::Sender<Delivery>> = HashMap::new();
            let mut seq: u64 = 0;
            loop {
                let ev = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    ev = sub.next() => match ev { Some(ev) => ev, None => break },
                };
                let EventBody::Alarm { change, .. } = &ev.body else {
                    continue;
                };
                let hooks = this.hooks.read().clone();
                workers.retain(|id, _| hooks.iter().any(|h| &h.id == id));
                if hooks.is_empty() {
                    continue;
                }
                let body: Arc<str> = ev.json();
                for h in hooks {
                    if !h.twins.is_empty() && !h.twins.iter().any(|t| **t == *ev.twin) {
                        continue;
                    }
                    seq += 1;
                    let d = Delivery {
                        id: format!("{}-{}-{seq}", h.id, ev.ts),
                        event: format!("alarm.{}", change.as_str()),
                        body: body.clone(),
                    };
                    let tx = workers.entry(h.id.clone()).or_insert_with(|| {
                        let (tx, rx) = mpsc::channel(QUEUE);
                        tokio::spawn(worker(
                            h.clone(),
                            rx,
                            client.clone(),
                            this.deliveries.clone(),
                            shutdown.clone(),
                        ));
                        tx
                    });
                    if tx.try_send(d).is_err() {
                        this.deliveries.with_label_values(&["dropped"]).inc();
                        tracing::warn!(webhook = %h.id, "webhook queue full; alarm change dropped");
                    }
                }
            }
        });
    }
}

#[derive(Debug)]
struct Delivery {
    id: String,
    event: String,
    body: Arc<str>,
}

/// `sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>.<body>").
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn worker(
    hook: Webhook,
    mut rx: mpsc::Receiver<Delivery>,
    client: reqwest::Client,
    counter: IntCounterVec,
    shutdown: CancellationToken,
) {
    while let Some(d) = rx.recv().await {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=MAX_ATTEMPTS {
            let ts = chrono::Utc::now().timestamp();
            let res = client
                .post(&hook.url)
                .header("content-type", "application/json")
                .header("x-doppel-event", &d.event)
                .header("x-doppel-delivery", &d.id)
                .header("x-doppel-timestamp", ts.to_string())
                .header("x-doppel-signature", signature(&hook.secret, ts, &d.body))
                .body(d.body.to_string())
                .send()
                .await;
            let retry = match &res {
                Ok(r) if r.status().is_success() => {
                    counter.with_label_values(&["delivered"]).inc();
                    break;
                }
                Ok(r) => {
                    let s = r.status().as_u16();
                    s >= 500 || s == 408 || s == 429
                }
                Err(_) => true,
            };
            let why = match &res {
                Ok(r) => format!("HTTP {}", r.status()),
                Err(e) => e.to_string(),
            };
            if !retry || attempt == MAX_ATTEMPTS {
                counter.with_label_values(&["failed"]).inc();
                tracing::warn!(webhook = %hook.id, delivery = %d.id, attempt, error = %why, "webhook delivery failed");
                break;
            }
            counter.with_label_values(&["retried"]).inc();
            tracing::info!(webhook = %hook.id, delivery = %d.id, attempt, error = %why, "webhook delivery retried");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

fn check_url(url: &str) -> Result<(), WebhookError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| WebhookError::Url(format!("{url:?}: {e}")))?;
    if parsed.scheme() != "http" {
        return Err(WebhookError::Url(format!(
            "{url:?}: only http:// targets are supported (put a TLS proxy in front of https)"
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(WebhookError::Url(format!("{url:?}: no host")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Reference value from Python:
        // hmac.new(b"0123456789abcdef", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            signature("0123456789abcdef", 1_700_000_000, "{}"),
            "sha256=e4f8e2ecae2295b2ddb2f0b5584c8275e226c0ebe9b3b819e70156bb67122e3e"
        );
    }

    #[test]
    fn urls() {
        assert!(check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(check_url("https://example.com/").is_err());
        assert!(check_url("not a url").is_err());
    }
}
