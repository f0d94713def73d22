//! End-to-end tests of `doppel demo`: the real binary with its own server on OS-chosen ports.
//! Within 10 s of start every simulated twin has live state, the demo stops cleanly on
//! SIGINT and SIGTERM, and it starts from a fresh data directory each run unless `--keep`,
//! refusing a directory it did not create.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{agent, doppel_bin, http_text, run_bounded, wait_bounded, STOP_TIMEOUT};
use nix::sys::signal::Signal;
use serde_json::Value;

/// How soon after start every demo twin must have live state (the issue's promise).
const LIVE_WITHIN: Duration = Duration::from_secs(10);

/// Environment of the demo that the tests set themselves or must not inherit.
const DEMO_ENV: [&str; 6] = [
    "DOPPEL_DEMO_DATA_DIR",
    "DOPPEL_HTTP_ADDR",
    "DOPPEL_MQTT_ADDR",
    "DOPPEL_ADMIN_TOKEN",
    "DOPPEL_LOG",
    "DOPPEL_LOG_JSON",
];

/// `doppel demo` on `dir` with OS-chosen ports, `extra` flags and, unless they say
/// otherwise, a short backfill (five simulated minutes: quick in a debug build).
fn demo_command(dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(doppel_bin());
    cmd.arg("demo")
        .arg("--data-dir")
        .arg(dir)
        .args(["--http-addr", "127.0.0.1:0", "--mqtt-addr", "127.0.0.1:0"])
        .args(extra);
    if !extra.contains(&"--backfill") {
        cmd.args(["--backfill", "5m"]);
    }
    for var in DEMO_ENV {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// A running demo whose stdout is collected line by line.
struct Demo {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    log: PathBuf,
}

impl Demo {
    fn spawn(dir: &Path, log: PathBuf, extra: &[&str]) -> Demo {
        let mut child = demo_command(dir, extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("spawning doppel demo");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Demo { child, lines, log }
    }

    fn stdout(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// `http://127.0.0.1:PORT` once the `listening` line is out.
    fn http_url(&self) -> Option<String> {
        self.stdout().iter().find_map(|l| {
            l.strip_prefix("listening ")?
                .split_whitespace()
                .find_map(|p| p.strip_prefix("http="))
                .map(|a| format!("http://{a}"))
        })
    }

    /// The token from the `Admin token: …` line printed once the plant runs.
    fn token(&self) -> Option<String> {
        self.stdout().iter().find_map(|l| {
            l.trim()
                .strip_prefix("Admin token: ")
                .map(|t| t.trim().to_string())
        })
    }

    fn fail(&mut self, msg: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!(
            "{msg}\n----- stdout -----\n{}\n----- log -----\n{}",
            self.stdout().join("\n"),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Sends `signal` and asserts a clean exit with `doppel stopped` on stdout.
    fn stop_with(&mut self, signal: Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, signal).unwrap();
        match wait_bounded(&mut self.child, STOP_TIMEOUT) {
            Some(s) if s.success() => {}
            Some(s) => self.fail(&format!("demo exited with {s} after {signal:?}")),
            None => self.fail(&format!(
                "demo still running {STOP_TIMEOUT:?} after {signal:?}"
            )),
        }
        // The reader thread may still be handing over the last line.
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.stdout().iter().any(|l| l == "doppel stopped") {
            if Instant::now() > deadline {
                self.fail(&format!("no `doppel stopped` on stdout after {signal:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn get_json(base: &str, path: &str, token: &str) -> Option<Value> {
    let auth = format!("Bearer {token}");
    let (status, body) = http_text(
        &agent(),
        base,
        "GET",
        path,
        &[("authorization", &auth)],
        None,
    )
    .ok()?;
    (status == 200).then(|| serde_json::from_str(&body).ok())?
}

/// The twins whose model has signals, each with the newest timestamp among its signals'
/// values (`None` while it has no value at all). `None` when the API is not answering yet.
fn signal_twins(base: &str, token: &str) -> Option<Vec<(String, Option<i64>)>> {
    let list = get_json(base, "/api/v1/twins", token)?;
    let mut out = Vec::new();
    for t in list.as_array()? {
        let id = t["id"].as_str()?;
        if id.starts_with("pump-r") {
            // Retired pumps: history only, written in the background.
            continue;
        }
        let state = get_json(base, &format!("/api/v1/twins/{id}"), token)?;
        let signals = state["signals"].as_object()?;
        if signals.is_empty() {
            continue;
        }
        let newest = signals
            .values()
            .filter(|s| !s["value"].is_null())
            .filter_map(|s| s["ts"].as_i64())
            .max();
        out.push((id.to_string(), newest));
    }
    Some(out)
}

#[test]
fn every_demo_twin_is_live_within_ten_seconds_and_sigint_stops_the_demo() {
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut demo = Demo::spawn(&tmp.path().join("data"), tmp.path().join("demo.log"), &[]);

    let live = loop {
        if let (Some(base), Some(token)) = (demo.http_url(), demo.token()) {
            if let Some(twins) = signal_twins(&base, &token) {
                if !twins.is_empty() && twins.iter().all(|(_, ts)| ts.is_some()) {
                    break (base, token, twins);
                }
            }
        }
        if started.elapsed() > LIVE_WITHIN {
            demo.fail(&format!(
                "not every demo twin had live state within {LIVE_WITHIN:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (base, token, twins) = live;
    eprintln!(
        "every demo twin had state {:.1} s after start",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        twins.len(),
        8,
        "4 pumps, a chiller, 3 MRI compressors: {twins:?}"
    );
    let all = get_json(&base, "/api/v1/twins", &token).unwrap();
    let all = all.as_array().unwrap();
    let live_ones = all
        .iter()
        .filter(|t| !t["id"].as_str().unwrap().starts_with("pump-r"))
        .count();
    assert_eq!(live_ones, 16, "with their sites, lines, floors…");

    // Live, not only backfilled: every twin's newest reading moves on.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = signal_twins(&base, &token).unwrap_or_default();
        let moved = now.len() == twins.len()
            && now
                .iter()
                .zip(&twins)
                .all(|((_, after), (_, before))| after > before);
        if moved {
            break;
        }
        if Instant::now() > deadline {
            demo.fail(&format!("readings did not move on: {twins:?} then {now:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // The packs went in through the API: the models are there with their signals.
    let pump = get_json(&base, "/api/v1/models/centrifugal_pump", &token).unwrap();
    assert!(pump["signals"].as_array().unwrap().len() > 10);
    let mri = get_json(&base, "/api/v1/twins/mri-1", &token).unwrap();
    assert_eq!(mri["parent"], "radiology-1");

    // The retired pumps' recorded failures fit the pumps' remaining-life model, and every
    // live pump gets an estimate.
    let deadline = Instant::now() + Duration::from_secs(180);
    let fleet = loop {
        let fleet = get_json(&base, "/api/v1/rul?model=centrifugal_pump", &token);
        let estimated = fleet.as_ref().map_or(0, |f| {
            f["twins"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["status"] == "estimated")
                .count()
        });
        if estimated == 4 {
            break fleet.unwrap();
        }
        if Instant::now() > deadline {
            demo.fail(&format!("no RUL for the demo pumps: {fleet:?}"));
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!(
        "RUL {:.1} s after start: {}",
        started.elapsed().as_secs_f64(),
        fleet["twins"]
    );
    let model = get_json(&base, "/api/v1/models/centrifugal_pump/rul", &token).unwrap();
    assert_eq!(model["status"], "trained", "{model}");
    assert_eq!(model["failures"], 4, "{model}");
    // Their failures settled their alarms and advice.
    let open = get_json(&base, "/api/v1/alarms?twin=pump-r1", &token).unwrap();
    assert!(
        open["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["state"] == "cleared"),
        "{open}"
    );

    demo.stop_with(Signal::SIGINT);
}

/// Runs a demo on `dir` for a moment (it stops itself) and returns its stdout.
fn run_briefly(dir: &Path, extra: &[&str]) -> common::Output {
    let mut args = vec!["--duration", "1s", "--backfill", "0s"];
    args.extend_from_slice(extra);
    let out = run_bounded(&mut demo_command(dir, &args), Duration::from_secs(60));
    assert!(
        out.status.success(),
        "demo {args:?} failed: {}\n{}",
        out.stdout,
        out.stderr
    );
    out
}

#[test]
fn demo_starts_fresh_unless_kept_and_never_clears_a_directory_it_did_not_create() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("doppel-demo-data");

    // First run: creates and marks the directory, generates an admin token.
    let first = run_briefly(&dir, &[]);
    assert!(dir.join(".doppel-demo").is_file());
    assert!(first
        .stdout
        .contains("First start: an admin token was created"));

    // Next run: everything but the marker is cleared, so the token is new again.
    std::fs::write(dir.join("leftover.txt"), "from an earlier run").unwrap();
    let again = run_briefly(&dir, &[]);
    assert!(
        !dir.join("leftover.txt").exists(),
        "the old data was not cleared"
    );
    assert!(again
        .stdout
        .contains("First start: an admin token was created"));

    // --keep reuses the data: the old tokens stay, nothing is cleared.
    std::fs::write(dir.join("leftover.txt"), "kept").unwrap();
    let kept = run_briefly(&dir, &["--keep"]);
    assert!(dir.join("leftover.txt").exists());
    assert!(!kept.stdout.contains("First start"), "{}", kept.stdout);
    assert!(kept.stdout.contains("Admin token: dpl_"));

    // A directory with someone else's files is refused and left alone, with or without --keep.
    let foreign = tmp.path().join("my-data");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("precious.txt"), "do not delete").unwrap();
    for extra in [&[][..], &["--keep"][..]] {
        let mut args = vec!["--duration", "1s"];
        args.extend_from_slice(extra);
        let out = run_bounded(&mut demo_command(&foreign, &args), Duration::from_secs(60));
        assert!(!out.status.success(), "accepted a foreign directory");
        assert!(
            out.stderr.contains("was not created by `doppel demo`"),
            "{}",
            out.stderr
        );
    }
    assert_eq!(
        std::fs::read_to_string(foreign.join("precious.txt")).unwrap(),
        "do not delete"
    );
    assert!(!foreign.join(".doppel-demo").exists());

    // An empty directory is fine and becomes the demo's; SIGTERM stops it cleanly.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let mut demo = Demo::spawn(&empty, tmp.path().join("term.log"), &["--backfill", "0s"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while demo.token().is_none() {
        if Instant::now() > deadline {
            demo.fail("the demo did not come up on an empty directory");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(empty.join(".doppel-demo").is_file());
    demo.stop_with(Signal::SIGTERM);
}

fn post_json(base: &str, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let text = body.to_string();
    let (status, body) = http_text(
        &agent(),
        base,
        "POST",
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(text.as_bytes()),
    )
    .unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The virtual testing ground on a demo twin: its dynamics are identified from the
/// backfilled history, a what-if of a lower speed returns trajectories inside their bands and
/// moves the outputs the way physics says, the optimizer stays inside the allowed inputs,
/// troubleshooting answers, and none of it writes to the twin's history.
#[test]
fn what_if_on_a_demo_twin_leaves_its_history_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let mut demo = Demo::spawn(
        &tmp.path().join("data"),
        tmp.path().join("demo.log"),
        // 30 h of history whatever the hour: the fit learns on its first 60 % (18 h), which
        // then always holds a shift change of the simulated production schedule (06:00 and
        // 22:00 on weekdays). The scenarios run on pump-4, the demo's healthy reference
        // pump: pump-1's bearing fails 8-24 h into the history, and a trip in the fitted
        // span makes its dynamics nonsense.
        &["--backfill", "30h", "--tick", "10s"],
    );
    let started = Instant::now();
    let (base, token) = loop {
        if let (Some(b), Some(t)) = (demo.http_url(), demo.token()) {
            break (b, t);
        }
        if started.elapsed() > Duration::from_secs(120) {
            demo.fail("the demo did not start within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // History of pump-4 before the scenarios: per-hour counts of one output.
    let counts = |upto: i64| {
        get_json(
            &base,
            &format!("/api/v1/twins/pump-4/signals/flow/history?to={upto}&step=1h&agg=count"),
            &token,
        )
        .unwrap()
    };

    let (status, dynamics) = post_json(
        &base,
        "/api/v1/twins/pump-4/dynamics",
        &token,
        &serde_json::json!({}),
    );
    if status != 200 {
        demo.fail(&format!("fitting the dynamics: {status} {dynamics}"));
    }
    let outputs = dynamics["outputs"].as_array().unwrap();
    assert!(outputs.iter().any(|o| o["signal"] == "flow"), "{dynamics}");
    for o in outputs {
        let q = o["nrmse_horizon"].as_f64().unwrap();
        assert!(q.is_finite() && q >= 0.0, "{o}");
    }
    let upto_ms = dynamics["history_to"].as_i64().unwrap() / 1_000_000;
    let before = counts(upto_ms);

    let ask = serde_json::json!({"scenarios": [{
        "name": "slower",
        "horizon_s": 7200,
        "output_step_s": 60,
        "changes": [{"signal": "speed_cmd", "kind": "step", "at_s": 600, "value": 1600}]
    }]});
    let (status, answer) = post_json(&base, "/api/v1/twins/pump-4/scenarios", &token, &ask);
    if status != 200 {
        demo.fail(&format!("scenario: {status} {answer}"));
    }
    let scenario = &answer["scenarios"][0];
    assert_eq!(scenario["name"], "slower");
    for o in scenario["result"]["outputs"].as_array().unwrap() {
        let v = o["values"].as_array().unwrap();
        let (lo, hi) = (
            o["lower"].as_array().unwrap(),
            o["upper"].as_array().unwrap(),
        );
        assert_eq!(
            v.len(),
            121,
            "two hours at one minute, both ends: {}",
            o["signal"]
        );
        for i in 0..v.len() {
            let (l, x, h) = (
                lo[i].as_f64().unwrap(),
                v[i].as_f64().unwrap(),
                hi[i].as_f64().unwrap(),
            );
            assert!(l <= x && x <= h, "{} at {i}: {l} {x} {h}", o["signal"]);
        }
    }
    // Affinity laws: less speed, less flow and less power than the baseline.
    let delta = |signal: &str| {
        scenario["comparison"]["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["signal"] == signal)
            .map(|o| o["mean_delta"].as_f64().unwrap())
            .unwrap_or_else(|| panic!("no {signal} in {scenario}"))
    };
    assert!(delta("speed") < 0.0 && delta("flow") < 0.0 && delta("motor_power") < 0.0);
    assert!(answer["baseline"]["outputs"].as_array().unwrap().len() >= outputs.len());

    let (status, best) = post_json(
        &base,
        "/api/v1/twins/pump-4/optimize",
        &token,
        &serde_json::json!({
            "horizon_s": 3600,
            "objective": {"sense": "minimize", "terms": [{"signal": "motor_power"}]},
            "inputs": [{"signal": "speed_cmd", "min": 1600, "max": 2400}]
        }),
    );
    assert_eq!(status, 200, "{best}");
    let speed = best["settings"][0]["value"].as_f64().unwrap();
    assert!((1600.0..=2400.0).contains(&speed), "{best}");

    let from_ms = upto_ms - 3_600_000;
    let trouble = get_json(
        &base,
        &format!("/api/v1/twins/pump-4/troubleshoot?from={from_ms}&to={upto_ms}"),
        &token,
    )
    .unwrap();
    assert!(trouble["causes"].is_array(), "{trouble}");

    // A scenario on an input the model does not have is refused, naming the field.
    let (status, err) = post_json(
        &base,
        "/api/v1/twins/pump-4/scenarios",
        &token,
        &serde_json::json!({"scenarios": [{"horizon_s": 600,
            "changes": [{"signal": "warp_drive", "kind": "step", "at_s": 0, "value": 1}]}]}),
    );
    assert_eq!(status, 400, "{err}");
    assert!(err["field"].is_string(), "{err}");

    // The CLI: the example scenario file, as a table.
    let out = run_bounded(
        Command::new(doppel_bin())
            .args(["whatif", "--url", &base, "--token", &token])
            .arg("../../examples/whatif/pump-speed.json"),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "doppel whatif: {}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout.contains("what-if on pump-1 from "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("scenario ramp to 2600 rpm over 30 min"),
        "{}",
        out.stdout
    );
    let flow = out
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("flow "))
        .count();
    assert_eq!(flow, 2, "one flow line per scenario: {}", out.stdout);

    // Nothing was written: the history up to the fit is what it was, and nothing exists
    // beyond the live readings (the scenario's future is not in history).
    assert_eq!(counts(upto_ms), before);
    let ahead = get_json(
        &base,
        &format!(
            "/api/v1/twins/pump-4/signals/flow/history?from={}",
            upto_ms + 2 * 3_600_000
        ),
        &token,
    )
    .unwrap();
    assert_eq!(ahead["points"].as_array().unwrap().len(), 0, "{ahead}");

    demo.stop_with(Signal::SIGINT);
}
