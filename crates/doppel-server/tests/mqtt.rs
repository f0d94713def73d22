//! The embedded MQTT broker against real clients (rumqttc, MQTT 3.1.1 and 5) over 127.0.0.1:
//! logins, ack-after-durable ingest, refusals, roles, plain pub/sub and shutdown.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use doppel_engine::{Engine, EngineConfig};
use doppel_model::{AssetModel, Twin, Value};
use doppel_server::auth::create_token;
use doppel_server::ingest::mqtt::MqttBroker;
use doppel_server::outputs::webhooks::Webhooks;
use doppel_server::{AppState, Authenticator, Role};
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions};
use rumqttc::{Packet, QoS};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);
const ADMIN: &str = "test-admin";
const READINGS: &str = "doppel/twins/p1/readings";

struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
    broker: MqttBroker,
    reader: String,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let auth_dir = dir.path().join("auth");
        let reader = create_token(&auth_dir, Role::Reader, "r").unwrap();
        let (auth, _) = Authenticator::open(&auth_dir, Some(ADMIN)).unwrap();
        let engine = Engine::open(EngineConfig::new(dir.path().join("data")))
            .await
            .unwrap();
        let model: AssetModel = serde_json::from_value(serde_json::json!({
            "id": "pump", "name": "Pump",
            "signals": [{"name": "temp", "unit": "°C"}, {"name": "on", "kind": "bool"}]
        }))
        .unwrap();
        engine.put_model(model).await.unwrap();
        let twin: Twin =
            serde_json::from_value(serde_json::json!({"id": "p1", "model": "pump"})).unwrap();
        engine.put_twin(twin).await.unwrap();
        let webhooks = Arc::new(Webhooks::open(&dir.path().join("data"), &engine).unwrap());
        let state = AppState {
            engine,
            auth: Arc::new(auth),
            shutdown: CancellationToken::new(),
            webhooks,
        };
        let broker = MqttBroker::start("127.0.0.1:0".parse().unwrap(), state.clone())
            .await
            .unwrap();
        Fixture {
            _dir: dir,
            state,
            broker,
            reader,
        }
    }

    fn port(&self) -> u16 {
        self.broker.local_addr().port()
    }

    async fn temps(&self) -> Vec<(i64, Value)> {
        let points = self
            .state
            .engine
            .history("p1", "temp", i64::MIN, i64::MAX, 100)
            .await
            .unwrap();
        points.into_iter().map(|p| (p.ts, p.value)).collect()
    }

    /// `doppel_ingest_rejected_total{source="mqtt", reason}` as rendered for Prometheus.
    fn rejected(&self, reason: &str) -> u64 {
        let text = self.state.engine.metrics().render();
        let label = format!("reason=\"{reason}\"");
        text.lines()
            .filter(|l| l.starts_with("doppel_ingest_rejected_total{"))
            .filter(|l| l.contains("source=\"mqtt\"") && l.contains(&label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

/// Connects over MQTT 3.1.1 and waits for the CONNACK.
async fn connect(
    port: u16,
    id: &str,
    creds: Option<(&str, &str)>,
) -> Result<(AsyncClient, EventLoop), ConnectionError> {
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    if let Some((user, pass)) = creds {
        opts.set_credentials(user, pass);
    }
    let (client, mut events) = AsyncClient::new(opts, 16);
    timeout(WAIT, async {
        loop {
            if let Event::Incoming(Packet::ConnAck(_)) = events.poll().await? {
                return Ok::<(), ConnectionError>(());
            }
        }
    })
    .await
    .expect("no CONNACK in time")?;
    Ok((client, events))
}

/// Polls until an incoming packet for which `pick` returns something.
async fn next<T>(events: &mut EventLoop, mut pick: impl FnMut(Packet) -> Option<T>) -> T {
    timeout(WAIT, async {
        loop {
            if let Event::Incoming(p) = events.poll().await.unwrap() {
                if let Some(t) = pick(p) {
                    return t;
                }
            }
        }
    })
    .await
    .expect("expected packet did not arrive in time")
}

async fn puback(events: &mut EventLoop) {
    next(events, |p| matches!(p, Packet::PubAck(_)).then_some(())).await
}

async fn suback(events: &mut EventLoop) {
    next(events, |p| matches!(p, Packet::SubAck(_)).then_some(())).await
}

async fn received(events: &mut EventLoop) -> (String, Vec<u8>) {
    next(events, |p| match p {
        Packet::Publish(p) => Some((p.topic, p.payload.to_vec())),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_need_a_valid_token() {
    let f = Fixture::new().await;
    let refused = |r: Result<_, ConnectionError>| match r {
        Err(ConnectionError::ConnectionRefused(code)) => code,
        Err(e) => panic!("expected a refusing CONNACK, got {e}"),
        Ok(_) => panic!("login accepted"),
    };
    let code = refused(connect(f.port(), "bad", Some(("token", "dpl_00000000_nope"))).await);
    assert_eq!(code, ConnectReturnCode::BadUserNamePassword);
    let code = refused(connect(f.port(), "anon", None).await);
    assert_eq!(code, ConnectReturnCode::NotAuthorized);
    let code = refused(connect(f.port(), "user", Some(("admin", ADMIN))).await);
    assert_eq!(code, ConnectReturnCode::NotAuthorized);

    connect(f.port(), "admin", Some(("token", ADMIN)))
        .await
        .unwrap();
    connect(f.port(), "reader", Some(("token", &f.reader)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puback_means_durable_and_bad_readings_are_refused() {
    let f = Fixture::new().await;
    let (client, mut events) = connect(f.port(), "dev-1", Some(("token", ADMIN)))
        .await
        .unwrap();

    client
        .publish(
            READINGS,
            QoS::AtLeastOnce,
            false,
            r#"{"ts": 1000, "values": {"temp": 71.5}}"#,
        )
        .await
        .unwrap();
    puback(&mut events).await;
    // No waiting: the PUBACK itself says the reading is stored and applied.
    assert_eq!(f.temps().await, [(1_000_000_000, Value::Float(71.5))]);
    let state = f.state.engine.twin_state("p1", None).await.unwrap();
    assert_eq!(state.signals["temp"].value, Some(Value::Float(71.5)));

    let bad = [
        (
            READINGS,
            r#"{"ts": 2000, "values": {"pressure": 1.0}}"#,
            "invalid",
        ),
        (
            READINGS,
            r#"{"ts": 2000, "values": {"temp": "hot"}}"#,
            "invalid",
        ),
        (READINGS, r#"{"ts": 2000, "values": {"temp": 1.0"#, "decode"),
        (
            READINGS,
            r#"{"ts": "noon", "values": {"temp": 1.0}}"#,
            "decode",
        ),
        (
            "doppel/twins/nope/readings",
            r#"{"ts": 2000, "values": {"temp": 1.0}}"#,
            "unknown_twin",
        ),
    ];
    for (topic, payload, reason) in bad {
        let before = f.rejected(reason);
        client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
        // MQTT 3.1.1 has no negative PUBACK: the message is acked and dropped.
        puback(&mut events).await;
        assert_eq!(
            f.rejected(reason),
            before + 1,
            "{payload} not counted as {reason}"
        );
    }
    assert_eq!(f.temps().await.len(), 1, "a refused reading was stored");

    // The connection is still usable, for QoS 0 too.
    client
        .publish(
            READINGS,
            QoS::AtMostOnce,
            false,
            r#"{"ts": 3000, "values": {"temp": 70}}"#,
        )
        .await
        .unwrap();
    client
        .publish(
            READINGS,
            QoS::AtLeastOnce,
            false,
            r#"[{"ts": 4000, "values": {"temp": 69, "on": true}}]"#,
        )
        .await
        .unwrap();
    puback(&mut events).await;
    let ts: Vec<_> = f
        .temps()
        .await
        .into_iter()
        .map(|(ts, _)| ts / 1_000_000)
        .collect();
    assert_eq!(ts, [1000, 3000, 4000]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_subscribe_but_cannot_write() {
    let f = Fixture::new().await;
    let (reader, mut reader_events) = connect(f.port(), "reader", Some(("token", &f.reader)))
        .await
        .unwrap();
    reader
        .subscribe("doppel/twins/+/readings", QoS::AtLeastOnce)
        .await
        .unwrap();
    suback(&mut reader_events).await;

    let before = f.rejected("forbidden");
    reader
        .publish(
            READINGS,
            QoS::AtLeastOnce,
            false,
            r#"{"ts": 1000, "values": {"temp": 1.0}}"#,
        )
        .await
        .unwrap();
    puback(&mut reader_events).await;
    assert_eq!(f.rejected("forbidden"), before + 1);
    assert!(f.temps().await.is_empty());

    // Accepted readings are forwarded to subscribers; the refused one was not, or the reader
    // would have received it first.
    let (writer, mut writer_events) = connect(f.port(), "writer", Some(("token", ADMIN)))
        .await
        .unwrap();
    let good = r#"{"ts": 2000, "values": {"temp": 2.0}}"#;
    writer
        .publish(READINGS, QoS::AtLeastOnce, false, good)
        .await
        .unwrap();
    puback(&mut writer_events).await;
    let (topic, payload) = received(&mut reader_events).await;
    assert_eq!(
        (topic.as_str(), payload.as_slice()),
        (READINGS, good.as_bytes())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_topics_are_a_plain_broker() {
    let f = Fixture::new().await;
    let (a, mut a_events) = connect(f.port(), "a", Some(("token", ADMIN)))
        .await
        .unwrap();
    a.subscribe("factory/line1/#", QoS::ExactlyOnce)
        .await
        .unwrap();
    suback(&mut a_events).await;

    // A reader may publish on topics that are not readings.
    let (b, mut b_events) = connect(f.port(), "b", Some(("token", &f.reader)))
        .await
        .unwrap();
    b.publish("factory/line1/x", QoS::AtLeastOnce, false, "hello")
        .await
        .unwrap();
    puback(&mut b_events).await;
    let (topic, payload) = received(&mut a_events).await;
    assert_eq!(
        (topic.as_str(), payload.as_slice()),
        ("factory/line1/x", b"hello".as_slice())
    );

    b.publish("factory/line1/y", QoS::ExactlyOnce, false, "twice")
        .await
        .unwrap();
    next(&mut b_events, |p| {
        matches!(p, Packet::PubComp(_)).then_some(())
    })
    .await;
    let (topic, payload) = received(&mut a_events).await;
    assert_eq!(
        (topic.as_str(), payload.as_slice()),
        ("factory/line1/y", b"twice".as_slice())
    );
    assert_eq!(f.rejected("forbidden"), 0);

    // Retained: a client subscribing later still gets the last message.
    b.publish("factory/line2/status", QoS::AtLeastOnce, true, "running")
        .await
        .unwrap();
    puback(&mut b_events).await;
    let (c, mut c_events) = connect(f.port(), "c", Some(("token", ADMIN)))
        .await
        .unwrap();
    c.subscribe("factory/line2/+", QoS::AtLeastOnce)
        .await
        .unwrap();
    let retained = next(&mut c_events, |p| match p {
        Packet::Publish(p) => Some((p.topic, p.payload.to_vec(), p.retain)),
        _ => None,
    })
    .await;
    assert_eq!(
        retained,
        (
            "factory/line2/status".to_string(),
            b"running".to_vec(),
            true
        )
    );
}

mod v5 {
    use super::*;
    use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, PubAckReason};
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};

    pub(super) async fn connect(
        port: u16,
        id: &str,
        creds: Option<(&str, &str)>,
    ) -> Result<(AsyncClient, EventLoop), ConnectionError> {
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(30));
        if let Some((user, pass)) = creds {
            opts.set_credentials(user, pass);
        }
        let (client, mut events) = AsyncClient::new(opts, 16);
        timeout(WAIT, async {
            loop {
                if let Event::Incoming(Packet::ConnAck(_)) = events.poll().await? {
                    return Ok::<(), ConnectionError>(());
                }
            }
        })
        .await
        .expect("no CONNACK in time")?;
        Ok((client, events))
    }

    pub(super) async fn next<T>(
        events: &mut EventLoop,
        mut pick: impl FnMut(Packet) -> Option<T>,
    ) -> T {
        timeout(WAIT, async {
            loop {
                if let Event::Incoming(p) = events.poll().await.unwrap() {
                    if let Some(t) = pick(p) {
                        return t;
                    }
                }
            }
        })
        .await
        .expect("expected packet did not arrive in time")
    }

    async fn puback(events: &mut EventLoop) -> PubAckReason {
        next(events, |p| match p {
            Packet::PubAck(ack) => Some(ack.reason),
            _ => None,
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readings_are_acked_with_reason_codes() {
        let f = Fixture::new().await;
        match connect(f.port(), "bad", Some(("token", "wrong"))).await {
            Err(ConnectionError::ConnectionRefused(code)) => {
                assert_eq!(code, ConnectReturnCode::BadUserNamePassword)
            }
            other => panic!("expected a refused login, got {:?}", other.err()),
        }

        let (client, mut events) = connect(f.port(), "v5", Some(("token", ADMIN)))
            .await
            .unwrap();
        let reading = r#"{"ts": 1000, "values": {"temp": 71.5}}"#;
        client
            .publish(READINGS, QoS::AtLeastOnce, false, reading)
            .await
            .unwrap();
        assert_eq!(puback(&mut events).await, PubAckReason::Success);
        assert_eq!(f.temps().await, [(1_000_000_000, Value::Float(71.5))]);

        let refused = [
            (
                READINGS,
                r#"{"values": {"pressure": 1}}"#,
                PubAckReason::PayloadFormatInvalid,
            ),
            (READINGS, "not json", PubAckReason::PayloadFormatInvalid),
            (
                "doppel/twins/nope/readings",
                reading,
                PubAckReason::TopicNameInvalid,
            ),
        ];
        for (topic, payload, reason) in refused {
            client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .unwrap();
            assert_eq!(puback(&mut events).await, reason, "{topic} {payload}");
        }

        // QoS 2: the PUBREC, like a PUBACK, comes after the reading is durable.
        let reading = r#"{"ts": 2000, "values": {"temp": 72.5}}"#;
        client
            .publish(READINGS, QoS::ExactlyOnce, false, reading)
            .await
            .unwrap();
        next(&mut events, |p| {
            matches!(p, Packet::PubRec(_)).then_some(())
        })
        .await;
        assert_eq!(f.temps().await.len(), 2);
        next(&mut events, |p| {
            matches!(p, Packet::PubComp(_)).then_some(())
        })
        .await;

        let (reader, mut reader_events) =
            connect(f.port(), "v5-reader", Some(("token", &f.reader)))
                .await
                .unwrap();
        reader
            .publish(READINGS, QoS::AtLeastOnce, false, reading)
            .await
            .unwrap();
        assert_eq!(
            puback(&mut reader_events).await,
            PubAckReason::NotAuthorized
        );
        // Still connected: the next request is answered.
        reader
            .subscribe("factory/#", QoS::AtLeastOnce)
            .await
            .unwrap();
        next(&mut reader_events, |p| {
            matches!(p, Packet::SubAck(_)).then_some(())
        })
        .await;
        assert_eq!(f.temps().await.len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_disconnects_clients_and_closes_the_port() {
    let f = Fixture::new().await;
    let port = f.port();
    let (_client, mut events) = connect(port, "dev", Some(("token", ADMIN))).await.unwrap();
    let Fixture {
        _dir,
        state,
        broker,
        ..
    } = f;
    timeout(WAIT, broker.shutdown()).await.unwrap();
    let closed = timeout(WAIT, async {
        loop {
            if events.poll().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "client still connected after shutdown");
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err());
    state.engine.shutdown().await.unwrap();
}

/// The engine refusing to store (here: it is closed) must never look like success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_that_cannot_be_stored_are_not_acked() {
    use rumqttc::v5::mqttbytes::v5::{Packet as Packet5, PubAckReason};
    let f = Fixture::new().await;
    let (c3, mut e3) = connect(f.port(), "v3", Some(("token", ADMIN)))
        .await
        .unwrap();
    let (c5, mut e5) = v5::connect(f.port(), "v5", Some(("token", ADMIN)))
        .await
        .unwrap();
    f.state.engine.shutdown().await.unwrap();
    let reading = r#"{"ts": 1000, "values": {"temp": 71.5}}"#;

    // MQTT 5: a PUBACK with "unspecified error", and the client stays connected.
    c5.publish(
        READINGS,
        rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        false,
        reading,
    )
    .await
    .unwrap();
    let reason = v5::next(&mut e5, |p| match p {
        Packet5::PubAck(ack) => Some(ack.reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, PubAckReason::UnspecifiedError);
    c5.subscribe("factory/#", rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
        .await
        .unwrap();
    v5::next(&mut e5, |p| matches!(p, Packet5::SubAck(_)).then_some(())).await;

    // MQTT 3.1.1 cannot say "failed" in a PUBACK: the client is disconnected instead.
    c3.publish(READINGS, QoS::AtLeastOnce, false, reading)
        .await
        .unwrap();
    let outcome = timeout(WAIT, async {
        loop {
            match e3.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => return "acked",
                Ok(_) => {}
                Err(_) => return "disconnected",
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(outcome, "disconnected");
}
