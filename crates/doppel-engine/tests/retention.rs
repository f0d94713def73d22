//! Retention per model and signal: a pass forgets the points older than each series' period
//! before the twin's newest reading, durably, keeps their rollups for downsampling, and
//! leaves models without retention alone.

#![allow(clippy::unwrap_used)]

use doppel_engine::{Engine, EngineConfig, IngestSource, SCORE_SIGNAL};
use doppel_model::{AssetModel, Batch, Reading, Twin, Value};
use doppel_store::{Store, StoreOptions};

const S: i64 = 1_000_000_000;
const DAY: i64 = 86_400 * S;
const T0: i64 = 1_767_225_600 * S;
/// A reading every 10 minutes for 3 days.
const STEP: i64 = 600 * S;
const N: i64 = 3 * DAY / STEP;
const LAST: i64 = T0 + (N - 1) * STEP;

fn model(id: &str, retention: Option<serde_json::Value>) -> AssetModel {
    let mut m = serde_json::json!({
        "id": id, "name": id,
        "signals": [{"name": "bearing_temp"}, {"name": "vibration_rms"}]
    });
    if let Some(r) = retention {
        m["retention"] = r;
    }
    serde_json::from_value(m).unwrap()
}

fn twin(id: &str, model: &str) -> Twin {
    serde_json::from_value(serde_json::json!({"id": id, "model": model, "name": id})).unwrap()
}

async fn feed(engine: &Engine, twin: &str) {
    let readings: Vec<_> = (0..N)
        .map(|i| Reading {
            twin: twin.into(),
            ts: T0 + i * STEP,
            values: vec![
                ("bearing_temp".into(), Value::Float(60.0 + (i % 7) as f64)),
                ("vibration_rms".into(), Value::Float(2.0 + (i % 5) as f64)),
            ],
        })
        .collect();
    for chunk in readings.chunks(100) {
        let batch = Batch {
            readings: chunk.to_vec(),
        };
        engine
            .ingest(batch, IngestSource::Http, |i| format!("[{i}]."))
            .await
            .unwrap();
    }
}

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.shards = 2;
    c.detector.warmup = 50;
    c
}

/// (first timestamp, count) of a series read straight from the store.
fn span(store: &Store, twin: &str, signal: &str) -> (Option<i64>, usize) {
    let pts = store
        .range(twin, signal, i64::MIN, i64::MAX, usize::MAX)
        .unwrap();
    (pts.first().map(|p| p.ts), pts.len())
}

fn check(store: &Store) {
    let cut_1d = LAST - DAY;
    let cut_2d = LAST - 2 * DAY;
    let first_at_or_after = |cut: i64| T0 + (cut - T0 + STEP - 1) / STEP * STEP;
    let kept = |cut: i64| ((LAST - first_at_or_after(cut)) / STEP + 1) as usize;
    // vibration_rms keeps one day, bearing_temp the default two.
    assert_eq!(
        span(store, "p1", "vibration_rms"),
        (Some(first_at_or_after(cut_1d)), kept(cut_1d))
    );
    assert_eq!(
        span(store, "p1", "bearing_temp"),
        (Some(first_at_or_after(cut_2d)), kept(cut_2d))
    );
    // The anomaly score keeps the default too; scoring started after the warm-up.
    let (first, n) = span(store, "p1", SCORE_SIGNAL);
    assert!(first.unwrap() >= cut_2d && n > 0, "{first:?} {n}");
    // A model without retention keeps everything.
    assert_eq!(span(store, "q1", "vibration_rms"), (Some(T0), N as usize));
    assert_eq!(span(store, "q1", "bearing_temp"), (Some(T0), N as usize));
    assert_eq!(
        store
            .range("q1", SCORE_SIGNAL, i64::MIN, T0 + DAY, 1)
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_forgets_old_points_per_signal_durably() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).await.unwrap();
    let keep = serde_json::json!({"default": "2d", "signals": {"vibration_rms": "1d"}});
    engine.put_model(model("pump", Some(keep))).await.unwrap();
    engine.put_model(model("fan", None)).await.unwrap();
    engine.put_twin(twin("p1", "pump")).await.unwrap();
    engine.put_twin(twin("q1", "fan")).await.unwrap();
    feed(&engine, "p1").await;
    feed(&engine, "q1").await;
    // The state query waits behind scoring, so every score is in history.
    assert!(engine
        .twin_state("p1", None)
        .await
        .unwrap()
        .health
        .is_some());
    assert!(engine
        .twin_state("q1", None)
        .await
        .unwrap()
        .health
        .is_some());
    let before = engine
        .history("p1", SCORE_SIGNAL, i64::MIN, i64::MAX, usize::MAX)
        .await
        .unwrap();
    assert!(
        before.first().unwrap().ts < LAST - 2 * DAY,
        "scores start early"
    );

    assert_eq!(engine.enforce_retention().await.unwrap(), 3);
    check(engine.store());
    // Through the engine's queries too: the day of vibration kept as points...
    let raw = engine
        .history("p1", "vibration_rms", i64::MIN, i64::MAX, usize::MAX)
        .await
        .unwrap();
    assert_eq!(raw.len() as i64, DAY / STEP + 1);
    // ...and in hourly buckets, open-ended, all three days: the two retention forgot come
    // from the rollups it kept.
    let buckets = engine
        .downsample(
            "p1",
            "vibration_rms",
            i64::MIN,
            i64::MAX,
            3600 * S,
            doppel_store::Agg::Count,
        )
        .await
        .unwrap();
    let counted: u64 = buckets.iter().map(|b| b.count).sum();
    assert_eq!(counted as i64, N);
    assert_eq!(buckets[0].start, T0);
    // Trimmed history: a second pass has nothing to cut (and writes nothing).
    assert_eq!(engine.enforce_retention().await.unwrap(), 0);
    assert!(engine
        .metrics()
        .render()
        .contains("doppel_retention_cuts_total 3"));
    engine.shutdown().await.unwrap();
    drop(engine);

    // The cuts are durable: the store alone, reopened, no longer has the old points.
    let history = dir.path().join("history");
    let store = Store::open(&history, StoreOptions::default()).unwrap();
    check(&store);
    store.close().unwrap();
    drop(store);

    // And the engine reopened serves the same.
    let engine = Engine::open(config(dir.path())).await.unwrap();
    check(engine.store());
    let h = engine
        .history("p1", "vibration_rms", i64::MIN, LAST - DAY, 10)
        .await
        .unwrap();
    assert!(h.is_empty(), "{h:?}");
    engine.shutdown().await.unwrap();
}
