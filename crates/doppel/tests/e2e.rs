//! End-to-end tests: the built `doppel` binary on a temporary data directory, driven over
//! loopback with real clients (HTTP, WebSocket, SSE, `mosquitto_pub`), restarted with SIGTERM.
//! Each test runs its own server, so they run in parallel.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{
    create_plant, ids, line_model, metric, mosquitto_pub, mosquitto_pub_available, pump_model,
    site_model, t0_ns, t0_plus, Options, SseClient, TestServer, WsClient, EVENT_TIMEOUT, T0_MS,
};
use serde_json::{json, Value};

/// Asserts an error answer: the status, a JSON body with an `error` message, the `field` at
/// fault, and that field among `errors`.
#[track_caller]
fn assert_error(answer: &(u16, Value), status: u16, field: &str) {
    let (got, body) = answer;
    assert_eq!(
        *got, status,
        "expected {status} about `{field}`, got {got}: {body}"
    );
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "error body without a message: {body}"
    );
    assert_eq!(body["field"], json!(field), "wrong field at fault: {body}");
    let listed = body["errors"].as_array().is_some_and(|errs| {
        errs.iter()
            .any(|e| e["field"] == json!(field) && e["message"].is_string())
    });
    assert!(listed, "`{field}` not listed in `errors`: {body}");
}

/// Asserts a status and an error body with a message (no particular field).
#[track_caller]
fn assert_status(answer: &(u16, Value), status: u16) {
    let (got, body) = answer;
    assert_eq!(*got, status, "expected {status}, got {got}: {body}");
    if status >= 400 {
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "no error message: {body}"
        );
    }
}

fn history(s: &TestServer, twin: &str, signal: &str, query: &str) -> Value {
    s.get_ok(&format!(
        "/api/v1/twins/{twin}/signals/{signal}/history?{query}"
    ))
}

/// `(ts, value)` of every raw point of a history answer, checking `time` agrees with `ts`.
fn points(h: &Value) -> Vec<(i64, Value)> {
    h["points"]
        .as_array()
        .unwrap_or_else(|| panic!("no points in {h}"))
        .iter()
        .map(|p| {
            let ts = p["ts"].as_i64().unwrap();
            assert_eq!(
                p["time"],
                json!(t0_plus(ts / 1_000_000 - T0_MS)),
                "time of {p}"
            );
            (ts, p["value"].clone())
        })
        .collect()
}

/// `(time, value, count)` of every bucket of an aggregated history answer.
fn buckets(h: &Value) -> Vec<(String, f64, u64)> {
    h["buckets"]
        .as_array()
        .unwrap_or_else(|| panic!("no buckets in {h}"))
        .iter()
        .map(|b| {
            (
                b["time"].as_str().unwrap().to_string(),
                b["value"].as_f64().unwrap(),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn signal<'a>(state: &'a Value, name: &str) -> &'a Value {
    &state["signals"][name]
}

#[test]
fn models_and_twins_in_a_hierarchy() {
    let s = TestServer::start();
    let admin = Some(s.admin_token.as_str());
    assert!(
        s.banner
            .iter()
            .any(|l| l.contains("admin token") && l.contains("from data dir")),
        "{:?}",
        s.banner
    );
    // The effective config is printed before `listening`.
    let data_dir = s.data_dir().display().to_string();
    for (key, value) in [
        ("data dir", data_dir.as_str()),
        ("http", "127.0.0.1:0"),
        ("mqtt", "127.0.0.1:0"),
    ] {
        assert!(
            s.banner
                .iter()
                .any(|l| l.trim_start().starts_with(key) && l.ends_with(value)),
            "config line `{key} {value}` missing: {:?}",
            s.banner
        );
    }
    create_plant(&s);

    assert_eq!(ids(&s.get_ok("/api/v1/models")), ["line", "pump", "site"]);
    assert_eq!(s.get_ok("/api/v1/models/pump"), pump_model());
    assert_status(&s.get("/api/v1/models/nope", admin), 404);
    assert_status(&s.post("/api/v1/models", admin, &pump_model()), 409);

    assert_eq!(
        ids(&s.get_ok("/api/v1/twins")),
        ["line-1", "pump-1", "pump-2", "site-1"]
    );
    assert_eq!(
        ids(&s.get_ok("/api/v1/twins?model=pump")),
        ["pump-1", "pump-2"]
    );
    assert_eq!(
        ids(&s.get_ok("/api/v1/twins?parent=line-1")),
        ["pump-1", "pump-2"]
    );
    assert_eq!(ids(&s.get_ok("/api/v1/twins?parent=site-1")), ["line-1"]);
    assert_eq!(
        ids(&s.get_ok("/api/v1/twins?model=pump&parent=site-1")),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&s.get_ok("/api/v1/twins/line-1/children")),
        ["pump-1", "pump-2"]
    );
    assert_eq!(ids(&s.get_ok("/api/v1/twins/site-1/children")), ["line-1"]);
    assert_eq!(
        ids(&s.get_ok("/api/v1/twins/pump-1/children")),
        Vec::<String>::new()
    );
    assert_status(&s.get("/api/v1/twins/nope/children", admin), 404);
    assert_status(
        &s.post("/api/v1/twins", admin, &common::plant_twins()[0]),
        409,
    );

    let pump = s.get_ok("/api/v1/twins/pump-1");
    assert_eq!(pump["id"], "pump-1");
    assert_eq!(pump["model"], "pump");
    assert_eq!(pump["name"], "Pump 1");
    assert_eq!(pump["parent"], "line-1");
    assert_eq!(pump["properties"], json!({"serial": "P-0001"}));
    assert_eq!(
        pump["relations"],
        json!([{"kind": "feeds", "target": "pump-2"}])
    );
    assert_eq!(
        pump["model_info"],
        json!({"id": "pump", "name": "Centrifugal pump", "version": 1})
    );
    assert!(
        pump.get("at").is_none(),
        "`at` only for past states: {pump}"
    );
    let temp = signal(&pump, "bearing_temp");
    assert_eq!(temp["unit"], "°C");
    assert_eq!(temp["kind"], "float");
    assert_eq!(temp["value"], Value::Null, "no reading yet: {temp}");
    assert_eq!(signal(&pump, "running")["kind"], "bool");
    assert_eq!(signal(&pump, "cycles")["kind"], "int");
    assert_eq!(pump["signals"].as_object().unwrap().len(), 3, "{pump}");
    assert_status(&s.get("/api/v1/twins/nope", admin), 404);

    // Replacing a model and a twin.
    let mut v2 = pump_model();
    v2["version"] = json!(2);
    v2["name"] = json!("Centrifugal pump (rev 2)");
    let (status, body) = s.put("/api/v1/models/pump", admin, &v2);
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.get_ok("/api/v1/models/pump")["version"], 2);
    assert_eq!(s.get_ok("/api/v1/twins/pump-1")["model_info"]["version"], 2);
    assert_error(&s.put("/api/v1/models/other", admin, &v2), 400, "id");
    let mut p2 = common::plant_twins()[2].clone();
    p2["name"] = json!("Pump 2 (spare)");
    let (status, body) = s.put("/api/v1/twins/pump-2", admin, &p2);
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.get_ok("/api/v1/twins/pump-2")["name"], "Pump 2 (spare)");

    // The catalog's rules, each naming the field at fault.
    let bad = json!({"id": "pump-9", "model": "pump", "parent": "line-9"});
    assert_error(&s.post("/api/v1/twins", admin, &bad), 400, "parent");
    let bad = json!({"id": "pump-9", "model": "pump", "relations": [{"kind": "powers", "target": "pump-2"}]});
    assert_error(
        &s.post("/api/v1/twins", admin, &bad),
        400,
        "relations[0].kind",
    );
    let bad = json!({"id": "pump-9", "model": "pump", "relations": [{"kind": "feeds", "target": "ghost"}]});
    assert_error(
        &s.post("/api/v1/twins", admin, &bad),
        400,
        "relations[0].target",
    );
    let bad = json!({"id": "pump-9", "model": "pump", "relations": [{"kind": "feeds", "target": "line-1"}]});
    assert_error(
        &s.post("/api/v1/twins", admin, &bad),
        400,
        "relations[0].target",
    );
    let bad = json!({"id": "pump 9", "model": "pump"});
    assert_error(&s.post("/api/v1/twins", admin, &bad), 400, "id");
    let bad = json!({"id": "pump-9", "model": "turbine"});
    assert_error(&s.post("/api/v1/twins", admin, &bad), 400, "model");
    // No cycles in the hierarchy.
    let mut site = common::plant_twins()[0].clone();
    site["parent"] = json!("pump-1");
    assert_error(&s.put("/api/v1/twins/site-1", admin, &site), 400, "parent");
    site["parent"] = json!("site-1");
    assert_error(&s.put("/api/v1/twins/site-1", admin, &site), 400, "parent");
    let mut bad = pump_model();
    bad["id"] = json!("pump-x");
    bad["signals"][0]["min"] = json!(200.0);
    assert_error(
        &s.post("/api/v1/models", admin, &bad),
        400,
        "signals[0].min",
    );

    // Deletes that would break the catalog are refused.
    assert_status(&s.delete("/api/v1/models/pump", admin), 409);
    assert_status(&s.delete("/api/v1/twins/line-1", admin), 409);
    assert_status(&s.delete("/api/v1/models/nope", admin), 404);
    let (status, body) = s.delete("/api/v1/twins/pump-2", admin);
    assert_eq!(status, 204, "{body}");
    // Relations pointing at a deleted twin go with it.
    assert_eq!(s.get_ok("/api/v1/twins/pump-1")["relations"], json!([]));
    assert_status(&s.delete("/api/v1/models/pump", admin), 409);
    assert_eq!(s.delete("/api/v1/twins/pump-1", admin).0, 204);
    assert_eq!(s.delete("/api/v1/models/pump", admin).0, 204);
    assert_status(&s.get("/api/v1/models/pump", admin), 404);
    assert_eq!(
        ids(&s.get_ok("/api/v1/twins/line-1/children")),
        Vec::<String>::new()
    );

    let doc = s.get_ok("/api/v1/openapi.json");
    for path in [
        "/api/v1/twins/{id}/readings",
        "/api/v1/twins/{id}/signals/{signal}/history",
        "/api/v1/stream",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "openapi.json lacks {path}"
        );
    }
}

/// Every HTTP way in (JSON single, array, bulk; line protocol on three endpoints), then state,
/// history raw and aggregated, past state, a late reading, and all of it after a restart.
#[test]
fn readings_state_history_and_restart() {
    let mut s = TestServer::start();
    create_plant(&s);
    let admin = s.admin_token.clone();
    let tok = Some(admin.as_str());

    // JSON, one reading, RFC 3339 time.
    let r = s.post_ok(
        "/api/v1/twins/pump-1/readings",
        &json!({"ts": t0_plus(0), "values": {"bearing_temp": 70.5, "running": true, "cycles": 1}}),
    );
    assert_eq!(r, json!({"readings": 1, "points": 3, "late": 0}));
    // JSON array, epoch milliseconds.
    let r = s.post_ok(
        "/api/v1/twins/pump-1/readings",
        &json!([
            {"ts": T0_MS + 10_000, "values": {"bearing_temp": 71.0, "cycles": 2}},
            {"ts": T0_MS + 20_000, "values": {"bearing_temp": 71.5}}
        ]),
    );
    assert_eq!(r, json!({"readings": 2, "points": 3, "late": 0}));
    // Bulk, several twins.
    let r = s.post_ok(
        "/api/v1/readings",
        &json!([
            {"twin": "pump-2", "ts": T0_MS, "values": {"bearing_temp": 50.0, "running": false}},
            {"twin": "pump-1", "ts": T0_MS + 25_000, "values": {"cycles": 3}}
        ]),
    );
    assert_eq!(r, json!({"readings": 2, "points": 3, "late": 0}));
    // Line protocol: measurement or `twin` tag names the twin; seconds precision.
    let secs = T0_MS / 1000 + 30;
    let lp = format!(
        "pump-1 bearing_temp=72.0,cycles=4i {secs}\nplant,twin=pump-2 bearing_temp=51.5 {secs}\n"
    );
    let (status, body) = s.post_text("/api/v1/write?precision=s", tok, &lp);
    assert_eq!(status, 204, "{body}");
    // InfluxDB 1.x: token as `p`, milliseconds.
    let lp = format!("pump-1 bearing_temp=72.5,running=false {}", T0_MS + 40_000);
    let (status, body) = s.request(
        "POST",
        &format!("/write?db=plant&u=me&p={admin}&precision=ms"),
        &[],
        Some(lp.as_bytes()),
    );
    assert_eq!(status, 204, "{body}");
    // InfluxDB 2.x: `Authorization: Token`, nanoseconds (the default).
    let lp = format!(
        "pump-1 bearing_temp=73.0,running=true,cycles=5i {}",
        t0_ns(50_000)
    );
    let auth = format!("Token {admin}");
    let (status, body) = s.request(
        "POST",
        "/api/v2/write?org=acme&bucket=plant",
        &[
            ("Authorization", &auth),
            ("Content-Type", "text/plain; charset=utf-8"),
        ],
        Some(lp.as_bytes()),
    );
    assert_eq!(status, 204, "{body}");
    // RFC 3339 with an offset: 13:01:10+01:00 is T0 + 70 s.
    let r = s.post_ok(
        "/api/v1/twins/pump-1/readings",
        &json!([
            {"ts": "2026-01-31T13:01:10+01:00", "values": {"bearing_temp": 74.0}},
            {"ts": T0_MS + 80_000, "values": {"bearing_temp": 75.0, "cycles": 6}}
        ]),
    );
    assert_eq!(r, json!({"readings": 2, "points": 3, "late": 0}));

    let expect_current = |s: &TestServer| {
        let st = s.get_ok("/api/v1/twins/pump-1");
        let temp = signal(&st, "bearing_temp");
        assert_eq!(temp["value"], json!(75.0), "{st}");
        assert_eq!(temp["ts"], json!(t0_ns(80_000)), "{st}");
        assert_eq!(temp["time"], json!("2026-01-31T12:01:20Z"), "{st}");
        assert_eq!(temp["unit"], "°C");
        assert_eq!(signal(&st, "running")["value"], json!(true), "{st}");
        assert_eq!(signal(&st, "running")["ts"], json!(t0_ns(50_000)), "{st}");
        assert_eq!(signal(&st, "cycles")["value"], json!(6), "{st}");
        let st = s.get_ok("/api/v1/twins/pump-2");
        assert_eq!(signal(&st, "bearing_temp")["value"], json!(51.5), "{st}");
        assert_eq!(signal(&st, "running")["value"], json!(false), "{st}");
        assert_eq!(signal(&st, "cycles")["value"], Value::Null, "{st}");
    };
    expect_current(&s);

    // A late reading goes to history but leaves the state where it is.
    let r = s.post_ok(
        "/api/v1/twins/pump-1/readings",
        &json!({"ts": T0_MS + 5_000, "values": {"bearing_temp": 99.9}}),
    );
    assert_eq!(r, json!({"readings": 1, "points": 1, "late": 1}));
    expect_current(&s);
    let m = s.metrics();
    assert_eq!(metric(&m, "doppel_late_readings_total", &[]), 1.0, "{m}");

    let temps: Vec<(i64, Value)> = [
        (0, 70.5),
        (5, 99.9),
        (10, 71.0),
        (20, 71.5),
        (30, 72.0),
        (40, 72.5),
        (50, 73.0),
        (70, 74.0),
        (80, 75.0),
    ]
    .iter()
    .map(|(sec, v)| (t0_ns(sec * 1000), json!(v)))
    .collect();
    let check_history = |s: &TestServer| {
        let h = history(s, "pump-1", "bearing_temp", "");
        assert_eq!(h["truncated"], json!(false), "{h}");
        assert_eq!(points(&h), temps, "{h}");
        // `from` inclusive, `to` exclusive; RFC 3339 or epoch ms.
        let h = history(
            s,
            "pump-1",
            "bearing_temp",
            &format!("from={}&to={}", t0_plus(10_000), T0_MS + 30_000),
        );
        assert_eq!(points(&h), temps[2..4], "{h}");
        let h = history(s, "pump-1", "bearing_temp", "limit=3");
        assert_eq!(h["truncated"], json!(true), "{h}");
        assert_eq!(points(&h), temps[..3], "{h}");
        let h = history(s, "pump-1", "running", "");
        let want: Vec<(i64, Value)> = [(0, true), (40, false), (50, true)]
            .iter()
            .map(|(t, v)| (t0_ns(t * 1000), json!(v)))
            .collect();
        assert_eq!(points(&h), want, "{h}");
        let h = history(s, "pump-1", "cycles", "");
        let want: Vec<(i64, Value)> = [(0, 1), (10, 2), (25, 3), (30, 4), (50, 5), (80, 6)]
            .iter()
            .map(|(t, v)| (t0_ns(t * 1000), json!(v)))
            .collect();
        assert_eq!(points(&h), want, "{h}");

        // One-minute buckets: 7 points in 12:00, 2 in 12:01. (The range is given: see
        // `aggregated_history_without_a_range` for the default one.)
        let day = format!("from={}&to={}", t0_plus(-3_600_000), T0_MS + 3_600_000);
        let first = (70.5 + 99.9 + 71.0 + 71.5 + 72.0 + 72.5 + 73.0) / 7.0;
        for (agg, want) in [
            ("mean", [first, 74.5]),
            ("min", [70.5, 74.0]),
            ("max", [99.9, 75.0]),
            ("first", [70.5, 74.0]),
            ("last", [73.0, 75.0]),
            ("count", [7.0, 2.0]),
            ("sum", [530.4, 149.0]),
            // Sample standard deviation (n − 1); of 74 and 75 it is 1/√2.
            (
                "stddev",
                [10.673911230302648, std::f64::consts::FRAC_1_SQRT_2],
            ),
        ] {
            let h = history(
                s,
                "pump-1",
                "bearing_temp",
                &format!("{day}&step=1m&agg={agg}"),
            );
            let b = buckets(&h);
            assert_eq!(b.len(), 2, "{agg}: {h}");
            assert_eq!(b[0].0, "2026-01-31T12:00:00Z", "{agg}: {h}");
            assert_eq!(b[1].0, "2026-01-31T12:01:00Z", "{agg}: {h}");
            assert_eq!((b[0].2, b[1].2), (7, 2), "{agg}: {h}");
            for (i, w) in want.iter().enumerate() {
                assert!(
                    (b[i].1 - w).abs() < 1e-9,
                    "{agg} bucket {i}: want {w}, got {h}"
                );
            }
            assert_eq!(h["buckets"][0]["ts"], json!(t0_ns(0)), "{h}");
        }
        // Mean is the default aggregate.
        let h = history(s, "pump-1", "bearing_temp", &format!("{day}&step=60s"));
        assert!((buckets(&h)[1].1 - 74.5).abs() < 1e-9, "{h}");
        let h = history(s, "pump-1", "cycles", &format!("step=1m&agg=sum&{day}"));
        assert_eq!(
            buckets(&h).iter().map(|b| b.1).collect::<Vec<_>>(),
            [15.0, 6.0],
            "{h}"
        );

        // Past state, from history (the late reading counts there).
        let st = s.get_ok(&format!("/api/v1/twins/pump-1?at={}", t0_plus(7_000)));
        assert_eq!(st["at"], json!("2026-01-31T12:00:07Z"), "{st}");
        assert_eq!(signal(&st, "bearing_temp")["value"], json!(99.9), "{st}");
        assert_eq!(
            signal(&st, "bearing_temp")["ts"],
            json!(t0_ns(5_000)),
            "{st}"
        );
        assert_eq!(signal(&st, "cycles")["value"], json!(1), "{st}");
        assert_eq!(signal(&st, "running")["value"], json!(true), "{st}");
        let st = s.get_ok(&format!("/api/v1/twins/pump-1?at={}", T0_MS + 45_000));
        assert_eq!(signal(&st, "bearing_temp")["value"], json!(72.5), "{st}");
        assert_eq!(signal(&st, "running")["value"], json!(false), "{st}");
        assert_eq!(signal(&st, "cycles")["value"], json!(4), "{st}");
        let st = s.get_ok(&format!("/api/v1/twins/pump-1?at={}", T0_MS - 1));
        for name in ["bearing_temp", "running", "cycles"] {
            assert_eq!(
                signal(&st, name)["value"],
                Value::Null,
                "nothing before the first reading: {st}"
            );
        }
    };
    check_history(&s);

    // Restart with SIGTERM: everything is still there, and nothing new was generated.
    let models = s.get_ok("/api/v1/models");
    let twins = s.get_ok("/api/v1/twins");
    let states = [
        s.get_ok("/api/v1/twins/pump-1"),
        s.get_ok("/api/v1/twins/pump-2"),
    ];
    let old_port = s.http_addr();
    s.restart();
    assert!(
        !s.banner.iter().any(|l| l.trim_start().starts_with("dpl_")),
        "a new admin token was generated on restart: {:?}",
        s.banner
    );
    eprintln!("restarted: http {old_port} -> {}", s.http_addr());
    assert_eq!(s.get_ok("/api/v1/models"), models);
    assert_eq!(s.get_ok("/api/v1/twins"), twins);
    assert_eq!(
        s.get_ok("/api/v1/twins/pump-1"),
        states[0],
        "state of pump-1 changed across restart"
    );
    assert_eq!(
        s.get_ok("/api/v1/twins/pump-2"),
        states[1],
        "state of pump-2 changed across restart"
    );
    expect_current(&s);
    check_history(&s);

    // And it keeps working.
    let r = s.post_ok(
        "/api/v1/twins/pump-1/readings",
        &json!({"ts": T0_MS + 90_000, "values": {"bearing_temp": 76.0}}),
    );
    assert_eq!(r["late"], 0);
    assert_eq!(
        points(&history(&s, "pump-1", "bearing_temp", "")).len(),
        temps.len() + 1
    );
    assert_eq!(
        signal(&s.get_ok("/api/v1/twins/pump-1"), "bearing_temp")["value"],
        json!(76.0)
    );
}

/// `from` and `to` are optional ("from the beginning", "no end"), with `step` as without.
#[test]
fn aggregated_history_without_a_range() {
    let s = TestServer::start();
    create_plant(&s);
    s.post_ok(
        "/api/v1/twins/pump-1/readings",
        &json!([
            {"ts": T0_MS, "values": {"bearing_temp": 70.0}},
            {"ts": T0_MS + 30_000, "values": {"bearing_temp": 72.0}},
            {"ts": T0_MS + 90_000, "values": {"bearing_temp": 80.0}}
        ]),
    );
    let want = vec![
        ("2026-01-31T12:00:00Z".to_string(), 72.0, 2),
        ("2026-01-31T12:01:00Z".to_string(), 80.0, 1),
    ];
    for query in [
        "step=1m&agg=max".to_string(),
        format!("step=1m&agg=max&from={}", T0_MS),
        format!("step=1m&agg=max&to={}", T0_MS + 120_000),
    ] {
        let path = format!("/api/v1/twins/pump-1/signals/bearing_temp/history?{query}");
        let (status, h) = s.get(&path, Some(&s.admin_token));
        assert_eq!(status, 200, "GET {path}: {h}");
        assert_eq!(buckets(&h), want, "{h}");
    }
}

/// Bulk import: thousands of twins in one request, in any order; a bad one refuses all.
#[test]
fn catalog_import_and_export() {
    let s = TestServer::start();
    let tok = Some(s.admin_token.as_str());
    // Children listed before their parents, relations to twins later in the list.
    let mut twins = Vec::new();
    for i in 0..2_000 {
        twins.push(
            json!({"id": format!("pump-{i:04}"), "model": "pump", "parent": "line-1",
            "relations": [{"kind": "feeds", "target": format!("pump-{:04}", (i + 1) % 2_000)}]}),
        );
    }
    twins.push(json!({"id": "line-1", "model": "line", "parent": "site-1"}));
    twins.push(json!({"id": "site-1", "model": "site"}));
    let doc = json!({"models": [pump_model(), line_model(), site_model()], "twins": twins});
    let (status, r) = s.post("/api/v1/catalog", tok, &doc);
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        r,
        json!({"models_created": 3, "models_replaced": 0, "twins_created": 2_002, "twins_replaced": 0})
    );
    let (status, all) = s.get("/api/v1/catalog", tok);
    assert_eq!(status, 200);
    assert_eq!(all["twins"].as_array().unwrap().len(), 2_002);
    assert_eq!(all["models"].as_array().unwrap().len(), 3);
    let kids = s.get_ok("/api/v1/twins/line-1/children");
    assert_eq!(kids.as_array().unwrap().len(), 2_000);
    // Readings land on an imported twin.
    s.post_ok(
        "/api/v1/twins/pump-1999/readings",
        &json!({"values": {"bearing_temp": 61.0}}),
    );
    assert_eq!(
        signal(&s.get_ok("/api/v1/twins/pump-1999"), "bearing_temp")["value"],
        json!(61.0)
    );

    // Re-importing replaces; one bad twin refuses everything and names it.
    let (status, err) = s.post(
        "/api/v1/catalog",
        tok,
        &json!({"twins": [
            {"id": "pump-0000", "model": "pump", "parent": "line-1", "properties": {"serial": "S-1"}},
            {"id": "pump-9999", "model": "ghost"}
        ]}),
    );
    assert_eq!(status, 400, "{err}");
    assert!(err.to_string().contains("pump-9999"), "{err}");
    let p0 = s.get_ok("/api/v1/twins/pump-0000");
    assert!(
        p0["properties"].get("serial").is_none(),
        "nothing applied: {p0}"
    );
    assert_status(&s.get("/api/v1/twins/pump-9999", tok), 404);
    let (status, r) = s.post(
        "/api/v1/catalog",
        tok,
        &json!({"twins": [{"id": "pump-0000", "model": "pump", "parent": "line-1", "properties": {"serial": "S-1"}}]}),
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["twins_replaced"], 1);
    // A demo pack file is an import document as it is.
    let pack = std::fs::read_to_string("../../examples/packs/manufacturing.json").unwrap();
    let pack: Value = serde_json::from_str(&pack).unwrap();
    let (status, r) = s.post("/api/v1/catalog", tok, &pack);
    assert_eq!(status, 200, "{r}");
    let twins_in_pack = pack["twins"].as_array().unwrap().len() as u64;
    let applied = r["twins_created"].as_u64().unwrap() + r["twins_replaced"].as_u64().unwrap();
    assert_eq!(applied, twins_in_pack, "{r}");
    // Unknown fields are refused with the field named.
    assert_error(
        &s.post("/api/v1/catalog", tok, &json!({"modles": []})),
        400,
        "modles",
    );
}

/// The fleet view: one signal across every twin of a model, last values ranked, buckets.
#[test]
fn fleet_view_of_one_signal_across_a_model() {
    let s = TestServer::start();
    create_plant(&s);
    s.post_ok(
        "/api/v1/readings",
        &json!([
            {"twin": "pump-1", "ts": T0_MS, "values": {"bearing_temp": 70.0}},
            {"twin": "pump-1", "ts": T0_MS + 30_000, "values": {"bearing_temp": 72.0}},
            {"twin": "pump-1", "ts": T0_MS + 90_000, "values": {"bearing_temp": 80.0}},
            {"twin": "pump-2", "ts": T0_MS + 10_000, "values": {"bearing_temp": 90.0}},
            {"twin": "pump-2", "ts": T0_MS + 70_000, "values": {"bearing_temp": 60.0}}
        ]),
    );
    let tok = Some(s.admin_token.as_str());
    let fleet = |query: &str| {
        let path = format!("/api/v1/models/pump/signals/bearing_temp/fleet?{query}");
        let (status, body) = s.get(&path, tok);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    };
    let twins = |f: &Value| -> Vec<(String, Value)> {
        f["twins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["twin"].as_str().unwrap().to_string(),
                    t["last"]["value"].clone(),
                )
            })
            .collect()
    };
    // Latest values, ranked highest first.
    let f = fleet("order=desc");
    assert_eq!(
        twins(&f),
        vec![
            ("pump-1".into(), json!(80.0)),
            ("pump-2".into(), json!(60.0))
        ],
        "{f}"
    );
    assert!(
        f["twins"][0].get("buckets").is_none(),
        "no buckets without a step: {f}"
    );
    // As of a past time: the last point before `to`.
    let f = fleet(&format!("to={}&order=asc", T0_MS + 60_000));
    assert_eq!(
        twins(&f),
        vec![
            ("pump-1".into(), json!(72.0)),
            ("pump-2".into(), json!(90.0))
        ],
        "{f}"
    );
    // Buckets per twin.
    let f = fleet(&format!(
        "from={T0_MS}&to={}&step=1m&agg=max",
        T0_MS + 120_000
    ));
    let pump1: Vec<f64> = f["twins"][0]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["value"].as_f64().unwrap())
        .collect();
    let pump2: Vec<f64> = f["twins"][1]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["value"].as_f64().unwrap())
        .collect();
    assert_eq!((pump1, pump2), (vec![72.0, 80.0], vec![90.0, 60.0]), "{f}");
    assert_eq!(f["agg"], "max");
    // Errors name the field, unknown model or signal is 404.
    assert_error(
        &s.get(
            "/api/v1/models/pump/signals/bearing_temp/fleet?order=up",
            tok,
        ),
        400,
        "order",
    );
    assert_error(
        &s.get(
            "/api/v1/models/pump/signals/bearing_temp/fleet?agg=max",
            tok,
        ),
        400,
        "agg",
    );
    assert_status(
        &s.get("/api/v1/models/ghost/signals/bearing_temp/fleet", tok),
        404,
    );
    assert_status(&s.get("/api/v1/models/pump/signals/nope/fleet", tok), 404);
}

#[test]
fn live_events_over_websocket_and_sse() {
    let s = TestServer::start();
    create_plant(&s);
    let admin = s.admin_token.as_str();
    let before = metric(&s.metrics(), "doppel_live_subscribers", &[]);
    let mut ws = WsClient::connect(s.http_addr(), admin, "twin=pump-1");
    let mut ws_cycles = WsClient::connect(s.http_addr(), admin, "twin=pump-1&signal=cycles");
    let mut ws_model = WsClient::connect(s.http_addr(), admin, "model=pump");
    let mut sse = SseClient::connect(s.http_addr(), admin, "twin=pump-1");
    s.wait_for_metrics("4 more live subscribers", |m| {
        metric(m, "doppel_live_subscribers", &[]) >= before + 4.0
    });

    s.post_ok(
        "/api/v1/twins/pump-2/readings",
        &json!({"ts": T0_MS, "values": {"bearing_temp": 40.0}}),
    );
    s.post_ok(
        "/api/v1/twins/pump-1/readings",
        &json!({"ts": T0_MS + 1_000, "values": {"bearing_temp": 70.0, "cycles": 7}}),
    );
    let ev = ws
        .next_json(EVENT_TIMEOUT)
        .expect("no WebSocket event within 10 s");
    assert_eq!(
        ev,
        json!({
            "twin": "pump-1", "model": "pump", "time": "2026-01-31T12:00:01Z", "ts": t0_ns(1_000),
            "type": "reading", "values": {"bearing_temp": 70.0, "cycles": 7}, "late": false
        }),
        "the pump-2 reading must be filtered out"
    );
    let ev = ws_cycles
        .next_json(EVENT_TIMEOUT)
        .expect("no filtered WebSocket event");
    assert_eq!(ev["values"], json!({"cycles": 7}), "signal filter: {ev}");
    let ev = ws_model
        .next_json(EVENT_TIMEOUT)
        .expect("no model-filtered WebSocket event");
    assert_eq!(ev["twin"], "pump-2", "{ev}");
    let ev = ws_model
        .next_json(EVENT_TIMEOUT)
        .expect("no second model-filtered WebSocket event");
    assert_eq!(ev["twin"], "pump-1", "{ev}");

    let (name, data) = sse
        .next_event(EVENT_TIMEOUT)
        .expect("no SSE event within 10 s");
    assert_eq!(name, "reading");
    let ev: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(ev["twin"], "pump-1", "{ev}");
    assert_eq!(
        ev["values"],
        json!({"bearing_temp": 70.0, "cycles": 7}),
        "{ev}"
    );
    assert_eq!(ev["ts"], json!(t0_ns(1_000)), "{ev}");

    // A late reading is pushed too, marked as late.
    s.post_ok(
        "/api/v1/twins/pump-1/readings",
        &json!({"ts": T0_MS, "values": {"bearing_temp": 69.0}}),
    );
    let ev = ws
        .next_json(EVENT_TIMEOUT)
        .expect("no event for the late reading");
    assert_eq!(ev["late"], json!(true), "{ev}");
    assert_eq!(ev["ts"], json!(t0_ns(0)), "{ev}");
    let (_, data) = sse
        .next_event(EVENT_TIMEOUT)
        .expect("no SSE event for the late reading");
    assert_eq!(
        serde_json::from_str::<Value>(&data).unwrap()["late"],
        json!(true)
    );
    // The cycles-only subscriber has nothing to see in it.
    assert_eq!(ws_cycles.next_json(Duration::from_millis(500)), None);

    // Line protocol readings are live too.
    let (status, body) = s.post_text(
        "/api/v1/write?precision=ms",
        Some(admin),
        &format!("pump-1 cycles=8i {}", T0_MS + 2_000),
    );
    assert_eq!(status, 204, "{body}");
    let ev = ws_cycles
        .next_json(EVENT_TIMEOUT)
        .expect("no event for a line-protocol reading");
    assert_eq!(ev["values"], json!({"cycles": 8}), "{ev}");

    let ev = ws
        .next_json(EVENT_TIMEOUT)
        .expect("no event for a line-protocol reading");
    assert_eq!(ev["values"], json!({"cycles": 8}), "{ev}");

    // Without `ts` the server's time is used.
    let now_ns = || {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        i64::try_from(d.as_nanos()).unwrap()
    };
    let before = now_ns();
    s.post_ok(
        "/api/v1/twins/pump-1/readings",
        &json!({"values": {"cycles": 9}}),
    );
    let after = now_ns();
    let ev = ws
        .next_json(EVENT_TIMEOUT)
        .expect("no event for a reading without ts");
    let ts = ev["ts"].as_i64().unwrap();
    assert!(
        before <= ts && ts <= after,
        "ts {ts} not the server's time ({before}..{after})"
    );
    let st = s.get_ok("/api/v1/twins/pump-1");
    assert_eq!(signal(&st, "cycles")["ts"], json!(ts), "{st}");

    // Browsers cannot set headers on WebSocket or EventSource: the token may be the query
    // parameter `access_token` there.
    let before = metric(&s.metrics(), "doppel_live_subscribers", &[]);
    let q = format!("twin=pump-2&access_token={admin}");
    let mut ws = WsClient::open(s.http_addr(), None, &q);
    let mut sse = SseClient::open(s.http_addr(), None, &q);
    s.wait_for_metrics("2 more live subscribers", |m| {
        metric(m, "doppel_live_subscribers", &[]) >= before + 2.0
    });
    s.post_ok(
        "/api/v1/twins/pump-2/readings",
        &json!({"ts": T0_MS + 3_000, "values": {"cycles": 1}}),
    );
    let ev = ws
        .next_json(EVENT_TIMEOUT)
        .expect("no event with access_token");
    assert_eq!(ev["twin"], "pump-2", "{ev}");
    let (_, data) = sse
        .next_event(EVENT_TIMEOUT)
        .expect("no SSE event with access_token");
    assert_eq!(
        serde_json::from_str::<Value>(&data).unwrap()["twin"],
        "pump-2"
    );
    // A wrong token in the query is refused like a wrong header.
    let (status, _) = s.get("/api/v1/events?access_token=dpl_00000000_nope", None);
    assert_eq!(status, 401);
}

#[test]
fn mqtt_readings_with_mosquitto_pub() {
    if !mosquitto_pub_available() {
        return;
    }
    let s = TestServer::start();
    create_plant(&s);
    let admin = s.admin_token.as_str();
    let port = s.mqtt_port();
    let topic = "doppel/twins/pump-1/readings";
    let mut ws = WsClient::connect(s.http_addr(), admin, "twin=pump-1");

    // QoS 1: mosquitto_pub exits after the PUBACK, which doppel sends once the reading is
    // durable and applied, so the state shows it at once.
    let msg = json!({"ts": t0_plus(1_000), "values": {"bearing_temp": 68.25, "running": true, "cycles": 3}});
    let out = mosquitto_pub(port, admin, 1, topic, &msg.to_string(), &[]);
    assert!(out.status.success(), "mosquitto_pub failed: {out:?}");
    let st = s.get_ok("/api/v1/twins/pump-1");
    assert_eq!(signal(&st, "bearing_temp")["value"], json!(68.25), "{st}");
    assert_eq!(
        signal(&st, "bearing_temp")["ts"],
        json!(t0_ns(1_000)),
        "{st}"
    );
    assert_eq!(signal(&st, "cycles")["value"], json!(3), "{st}");
    let ev = ws
        .next_json(EVENT_TIMEOUT)
        .expect("no WebSocket event for the MQTT reading");
    assert_eq!(
        ev["values"],
        json!({"bearing_temp": 68.25, "cycles": 3, "running": true}),
        "{ev}"
    );

    // An array payload, and MQTT 5.
    let msg = json!([
        {"ts": T0_MS + 2_000, "values": {"bearing_temp": 68.5}},
        {"ts": T0_MS + 3_000, "values": {"bearing_temp": 68.75}}
    ]);
    let out = mosquitto_pub(port, admin, 1, topic, &msg.to_string(), &["-V", "mqttv5"]);
    assert!(
        out.status.success(),
        "mosquitto_pub -V mqttv5 failed: {out:?}"
    );
    assert_eq!(
        signal(&s.get_ok("/api/v1/twins/pump-1"), "bearing_temp")["value"],
        json!(68.75)
    );
    let h = history(&s, "pump-1", "bearing_temp", "");
    assert_eq!(points(&h).len(), 3, "{h}");
    for ts in [2_000, 3_000] {
        let ev = ws
            .next_json(EVENT_TIMEOUT)
            .expect("no event for the array payload");
        assert_eq!(ev["ts"], json!(t0_ns(ts)), "{ev}");
    }
    let m = s.metrics();
    assert_eq!(
        metric(&m, "doppel_ingest_points_total", &[("source", "mqtt")]),
        5.0,
        "{m}"
    );

    // A wrong password is refused at CONNECT: mosquitto_pub fails.
    let out = mosquitto_pub(port, "dpl_00000000_wrong", 1, topic, &msg.to_string(), &[]);
    assert!(
        !out.status.success(),
        "mosquitto_pub with a wrong password succeeded: {out:?}"
    );
    let out = mosquitto_pub(
        port,
        &format!("{admin}x"),
        1,
        topic,
        &msg.to_string(),
        &["-V", "mqttv5"],
    );
    assert!(
        !out.status.success(),
        "mosquitto_pub v5 with a wrong password succeeded: {out:?}"
    );

    // The username must be `token`, and a password is needed.
    let refused = |args: &[&str]| {
        let out = common::run_bounded(
            std::process::Command::new("mosquitto_pub")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-q",
                    "1",
                    "-t",
                    topic,
                ])
                .args(["-m", r#"{"values": {"cycles": 99}}"#])
                .args(args),
            Duration::from_secs(20),
        );
        assert!(
            !out.status.success(),
            "mosquitto_pub {args:?} succeeded: {out:?}"
        );
    };
    refused(&["-u", "admin", "-P", admin]);
    refused(&["-u", "token"]);
    refused(&[]);
    refused(&["-u", "token", "-P", ""]);

    // QoS 0 is fire and forget: the reading arrives shortly after.
    let msg = json!({"ts": T0_MS + 4_000, "values": {"bearing_temp": 69.0}});
    let out = mosquitto_pub(port, admin, 0, topic, &msg.to_string(), &[]);
    assert!(out.status.success(), "{out:?}");
    let ev = ws
        .next_json(EVENT_TIMEOUT)
        .expect("no event for the QoS 0 reading");
    assert_eq!(ev["values"], json!({"bearing_temp": 69.0}), "{ev}");
    let ev = ws.next_json(Duration::from_millis(300));
    assert_eq!(ev, None, "a refused login published something");

    // Bad payloads are dropped and counted (MQTT 3.1.1 has no negative PUBACK).
    let rejected = |m: &str, reason: &str| {
        metric(
            m,
            "doppel_ingest_rejected_total",
            &[("source", "mqtt"), ("reason", reason)],
        )
    };
    let m = s.metrics();
    let (decode0, invalid0, unknown0) = (
        rejected(&m, "decode"),
        rejected(&m, "invalid"),
        rejected(&m, "unknown_twin"),
    );
    let total0 = metric(&m, "doppel_ingest_rejected_total", &[("source", "mqtt")]);
    let out = mosquitto_pub(port, admin, 1, topic, "this is not json", &[]);
    assert!(out.status.success(), "{out:?}");
    s.wait_for_metrics("one more mqtt decode rejection", |m| {
        rejected(m, "decode") == decode0 + 1.0
    });
    let out = mosquitto_pub(port, admin, 1, topic, r#"{"values": {"nope": 1}}"#, &[]);
    assert!(out.status.success(), "{out:?}");
    s.wait_for_metrics("one more mqtt invalid rejection", |m| {
        rejected(m, "invalid") == invalid0 + 1.0
    });
    let out = mosquitto_pub(
        port,
        admin,
        1,
        "doppel/twins/ghost/readings",
        r#"{"values": {"cycles": 1}}"#,
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    s.wait_for_metrics("one more mqtt unknown_twin rejection", |m| {
        rejected(m, "unknown_twin") == unknown0 + 1.0
    });
    let m = s.metrics();
    assert_eq!(
        metric(&m, "doppel_ingest_rejected_total", &[("source", "mqtt")]),
        total0 + 3.0,
        "{m}"
    );

    // MQTT 5 gets the refusal in its PUBACK.
    let out = mosquitto_pub(
        port,
        admin,
        1,
        topic,
        r#"{"values": {"bearing_temp": "hot"}}"#,
        &["-V", "mqttv5"],
    );
    assert!(
        out.stderr
            .to_ascii_lowercase()
            .contains("payload format invalid"),
        "MQTT 5 client not told its payload was refused: {out:?}"
    );

    // A reader token may connect but not write readings.
    let reader = s.create_token("reader");
    let forbidden0 = rejected(&s.metrics(), "forbidden");
    let out = mosquitto_pub(
        port,
        &reader,
        1,
        topic,
        r#"{"values": {"bearing_temp": 1.0}}"#,
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    s.wait_for_metrics("one more mqtt forbidden rejection", |m| {
        rejected(m, "forbidden") == forbidden0 + 1.0
    });

    // None of the refused payloads changed anything.
    assert_eq!(
        signal(&s.get_ok("/api/v1/twins/pump-1"), "bearing_temp")["value"],
        json!(69.0)
    );
    assert_eq!(points(&history(&s, "pump-1", "bearing_temp", "")).len(), 4);
    let m = s.metrics();
    assert_eq!(
        metric(&m, "doppel_ingest_points_total", &[("source", "mqtt")]),
        6.0,
        "{m}"
    );
    assert_eq!(
        ws.next_json(Duration::from_millis(300)),
        None,
        "a refused reading was pushed"
    );
}

#[test]
fn bad_input_is_refused_with_the_field_at_fault() {
    let s = TestServer::start();
    create_plant(&s);
    let tok = Some(s.admin_token.as_str());
    let readings = "/api/v1/twins/pump-1/readings";

    assert_error(
        &s.post(
            readings,
            tok,
            &json!({"ts": T0_MS, "values": {"nope": 1.0}}),
        ),
        400,
        "values.nope",
    );
    assert_error(
        &s.post(
            readings,
            tok,
            &json!({"ts": T0_MS, "values": {"bearing_temp": "hot"}}),
        ),
        400,
        "values.bearing_temp",
    );
    assert_error(
        &s.post(
            readings,
            tok,
            &json!({"ts": T0_MS, "values": {"running": 1.5}}),
        ),
        400,
        "values.running",
    );
    assert_error(
        &s.post(
            readings,
            tok,
            &json!({"ts": T0_MS, "values": {"cycles": 2.5}}),
        ),
        400,
        "values.cycles",
    );
    assert_error(
        &s.post(
            readings,
            tok,
            &json!({"ts": "yesterday", "values": {"cycles": 1}}),
        ),
        400,
        "ts",
    );
    assert_error(
        &s.post(readings, tok, &json!({"ts": true, "values": {"cycles": 1}})),
        400,
        "ts",
    );
    assert_error(&s.post(readings, tok, &json!({"ts": T0_MS})), 400, "values");
    assert_error(
        &s.post(
            readings,
            tok,
            &json!({"ts": T0_MS, "values": {"cycles": 1}, "tss": 1}),
        ),
        400,
        "tss",
    );
    assert_error(&s.post_text(readings, tok, "{\"values\": "), 400, "body");
    assert_error(&s.post(readings, tok, &json!([])), 400, "body");
    // Times out of range: past 2262 in epoch ms and in RFC 3339.
    let far = json!({"ts": 99_999_999_999_999_999i64, "values": {"cycles": 1}});
    assert_error(&s.post(readings, tok, &far), 400, "ts");
    let far = json!({"ts": "2300-01-01T00:00:00Z", "values": {"cycles": 1}});
    assert_error(&s.post(readings, tok, &far), 400, "ts");
    // The twin named in the body must be the one addressed.
    let other = json!({"twin": "pump-2", "ts": T0_MS, "values": {"cycles": 1}});
    assert_error(&s.post(readings, tok, &other), 400, "twin");
    // A twin whose model has no such signal.
    let site = json!({"ts": T0_MS, "values": {"cycles": 1}});
    assert_error(
        &s.post("/api/v1/twins/site-1/readings", tok, &site),
        400,
        "values.cycles",
    );
    // In an array the index leads the path; one bad reading refuses the whole batch.
    let batch = json!([
        {"ts": T0_MS, "values": {"bearing_temp": 70.0}},
        {"ts": "noon", "values": {"bearing_temp": 71.0}}
    ]);
    assert_error(&s.post(readings, tok, &batch), 400, "[1].ts");
    let batch = json!([
        {"ts": T0_MS, "values": {"bearing_temp": 70.0}},
        {"ts": T0_MS + 1, "values": {"nope": 71.0}}
    ]);
    assert_error(&s.post(readings, tok, &batch), 400, "[1].values.nope");
    assert_status(
        &s.post(
            "/api/v1/twins/ghost/readings",
            tok,
            &json!({"values": {"cycles": 1}}),
        ),
        404,
    );
    // Bulk.
    assert_error(
        &s.post("/api/v1/readings", tok, &json!([{"values": {"cycles": 1}}])),
        400,
        "[0].twin",
    );
    assert_error(
        &s.post(
            "/api/v1/readings",
            tok,
            &json!([{"twin": "ghost", "values": {"cycles": 1}}]),
        ),
        400,
        "[0].twin",
    );

    // Line protocol: the 1-based line at fault.
    let lp = format!(
        "pump-1 bearing_temp=70.0 {}\nthis is not line protocol\n",
        t0_ns(0)
    );
    assert_error(&s.post_text("/api/v1/write", tok, &lp), 400, "lines[2]");
    let lp = format!(
        "pump-1 bearing_temp=70.0 {}\n\nghost bearing_temp=1 {}\n",
        t0_ns(0),
        t0_ns(1)
    );
    assert_error(
        &s.post_text("/api/v1/write", tok, &lp),
        400,
        "lines[3].twin",
    );
    let lp = format!("pump-1 nope=1 {}", t0_ns(0));
    assert_error(
        &s.post_text("/api/v1/write", tok, &lp),
        400,
        "lines[1].values.nope",
    );
    let lp = format!("pump-1 running=\"yes\" {}", t0_ns(0));
    assert_error(
        &s.post_text("/api/v1/write", tok, &lp),
        400,
        "lines[1].values.running",
    );
    let lp = format!("pump-1 cycles=1i {}", T0_MS);
    assert_error(
        &s.post_text("/api/v1/write?precision=hours", tok, &lp),
        400,
        "precision",
    );
    assert_error(
        &s.post_text("/write?precision=fortnight", tok, &lp),
        400,
        "precision",
    );
    assert_error(&s.post_text("/api/v1/write", tok, ""), 400, "body");

    // History and state queries.
    let h = "/api/v1/twins/pump-1/signals/bearing_temp/history";
    assert_error(&s.get(&format!("{h}?step=fast"), tok), 400, "step");
    assert_error(&s.get(&format!("{h}?step=0s"), tok), 400, "step");
    assert_error(&s.get(&format!("{h}?step=1m&agg=median"), tok), 400, "agg");
    assert_error(&s.get(&format!("{h}?agg=max"), tok), 400, "agg");
    assert_error(&s.get(&format!("{h}?from=later"), tok), 400, "from");
    assert_error(&s.get(&format!("{h}?to=later"), tok), 400, "to");
    assert_error(
        &s.get(&format!("{h}?from={}&to={}", T0_MS + 1, T0_MS), tok),
        400,
        "from",
    );
    assert_error(&s.get(&format!("{h}?limit=0"), tok), 400, "limit");
    assert_error(&s.get(&format!("{h}?limit=1000001"), tok), 400, "limit");
    assert_error(&s.get("/api/v1/twins/pump-1?at=soon", tok), 400, "at");
    assert_status(
        &s.get("/api/v1/twins/pump-1/signals/nope/history", tok),
        404,
    );
    assert_status(
        &s.get("/api/v1/twins/ghost/signals/bearing_temp/history", tok),
        404,
    );
    assert_status(&s.get("/api/v1/nothing-here", tok), 404);

    // Nothing of any refused request was stored.
    for sig in ["bearing_temp", "running", "cycles"] {
        let h = history(&s, "pump-1", sig, "");
        assert_eq!(points(&h), vec![], "{sig}: {h}");
    }
    assert_eq!(
        signal(&s.get_ok("/api/v1/twins/pump-1"), "bearing_temp")["value"],
        Value::Null
    );
    let m = s.metrics();
    assert!(
        metric(&m, "doppel_ingest_rejected_total", &[("source", "http")]) >= 10.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "doppel_ingest_rejected_total",
            &[("source", "line_protocol")]
        ) >= 4.0,
        "{m}"
    );
    assert_eq!(metric(&m, "doppel_ingest_points_total", &[]), 0.0, "{m}");
}

#[test]
fn tokens_and_roles() {
    let s = TestServer::start();
    create_plant(&s);
    let admin = s.admin_token.clone();

    // No token needed for health and metrics.
    let (status, body) = s.get("/healthz", None);
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let m = s.metrics();
    assert!(m.contains("doppel_twins 4"), "{m}");
    assert_eq!(s.request("GET", "/ping", &[], None).0, 204);

    // Missing or wrong token: 401 on every /api route.
    for path in [
        "/api/v1/models",
        "/api/v1/twins",
        "/api/v1/twins/pump-1",
        "/api/v1/openapi.json",
        "/api/v1/stream",
        "/api/v1/events",
    ] {
        assert_status(&s.get(path, None), 401);
        assert_status(&s.get(path, Some("dpl_00000000_notasecret")), 401);
        assert_status(&s.get(path, Some(&format!("{admin}x"))), 401);
    }
    let reading = json!({"ts": T0_MS, "values": {"cycles": 1}});
    assert_status(
        &s.post("/api/v1/twins/pump-1/readings", None, &reading),
        401,
    );
    assert_status(&s.post("/api/v1/models", None, &pump_model()), 401);
    assert_status(&s.post_text("/api/v1/write", None, "pump-1 cycles=1i"), 401);
    assert_status(
        &s.request(
            "GET",
            "/api/v1/models",
            &[("Authorization", "Digest abc")],
            None,
        ),
        401,
    );

    let reader = s.create_token("reader");
    let writer = s.create_token("writer");
    let (r, w) = (Some(reader.as_str()), Some(writer.as_str()));

    // Reader: reads everything, writes nothing.
    assert_eq!(s.get("/api/v1/models", r).0, 200);
    assert_eq!(s.get("/api/v1/twins/pump-1", r).0, 200);
    assert_eq!(
        s.get("/api/v1/twins/pump-1/signals/cycles/history", r).0,
        200
    );
    assert_status(&s.post("/api/v1/twins/pump-1/readings", r, &reading), 403);
    assert_status(
        &s.post(
            "/api/v1/readings",
            r,
            &json!([{"twin": "pump-1", "values": {"cycles": 1}}]),
        ),
        403,
    );
    assert_status(&s.post_text("/api/v1/write", r, "pump-1 cycles=1i"), 403);
    assert_status(&s.post("/api/v1/models", r, &pump_model()), 403);

    // Writer: also readings, but not the catalog.
    assert_eq!(s.post("/api/v1/twins/pump-1/readings", w, &reading).0, 200);
    assert_eq!(
        s.post_text(
            "/api/v1/write?precision=ms",
            w,
            &format!("pump-1 cycles=2i {}", T0_MS + 1)
        )
        .0,
        204
    );
    let mut other = pump_model();
    other["id"] = json!("pump-b");
    assert_status(&s.post("/api/v1/models", w, &other), 403);
    assert_status(&s.put("/api/v1/models/pump", w, &pump_model()), 403);
    assert_status(&s.delete("/api/v1/models/site", w), 403);
    assert_status(
        &s.post(
            "/api/v1/twins",
            w,
            &json!({"id": "pump-3", "model": "pump"}),
        ),
        403,
    );
    assert_status(
        &s.put("/api/v1/twins/pump-2", w, &common::plant_twins()[2]),
        403,
    );
    assert_status(&s.delete("/api/v1/twins/pump-2", w), 403);
    // Admin: everything.
    assert_eq!(s.post("/api/v1/models", Some(&admin), &other).0, 201);

    // InfluxDB clients' ways of sending the token.
    let lp = |n: i64| format!("pump-1 cycles={n}i {}", T0_MS + n);
    let basic = format!(
        "Basic {}",
        common::base64(format!("telegraf:{writer}").as_bytes())
    );
    assert_eq!(
        s.request(
            "POST",
            "/write?precision=ms",
            &[("Authorization", &basic)],
            Some(lp(3).as_bytes())
        )
        .0,
        204
    );
    assert_eq!(
        s.request(
            "POST",
            &format!("/write?precision=ms&u=x&p={writer}"),
            &[],
            Some(lp(4).as_bytes())
        )
        .0,
        204
    );
    let token_hdr = format!("Token {writer}");
    assert_eq!(
        s.request(
            "POST",
            "/api/v2/write?precision=ms",
            &[("Authorization", &token_hdr)],
            Some(lp(5).as_bytes())
        )
        .0,
        204
    );
    let reader_hdr = format!("Token {reader}");
    assert_status(
        &s.request(
            "POST",
            "/api/v2/write?precision=ms",
            &[("Authorization", &reader_hdr)],
            Some(lp(6).as_bytes()),
        ),
        403,
    );
    assert_status(
        &s.request(
            "POST",
            "/api/v2/write?precision=ms",
            &[("Authorization", "Token nope")],
            Some(lp(7).as_bytes()),
        ),
        401,
    );
    assert_status(
        &s.request("POST", "/write?precision=ms", &[], Some(lp(8).as_bytes())),
        401,
    );
    let h = history(&s, "pump-1", "cycles", "");
    assert_eq!(
        points(&h)
            .iter()
            .map(|p| p.1.as_i64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3, 4, 5],
        "{h}"
    );

    // CLI: list shows the tokens without secrets; a revoked token stops working.
    let out = common::run_bounded(
        std::process::Command::new(common::doppel_bin())
            .args(["token", "list", "--data-dir"])
            .arg(s.data_dir()),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{out:?}");
    let reader_id = reader.split('_').nth(1).unwrap();
    assert!(
        out.stdout.contains(reader_id) && out.stdout.contains("reader"),
        "{out:?}"
    );
    assert!(
        !out.stdout.contains(reader.rsplit('_').next().unwrap()),
        "token list shows a secret: {out:?}"
    );
    let out = common::run_bounded(
        std::process::Command::new(common::doppel_bin())
            .args(["token", "revoke", reader_id, "--data-dir"])
            .arg(s.data_dir()),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{out:?}");
    assert_status(&s.get("/api/v1/models", r), 401);
    assert_eq!(
        s.get("/api/v1/models", w).0,
        200,
        "revoking one token affects no other"
    );
    let out = common::run_bounded(
        std::process::Command::new(common::doppel_bin())
            .args(["token", "create", "--role", "superuser", "--data-dir"])
            .arg(s.data_dir()),
        Duration::from_secs(30),
    );
    assert!(
        !out.status.success() && out.stderr.contains("--role"),
        "{out:?}"
    );
}

#[test]
fn admin_token_from_the_environment() {
    let secret = "e2e-admin-secret-0123456789";
    let mut s = TestServer::start_with(Options {
        env_admin_token: Some(secret.into()),
        ..Options::default()
    });
    assert!(
        !s.banner.iter().any(|l| l.trim_start().starts_with("dpl_")),
        "a token was generated although DOPPEL_ADMIN_TOKEN is set: {:?}",
        s.banner
    );
    assert!(
        s.banner
            .iter()
            .any(|l| l.contains("from DOPPEL_ADMIN_TOKEN")),
        "{:?}",
        s.banner
    );
    assert!(
        !s.banner.iter().any(|l| l.contains(secret)),
        "the admin token is printed: {:?}",
        s.banner
    );
    create_plant(&s);
    assert_status(
        &s.get("/api/v1/models", Some("e2e-admin-secret-012345678")),
        401,
    );
    s.restart();
    assert_eq!(
        ids(&s.get_ok("/api/v1/twins?model=pump")),
        ["pump-1", "pump-2"]
    );
}
