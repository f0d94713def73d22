//! End to end: remaining useful life learned from the fleet's own recorded failures, in the
//! running binary. Simulated pumps wear a drive-end bearing to failure; their readings (one
//! every two minutes) go through the real HTTP API and each failure is recorded as a
//! maintenance event. Below three failures the model says why it cannot answer; the third
//! fits it (in the background), each later one refits it and the fit record grows. A pump still
//! running, 36 h before its (simulated) failure, gets an estimate within a day of the truth
//! and shorter than a healthy pump's; the fleet list puts it first. A repair renews it. Bad input gets 400 naming the field; a restart keeps events and the model.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use doppel_model::{Reading, Twin};
use doppel_sim::{AssetKind, FaultKind, FaultSpec, Plant};
use serde_json::{json, Value};

const STEP_S: i64 = 120;
const NS: i64 = 1_000_000_000;
const HOUR: i64 = 3_600 * NS;

/// Simulates one pump from `t0` until it fails (or `max_days`), returning its readings and
/// its failure time.
fn simulate(
    id: &str,
    seed: u64,
    wear: Option<(f64, i64)>,
    max_days: i64,
) -> (Vec<Reading>, Option<i64>) {
    let mut plant = Plant::new(seed);
    let twin: Twin = serde_json::from_value(json!({"id": id, "model": "pump_motor"})).unwrap();
    plant.add_asset(twin, AssetKind::PumpMotor.build(id, seed));
    let t0 = t0_ns(0);
    plant.begin(t0);
    if let Some((severity, onset_h)) = wear {
        plant
            .inject(
                id,
                FaultSpec {
                    kind: FaultKind::BearingWear,
                    signal: None,
                    onset: t0 + onset_h * HOUR,
                    severity,
                    ramp_s: 0.0,
                    duration_s: None,
                },
            )
            .unwrap();
    }
    let mut out = Vec::new();
    let mut k = 0;
    while k * STEP_S * NS < max_days * 24 * HOUR {
        let t = t0 + k * STEP_S * NS;
        out.extend(plant.step(t, STEP_S as f64));
        k += 1;
        if let Some(f) = plant.ground_truth().first().and_then(|g| g.failure) {
            return (out, Some(f));
        }
    }
    (out, None)
}

fn create_twin(s: &TestServer, token: &str, id: &str) {
    let (st, body) = s.post(
        "/api/v1/twins",
        Some(token),
        &json!({"id": id, "model": AssetKind::PumpMotor.model().id}),
    );
    assert_eq!(st, 201, "{body}");
}

/// Polls until `f` accepts the answer of GET `path` (bounded).
fn wait_get(s: &TestServer, path: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = s.get_ok(path);
        if f(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: last {v:#}\n{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn rul_is_learned_from_recorded_failures_and_improves_with_each() {
    let started = Instant::now();
    let mut s = TestServer::start_with(Options {
        // The detectors are not what this test is about; skip their cost.
        env: vec![("DOPPEL_ANOMALY".into(), "off".into())],
        ..Options::default()
    });
    let token = s.admin_token.clone();
    let model = AssetKind::PumpMotor.model();
    let (st, body) = s.post(
        "/api/v1/models",
        Some(&token),
        &serde_json::to_value(&model).unwrap(),
    );
    assert_eq!(st, 201, "{body}");
    let mid = model.id.clone();

    // Nothing recorded yet: the model says why it cannot answer.
    let info = s.get_ok(&format!("/api/v1/models/{mid}/rul"));
    assert_eq!(info["status"], "untrained", "{info}");
    assert_eq!(info["failures"], 0);
    let (st, e) = s.post(
        &format!("/api/v1/models/{mid}/rul"),
        Some(&token),
        &json!({}),
    );
    assert_eq!(st, 409, "fitting without failures: {e}");

    // Six pumps wear out; each failure is recorded as it happens.
    // Wear rate and the hours each runs healthy before the wear starts.
    let wear = [
        (0.55, 20),
        (0.7, 60),
        (0.6, 36),
        (0.8, 90),
        (0.5, 72),
        (0.65, 12),
    ];
    let mut lives = Vec::new();
    for (i, w) in wear.iter().enumerate() {
        let id = format!("pump-f{}", i + 1);
        create_twin(&s, &token, &id);
        let (readings, failure) = simulate(&id, 100 + i as u64, Some(*w), 12);
        let failure = failure.unwrap_or_else(|| panic!("{id} did not fail within 12 days"));
        lives.push((failure - t0_ns(0)) as f64 / HOUR as f64);
        post_sim_readings(&s, &token, &readings, None, 720);
        let (st, ev) = s.post(
            &format!("/api/v1/twins/{id}/maintenance"),
            Some(&token),
            &json!({"kind": "failure", "at": doppel_model::format_ts(failure),
                    "failure_mode": "bearing_wear", "note": "seized"}),
        );
        assert_eq!(st, 201, "{ev}");
        assert_eq!(ev["id"], format!("M-{:06}", i + 1));
        assert_eq!(ev["at"].as_i64(), Some(failure));
        if i < 2 {
            let info = s.get_ok(&format!("/api/v1/models/{mid}/rul"));
            assert_eq!(info["status"], "untrained", "{info}");
            assert_eq!(info["failures"], i + 1);
            assert!(
                info["reason"].as_str().unwrap().contains("fitted from 3"),
                "{info}"
            );
        }
        if i == 2 {
            // The third failure fits the model in the background.
            let info = wait_get(&s, &format!("/api/v1/models/{mid}/rul"), "first fit", |v| {
                v["status"] == "trained"
            });
            assert_eq!(info["fits"].as_array().unwrap().len(), 1, "{info}");
            assert_eq!(info["runs"].as_array().unwrap().len(), 3, "{info}");
        }
    }
    eprintln!("lives (h): {lives:?}");
    let info = wait_get(&s, &format!("/api/v1/models/{mid}/rul"), "refit", |v| {
        v["fits"]
            .as_array()
            .and_then(|f| f.last())
            .is_some_and(|f| f["runs"] == 6)
    });
    eprintln!("model: {}", serde_json::to_string(&info["fits"]).unwrap());
    let fits = info["fits"].as_array().unwrap();
    // A fit per failure from the third, or fewer when failures arrive during a fit (they
    // queue one fit on all of them).
    let runs: Vec<u64> = fits.iter().map(|f| f["runs"].as_u64().unwrap()).collect();
    assert_eq!(runs.first(), Some(&3), "{runs:?}");
    assert!(runs.windows(2).all(|w| w[0] < w[1]), "{runs:?}");
    let n_fits = fits.len();
    for f in fits {
        assert!(f["cv_rmse_h"].as_f64().unwrap().is_finite(), "{f}");
    }
    // Each run ends at its failure and starts at the twin's first hour of history.
    for r in info["runs"].as_array().unwrap() {
        assert!(r["hours"].as_u64().unwrap() >= 48, "{r}");
    }
    assert!(
        info["sensors_used"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.starts_with("bearing"))),
        "bearing signals move with wear: {info}"
    );

    // A pump still running, 36 h before it would fail, and a healthy one.
    create_twin(&s, &token, "pump-live");
    let (readings, failure) = simulate("pump-live", 200, Some((0.65, 48)), 12);
    let failure = failure.unwrap();
    let cut = failure - 36 * HOUR;
    let fed: Vec<Reading> = readings.into_iter().filter(|r| r.ts <= cut).collect();
    let last = fed.last().unwrap().ts;
    post_sim_readings(&s, &token, &fed, None, 720);
    create_twin(&s, &token, "pump-healthy");
    let (healthy, none) = simulate("pump-healthy", 300, None, 4);
    assert!(none.is_none());
    post_sim_readings(&s, &token, &healthy, None, 720);

    let live = s.get_ok("/api/v1/twins/pump-live/rul");
    eprintln!("pump-live: {live}");
    assert_eq!(live["status"], "estimated", "{live}");
    assert_eq!(live["trained_on"], 6);
    let truth = (failure - last) as f64 / HOUR as f64;
    let (rul, lo, hi) = (
        live["rul_h"].as_f64().unwrap(),
        live["lower_h"].as_f64().unwrap(),
        live["upper_h"].as_f64().unwrap(),
    );
    assert!(lo <= rul && rul <= hi, "{live}");
    // Lives here are three to four days; six runs teach the wear to within a day.
    assert!((rul - truth).abs() <= 24.0, "truth {truth:.1} h, {live}");
    let healthy = s.get_ok("/api/v1/twins/pump-healthy/rul");
    eprintln!("pump-healthy: {healthy}");
    assert_eq!(healthy["status"], "estimated", "{healthy}");
    assert!(
        healthy["rul_h"].as_f64().unwrap() > rul,
        "healthy {healthy} vs worn {live}"
    );
    // The failed pumps have had no readings since their failure.
    let failed = s.get_ok("/api/v1/twins/pump-f1/rul");
    assert_eq!(failed["status"], "no_history", "{failed}");

    // The worn pump's bearing temperature, forecast hourly with its limits.
    let f = s.get_ok("/api/v1/twins/pump-live/signals/bearing_temp_de/forecast?horizon=72");
    eprintln!("forecast limits: {}", f["limits"]);
    assert_eq!(f["unit"], "°C");
    let points = f["forecast"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 72);
    assert!(points
        .iter()
        .all(|p| p["lower"].as_f64() <= p["value"].as_f64()
            && p["value"].as_f64() <= p["upper"].as_f64()));
    assert!(f["forecast"]["origin"].as_i64().unwrap() <= last);
    assert!(f["forecast"]["slope"]["per_hour"]
        .as_f64()
        .unwrap()
        .is_finite());
    let limits = f["limits"].as_array().unwrap();
    assert!(
        limits.iter().any(|l| l["threshold"]["upper"] == true),
        "the declared maximum is checked: {limits:?}"
    );
    for (query, status, field) in [
        ("step=10s", 400, Some("step")),
        ("horizon=0", 400, Some("horizon")),
        ("history=soon", 400, Some("history")),
        ("history=1h", 409, None),
    ] {
        let (st, e) = s.get(
            &format!("/api/v1/twins/pump-live/signals/flow/forecast?{query}"),
            Some(&token),
        );
        assert_eq!((st, e["field"].as_str()), (status, field), "{query}: {e}");
    }
    let (st, _) = s.get(
        "/api/v1/twins/pump-live/signals/nope/forecast",
        Some(&token),
    );
    assert_eq!(st, 404);

    // The fleet, shortest remaining life first.
    let fleet = s.get_ok(&format!("/api/v1/rul?model={mid}"));
    let twins = fleet["twins"].as_array().unwrap();
    assert_eq!(twins.len(), 8, "{fleet}");
    assert_eq!(twins[0]["twin"], "pump-live", "{fleet}");
    assert_eq!(twins[1]["twin"], "pump-healthy", "{fleet}");

    // Bad input: 400 naming the field, 404 for an unknown twin; nothing recorded.
    for (body, field) in [
        (json!({}), "kind"),
        (json!({"kind": "explosion"}), "kind"),
        (json!({"kind": "failure", "at": "yesterday-ish"}), "at"),
        (
            json!({"kind": "repair", "at": "2999-01-01T00:00:00Z"}),
            "at",
        ),
        (
            json!({"kind": "failure", "failure_mode": "gremlins"}),
            "failure_mode",
        ),
        (json!({"kind": "repair", "colour": "red"}), "colour"),
    ] {
        let (st, e) = s.post("/api/v1/twins/pump-live/maintenance", Some(&token), &body);
        assert_eq!((st, e["field"].as_str()), (400, Some(field)), "{body}: {e}");
    }
    let (st, _) = s.post(
        "/api/v1/twins/nope/maintenance",
        Some(&token),
        &json!({"kind": "repair"}),
    );
    assert_eq!(st, 404);
    let (st, _) = s.get("/api/v1/rul?model=nope", Some(&token));
    assert_eq!(st, 404);
    let reader = s.create_token("reader");
    let (st, _) = s.post(
        "/api/v1/twins/pump-live/maintenance",
        Some(&reader),
        &json!({"kind": "repair"}),
    );
    assert_eq!(st, 403, "readers do not record maintenance");

    // A repair (at the newest reading, by default) renews the pump.
    let (st, ev) = s.post(
        "/api/v1/twins/pump-live/maintenance",
        Some(&token),
        &json!({"kind": "repair", "failure_mode": "bearing_wear"}),
    );
    assert_eq!(st, 201, "{ev}");
    assert_eq!(ev["at"].as_i64(), Some(last));
    let renewed = s.get_ok("/api/v1/twins/pump-live/rul");
    assert_eq!(renewed["status"], "no_history", "{renewed}");
    let events = s.get_ok("/api/v1/maintenance?twin=pump-live");
    assert_eq!(events["events"].as_array().unwrap().len(), 1, "{events}");
    assert_eq!(
        s.get_ok(&format!("/api/v1/maintenance?model={mid}"))["events"]
            .as_array()
            .unwrap()
            .len(),
        7
    );

    // A restart keeps the events and the fitted model.
    s.restart();
    let info = s.get_ok(&format!("/api/v1/models/{mid}/rul"));
    assert_eq!(info["status"], "trained", "{info}");
    assert_eq!(info["fits"].as_array().unwrap().len(), n_fits);
    let again = s.get_ok("/api/v1/twins/pump-healthy/rul");
    assert_eq!(again["rul_h"], healthy["rul_h"], "same model, same history");
    let (st, ev) = s.post(
        "/api/v1/twins/pump-healthy/maintenance",
        Some(&token),
        &json!({"kind": "repair"}),
    );
    assert_eq!(st, 201);
    assert_eq!(ev["id"], "M-000008", "numbering continues after a restart");
    eprintln!("rul e2e took {:.1} s", started.elapsed().as_secs_f64());
}
