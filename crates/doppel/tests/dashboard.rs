//! The web dashboard in a real browser: the built `doppel` binary serves its embedded
//! dashboard, headless Chromium (Debian's `chromium`, driven by playwright-core from
//! `web/e2e/dashboard.mjs`) signs in with the admin token, finds a twin in the fleet tree,
//! opens it, sees a reading posted over HTTP appear live, zooms the history, opens the models,
//! watches an alarm arrive live on the alarms page, acknowledges it and gives feedback with
//! the keyboard, sees it on its twin and in the fleet tree, checks the maintenance-advice page
//! and the remaining-useful-life panel and card against the server, measures first paint and frame
//! times with 100 signals arriving at 10 Hz, then runs a what-if on a pump with hours of
//! simulated history (fit, a lower speed against the baseline, the optimizer),
//! troubleshoots the alarm, and finally sees that pump's remaining useful life on the fleet
//! overview and its page once three pumps of its model have run to failure.
//!
//! The browser script asks this test for readings (`{"await": ...}` on its stdout, one answer
//! line on its stdin), so the data goes through the real HTTP API. Screenshots go to
//! `target/tmp/dashboard-e2e/`. Without Chromium, Node or `web/node_modules` the test is
//! skipped with a message, unless `DOPPEL_E2E_REQUIRE_BROWSER=1` (CI), where it fails.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{create_plant, pooled_agent, post_sim_readings, wait_bounded, Options, TestServer};
use doppel_model::Twin;
use doppel_sim::{AssetKind, Plant};
use serde_json::{json, Value};

/// How long the browser script may stay silent (its own waits are 20 s each; a load phase
/// measures for about 10 s).
const LINE_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound of the whole browser run.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// The target for the first meaningful paint against a local server.
const FIRST_PAINT_BUDGET_MS: f64 = 1000.0;

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

fn chromium() -> PathBuf {
    std::env::var_os("DOPPEL_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Why the browser test cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    let chromium = chromium();
    let runs = |cmd: &Path, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !runs(&chromium, "--version") {
        return Some(format!(
            "no Chromium at {} (apt-get install chromium, or set DOPPEL_CHROMIUM)",
            chromium.display()
        ));
    }
    if !runs(Path::new("node"), "--version") {
        return Some("no `node` on PATH".into());
    }
    if !web_dir().join("node_modules/playwright-core").exists() {
        return Some("web/node_modules/playwright-core missing (run `npm ci` in web/)".into());
    }
    None
}

/// `true` when the test should run; prints why it is skipped otherwise.
fn browser_available() -> bool {
    let Some(why) = missing_prerequisite() else {
        return true;
    };
    assert!(
        std::env::var_os("DOPPEL_E2E_REQUIRE_BROWSER").is_none(),
        "DOPPEL_E2E_REQUIRE_BROWSER is set but the browser test cannot run: {why}"
    );
    eprintln!(
        "SKIPPED: the dashboard browser test needs {why}; set DOPPEL_E2E_REQUIRE_BROWSER=1 to \
         make this an error"
    );
    false
}

/// Readings the detector learns from before it scores (the server's default is 400): the
/// alarm phase needs a twin that has learned within seconds.
const ANOMALY_WARMUP: &str = "20";

/// Posts 60 normal readings of `bearing_temp` (about 60 °C, a little noise, one a second,
/// ending 20 s ago) and then 10 readings 50 % higher: the twin's detector raises an alarm.
/// Returns the alarm's id, waiting (bounded) for it in `GET /api/v1/alarms`.
fn raise_alarm(s: &TestServer, twin: &str) -> String {
    let admin = Some(s.admin_token.as_str());
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let start = now_ms - 90_000;
    let readings: Vec<Value> = (0..70)
        .map(|i| {
            let noise = 0.4 * (f64::from(i) * 1.7).sin() + 0.2 * (f64::from(i) * 0.45).cos();
            let level = if i < 60 { 60.0 } else { 90.0 };
            json!({"ts": start + i64::from(i) * 1000, "values": {"bearing_temp": level + noise}})
        })
        .collect();
    let (status, body) = s.post(
        &format!("/api/v1/twins/{twin}/readings"),
        admin,
        &Value::Array(readings),
    );
    assert!(status == 200 || status == 204, "{status} {body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = s.get(&format!("/api/v1/alarms?twin={twin}"), admin);
        assert_eq!(status, 200, "{body}");
        if let Some(id) = body["alarms"][0]["id"].as_str() {
            return id.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no alarm on {twin} 10 s after the off readings; twin: {}",
            s.get(&format!("/api/v1/twins/{twin}"), admin).1
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes three pumps of the simulated pump's model that ran to failure (the simulator's
/// run-to-failure histories, a reading every two minutes), records each failure and fits
/// the model's remaining life; returns the model's RUL answer.
fn seed_failed_pumps(s: &TestServer) -> Value {
    let admin = Some(s.admin_token.as_str());
    let model = AssetKind::PumpMotor.model().id;
    for i in 0..3u64 {
        let id = format!("pump-old-{}", i + 1);
        let (status, body) = s.post(
            "/api/v1/twins",
            admin,
            &json!({"id": id, "model": model, "name": format!("Retired pump {}", i + 1)}),
        );
        assert_eq!(status, 201, "{body}");
        let run = doppel_sim::run_to_failure(40 + i, AssetKind::PumpMotor, 120.0);
        let failure = run.failure.expect("the simulated pump fails");
        post_sim_readings(s, &s.admin_token, &run.readings, Some(&id), 500);
        let (status, body) = s.post(
            &format!("/api/v1/twins/{id}/maintenance"),
            admin,
            &json!({"kind": "failure", "at": (failure / 1_000_000).to_string(), "failure_mode": "bearing_wear"}),
        );
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = s.post(&format!("/api/v1/models/{model}/rul"), admin, &json!({}));
    assert_eq!(status, 200, "{body}");
    body
}

/// The twin the what-if phase runs on.
const WHATIF_TWIN: &str = "pump-sim";
/// Simulated history written for it: enough hours for its dynamics to be fitted.
const WHATIF_HOURS: i64 = 8;
/// Seconds between its readings.
const WHATIF_STEP_S: i64 = 15;

/// The last reading written for the simulated pump: time (ns) and values.
type LastReading = (i64, serde_json::Map<String, Value>);

/// Creates a simulated centrifugal pump (model and twin, through the API) and writes
/// `WHATIF_HOURS` of its readings, `WHATIF_STEP_S` apart and ending five minutes ago (room
/// for `overheat_bearings`): its inputs follow the simulator's production schedule, so the
/// history holds the changes a fit needs.
fn seed_simulated_pump(s: &TestServer) -> LastReading {
    let admin = Some(s.admin_token.as_str());
    let model = AssetKind::PumpMotor.model();
    let twin: Twin = serde_json::from_value(
        json!({"id": WHATIF_TWIN, "model": model.id, "name": "Simulated pump"}),
    )
    .unwrap();
    let (status, body) = s.post(
        "/api/v1/models",
        admin,
        &serde_json::to_value(&model).unwrap(),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = s.post(
        "/api/v1/twins",
        admin,
        &serde_json::to_value(&twin).unwrap(),
    );
    assert_eq!(status, 201, "{body}");
    let mut plant = Plant::new(23);
    plant.add_asset(twin, AssetKind::PumpMotor.build(WHATIF_TWIN, 23));
    let now_ns = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap();
    let steps = WHATIF_HOURS * 3600 / WHATIF_STEP_S;
    // The plant always runs the same stretch of its schedule, 02:00-10:00 UTC of a weekday
    // (the morning shift starts at 06:00, moving speed and flow), and its readings are
    // stamped shifted to end five minutes ago: the history then does not depend on the hour
    // the test runs (an 8-hour night alone holds too few changes to identify flow against
    // speed).
    const NS: i64 = 1_000_000_000;
    const DAY: i64 = 86_400 * NS;
    let end = now_ns - 300 * NS;
    let mut end_sim = (end - 10 * 3600 * NS).div_euclid(DAY) * DAY + 10 * 3600 * NS;
    // 1970-01-01 was a Thursday: weekday 3 counting from Monday.
    while (end_sim.div_euclid(DAY) + 3).rem_euclid(7) >= 5 {
        end_sim -= DAY;
    }
    let shift = end - end_sim;
    let t0 = end_sim - steps * WHATIF_STEP_S * NS;
    plant.begin(t0);
    let mut batch = Vec::new();
    let mut last = (t0 + shift, serde_json::Map::new());
    for i in 1..=steps {
        let t_sim = t0 + i * WHATIF_STEP_S * NS;
        let t = t_sim + shift;
        for r in plant.step(t_sim, WHATIF_STEP_S as f64) {
            let values: serde_json::Map<String, Value> = r
                .values
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap()))
                .collect();
            last = (t, values.clone());
            batch.push(json!({"twin": r.twin, "ts": t / 1_000_000, "values": values}));
        }
        if batch.len() == 500 || i == steps {
            let (status, body) = s.post("/api/v1/readings", admin, &Value::Array(batch));
            assert_eq!(status, 200, "{body}");
            batch = Vec::new();
        }
    }
    last
}

/// After the simulated pump's history, three minutes of both bearings 40 % hotter than they
/// were (everything else as last read), so its detector raises an alarm with hours of history
/// before it to troubleshoot. Returns the id of the new alarm, or `""` when none is raised
/// within 10 s.
fn overheat_bearings(s: &TestServer, (t_last, values): &LastReading) -> String {
    let admin = Some(s.admin_token.as_str());
    let open = |s: &TestServer| -> Vec<String> {
        let (status, body) = s.get(
            &format!("/api/v1/alarms?twin={WHATIF_TWIN}&state=active,acknowledged"),
            admin,
        );
        assert_eq!(status, 200, "{body}");
        body["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    };
    // Alarms the detector raised on the history itself (while it learned the schedule's
    // operating points) are cleared: the one to troubleshoot is the bearings'.
    let before = open(s);
    for id in &before {
        let (status, body) = s.post(&format!("/api/v1/alarms/{id}/clear"), admin, &json!({}));
        assert_eq!(status, 200, "{body}");
    }
    let readings: Vec<Value> = (1..=12)
        .map(|i| {
            let mut v = values.clone();
            for name in ["bearing_temp_de", "bearing_temp_nde"] {
                let base = values[name].as_f64().unwrap();
                v.insert(
                    name.into(),
                    json!(base * (1.4 + 0.01 * (f64::from(i) * 1.3).sin())),
                );
            }
            let t = t_last + i64::from(i) * WHATIF_STEP_S * 1_000_000_000;
            json!({"ts": t / 1_000_000, "values": v})
        })
        .collect();
    let (status, body) = s.post(
        &format!("/api/v1/twins/{WHATIF_TWIN}/readings"),
        admin,
        &Value::Array(readings),
    );
    assert!(status == 200 || status == 204, "{status} {body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(id) = open(s).into_iter().find(|id| !before.contains(id)) {
            return id;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    String::new()
}

/// A model with `n` float signals `s000`.., normal range 0–100, for the frame-rate phase.
fn bench_model(n: usize) -> Value {
    let signals: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("s{i:03}"), "unit": "%", "kind": "float", "min": 0.0, "max": 100.0}))
        .collect();
    json!({"id": "bench", "name": "Bench (100 signals)", "signals": signals})
}

/// Posts `hz` readings a second of `signals` values to `twin` for `seconds`, from a thread.
fn start_load(
    s: &TestServer,
    twin: &str,
    signals: usize,
    hz: u64,
    seconds: u64,
) -> JoinHandle<(usize, Duration)> {
    let agent = pooled_agent();
    let url = format!("{}/api/v1/twins/{twin}/readings", s.http_url());
    let auth = format!("Bearer {}", s.admin_token);
    std::thread::spawn(move || {
        let period = Duration::from_micros(1_000_000 / hz);
        let start = Instant::now();
        let mut worst = Duration::ZERO;
        let mut sent = 0;
        for i in 0..hz * seconds {
            let due = start + period * u32::try_from(i).unwrap();
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let t = i as f64 / hz as f64;
            let values: serde_json::Map<String, Value> = (0..signals)
                .map(|k| {
                    let v = 50.0 + 30.0 * (t * 0.5 + k as f64 * 0.3).sin();
                    (format!("s{k:03}"), json!(v))
                })
                .collect();
            let body = serde_json::to_vec(&json!({ "values": values })).unwrap();
            let sent_at = Instant::now();
            let resp = agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(&body[..])
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200, "bench reading refused");
            worst = worst.max(sent_at.elapsed());
            sent += 1;
        }
        (sent, worst)
    })
}

#[test]
fn dashboard_in_headless_chromium() {
    if !browser_available() {
        return;
    }
    let s = TestServer::start_with(Options {
        env: vec![("DOPPEL_ANOMALY_WARMUP".into(), ANOMALY_WARMUP.into())],
        ..Options::default()
    });
    let admin = Some(s.admin_token.as_str());

    // The dashboard is served without a token, from the binary.
    let (status, index) = s.request_text("GET", "/", &[], None);
    if status == 503 {
        assert!(
            std::env::var_os("DOPPEL_E2E_REQUIRE_BROWSER").is_none(),
            "the binary was built without its dashboard (DOPPEL_SKIP_WEB or no npm): {index}"
        );
        eprintln!("SKIPPED: the binary was built without its dashboard: {index}");
        return;
    }
    assert_eq!(status, 200, "GET /: {index}");
    assert!(index.contains("<script"), "GET / is the app: {index}");
    let (status, body) = s.get("/api/v1/not-a-route", admin);
    assert_eq!(status, 404, "unknown API paths stay JSON 404s: {body}");
    assert!(body["error"].is_string(), "JSON error body: {body}");

    create_plant(&s);
    // The twin the alarm phase makes anomalous; nothing else posts to it.
    let (status, body) = s.post(
        "/api/v1/twins",
        admin,
        &json!({"id": "pump-3", "model": "pump", "name": "Pump 3", "parent": "line-1"}),
    );
    assert_eq!(status, 201, "{body}");
    for twin in ["pump-1", "pump-2"] {
        let reading = json!({"values": {"bearing_temp": 61.5, "running": true, "cycles": 3}});
        let (status, body) = s.post(&format!("/api/v1/twins/{twin}/readings"), admin, &reading);
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = s.post("/api/v1/models", admin, &bench_model(100));
    assert_eq!(status, 201, "{body}");
    let (status, body) = s.post(
        "/api/v1/twins",
        admin,
        &json!({"id": "bench-1", "model": "bench", "name": "Bench"}),
    );
    assert_eq!(status, 201, "{body}");

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-e2e");
    let profile = tempfile::Builder::new()
        .prefix("doppel-chromium-")
        .tempdir()
        .unwrap();
    let stderr_path = shots.join("browser-script.stderr");
    std::fs::create_dir_all(&shots).unwrap();
    let mut child = Command::new("node")
        .arg("e2e/dashboard.mjs")
        .current_dir(web_dir())
        .env("DOPPEL_URL", s.http_url())
        .env("DOPPEL_TOKEN", &s.admin_token)
        .env("CHROMIUM", chromium())
        .env("SHOTS", &shots)
        .env("USER_DATA_DIR", profile.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&stderr_path).unwrap()))
        .spawn()
        .expect("spawning node");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let fail = |msg: String| -> ! {
        let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        panic!("{msg}\n----- browser script stderr -----\n{err}");
    };
    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut steps: Vec<Value> = Vec::new();
    let mut load: Option<JoinHandle<(usize, Duration)>> = None;
    let mut loads: Vec<Value> = Vec::new();
    let mut alarm_id: Option<String> = None;
    let mut sim_last: Option<LastReading> = None;
    loop {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .min(LINE_TIMEOUT);
        let line = match rx.recv_timeout(left) {
            Ok(l) => l,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                fail(format!(
                    "the browser script said nothing for {left:?}; steps so far: {steps:#?}"
                ))
            }
        };
        let msg: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| fail(format!("unexpected browser script output: {line}")));
        let answer: String = match msg["await"].as_str() {
            None => {
                eprintln!("dashboard: {msg}");
                steps.push(msg);
                continue;
            }
            Some("reading") => {
                let twin = msg["twin"].as_str().unwrap();
                let (status, body) = s.post(
                    &format!("/api/v1/twins/{twin}/readings"),
                    admin,
                    &json!({"values": msg["values"]}),
                );
                assert_eq!(status, 200, "{body}");
                "ok".into()
            }
            Some("anomaly") => {
                let id = raise_alarm(&s, msg["twin"].as_str().unwrap());
                alarm_id = Some(id.clone());
                id
            }
            Some("alarm") => {
                let id = msg["id"].as_str().unwrap();
                let (status, body) = s.get(&format!("/api/v1/alarms/{id}"), admin);
                assert_eq!(status, 200, "{body}");
                body.to_string()
            }
            Some("load") => {
                assert!(load.is_none(), "one load at a time");
                load = Some(start_load(
                    &s,
                    msg["twin"].as_str().unwrap(),
                    usize::try_from(msg["signals"].as_u64().unwrap()).unwrap(),
                    msg["hz"].as_u64().unwrap(),
                    msg["seconds"].as_u64().unwrap(),
                ));
                "started".into()
            }
            Some("whatif_history") => {
                let started = Instant::now();
                sim_last = Some(seed_simulated_pump(&s));
                eprintln!(
                    "dashboard: simulated pump history written in {:?}",
                    started.elapsed()
                );
                WHATIF_TWIN.into()
            }
            Some("whatif_alarm") => {
                overheat_bearings(&s, sim_last.as_ref().expect("the history written first"))
            }
            Some("troubleshoot") => {
                let id = msg["id"].as_str().unwrap();
                let (status, body) = s.get(&format!("/api/v1/alarms/{id}/troubleshoot"), admin);
                json!({"status": status, "body": body}).to_string()
            }
            Some("advice") => {
                let (status, body) = s.get("/api/v1/advice?state=open,scheduled", admin);
                assert_eq!(status, 200, "{body}");
                body.to_string()
            }
            Some("rul_history") => seed_failed_pumps(&s).to_string(),
            Some("rul") => {
                let (status, body) = s.get("/api/v1/rul", admin);
                json!({"status": status, "body": body}).to_string()
            }
            Some("twin_rul") => {
                let twin = msg["twin"].as_str().unwrap();
                let (status, body) = s.get(&format!("/api/v1/twins/{twin}/rul"), admin);
                json!({"status": status, "body": body}).to_string()
            }
            Some("load_done") => {
                let (sent, worst) = load.take().expect("a load running").join().unwrap();
                loads.push(json!({"readings": sent, "worst_post_ms": worst.as_secs_f64() * 1e3}));
                "ok".into()
            }
            Some(other) => fail(format!("unknown request from the browser script: {other}")),
        };
        writeln!(stdin, "{answer}").unwrap();
        stdin.flush().unwrap();
    }
    drop(stdin);
    let status = wait_bounded(&mut child, Duration::from_secs(30)).unwrap_or_else(|| {
        let _ = child.kill();
        fail("the browser script did not exit".into())
    });
    if !status.success() {
        fail(format!(
            "the browser script failed ({status}); steps: {steps:#?}"
        ));
    }

    let step = |name: &str| steps.iter().find(|v| v["step"] == name).cloned();
    let done = step("done").unwrap_or_else(|| fail(format!("no `done` step: {steps:#?}")));
    assert_eq!(
        done["consoleErrors"],
        json!([]),
        "console errors in the browser"
    );
    for name in [
        "signed_in",
        "fleet",
        "live_value",
        "out_of_range",
        "history_zoom",
        "models",
        "alarm_live",
        "alarm_acknowledged",
        "alarm_detail",
        "alarm_feedback",
        "alarm_on_twin",
        "alarm_in_fleet",
        "advice",
        "rul_fleet",
        "rul_twin",
        "whatif_fit",
        "whatif_scenario",
        "whatif_optimize",
        "troubleshoot",
        "rul_estimated",
    ] {
        assert!(step(name).is_some(), "step {name} missing: {steps:#?}");
    }

    // What the operator did in the browser reached the server.
    let id = alarm_id.unwrap_or_else(|| fail("the browser script raised no alarm".into()));
    let (status, alarm) = s.get(&format!("/api/v1/alarms/{id}"), admin);
    assert_eq!(status, 200, "{alarm}");
    assert_eq!(alarm["state"], "acknowledged", "{alarm}");
    assert_eq!(alarm["feedback"]["verdict"], "confirmed", "{alarm}");
    assert_eq!(alarm["feedback"]["fault_kind"], "bearing_wear", "{alarm}");

    // First meaningful paint: the fleet tree on screen, median of three reloads.
    let runs = step("first_paint").unwrap()["runs"]
        .as_array()
        .unwrap()
        .clone();
    let mut fleet_ms: Vec<f64> = runs.iter().map(|r| r["fleet"].as_f64().unwrap()).collect();
    fleet_ms.sort_by(f64::total_cmp);
    let median = fleet_ms[fleet_ms.len() / 2];
    assert!(
        median <= FIRST_PAINT_BUDGET_MS,
        "fleet tree first shown after {median:.0} ms (budget {FIRST_PAINT_BUDGET_MS} ms): {runs:?}"
    );

    let live = step("live_value").unwrap();
    assert!(
        live["visibleAfterPostMs"].as_f64().unwrap() < 2000.0,
        "a posted reading took more than 2 s to show: {live}"
    );
    let frame_runs: Vec<Value> = steps
        .iter()
        .filter(|v| v["step"] == "frames_load")
        .cloned()
        .collect();
    assert_eq!(frame_runs.len(), 3, "{steps:#?}");
    for r in &frame_runs {
        assert!(
            r["events"].as_u64().unwrap() > 0,
            "no live events during the load: {r}"
        );
    }
    // The what-if ran on the server's answer: a lower speed moved flow down.
    let scenario = step("whatif_scenario").unwrap();
    assert!(
        scenario["flowMeanDelta"].as_f64().unwrap() < 0.0,
        "flow's mean delta for a lower speed: {scenario}"
    );
    let results = json!({
        "first_paint_ms": fleet_ms,
        "first_paint_runs": runs,
        "live_value": live,
        "frames_idle": step("frames_idle"),
        "frames_load": frame_runs,
        "load": loads,
        "whatif": {
            "fit": step("whatif_fit"),
            "scenario": scenario,
            "optimize": step("whatif_optimize"),
            "troubleshoot": step("troubleshoot"),
        },
    });
    std::fs::write(
        shots.join("results.json"),
        serde_json::to_string_pretty(&results).unwrap(),
    )
    .unwrap();
    eprintln!(
        "dashboard figures (also in {}):\n{}",
        shots.join("results.json").display(),
        serde_json::to_string_pretty(&results).unwrap()
    );
}
