//! End to end: maintenance advice in the running system. A simulated pump runs healthy for a
//! day, then its drive-end bearing wears progressively over days; its readings (one a minute)
//! are pushed to the real binary over HTTP in time order. The twin's advice tracker opens
//! advice naming bearing wear, with its evidence and a due-by (usually before the detector's
//! alarm: the trend shows before the level leaves its band), and the detector raises an
//! alarm; the advice arrives on SSE and on MQTT `doppel/advice/pump-1` (the real
//! mosquitto_sub, when installed) and shows on the twin next to the alarm. An operator schedules the work,
//! then marks it done with the outcome `confirmed`: the advice is done with its label, the
//! twin's alarm is cleared and its detector is back to normal. A restart keeps the advice.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use doppel_model::{Twin, Value as SimValue};
use doppel_sim::{AssetKind, FaultKind, FaultSpec, Plant};
use serde_json::{json, Value};

/// Seconds of simulated time per reading.
const STEP_S: i64 = 60;
/// A healthy day first: the detector learns (warm-up below) and the hourly history fills.
const ONSET_S: i64 = 24 * 3600;
/// Wear rate: the simulator's severity (1.0 fails in about a day; this one takes days).
const SEVERITY: f64 = 0.6;
/// Readings per HTTP batch (six simulated hours).
const BATCH: i64 = 360;
/// Longest simulated run.
const HORIZON_S: i64 = 8 * 24 * 3600;

fn to_json(v: &SimValue) -> Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn bearing_wear_advice_is_opened_scheduled_done_and_kept() {
    let started = Instant::now();
    let mut s = TestServer::start_with(Options {
        env: vec![("DOPPEL_ANOMALY_WARMUP".into(), "240".into())],
        ..Options::default()
    });
    let token = s.admin_token.clone();

    let mut plant = Plant::new(5);
    let model = AssetKind::PumpMotor.model();
    assert!(
        model.failure_modes.iter().any(|m| m.id == "bearing_wear"),
        "the simulator's pump declares bearing wear"
    );
    let twin: Twin =
        serde_json::from_value(json!({"id": "pump-1", "model": model.id, "name": "P-101"}))
            .unwrap();
    plant.add_asset(twin.clone(), AssetKind::PumpMotor.build("pump-1", 5));
    let (st, body) = s.post(
        "/api/v1/models",
        Some(&token),
        &serde_json::to_value(&model).unwrap(),
    );
    assert_eq!(st, 201, "{body}");
    let (st, body) = s.post(
        "/api/v1/twins",
        Some(&token),
        &serde_json::to_value(&twin).unwrap(),
    );
    assert_eq!(st, 201, "{body}");
    let mut sse = SseClient::connect(s.http_addr(), &token, "type=advice&twin=pump-1");
    let mqtt = mosquitto_pub_available().then(|| {
        let child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &s.mqtt_port().to_string()])
            .args(["-u", "token", "-P", &token, "-q", "1"])
            .args(["-t", "doppel/advice/#", "-C", "1", "-W", "120", "-v"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Let mosquitto_sub subscribe before anything can be published.
        std::thread::sleep(Duration::from_millis(500));
        child
    });

    // A steady operating point, as on a test bench: the wear is the only change.
    for (input, value) in [
        ("speed_cmd", 2400.0),
        ("valve_opening", 80.0),
        ("ambient_temp", 25.0),
    ] {
        plant.set_input("pump-1", input, value).unwrap();
    }
    let t0 = t0_ns(0);
    let onset = t0 + ONSET_S * 1_000_000_000;
    plant.begin(t0);
    plant
        .inject(
            "pump-1",
            FaultSpec {
                kind: FaultKind::BearingWear,
                signal: None,
                onset,
                severity: SEVERITY,
                ramp_s: 0.0,
                duration_s: None,
            },
        )
        .unwrap();

    // Feed until advice is open and the twin is in alarm.
    let mut advice: Option<Value> = None;
    let mut alarm: Option<Value> = None;
    let mut i: i64 = 0;
    let mut last_ts = t0;
    while i * STEP_S < HORIZON_S && (advice.is_none() || alarm.is_none()) {
        let mut batch = Vec::new();
        for _ in 0..BATCH {
            let t = t0 + i * STEP_S * 1_000_000_000;
            for r in plant.step(t, STEP_S as f64) {
                let values: serde_json::Map<String, Value> = r
                    .values
                    .iter()
                    .map(|(k, v)| (k.clone(), to_json(v)))
                    .collect();
                batch.push(json!({"twin": r.twin, "ts": t / 1_000_000, "values": values}));
            }
            last_ts = t;
            i += 1;
        }
        let (st, body) = s.post("/api/v1/readings", Some(&token), &Value::Array(batch));
        assert_eq!(st, 200, "{body}");
        // Advice and alarms change asynchronously, just after the readings are acknowledged.
        for _ in 0..20 {
            let (_, list) = s.get("/api/v1/advice?twin=pump-1&state=open", Some(&token));
            advice = list["advice"].as_array().and_then(|a| a.first()).cloned();
            let (_, list) = s.get("/api/v1/alarms?twin=pump-1", Some(&token));
            alarm = list["alarms"]
                .as_array()
                .and_then(|a| a.iter().find(|a| a["state"] != "cleared"))
                .cloned();
            if advice.is_some() && alarm.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        if plant.ground_truth().iter().any(|g| g.failure.is_some()) {
            break;
        }
    }
    let failure = plant.ground_truth()[0].failure;
    let (_, all) = s.get("/api/v1/advice?twin=pump-1", Some(&token));
    for a in all["advice"].as_array().unwrap() {
        eprintln!(
            "advice {} {} {} opened {:.1} h after onset, withdrawn {:?}",
            a["id"],
            a["failure_mode"],
            a["state"],
            (a["opened_ts"].as_i64().unwrap() - onset) as f64 / 3600e9,
            a["withdrawn_at"]
        );
    }
    let (_, all) = s.get("/api/v1/alarms?twin=pump-1", Some(&token));
    for a in all["alarms"].as_array().unwrap() {
        eprintln!(
            "alarm {} {} raised {:.1} h after onset: {}",
            a["id"],
            a["state"],
            (a["raised_ts"].as_i64().unwrap() - onset) as f64 / 3600e9,
            a["summary"]
        );
    }
    eprintln!(
        "failure (h after onset): {:?}",
        failure.map(|f| (f - onset) as f64 / 3600e9)
    );
    let advice = advice.unwrap_or_else(|| {
        panic!(
            "no advice after {:.1} simulated days (failure at {failure:?}); log:\n{}",
            (last_ts - t0) as f64 / 86_400e9,
            s.log()
        )
    });
    let alarm = alarm.unwrap_or_else(|| panic!("no open alarm with the advice: {advice:#}"));
    eprintln!(
        "advice {} opened {:.1} h after onset ({:.1} simulated days fed): {}",
        advice["id"],
        (advice["opened_ts"].as_i64().unwrap() - onset) as f64 / 3600e9,
        (last_ts - t0) as f64 / 86_400e9,
        advice["recommendation"]["summary"]
    );

    // The advice names bearing wear, says what to do by when, and why.
    let id = advice["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("V-"), "{advice}");
    assert_eq!(advice["twin"], "pump-1");
    assert_eq!(advice["failure_mode"], "bearing_wear", "{advice:#}");
    assert_eq!(advice["state"], "open");
    let rec = &advice["recommendation"];
    assert!(
        !rec["action"].as_str().unwrap().trim().is_empty(),
        "{rec:#}"
    );
    let due_in_h = rec["due_in_h"].as_f64().unwrap();
    assert!(due_in_h > 0.0, "{rec:#}");
    let opened_ts = advice["opened_ts"].as_i64().unwrap();
    assert!(
        opened_ts > onset,
        "advised before the wear began: {advice:#}"
    );
    if let Some(f) = failure {
        assert!(opened_ts < f, "advised after the failure: {advice:#}");
    }
    let evidence: Vec<&Value> = rec["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["strength"].as_f64().unwrap_or(0.0) > 0.0)
        .collect();
    assert!(
        evidence.iter().any(|e| {
            let n = e["signal"].as_str().unwrap_or("");
            n.contains("bearing") || n.contains("vib")
        }),
        "the evidence names a bearing temperature or vibration: {rec:#}"
    );
    let (st, one) = s.get(&format!("/api/v1/advice/{id}"), Some(&token));
    assert_eq!((st, &one["id"]), (200, &advice["id"]), "{one}");

    // Pushed live (SSE) and visible on the twin, next to its alarm.
    let mut opened_event = None;
    while let Some((name, data)) = sse.next_event(EVENT_TIMEOUT) {
        let ev: Value = serde_json::from_str(&data).unwrap();
        assert_eq!((name.as_str(), &ev["type"]), ("advice", &json!("advice")));
        if ev["change"] == "opened" && ev["advice"]["id"] == id.as_str() {
            opened_event = Some(ev);
            break;
        }
    }
    let ev = opened_event.expect("the opened advice on SSE");
    if let Some(mut child) = mqtt {
        let status = wait_bounded(&mut child, Duration::from_secs(30));
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(status.is_some_and(|s| s.success()), "mosquitto_sub: {out}");
        let (topic, payload) = out.trim().split_once(' ').unwrap();
        assert_eq!(topic, "doppel/advice/pump-1");
        let msg: Value = serde_json::from_str(payload).unwrap();
        assert_eq!(msg["type"], "advice");
        assert_eq!(msg["advice"]["failure_mode"], "bearing_wear");
    }
    assert_eq!(ev["twin"], "pump-1");
    assert_eq!(ev["advice"]["failure_mode"], "bearing_wear");
    let (_, state) = s.get("/api/v1/twins/pump-1", Some(&token));
    assert!(
        state["advice"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["id"] == id.as_str())),
        "{state:#}"
    );
    assert_eq!(state["alarm"]["id"], alarm["id"], "{state:#}");

    // Schedule: bad input names the field; readers cannot.
    let (st, e) = s.post(
        &format!("/api/v1/advice/{id}/schedule"),
        Some(&token),
        &json!({"note": "no time"}),
    );
    assert_eq!((st, e["field"].as_str()), (400, Some("for")), "{e}");
    let (st, e) = s.post(
        &format!("/api/v1/advice/{id}/schedule"),
        Some(&token),
        &json!({"for": "next tuesday"}),
    );
    assert_eq!((st, e["field"].as_str()), (400, Some("for")), "{e}");
    let reader = s.create_token("reader");
    let (st, _) = s.post(
        &format!("/api/v1/advice/{id}/schedule"),
        Some(&reader),
        &json!({"for": "2026-02-10T08:00:00Z"}),
    );
    assert_eq!(st, 403, "readers cannot schedule");
    let (st, a) = s.post(
        &format!("/api/v1/advice/{id}/schedule"),
        Some(&token),
        &json!({"for": "2026-02-10T08:00:00Z", "note": "crew B, planned stop"}),
    );
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["state"], "scheduled");
    assert_eq!(a["scheduled"]["for"], "2026-02-10T08:00:00Z");
    assert_eq!(a["scheduled"]["note"], "crew B, planned stop");

    // Done with its outcome.
    let (st, e) = s.post(
        &format!("/api/v1/advice/{id}/done"),
        Some(&token),
        &json!({"outcome": "fixed"}),
    );
    assert_eq!((st, e["field"].as_str()), (400, Some("outcome")), "{e}");
    let (st, e) = s.post(
        &format!("/api/v1/advice/{id}/done"),
        Some(&token),
        &json!({"outcome": "other"}),
    );
    assert_eq!((st, e["field"].as_str()), (400, Some("note")), "{e}");
    let (st, a) = s.post(
        &format!("/api/v1/advice/{id}/done"),
        Some(&token),
        &json!({"outcome": "confirmed", "note": "outer race spalled; bearing replaced"}),
    );
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["state"], "done");
    assert_eq!(a["done"]["outcome"], "confirmed");
    let (st, e) = s.post(
        &format!("/api/v1/advice/{id}/done"),
        Some(&token),
        &json!({"outcome": "not_found"}),
    );
    assert_eq!(st, 409, "done twice: {e}");
    // The confirmed work renewed the pump: a repair event at its newest reading, from the
    // advice, so its remaining life restarts there.
    let events = s.get_ok("/api/v1/maintenance?twin=pump-1");
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["kind"], "repair");
    assert_eq!(events[0]["failure_mode"], "bearing_wear");
    assert_eq!(events[0]["source"], format!("advice {id}"));
    let at = events[0]["at"].as_i64().unwrap();
    assert!(
        at <= last_ts && at >= advice["opened_ts"].as_i64().unwrap(),
        "{:?}",
        events[0]
    );
    let rul = s.get_ok("/api/v1/twins/pump-1/rul");
    assert_eq!(
        rul["status"], "untrained",
        "no failures recorded yet: {rul}"
    );
    let (st, e) = s.post(
        &format!("/api/v1/advice/{id}/schedule"),
        Some(&token),
        &json!({"for": "2026-02-11T08:00:00Z"}),
    );
    assert_eq!(st, 409, "scheduling done work: {e}");
    let (st, _) = s.get("/api/v1/advice/V-424242", Some(&token));
    assert_eq!(st, 404);
    let (st, e) = s.get("/api/v1/advice?state=closed", Some(&token));
    assert_eq!((st, e["field"].as_str()), (400, Some("state")));

    let metrics = s.metrics();
    for change in ["opened", "scheduled", "done"] {
        assert!(
            metric(
                &metrics,
                "doppel_advice_changes_total",
                &[("change", change)]
            ) >= 1.0,
            "{change} not counted"
        );
    }

    // The twin is maintained: its alarm cleared, its detector back to normal, no advice open.
    let alarm_id = alarm["id"].as_str().unwrap();
    let (_, a) = s.get(&format!("/api/v1/alarms/{alarm_id}"), Some(&token));
    assert_eq!(a["state"], "cleared", "{a:#}");
    let (_, state) = s.get("/api/v1/twins/pump-1", Some(&token));
    assert!(state.get("alarm").is_none(), "{state:#}");
    assert!(state.get("advice").is_none(), "{state:#}");
    assert_eq!(state["health"]["anomalous"], false, "{state:#}");
    let mut changes = Vec::new();
    while let Some((_, data)) = sse.next_event(EVENT_TIMEOUT) {
        let ev: Value = serde_json::from_str(&data).unwrap();
        if ev["advice"]["id"] == id.as_str() {
            changes.push(ev["change"].as_str().unwrap().to_string());
        }
        if changes.last().is_some_and(|c| c == "done") {
            break;
        }
    }
    assert!(
        changes.ends_with(&["scheduled".to_string(), "done".to_string()]),
        "{changes:?}"
    );

    // Restart: the advice, its schedule and its outcome come back from the log.
    s.restart();
    let (st, a) = s.get(&format!("/api/v1/advice/{id}"), Some(&token));
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["state"], "done");
    assert_eq!(a["done"]["outcome"], "confirmed");
    assert_eq!(a["scheduled"]["for"], "2026-02-10T08:00:00Z");
    assert_eq!(a["failure_mode"], "bearing_wear");
    let whats: Vec<&str> = a["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["what"].as_str().unwrap())
        .collect();
    assert_eq!(whats.first(), Some(&"opened"), "{whats:?}");
    assert!(whats.ends_with(&["scheduled", "done"]), "{whats:?}");
    let (_, list) = s.get("/api/v1/advice?twin=pump-1&state=done", Some(&token));
    assert_eq!(list["advice"].as_array().unwrap().len(), 1, "{list}");
    // The detector was saved with its advice state, and loads again.
    let (_, state) = s.get("/api/v1/twins/pump-1", Some(&token));
    assert_eq!(
        state["health"]["learning"], false,
        "the detector and its advice state were saved: {state:#}"
    );
    assert!(
        !s.log().contains("detector state not saved"),
        "saving the detectors failed"
    );
    let saved: u64 = std::fs::read_dir(s.data_dir().join("analytics"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    eprintln!(
        "advice e2e took {:.1} s; saved detector state {saved} bytes",
        started.elapsed().as_secs_f64()
    );
}
