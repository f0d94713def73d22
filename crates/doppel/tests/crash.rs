//! kill -9 durability of the real binary: a reading answered with 200 is in history after a
//! SIGKILL and a restart, exactly once. Writers send one reading per request from several
//! threads at once, so acknowledgements ride on shared group commits.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{create_plant, TestServer, T0_MS};
use serde_json::json;

const THREADS: usize = 8;
const READINGS: usize = 10_000;
/// Bound of a whole writing phase.
const WRITE_TIMEOUT: Duration = Duration::from_secs(120);

/// Reading `i` (unique ts and value): `cycles = i` at `T0 + i` ms.
fn reading(i: usize) -> String {
    json!({"ts": T0_MS + i as i64, "values": {"cycles": i}}).to_string()
}

/// The writers' shared record: which readings were answered 200.
#[derive(Debug, Default)]
struct Acks {
    acked: Mutex<Vec<usize>>,
    count: AtomicUsize,
    /// Answers other than 200 (a bug unless the server was being killed).
    refused: Mutex<Vec<(usize, u16, String)>>,
    stop: AtomicBool,
}

/// Sends readings `0..READINGS` split across `THREADS` threads, one per request; each thread
/// stops at its first transport error (the server is gone) or when `stop` is set.
fn write_all(s: &TestServer, acks: &Arc<Acks>) -> Vec<std::thread::JoinHandle<()>> {
    let url = s.http_url();
    let auth = format!("Bearer {}", s.admin_token);
    (0..THREADS)
        .map(|t| {
            let (acks, url, auth) = (acks.clone(), url.clone(), auth.clone());
            std::thread::spawn(move || {
                let agent = common::pooled_agent();
                let headers = [
                    ("Authorization", auth.as_str()),
                    ("Content-Type", "application/json"),
                ];
                for i in (t..READINGS).step_by(THREADS) {
                    if acks.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let body = reading(i);
                    match common::http_text(
                        &agent,
                        &url,
                        "POST",
                        "/api/v1/twins/pump-1/readings",
                        &headers,
                        Some(body.as_bytes()),
                    ) {
                        Ok((200, _)) => {
                            acks.acked.lock().unwrap().push(i);
                            acks.count.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok((status, text)) => acks.refused.lock().unwrap().push((i, status, text)),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect()
}

fn join_bounded(handles: Vec<std::thread::JoinHandle<()>>, deadline: Instant) {
    for h in handles {
        while !h.is_finished() {
            assert!(
                Instant::now() < deadline,
                "writer threads did not finish in time"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        h.join().unwrap();
    }
}

/// Every stored `cycles` point of pump-1 as reading numbers, checking each point's value
/// matches its time and that no point is stored twice.
fn stored(s: &TestServer) -> BTreeSet<usize> {
    let h = s.get_ok("/api/v1/twins/pump-1/signals/cycles/history?limit=1000000");
    assert_eq!(h["truncated"], json!(false));
    let points = h["points"].as_array().unwrap();
    let mut seen = BTreeSet::new();
    for p in points {
        let i = usize::try_from(p["ts"].as_i64().unwrap() / 1_000_000 - T0_MS).unwrap();
        assert_eq!(
            p["value"],
            json!(i),
            "point {p} holds another reading's value"
        );
        assert!(seen.insert(i), "reading {i} stored twice");
    }
    assert_eq!(seen.len(), points.len());
    seen
}

#[test]
fn acked_readings_survive_kill9() {
    let mut s = TestServer::start();
    create_plant(&s);
    let acks = Arc::new(Acks::default());
    let started = Instant::now();
    join_bounded(write_all(&s, &acks), started + WRITE_TIMEOUT);
    let elapsed = started.elapsed();
    eprintln!(
        "{READINGS} readings from {THREADS} threads in {elapsed:?} ({:.0}/s)",
        READINGS as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(*acks.refused.lock().unwrap(), vec![], "readings refused");
    assert_eq!(acks.count.load(Ordering::SeqCst), READINGS);

    s.kill9();
    s.restart();
    let got = stored(&s);
    assert_eq!(
        got.len(),
        READINGS,
        "acked {READINGS}, found {} after kill -9",
        got.len()
    );
    let want: BTreeSet<usize> = (0..READINGS).collect();
    assert_eq!(got, want);
    let st = s.get_ok("/api/v1/twins/pump-1");
    assert_eq!(
        st["signals"]["cycles"]["value"],
        json!(READINGS - 1),
        "state after replay: {st}"
    );
}

#[test]
fn acked_readings_survive_kill9_while_writing() {
    let mut s = TestServer::start();
    create_plant(&s);
    let acks = Arc::new(Acks::default());
    let started = Instant::now();
    let handles = write_all(&s, &acks);
    while acks.count.load(Ordering::SeqCst) < 3_000 {
        assert!(started.elapsed() < WRITE_TIMEOUT, "3000 acks took too long");
        assert!(
            !handles.iter().all(|h| h.is_finished()),
            "writers ended early"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    s.kill9();
    // Whatever was answered 200 by now was answered before the process died.
    join_bounded(handles, Instant::now() + Duration::from_secs(60));
    let acked: BTreeSet<usize> = acks.acked.lock().unwrap().iter().copied().collect();
    let refused = acks.refused.lock().unwrap();
    assert!(
        refused.iter().all(|(_, status, _)| *status >= 500),
        "readings refused: {refused:?}"
    );
    eprintln!(
        "killed after {} acks ({:?})",
        acked.len(),
        started.elapsed()
    );
    assert!(acked.len() >= 3_000, "{} acks", acked.len());

    s.restart();
    let got = stored(&s);
    let lost: Vec<_> = acked.difference(&got).collect();
    assert!(
        lost.is_empty(),
        "{} acked readings lost after kill -9, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(got.iter().all(|i| *i < READINGS));
    eprintln!(
        "{} acked, {} stored ({} unacked but durable)",
        acked.len(),
        got.len(),
        got.len() - acked.len()
    );
    // The server takes writes again after recovery.
    let r = s.post_ok(
        "/api/v1/twins/pump-1/readings",
        &json!({"ts": T0_MS + 20_000, "values": {"cycles": 20_000}}),
    );
    assert_eq!(r["readings"], 1);
}

/// SIGTERM while writers are running: the server drains, says `doppel stopped`, exits 0, and
/// every reading it answered 200 is there after the restart.
#[test]
fn acked_readings_survive_sigterm_while_writing() {
    let mut s = TestServer::start();
    create_plant(&s);
    let acks = Arc::new(Acks::default());
    let started = Instant::now();
    let handles = write_all(&s, &acks);
    while acks.count.load(Ordering::SeqCst) < 2_000 {
        assert!(started.elapsed() < WRITE_TIMEOUT, "2000 acks took too long");
        assert!(
            !handles.iter().all(|h| h.is_finished()),
            "writers ended early"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let out = s.stop();
    assert!(
        out.iter().any(|l| l == "doppel stopped"),
        "stdout after SIGTERM: {out:?}"
    );
    acks.stop.store(true, Ordering::Relaxed);
    join_bounded(handles, Instant::now() + Duration::from_secs(60));
    let acked: BTreeSet<usize> = acks.acked.lock().unwrap().iter().copied().collect();
    let refused = acks.refused.lock().unwrap();
    assert!(
        refused.iter().all(|(_, status, _)| *status == 503),
        "during shutdown readings must be answered 200 or 503: {refused:?}"
    );

    s.restart();
    let got = stored(&s);
    let lost: Vec<_> = acked.difference(&got).collect();
    assert!(
        lost.is_empty(),
        "{} acked readings lost after SIGTERM, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    eprintln!("SIGTERM after {} acks: {} stored", acked.len(), got.len());
}

/// Catalog changes answered 2xx are durable too.
#[test]
fn catalog_changes_survive_kill9() {
    let mut s = TestServer::start();
    create_plant(&s);
    let admin = Some(s.admin_token.clone());
    let admin = admin.as_deref();
    let mut v2 = common::pump_model();
    v2["version"] = json!(2);
    assert_eq!(s.put("/api/v1/models/pump", admin, &v2).0, 200);
    assert_eq!(s.delete("/api/v1/twins/pump-1", admin).0, 204);
    let twin = json!({"id": "pump-3", "model": "pump", "parent": "line-1", "relations": [{"kind": "feeds", "target": "pump-2"}]});
    assert_eq!(s.post("/api/v1/twins", admin, &twin).0, 201);
    let models = s.get_ok("/api/v1/models");
    let twins = s.get_ok("/api/v1/twins");
    s.kill9();
    s.restart();
    assert_eq!(s.get_ok("/api/v1/models"), models);
    assert_eq!(s.get_ok("/api/v1/twins"), twins);
}

/// A deleted twin's history is gone for good: not back after a restart or a kill -9 (the WAL
/// replay must not resurrect it), and a new twin with the same id starts empty.
#[test]
fn deleted_twin_history_stays_deleted() {
    let mut s = TestServer::start();
    create_plant(&s);
    let admin = Some(s.admin_token.clone());
    let admin = admin.as_deref();
    let hist = "/api/v1/twins/pump-2/signals/cycles/history";
    s.post_ok(
        "/api/v1/twins/pump-2/readings",
        &json!([
            {"ts": T0_MS, "values": {"cycles": 1}},
            {"ts": T0_MS + 1_000, "values": {"cycles": 2}}
        ]),
    );
    assert_eq!(s.get_ok(hist)["points"].as_array().unwrap().len(), 2);
    assert_eq!(s.delete("/api/v1/twins/pump-2", admin).0, 204);
    assert_eq!(s.get(hist, admin).0, 404);
    assert_eq!(
        s.post(
            "/api/v1/twins/pump-2/readings",
            admin,
            &json!({"values": {"cycles": 9}})
        )
        .0,
        404
    );
    assert_eq!(
        s.post("/api/v1/twins", admin, &common::plant_twins()[2]).0,
        201
    );
    let empty = |s: &TestServer, when: &str| {
        let h = s.get_ok(hist);
        assert_eq!(
            h["points"],
            json!([]),
            "old history of pump-2 back {when}: {h}"
        );
        let st = s.get_ok("/api/v1/twins/pump-2");
        assert_eq!(
            st["signals"]["cycles"]["value"],
            json!(null),
            "old state of pump-2 back {when}: {st}"
        );
    };
    empty(&s, "after re-creating it");
    s.restart();
    empty(&s, "after a restart");
    s.kill9();
    s.restart();
    empty(&s, "after kill -9");
    s.post_ok(
        "/api/v1/twins/pump-2/readings",
        &json!({"ts": T0_MS + 5_000, "values": {"cycles": 5}}),
    );
    s.kill9();
    s.restart();
    let h = s.get_ok(hist);
    assert_eq!(h["points"].as_array().unwrap().len(), 1, "{h}");
}

/// A full disk is an error for the writer, not corruption. As root, permissions do not stop
/// writes, so the disk is "filled" with a file-size limit (`ulimit -f`, SIGXFSZ ignored):
/// the WAL write past it fails with EFBIG as it would with ENOSPC. The writer gets 507 with
/// the file named, the refused batch is not stored, and after a restart without the limit
/// every acked reading is there once and writes work again.
#[test]
fn full_disk_is_reported_to_the_writer_not_corruption() {
    let mut s = TestServer::start_with(common::Options {
        env: vec![("DOPPEL_ANOMALY".into(), "off".into())],
        file_size_limit_blocks: Some(256),
        ..common::Options::default()
    });
    create_plant(&s);
    let token = s.admin_token.clone();
    let mut acked = 0usize;
    let mut refusal = None;
    for b in 0..200 {
        let batch: Vec<serde_json::Value> = (b * 500..(b + 1) * 500)
            .map(|i| json!({"ts": T0_MS + i as i64, "values": {"cycles": i}}))
            .collect();
        let (status, body) = s.post("/api/v1/twins/pump-1/readings", Some(&token), &json!(batch));
        if status == 200 {
            acked = (b + 1) * 500;
        } else {
            refusal = Some((status, body));
            break;
        }
    }
    let (status, body) = refusal.expect("the file-size limit was never reached");
    assert_eq!(status, 507, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(msg.contains(".wal"), "the error names the WAL file: {msg}");
    assert!(!msg.to_lowercase().contains("corrupt"), "{msg}");
    assert!(acked > 0, "nothing fit under the limit");
    eprintln!("full after {acked} acked readings: {status} {msg}");
    // Reads still work.
    let h = s.get_ok("/api/v1/twins/pump-1/signals/cycles/history?limit=1000000");
    assert_eq!(h["points"].as_array().unwrap().len(), acked);

    s.kill9();
    s.options_mut().file_size_limit_blocks = None;
    s.restart();
    let got = stored(&s);
    assert_eq!(
        got,
        (0..acked).collect::<BTreeSet<_>>(),
        "after the restart"
    );
    let r = s.post_ok(
        "/api/v1/twins/pump-1/readings",
        &json!({"ts": T0_MS + 1_000_000, "values": {"cycles": 1_000_000}}),
    );
    assert_eq!(r["readings"], 1);
}
