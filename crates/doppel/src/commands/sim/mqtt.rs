//! One MQTT connection that publishes QoS 1 and counts what the broker acknowledged: a task
//! drives the client's event loop, timing each message from the moment it is written to the
//! socket to its PUBACK (doppel acks only once the readings are durable).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Outgoing, Packet, QoS};

use super::api::host_port;

/// How long the broker may take to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected publisher.
#[derive(Debug)]
pub(crate) struct Publisher {
    client: AsyncClient,
    published: u64,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    acked: AtomicU64,
    errors: AtomicU64,
    latency_us: Arc<Mutex<Histogram<u64>>>,
    /// Why the connection gave up for good (refused, or the broker went away at the end).
    fatal: Mutex<Option<String>>,
}

impl Publisher {
    /// Connects to `addr` (`host:port`) with username `token` and the token as password, and
    /// waits for the broker's CONNACK so a wrong address or token fails here. At most
    /// `inflight` messages await their PUBACK at once; PUBACK latencies go to `latency_us`.
    pub async fn connect(
        addr: &str,
        token: &str,
        client_id: &str,
        inflight: u16,
        latency_us: Arc<Mutex<Histogram<u64>>>,
    ) -> anyhow::Result<Publisher> {
        let (host, port) = host_port(addr)?;
        let mut opts = MqttOptions::new(client_id, host, port);
        opts.set_credentials("token", token);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_max_packet_size(64 * 1024 * 1024, 64 * 1024 * 1024);
        opts.set_inflight(inflight.max(1));
        let (client, mut events) = AsyncClient::new(opts, 64);
        let shared = Arc::new(Shared {
            acked: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency_us,
            fatal: Mutex::new(None),
        });

        // The first poll connects: do it here so a refusal is an error of `connect`.
        let first = tokio::time::timeout(CONNECT_TIMEOUT, events.poll()).await;
        match first {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {}
            Ok(Ok(other)) => bail!("MQTT {addr}: expected CONNACK, got {other:?}"),
            Ok(Err(ConnectionError::ConnectionRefused(code))) => {
                bail!("MQTT {addr} refused the connection: {code:?} (is the token right?)")
            }
            Ok(Err(e)) => return Err(e).with_context(|| format!("connecting to MQTT {addr}")),
            Err(_) => bail!("MQTT {addr}: no CONNACK within {CONNECT_TIMEOUT:?}"),
        }

        let s = shared.clone();
        let task = tokio::spawn(async move {
            let mut sent: HashMap<u16, Instant> = HashMap::new();
            loop {
                match events.poll().await {
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                        sent.insert(pkid, Instant::now());
                    }
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        if let Some(t) = sent.remove(&ack.pkid) {
                            let _ = s.latency_us.lock().record(t.elapsed().as_micros() as u64);
                        }
                        s.acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(ConnectionError::RequestsDone) => break,
                    Err(ConnectionError::ConnectionRefused(code)) => {
                        *s.fatal.lock() = Some(format!("connection refused: {code:?}"));
                        break;
                    }
                    Err(e) => {
                        // The client reconnects on the next poll and resends unacked messages.
                        if s.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            tracing::warn!(error = %e, "MQTT connection lost; reconnecting");
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Ok(Publisher {
            client,
            published: 0,
            shared,
            task,
        })
    }

    /// Queues one QoS 1 message; waits only when `inflight` messages are unacknowledged.
    pub async fn publish(&mut self, topic: String, payload: String) -> anyhow::Result<()> {
        if let Some(why) = self.shared.fatal.lock().clone() {
            bail!("MQTT: {why}");
        }
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .context("MQTT publish")?;
        self.published += 1;
        Ok(())
    }

    pub fn published(&self) -> u64 {
        self.published
    }

    pub fn acked(&self) -> u64 {
        self.shared.acked.load(Ordering::Relaxed)
    }

    /// Connection losses so far.
    pub fn errors(&self) -> u64 {
        self.shared.errors.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` for every published message to be acknowledged, then
    /// disconnects. Returns how many were acknowledged.
    pub async fn finish(self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        while self.acked() < self.published && Instant::now() < deadline && !self.task.is_finished()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let acked = self.acked();
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
        acked
    }
}
