//! The engine runs the anomaly detectors on every reading: a fault on a twin raises one
//! alarm with its explanation, pushed live; operators acknowledge, give feedback and clear;
//! alarms, scores and what the detectors learned survive a restart.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use doppel_engine::{
    AlarmChange, AlarmQuery, AlarmState, Engine, EngineConfig, EventBody, EventFilter, Verdict,
    SCORE_SIGNAL,
};
use doppel_model::{AssetModel, Batch, Reading, Twin, Value};

const S: i64 = 1_000_000_000;
const T0: i64 = 1_767_225_600 * S;

fn model() -> AssetModel {
    serde_json::from_value(serde_json::json!({
        "id": "pump", "name": "Pump",
        "signals": [
            {"name": "bearing_temp", "unit": "°C", "min": 0, "max": 120},
            {"name": "flow", "unit": "m3/h"},
            {"name": "running", "kind": "bool"}
        ]
    }))
    .unwrap()
}

fn twin(id: &str) -> Twin {
    serde_json::from_value(serde_json::json!({"id": id, "model": "pump", "name": id})).unwrap()
}

/// Deterministic white noise in [-1, 1] (splitmix64 of the index).
fn noise(i: i64) -> f64 {
    let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
}

fn reading(twin: &str, i: i64, temp_offset: f64) -> Reading {
    Reading {
        twin: twin.into(),
        ts: T0 + i * S,
        values: vec![
            (
                "bearing_temp".into(),
                Value::Float(60.0 + 0.3 * noise(i) + temp_offset),
            ),
            ("flow".into(), Value::Float(100.0 + 2.0 * noise(i + 7919))),
            ("running".into(), Value::Bool(true)),
        ],
    }
}

async fn feed(engine: &Engine, twin: &str, range: std::ops::Range<i64>, offset: f64) {
    // Batches of 50 readings, as a device gateway would send them.
    let all: Vec<i64> = range.collect();
    for chunk in all.chunks(50) {
        let batch = Batch {
            readings: chunk.iter().map(|&i| reading(twin, i, offset)).collect(),
        };
        engine
            .ingest(batch, doppel_engine::IngestSource::Http, |i| {
                format!("[{i}].")
            })
            .await
            .unwrap();
    }
}

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.shards = 2;
    c.detector.warmup = 200;
    c
}

async fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(t) = f() {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 2 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_raises_one_explained_alarm_that_operators_handle_and_restart_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).await.unwrap();
    engine.put_model(model()).await.unwrap();
    engine.put_twin(twin("p1")).await.unwrap();
    engine.put_twin(twin("p2")).await.unwrap();
    let mut alarms_sub =
        engine.subscribe(EventFilter::default().with_types(Some("alarm")).unwrap());

    // Learn, then run normally: no alarm.
    feed(&engine, "p1", 0..600, 0.0).await;
    feed(&engine, "p2", 0..600, 0.0).await;
    let state = engine.twin_state("p1", None).await.unwrap();
    let health = state.health.expect("p1 has been scored");
    assert!(!health.learning && !health.anomalous, "{health:?}");
    assert!(engine.alarms(&AlarmQuery::default()).is_empty());

    // A bearing running 5 °C hot (about 30 of its own spreads): one alarm, on bearing_temp.
    feed(&engine, "p1", 600..700, 5.0).await;
    let ev = tokio::time::timeout(Duration::from_secs(2), alarms_sub.next())
        .await
        .expect("alarm event within 2 s")
        .unwrap();
    let EventBody::Alarm { change, alarm } = &ev.body else {
        panic!("not an alarm event: {}", ev.json());
    };
    assert_eq!(*change, AlarmChange::Raised);
    assert_eq!(alarm.twin, "p1");
    assert_eq!(alarm.signals[0].signal, "bearing_temp");
    let observed = alarm.signals[0].observed.unwrap();
    assert!(observed > alarm.signals[0].expected + 3.0, "{alarm:?}");
    assert!(alarm.raised_ts >= T0 + 600 * S && alarm.raised_ts < T0 + 620 * S);
    assert!(ev.json().contains("\"type\":\"alarm\""));
    let id = alarm.id.clone();
    // One fault, one alarm; p2 is fine.
    let open = engine.alarms(&AlarmQuery {
        states: vec![AlarmState::Active],
        ..Default::default()
    });
    assert_eq!(
        open.len(),
        1,
        "{:#?}",
        engine.alarms(&AlarmQuery::default())
    );
    assert!(engine.twin_state("p2", None).await.unwrap().alarm.is_none());
    assert_eq!(
        engine
            .twin_state("p1", None)
            .await
            .unwrap()
            .alarm
            .unwrap()
            .id,
        id
    );

    // The score is history, next to the raw signals.
    let scores = wait_for(|| {
        let pts = engine
            .store()
            .range("p1", SCORE_SIGNAL, T0 + 650 * S, T0 + 700 * S, 100)
            .ok()?;
        (pts.len() == 50).then_some(pts)
    })
    .await;
    assert!(scores
        .iter()
        .all(|p| matches!(p.value, Value::Float(x) if x >= 0.5)));
    let hist = engine
        .history("p1", SCORE_SIGNAL, T0, T0 + 700 * S, 10_000)
        .await
        .unwrap();
    assert_eq!(hist.len(), 500, "scored after the 200-reading warm-up");

    // Acknowledge, confirm, clear.
    let a = engine
        .acknowledge_alarm(&id, "op1", Some("on my way".into()), T0 + 701 * S)
        .await
        .unwrap();
    assert_eq!(a.state, AlarmState::Acknowledged);
    assert!(engine
        .acknowledge_alarm(&id, "op1", None, T0)
        .await
        .is_err());
    engine
        .alarm_feedback(
            &id,
            Verdict::Confirmed,
            Some("bearing_wear".into()),
            None,
            "op1",
            T0 + 702 * S,
        )
        .await
        .unwrap();
    // The bearing is fixed: the condition returns to normal and the alarm clears itself.
    feed(&engine, "p1", 700..760, 0.0).await;
    let a = wait_for(|| {
        let a = engine.alarm(&id).ok()?;
        (a.state == AlarmState::Cleared).then_some(a)
    })
    .await;
    assert!(a.acknowledged && a.feedback.is_some());
    let whats: Vec<&str> = a.history.iter().map(|t| t.what.as_str()).collect();
    assert_eq!(whats, ["raised", "acknowledged", "feedback", "cleared"]);
    engine.shutdown().await.unwrap();
    drop(engine);

    // Restart: the alarm with its history, and the detectors without a new warm-up.
    let engine = Engine::open(config(dir.path())).await.unwrap();
    let a = engine.alarm(&id).unwrap();
    assert_eq!(a.state, AlarmState::Cleared);
    assert_eq!(
        a.feedback.unwrap().fault_kind.as_deref(),
        Some("bearing_wear")
    );
    feed(&engine, "p1", 760..770, 0.0).await;
    let health = engine.twin_state("p1", None).await.unwrap().health.unwrap();
    assert!(!health.learning, "restart forgot the learned baseline");
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn false_alarm_feedback_makes_the_twin_less_sensitive() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).await.unwrap();
    engine.put_model(model()).await.unwrap();
    engine.put_twin(twin("p1")).await.unwrap();
    feed(&engine, "p1", 0..400, 0.0).await;
    let before = engine.twin_state("p1", None).await.unwrap().health.unwrap();
    feed(&engine, "p1", 400..450, 5.0).await;
    let alarm = wait_for(|| engine.alarms(&AlarmQuery::default()).into_iter().next()).await;
    engine
        .alarm_feedback(
            &alarm.id,
            Verdict::FalseAlarm,
            None,
            Some("planned test".into()),
            "op1",
            T0,
        )
        .await
        .unwrap();
    let after = engine.twin_state("p1", None).await.unwrap().health.unwrap();
    assert!(
        after.sensitivity > before.sensitivity,
        "{} -> {}",
        before.sensitivity,
        after.sensitivity
    );
    // The verdict closes the alarm: nothing else would (the detector forgot its decision).
    let a = wait_for(|| {
        let a = engine.alarm(&alarm.id).ok()?;
        (a.state == AlarmState::Cleared).then_some(a)
    })
    .await;
    assert_eq!(
        a.history.last().unwrap().note.as_deref(),
        Some("false alarm")
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn detection_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.anomaly_detection = false;
    let engine = Engine::open(c).await.unwrap();
    engine.put_model(model()).await.unwrap();
    engine.put_twin(twin("p1")).await.unwrap();
    feed(&engine, "p1", 0..300, 0.0).await;
    let st = engine.twin_state("p1", None).await.unwrap();
    assert!(st.health.is_none());
    assert!(engine
        .history("p1", SCORE_SIGNAL, T0, T0 + 300 * S, 10)
        .await
        .unwrap()
        .is_empty());
    engine.shutdown().await.unwrap();
}
