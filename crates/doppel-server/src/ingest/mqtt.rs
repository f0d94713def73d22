//! The embedded MQTT broker (rmqtt, MQTT 3.1.1 and 5): devices publish readings to
//! `doppel/twins/{id}/readings` in the JSON form of [`super::json`]; every other topic is an
//! ordinary broker topic between the user's own clients.
//!
//! rmqtt is used rather than rumqttd because rmqtt awaits its publish-ACL hook before it
//! answers a PUBLISH. doppel ingests inside that hook, so a QoS 1 PUBACK (or QoS 2 PUBREC)
//! leaves only once the reading is durable, exactly like an HTTP 200.
//!
//! - Login: username `token`, password a doppel token. The role is looked up once per
//!   connection and kept in the session's attributes; a revoked token stays usable on a
//!   connection that is already open, until it reconnects.
//! - A reading accepted is forwarded to subscribers of its topic as usual, so other MQTT
//!   consumers can listen to the durable stream; a reading refused is not forwarded.
//! - Refusals (counted in `doppel_ingest_rejected_total{source="mqtt"}`): an MQTT 5 client gets
//!   the reason code in its PUBACK/PUBREC (0x87 not authorized, 0x90 unknown twin,
//!   0x99 bad payload) and stays connected; MQTT 3.1.1 has no negative PUBACK, so the message
//!   is acked and dropped.
//! - Retained messages are kept in memory (lost on restart; at most [`MAX_RETAINED`] topics);
//!   one expires only when its publisher set an MQTT 5 message expiry interval.
//! - Alarm changes are published by the server itself to `doppel/alarms/{twin}` and
//!   maintenance-advice changes to `doppel/advice/{twin}` (QoS 1, the live event's JSON), so
//!   an MQTT-only client (SCADA, a phone gateway) can follow alarms and advice.
//! - A storage failure is never acked as success: MQTT 5 gets 0x80 (unspecified error);
//!   an MQTT 3.1.1 client, or any QoS 0 publish, is disconnected so the device notices and
//!   sends again after reconnecting.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use doppel_engine::{EngineError, IngestSource};
use rmqtt::codec::types::MQTT_LEVEL_5;
use rmqtt::codec::v5::PublishAckReason;
use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType, Type};
use rmqtt::net::Builder;
use rmqtt::retain::{DefaultRetainStorage, RetainStorage};
use rmqtt::server::MqttServer;
use rmqtt::session::Session;
use rmqtt::types::{
    AuthResult, ConnectInfo, PublishAclResult, PublishResult, QoS, Retain, TopicFilter, TopicName,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ingest::json;
use crate::{now_ns, AppState, Role};

/// Username every client logs in with; the password is the token.
pub const USERNAME: &str = "token";

/// Key of the session attribute holding the connection's [`Role`].
const ROLE_ATTR: &str = "doppel.role";

/// Longest reason string put in an MQTT 5 PUBACK, so a long list of field errors cannot
/// outgrow a client's maximum packet size.
const MAX_REASON_LEN: usize = 256;

/// Most topics with a retained message; a new one beyond this is not retained (the message is
/// still delivered), so a client cannot exhaust memory with retained messages.
pub const MAX_RETAINED: isize = 100_000;

/// How often expired retained messages are freed.
const RETAIN_SWEEP: Duration = Duration::from_secs(60);

/// How long shutdown waits for connections to close and in-flight readings to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Errors starting the broker.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("MQTT: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running broker. Dropping it without [`MqttBroker::shutdown`] leaves it running until the
/// runtime ends.
pub struct MqttBroker {
    local_addr: SocketAddr,
    scx: ServerContext,
    accept: JoinHandle<()>,
    hooks: Hooks,
}

impl std::fmt::Debug for MqttBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttBroker")
            .field("local_addr", &self.local_addr)
            .field("closing", &self.hooks.0.closing.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl MqttBroker {
    /// Binds `addr` (port 0 allowed: the OS picks) and starts the broker on the current tokio
    /// runtime.
    pub async fn start(addr: SocketAddr, state: AppState) -> Result<MqttBroker, MqttError> {
        let bind_err = |e: rmqtt::Error| MqttError::Bind {
            addr,
            source: e
                .downcast::<std::io::Error>()
                .unwrap_or_else(std::io::Error::other),
        };
        let listener = Builder::new()
            .name("mqtt")
            .laddr(addr)
            // Every client must present a token; rmqtt would otherwise let a CONNECT without
            // username in before any hook runs.
            .allow_anonymous(false)
            // A PUBACK is one small packet waiting on a device; Nagle would hold it back.
            .nodelay(true)
            .bind()
            .and_then(|l| l.tcp())
            .map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;

        // The busy check refuses logins while the host's CPU load is high, which is exactly
        // when doppel is ingesting hardest; devices must not be locked out for that.
        let scx = ServerContext::new().busy_check_enable(false).build().await;
        let hooks = Hooks(Arc::new(HooksInner {
            state,
            closing: CancellationToken::new(),
            in_flight: tokio::sync::RwLock::new(()),
        }));
        let register = scx.extends.hook_mgr().register();
        for typ in [
            Type::ClientAuthenticate,
            Type::ClientConnected,
            Type::MessagePublishCheckAcl,
        ] {
            register.add(typ, Box::new(hooks.clone())).await;
        }
        register.start().await;
        let retained = Arc::new(DefaultRetainStorage::new());
        *scx.extends.retain_mut().await = Box::new(Retained(retained.clone()));
        spawn_alarm_publisher(scx.clone(), &hooks.0.state, hooks.0.closing.clone());
        let closing = hooks.0.closing.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = closing.cancelled() => break,
                    () = tokio::time::sleep(RETAIN_SWEEP) => {}
                }
                retained.remove_expired_messages().await;
            }
        });

        // The listener id must be unique per context; the real port is (port 0 is not).
        let server = MqttServer::new(scx.clone())
            .listener_by_id(listener, local_addr.port())
            .build();
        let accept = tokio::spawn(async move {
            if let Err(e) = server.run().await {
                tracing::error!(error = %e, "MQTT broker stopped");
            }
        });
        tracing::info!(addr = %local_addr, "MQTT broker listening");
        Ok(MqttBroker {
            local_addr,
            scx,
            accept,
            hooks,
        })
    }

    /// The address the broker really listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections and stops the broker (used at shutdown, before the engine
    /// closes). Readings being ingested finish and are acked; later ones are refused as a
    /// storage failure, so no client takes them for stored.
    pub async fn shutdown(self) {
        let inner = &self.hooks.0;
        inner.closing.cancel();
        self.accept.abort();
        let _ = self.accept.await;

        // A kicked session first finishes the packet it is processing, so this also lets
        // in-flight readings complete and be acked.
        let entries: Vec<_> = self.scx.extends.shared().await.iter().collect();
        let kicks = entries.into_iter().map(|entry| async move {
            if let Ok(mut locked) = entry.try_lock().await {
                let _ = locked.kick(true, true, true).await;
            }
        });
        if tokio::time::timeout(SHUTDOWN_GRACE, futures::future::join_all(kicks))
            .await
            .is_err()
        {
            tracing::warn!("MQTT: some clients did not disconnect in time");
        }
        // A reading that slipped past the kicks holds this lock while it is ingested.
        if tokio::time::timeout(SHUTDOWN_GRACE, inner.in_flight.write())
            .await
            .is_err()
        {
            tracing::warn!("MQTT: readings still in flight at shutdown");
        }
        tracing::info!(addr = %self.local_addr, "MQTT broker stopped");
    }
}

/// Topic of a twin's alarm changes.
pub fn alarm_topic(twin: &str) -> String {
    format!("doppel/alarms/{twin}")
}

/// Topic of a twin's maintenance-advice changes.
pub fn advice_topic(twin: &str) -> String {
    format!("doppel/advice/{twin}")
}

/// Publishes every alarm change from the live bus to `doppel/alarms/{twin}`, and every
/// advice change to `doppel/advice/{twin}`.
fn spawn_alarm_publisher(scx: ServerContext, state: &AppState, closing: CancellationToken) {
    use doppel_engine::EventFilter;
    use rmqtt::session::SessionState;
    use rmqtt::types::{CodecPublish, From as MsgFrom, Id, Publish};

    let filter = EventFilter::default()
        .with_types(Some("alarm,advice"))
        .unwrap_or_default();
    let mut sub = state.engine.subscribe(filter);
    let from = MsgFrom::from_system(Id::from(
        scx.node.id(),
        bytestring::ByteString::from_static("doppel"),
    ));
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                _ = closing.cancelled() => break,
                ev = sub.next() => match ev {
                    Some(ev) => ev,
                    None => break,
                },
            };
            let publish = CodecPublish {
                dup: false,
                retain: false,
                qos: QoS::AtLeastOnce,
                topic: bytestring::ByteString::from(match ev.body {
                    doppel_engine::EventBody::Advice { .. } => advice_topic(&ev.twin),
                    _ => alarm_topic(&ev.twin),
                }),
                packet_id: None,
                payload: bytes::Bytes::from(ev.json().to_string()),
                properties: None,
            };
            let publish = Publish::new(
                Box::new(publish),
                None,
                None,
                Some(chrono::Utc::now().timestamp_millis()),
            );
            if let Err(e) = SessionState::forwards(&scx, from.clone(), publish, false, None).await {
                tracing::warn!(error = %e, twin = %ev.twin, "MQTT: alarm not published");
            }
        }
    });
}

/// rmqtt's hook handler: logins, roles, and ingest of readings.
#[derive(Clone)]
struct Hooks(Arc<HooksInner>);

struct HooksInner {
    state: AppState,
    /// Cancelled at shutdown: logins and readings are refused from then on.
    closing: CancellationToken,
    /// Held (shared) by every reading being ingested; shutdown takes it exclusively to wait
    /// for them.
    in_flight: tokio::sync::RwLock<()>,
}

// rmqtt's `Handler` is an `async_trait`; this is that macro's expansion written out, so
// doppel does not depend on the macro for one method.
impl Handler for Hooks {
    fn hook<'life0, 'life1, 'async_trait>(
        &'life0 self,
        param: &'life1 Parameter<'_>,
        acc: Option<HookResult>,
    ) -> Pin<Box<dyn Future<Output = ReturnType> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.dispatch(param, acc))
    }
}

impl Hooks {
    async fn dispatch(&self, param: &Parameter<'_>, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::ClientAuthenticate(ci) => {
                let result = self.authenticate(ci).await;
                (false, Some(HookResult::AuthResult(result)))
            }
            Parameter::ClientConnected(s) => {
                let role = self.verify(s.password().cloned()).await;
                if let Some(role) = role {
                    s.extra_attrs.write().await.insert(ROLE_ATTR.into(), role);
                }
                (true, acc)
            }
            Parameter::MessagePublishCheckAcl(s, p) => match readings_twin(&p.topic) {
                Some(twin) => {
                    let res = self.ingest(s, twin, &p.payload, p.qos).await;
                    (false, Some(HookResult::PublishAclResult(res)))
                }
                None => (true, acc),
            },
            _ => (true, acc),
        }
    }

    async fn authenticate(&self, ci: &ConnectInfo) -> AuthResult {
        let client = ci.client_id();
        if self.0.closing.is_cancelled() {
            return AuthResult::NotAuthorized;
        }
        if ci.username().map(|u| u.as_ref()) != Some(USERNAME) || ci.password().is_none() {
            tracing::warn!(client = %client, remote = ?ci.ipaddress(),
                "MQTT login refused: expected username `{USERNAME}` and a token as password");
            return AuthResult::NotAuthorized;
        }
        match self.verify(ci.password().cloned()).await {
            // Never a superuser: rmqtt skips the publish hook for those, and ingest with it.
            Some(_) => AuthResult::Allow(false, None),
            None => {
                tracing::warn!(client = %client, remote = ?ci.ipaddress(),
                    "MQTT login refused: invalid token");
                AuthResult::BadUsernameOrPassword
            }
        }
    }

    /// The role of the token given as password. The first check of a token runs argon2,
    /// which must not block the runtime.
    async fn verify(&self, password: Option<rmqtt::types::Password>) -> Option<Role> {
        let token = String::from_utf8(password?.to_vec()).ok()?;
        let auth = self.0.state.auth.clone();
        tokio::task::spawn_blocking(move || auth.verify(&token))
            .await
            .ok()
            .flatten()
    }

    /// Ingests one PUBLISH on a readings topic; the answer decides the PUBACK/PUBREC.
    async fn ingest(&self, s: &Session, twin: &str, payload: &[u8], qos: QoS) -> PublishAclResult {
        let inner = &self.0;
        let engine = &inner.state.engine;
        let refusal = Refusal {
            twin,
            client: &s.id.client_id,
            v5: matches!(s.protocol().await, Ok(MQTT_LEVEL_5)),
            qos,
            inner,
        };
        let role = s.extra_attrs.read().await.get::<Role>(ROLE_ATTR).copied();
        if role.is_none_or(|r| r < Role::Writer) {
            let msg = format!(
                "role {} may not write readings",
                role.map_or("none", Role::as_str)
            );
            return refusal.client_fault(Some("forbidden"), PublishAckReason::NotAuthorized, &msg);
        }
        let _in_flight = inner.in_flight.read().await;
        if inner.closing.is_cancelled() {
            return refusal.server_fault(Some("shutting_down"), &EngineError::ShuttingDown);
        }
        if engine.catalog().twin(twin).is_none() {
            let msg = format!("twin `{twin}` not found");
            return refusal.client_fault(
                Some("unknown_twin"),
                PublishAckReason::TopicNameInvalid,
                &msg,
            );
        }
        let now = now_ns();
        let label = json::label(json::is_array(payload));
        let ingested = match json::decode_fast(payload, Some(twin), now) {
            Some(readings) => {
                engine
                    .ingest_readings(readings, IngestSource::Mqtt, label)
                    .await
            }
            None => {
                let batch = match json::decode_for_twin(payload, twin, now) {
                    Ok(b) => b,
                    Err(e) => {
                        let msg = e.to_string();
                        return refusal.client_fault(
                            Some("decode"),
                            PublishAckReason::PayloadFormatInvalid,
                            &msg,
                        );
                    }
                };
                engine.ingest(batch, IngestSource::Mqtt, label).await
            }
        };
        match ingested {
            Ok(_) => PublishAclResult::allow(),
            Err(e) => match e {
                // The engine has counted these itself (as "invalid" and "storage").
                EngineError::Invalid(_) => refusal.client_fault(
                    None,
                    PublishAckReason::PayloadFormatInvalid,
                    &e.to_string(),
                ),
                EngineError::Store(_) => refusal.server_fault(None, &e),
                EngineError::TwinNotFound(_) => refusal.client_fault(
                    Some("unknown_twin"),
                    PublishAckReason::TopicNameInvalid,
                    &e.to_string(),
                ),
                EngineError::SignalNotFound { .. } | EngineError::Model(_) => refusal.client_fault(
                    Some("invalid"),
                    PublishAckReason::PayloadFormatInvalid,
                    &e.to_string(),
                ),
                EngineError::ShuttingDown => refusal.server_fault(Some("shutting_down"), &e),
                EngineError::Persist { .. } | EngineError::CatalogCorrupt { .. } => {
                    refusal.server_fault(Some("storage"), &e)
                }
                // Ingest never touches alarms, advice or what-if models.
                EngineError::AlarmNotFound(_)
                | EngineError::AlarmConflict(_)
                | EngineError::AdviceNotFound(_)
                | EngineError::AdviceConflict(_)
                | EngineError::WhatIf(_)
                | EngineError::NotEnoughHistory(_) => refusal.server_fault(None, &e),
            },
        }
    }
}

/// Retained messages in memory. rmqtt's own [`DefaultRetainStorage`] has the store but is
/// switched off (its trait methods only log); this switches it on, with a topic limit and
/// MQTT 5 expiry only.
struct Retained(Arc<DefaultRetainStorage>);

// The methods below are `async_trait` expansions written out, as for `Handler`.
impl RetainStorage for Retained {
    fn enable(&self) -> bool {
        true
    }

    fn set<'life0, 'life1, 'async_trait>(
        &'life0 self,
        topic: &'life1 TopicName,
        retain: Retain,
        _expiry_interval: Option<Duration>,
    ) -> Pin<Box<dyn Future<Output = rmqtt::Result<()>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            // rmqtt passes the listener's default expiry (meant for queued messages) when
            // the publisher set none; a retained message lives until replaced unless its
            // publisher asked otherwise.
            let expiry = retain
                .publish
                .properties
                .as_ref()
                .and_then(|p| p.message_expiry_interval)
                .map(|secs| Duration::from_secs(u64::from(secs.get())));
            let adds_topic = !retain.publish.payload.is_empty();
            if adds_topic && RetainStorage::count(self.0.as_ref()).await >= MAX_RETAINED {
                let known = !self
                    .0
                    .get_message(topic)
                    .await
                    .unwrap_or_default()
                    .is_empty();
                if !known {
                    tracing::warn!(topic = %topic, "MQTT: too many retained topics; not retained");
                    return Ok(());
                }
            }
            self.0.set_with_timeout(topic, retain, expiry).await
        })
    }

    fn get<'life0, 'life1, 'async_trait>(
        &'life0 self,
        topic_filter: &'life1 TopicFilter,
    ) -> Pin<Box<dyn Future<Output = rmqtt::Result<Vec<(TopicName, Retain)>>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.0.get_message(topic_filter))
    }

    fn count<'life0, 'async_trait>(
        &'life0 self,
    ) -> Pin<Box<dyn Future<Output = isize> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        RetainStorage::count(self.0.as_ref())
    }

    fn max<'life0, 'async_trait>(
        &'life0 self,
    ) -> Pin<Box<dyn Future<Output = isize> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        RetainStorage::max(self.0.as_ref())
    }
}

/// Builds the answer to a refused reading, and logs and counts it.
struct Refusal<'a> {
    twin: &'a str,
    client: &'a str,
    v5: bool,
    qos: QoS,
    inner: &'a HooksInner,
}

impl Refusal<'_> {
    fn count(&self, reason: Option<&str>) {
        if let Some(reason) = reason {
            let metrics = self.inner.state.engine.metrics();
            metrics
                .ingest_rejected
                .with_label_values(&["mqtt", reason])
                .inc();
        }
    }

    /// Bad input: nothing is stored, the client stays connected.
    fn client_fault(
        &self,
        reason: Option<&str>,
        code: PublishAckReason,
        msg: &str,
    ) -> PublishAclResult {
        self.count(reason);
        tracing::warn!(
            twin = self.twin,
            client = self.client,
            error = msg,
            "MQTT reading refused"
        );
        PublishAclResult(PublishResult::reason_code(
            code,
            Some(reason_string(msg).into()),
            false,
        ))
    }

    /// doppel could not store the reading: it must not look acked.
    fn server_fault(&self, reason: Option<&str>, e: &EngineError) -> PublishAclResult {
        self.count(reason);
        tracing::error!(twin = self.twin, client = self.client, error = %e,
            "MQTT reading not stored");
        // Only an MQTT 5 PUBACK/PUBREC can say "failed"; anyone else is disconnected.
        let disconnect = !self.v5 || self.qos == QoS::AtMostOnce;
        let msg = reason_string(&e.to_string());
        PublishAclResult(PublishResult::reason_code(
            PublishAckReason::UnspecifiedError,
            Some(msg.into()),
            disconnect,
        ))
    }
}

fn reason_string(msg: &str) -> String {
    let mut end = msg.len().min(MAX_REASON_LEN);
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    msg[..end].to_string()
}

/// The twin id of a readings topic `doppel/twins/{id}/readings`, or `None` for any other topic.
fn readings_twin(topic: &str) -> Option<&str> {
    let id = topic
        .strip_prefix("doppel/twins/")?
        .strip_suffix("/readings")?;
    (!id.contains('/')).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_topics() {
        assert_eq!(readings_twin("doppel/twins/p1/readings"), Some("p1"));
        assert_eq!(readings_twin("doppel/twins//readings"), Some(""));
        assert_eq!(readings_twin("doppel/twins/a/b/readings"), None);
        assert_eq!(readings_twin("doppel/twins/readings"), None);
        assert_eq!(readings_twin("doppel/twins/p1/state"), None);
        assert_eq!(readings_twin("factory/line1/x"), None);
    }

    #[test]
    fn reason_strings_are_cut_on_char_boundaries() {
        let long = "é".repeat(MAX_REASON_LEN);
        let cut = reason_string(&long);
        assert!(cut.len() <= MAX_REASON_LEN);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
