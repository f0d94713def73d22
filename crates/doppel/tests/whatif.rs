//! End-to-end test of a linked what-if: a simulated pump feeds a cooler whose outlet
//! temperature depends on the pump's flow. Both twins' dynamics are learned from their
//! history through the API; a lower pump speed, simulated on the pump, propagates along the
//! relation to the cooler, which runs warmer.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use doppel_model::Twin;
use doppel_sim::{AssetKind, Plant};
use serde_json::{json, Value};

const STEP_S: i64 = 10;
const HOURS: i64 = 10;

/// The cooler's outlet temperature approaches 18 + 1,400 / flow °C with a 10-minute lag: more
/// water, cooler outlet.
fn cooler_target(flow: f64) -> f64 {
    18.0 + 1_400.0 / flow.max(10.0)
}

/// The simulated pump and the cooler it feeds, written to the server as they run.
struct Feed {
    plant: Plant,
    t0: i64,
    step: i64,
    outlet: f64,
}

impl Feed {
    fn new(t0: i64) -> Feed {
        let mut plant = Plant::new(5);
        let model = AssetKind::PumpMotor.model();
        let twin: Twin =
            serde_json::from_value(json!({"id": "pump-a", "model": model.id})).unwrap();
        plant.add_asset(twin, AssetKind::PumpMotor.build("pump-a", 5));
        plant.set_input("pump-a", "valve_opening", 85.0).unwrap();
        plant.begin(t0);
        Feed {
            plant,
            t0,
            step: 0,
            outlet: 30.0,
        }
    }

    /// Runs `steps` more steps, changing the pump's speed every 40 minutes.
    fn run(&mut self, s: &TestServer, steps: i64) {
        let speeds = [
            2200.0, 1800.0, 2600.0, 2000.0, 2800.0, 1700.0, 2400.0, 1900.0, 2500.0,
        ];
        let every = 40 * 60 / STEP_S;
        let tok = Some(s.admin_token.as_str());
        let mut batch = Vec::new();
        for n in 0..steps {
            let i = self.step;
            self.step += 1;
            let t = self.t0 + i * STEP_S * 1_000_000_000;
            if i % every == 0 {
                let k = (i / every) as usize % speeds.len();
                self.plant
                    .set_input("pump-a", "speed_cmd", speeds[k])
                    .unwrap();
            }
            for r in self.plant.step(t, STEP_S as f64) {
                let values: serde_json::Map<String, Value> = r
                    .values
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap()))
                    .collect();
                let flow = values["flow"].as_f64().unwrap_or(80.0);
                self.outlet += (cooler_target(flow) - self.outlet) * (STEP_S as f64 / 600.0);
                let noise = ((i * 7919) % 13) as f64 * 0.004 - 0.024;
                batch.push(json!({"twin": "pump-a", "ts": t / 1_000_000, "values": values}));
                batch.push(json!({"twin": "cooler-1", "ts": t / 1_000_000,
                    "values": {"water_flow": flow, "outlet_temp": self.outlet + noise}}));
            }
            if batch.len() >= 1_000 || n + 1 == steps {
                let (st, r) = s.post(
                    "/api/v1/readings",
                    tok,
                    &Value::Array(std::mem::take(&mut batch)),
                );
                assert_eq!(st, 200, "{r}");
            }
        }
    }
}

#[test]
fn a_pump_speed_change_propagates_to_the_cooler_it_feeds() {
    let s = TestServer::start_with(Options {
        env: vec![("DOPPEL_ANOMALY".into(), "off".into())],
        ..Options::default()
    });
    let tok = Some(s.admin_token.as_str());
    let pump_model = AssetKind::PumpMotor.model();
    let cooler = json!({
        "id": "cooler", "name": "Water cooler", "version": 1, "description": "",
        "signals": [
            {"name": "water_flow", "unit": "m³/h", "kind": "float", "min": 0.0, "max": 200.0,
             "role": "disturbance"},
            {"name": "outlet_temp", "unit": "°C", "kind": "float", "min": 0.0, "max": 60.0,
             "role": "output"}
        ],
        "properties": [],
        "relations": [{"kind": "fed_by", "target_model": pump_model.id}]
    });
    let doc = json!({
        "models": [pump_model, cooler],
        "twins": [
            {"id": "pump-a", "model": pump_model.id},
            {"id": "cooler-1", "model": "cooler", "relations": [{"kind": "fed_by", "target": "pump-a"}]}
        ]
    });
    let (st, r) = s.post("/api/v1/catalog", tok, &doc);
    assert_eq!(st, 200, "{r}");

    // History: the pump runs through a schedule of speeds (a plant's operating history);
    // the cooler follows its flow, the water flow it measures is the pump's.
    let mut feed = Feed::new(t0_ns(0));
    feed.run(&s, HOURS * 3600 / STEP_S);

    let graph = |links: Value| {
        json!({
            "twins": [
                {"twin": "pump-a", "horizon_s": 7200, "output_step_s": 60,
                 "changes": [{"signal": "speed_cmd", "kind": "step", "at_s": 0, "value": 2500}]},
                {"twin": "cooler-1", "horizon_s": 7200, "output_step_s": 60}
            ],
            "links": links
        })
    };
    let link = json!([{"from_twin": "pump-a", "from_signal": "flow",
                       "to_twin": "cooler-1", "to_signal": "water_flow"}]);
    let (st, answer) = s.post("/api/v1/scenarios", tok, &graph(link));
    assert_eq!(st, 200, "{answer}");
    let twins = answer["twins"].as_array().unwrap();
    assert_eq!(twins[0]["twin"], "pump-a", "upstream first: {answer}");
    assert_eq!(twins[1]["twin"], "cooler-1");
    let delta = |t: &Value, signal: &str| {
        t["comparison"]["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["signal"] == signal)
            .map(|o| o["mean_delta"].as_f64().unwrap())
            .unwrap_or_else(|| panic!("no {signal} in {t}"))
    };
    let (flow, outlet_delta) = (delta(&twins[0], "flow"), delta(&twins[1], "outlet_temp"));
    // The pump ran at the last scheduled speed (1,700 rpm); 2,500 rpm means more flow, and
    // more water makes the cooler run colder.
    let comparisons = |a: &Value| {
        a["twins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["comparison"].clone())
            .collect::<Vec<_>>()
    };
    assert!(flow > 5.0, "flow {flow}: {:?}", comparisons(&answer));
    assert!(
        outlet_delta < -0.5,
        "outlet {outlet_delta}: {:?}",
        comparisons(&answer)
    );
    let cooler_fit = &twins[1]["model"]["outputs"][0];
    assert!(
        cooler_fit["nrmse_horizon"].as_f64().unwrap() < 0.1,
        "the cooler's dynamics are learned: {cooler_fit}"
    );
    // Quantitatively: at the end of the horizon the cooler's predicted outlet is where its
    // physics puts it for the pump's predicted flow.
    let last = |t: &Value, signal: &str| {
        t["result"]["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["signal"] == signal)
            .and_then(|o| o["values"].as_array()?.last()?.as_f64())
            .unwrap()
    };
    let (end_flow, end_outlet) = (last(&twins[0], "flow"), last(&twins[1], "outlet_temp"));
    assert!(
        (end_outlet - cooler_target(end_flow)).abs() < 1.0,
        "outlet {end_outlet} for flow {end_flow}, physics says {}",
        cooler_target(end_flow)
    );

    // Without the link the cooler does not see the change.
    let (st, alone) = s.post("/api/v1/scenarios", tok, &graph(json!([])));
    assert_eq!(st, 200, "{alone}");
    let cooler = alone["twins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["twin"] == "cooler-1")
        .unwrap();
    assert!(
        delta(cooler, "outlet_temp").abs() < 1e-6,
        "{:?}",
        comparisons(&alone)
    );

    // A link must follow a relation; errors name the link.
    let (st, err) = s.post(
        "/api/v1/scenarios",
        tok,
        &graph(
            json!([{"from_twin": "cooler-1", "from_signal": "outlet_temp",
                        "to_twin": "ghost", "to_signal": "x"}]),
        ),
    );
    assert_eq!(st, 400, "{err}");
    assert_eq!(err["field"], "links[0]", "{err}");

    // The models follow the history: after seven more hours (more than half the fitted
    // span), the next what-if refits first.
    let fitted = |s: &TestServer| {
        s.get_ok("/api/v1/twins/pump-a/dynamics")["history_to"]
            .as_i64()
            .unwrap()
    };
    let before = fitted(&s);
    feed.run(&s, 7 * 3600 / STEP_S);
    let (st, r) = s.post(
        "/api/v1/twins/pump-a/scenarios",
        tok,
        &json!({"horizon_s": 600}),
    );
    assert_eq!(st, 200, "{r}");
    let after = fitted(&s);
    assert!(
        after >= before + 6 * 3_600_000_000_000,
        "refitted on the grown history: {before} -> {after}"
    );
}
