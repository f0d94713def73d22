//! Unit tests on synthetic plants with known dynamics.

use doppel_model::{AssetModel, SignalRole, SignalSpec, ValueKind};

use super::*;

const S: i64 = 1_000_000_000;

fn signal(name: &str, role: SignalRole, range: Option<(f64, f64)>) -> SignalSpec {
    SignalSpec {
        name: name.into(),
        unit: String::new(),
        kind: ValueKind::Float,
        min: range.map(|r| r.0),
        max: range.map(|r| r.1),
        role,
        description: String::new(),
    }
}

fn asset() -> AssetModel {
    AssetModel {
        id: "toy".into(),
        name: "toy".into(),
        version: 1,
        description: String::new(),
        signals: vec![
            signal("u", SignalRole::Input, Some((0.0, 10.0))),
            signal("power", SignalRole::Output, Some((0.0, 900.0))),
            signal("temp", SignalRole::Output, Some((0.0, 60.0))),
        ],
        properties: vec![],
        relations: vec![],
        failure_modes: vec![],
        retention: None,
    }
}

/// A small deterministic generator (xorshift) so the tests need no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `power = u³` (static), `temp` a first-order lag (τ = 600 s) toward `20 + 2u`; `u` steps
/// every 5–40 minutes; readings every 10 s with a little noise.
fn history(hours: f64, seed: u64) -> Vec<Series> {
    let mut rng = Rng(seed);
    let mut u = 5.0;
    let mut next_change = 0.0;
    let mut temp = 30.0;
    let (mut su, mut sp, mut st) = (vec![], vec![], vec![]);
    let n = (hours * 360.0) as usize;
    for i in 0..n {
        let t = i as f64 * 10.0;
        if t >= next_change {
            u = 2.0 + 7.0 * rng.next();
            next_change = t + 300.0 + 2_100.0 * rng.next();
        }
        temp = (20.0 + 2.0 * u) + (temp - 20.0 - 2.0 * u) * (-10.0f64 / 600.0).exp();
        let ts = i as i64 * 10 * S;
        su.push((ts, u));
        sp.push((ts, u * u * u + 2.0 * (rng.next() - 0.5)));
        st.push((ts, temp + 0.1 * (rng.next() - 0.5)));
    }
    vec![
        Series::new("u", su),
        Series::new("power", sp),
        Series::new("temp", st),
    ]
}

#[test]
fn learns_a_cubic_static_map_and_a_thermal_lag() {
    let h = history(48.0, 7);
    let m = fit(&asset(), &h, &FitConfig::default()).expect("fits");
    let p = m.output("power").expect("power modelled");
    assert_ne!(
        p.nonlinearity,
        Nonlinearity::Linear,
        "u³ needs a nonlinear map"
    );
    assert!(p.quality.nrmse_horizon < 0.02, "{:?}", p.quality);
    let t = m.output("temp").expect("temp modelled");
    assert!(t.na >= 1, "a thermal lag needs an autoregressive term");
    assert!(t.quality.nrmse_horizon < 0.02, "{:?}", t.quality);
}

#[test]
fn fit_is_deterministic_and_serializable() {
    let h = history(30.0, 3);
    let a = fit(&asset(), &h, &FitConfig::default()).expect("fits");
    let b = fit(&asset(), &h, &FitConfig::default()).expect("fits");
    assert_eq!(a, b);
    let json = serde_json::to_string(&a).expect("serializes");
    let back: SysIdModel = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(a, back);
}

#[test]
fn bad_histories_are_errors_not_panics() {
    let cfg = FitConfig::default();
    assert_eq!(fit(&asset(), &[], &cfg), Err(SysIdError::EmptyHistory));
    let short = history(1.0, 1);
    assert!(matches!(
        fit(&asset(), &short, &cfg),
        Err(SysIdError::TooShort { .. })
    ));
    let mut flat = history(30.0, 1);
    flat[0].points.iter_mut().for_each(|p| p.1 = 4.0);
    assert_eq!(fit(&asset(), &flat, &cfg), Err(SysIdError::NoInputs));
    let mut nan = history(30.0, 1);
    nan[1].points.iter_mut().for_each(|p| p.1 = f64::NAN);
    nan[2].points.iter_mut().for_each(|p| p.1 = f64::NAN);
    assert!(matches!(
        fit(&asset(), &nan, &cfg),
        Err(SysIdError::NoOutputs { .. })
    ));
    let mut no_input = history(30.0, 1);
    no_input.remove(0);
    assert!(matches!(
        fit(&asset(), &no_input, &cfg),
        Err(SysIdError::Signal { .. })
    ));
    let mut stray = history(30.0, 1);
    stray[1].points.push((i64::MAX - 5, 1.0));
    assert!(matches!(
        fit(&asset(), &stray, &cfg),
        Err(SysIdError::TooLong { .. })
    ));
    let bad = FitConfig {
        step_s: f64::NAN,
        ..FitConfig::default()
    };
    assert!(matches!(
        fit(&asset(), &history(30.0, 1), &bad),
        Err(SysIdError::InvalidConfig { .. })
    ));
}

#[test]
fn scenario_step_moves_outputs_toward_the_new_steady_state() {
    let h = history(48.0, 11);
    let m = fit(&asset(), &h, &FitConfig::default()).expect("fits");
    let spec = ScenarioSpec {
        horizon_s: 3.0 * 3_600.0,
        output_step_s: 10.0,
        changes: vec![InputChange {
            signal: "u".into(),
            change: Change::Step {
                at_s: 600.0,
                value: 8.0,
            },
        }],
        baseline: Baseline::Hold,
    };
    let r = simulate(&m, &h, &spec).expect("simulates");
    let temp = r.output("temp").expect("temp");
    let last = *temp.values.last().expect("points");
    assert!(
        (last - 36.0).abs() < 0.5,
        "temp settles near 20 + 2·8, got {last}"
    );
    let power = r.output("power").expect("power");
    let p_end = *power.values.last().expect("points");
    assert!((p_end - 512.0).abs() < 15.0, "power near 8³, got {p_end}");
    assert!(power.lower.iter().zip(&power.upper).all(|(l, u)| l <= u));
    let base = simulate(&m, &h, &ScenarioSpec::baseline(3.0 * 3_600.0, 10.0)).expect("runs");
    let cmp = compare(&base, &r).expect("comparable");
    assert!(cmp
        .outputs
        .iter()
        .all(|o| o.signal != "temp" || o.final_delta.abs() > 0.1));
    // A change of an unknown input is refused with the input's name.
    let mut wrong = spec.clone();
    wrong.changes[0].signal = "nope".into();
    match simulate(&m, &h, &wrong) {
        Err(SysIdError::InvalidScenario { problems }) => assert!(problems[0].contains("nope")),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn scenario_reports_limit_crossings() {
    let h = history(48.0, 5);
    let mut a = asset();
    a.signals[2].max = Some(35.0);
    let m = fit(&a, &h, &FitConfig::default()).expect("fits");
    let spec = ScenarioSpec {
        horizon_s: 7_200.0,
        output_step_s: 1.0,
        changes: vec![InputChange {
            signal: "u".into(),
            change: Change::Ramp {
                from_s: 0.0,
                to_s: 1_800.0,
                to_value: 9.0,
            },
        }],
        baseline: Baseline::Hold,
    };
    let r = simulate(&m, &h, &spec).expect("runs");
    let t = r.output("temp").expect("temp");
    let c = t.crossing.as_ref().expect("temp rises to ~38 °C, above 35");
    assert_eq!(c.side, Side::Above);
    let b = t.band_crossing.as_ref().expect("band crosses too");
    assert!(b.at_s <= c.at_s);
}

#[test]
fn optimizer_finds_the_constrained_optimum() {
    let h = history(48.0, 9);
    let m = fit(&asset(), &h, &FitConfig::default()).expect("fits");
    // Maximize temp (20 + 2u) while power (u³) stays below 343 (u ≤ 7).
    let spec = OptimizeSpec {
        horizon_s: 4.0 * 3_600.0,
        objective: Objective {
            sense: Sense::Maximize,
            terms: vec![ObjectiveTerm {
                signal: "temp".into(),
                weight: 1.0,
            }],
        },
        constraints: vec![Constraint {
            signal: "power".into(),
            min: None,
            max: Some(343.0),
        }],
        normal_range_constraints: false,
        inputs: vec![InputRange {
            signal: "u".into(),
            min: 2.0,
            max: 9.0,
        }],
        baseline: Baseline::Hold,
        output_step_s: 60.0,
    };
    let r = optimize(&m, &h, &spec).expect("optimizes");
    assert!(r.feasible, "{:?}", r.violations);
    // The true optimum is u = 7; the model may see a short overshoot of power in the bin of
    // the step and keep a little below it.
    let u = r.settings[0].value;
    assert!((6.6..=7.1).contains(&u), "{:?}", r.settings);
    let power = r.outcome.output("power").expect("power");
    assert!(power.values[1..].iter().all(|&p| p <= 343.0 + 1e-6));
}

#[test]
fn graph_runs_upstream_first_and_refuses_cycles() {
    let h = history(48.0, 13);
    let m = fit(&asset(), &h, &FitConfig::default()).expect("fits");
    let mut up_spec = ScenarioSpec::baseline(3_600.0, 30.0);
    up_spec.changes.push(InputChange {
        signal: "u".into(),
        change: Change::Step {
            at_s: 0.0,
            value: 3.0,
        },
    });
    let nodes = [
        GraphNode {
            twin: "down".into(),
            model: &m,
            history_tail: &h,
            spec: ScenarioSpec::baseline(3_600.0, 30.0),
        },
        GraphNode {
            twin: "up".into(),
            model: &m,
            history_tail: &h,
            spec: up_spec,
        },
    ];
    // up.temp (≈ 26 after the change) drives down.u: a silly plant, but the chain is checked.
    let links = [GraphLink {
        from_twin: "up".into(),
        from_signal: "temp".into(),
        to_twin: "down".into(),
        to_signal: "u".into(),
    }];
    let out = simulate_graph(&nodes, &links).expect("runs");
    assert_eq!(out[0].0, "up");
    assert_eq!(out[1].0, "down");
    let up_temp = out[0].1.output("temp").expect("temp");
    let down_u = &out[1]
        .1
        .inputs
        .iter()
        .find(|i| i.signal == "u")
        .expect("u")
        .values;
    let last_u = *down_u.last().expect("values");
    assert!((last_u - f64::from(up_temp.values.last().copied().expect("v"))).abs() < 0.5);
    let cyc = [
        links[0].clone(),
        GraphLink {
            from_twin: "down".into(),
            from_signal: "temp".into(),
            to_twin: "up".into(),
            to_signal: "u".into(),
        },
    ];
    assert!(matches!(
        simulate_graph(&nodes, &cyc),
        Err(SysIdError::Cycle { .. })
    ));
}

/// The toy plant with `u` held at 5 after `hold_from_h`, and `power` reading `offset` higher
/// from `break_at_h` on (a sensor or process change the model does not know).
fn steady_history(hours: f64, hold_from_h: f64, break_at_h: f64, offset: f64) -> Vec<Series> {
    let mut h = history(hours, 21);
    let hold = (hold_from_h * 3_600.0) as i64 * S;
    let brk = (break_at_h * 3_600.0) as i64 * S;
    h[0].points
        .iter_mut()
        .filter(|p| p.0 >= hold)
        .for_each(|p| p.1 = 5.0);
    let mut temp = None::<f64>;
    let (head, rest) = h.split_at_mut(2);
    for (p, t) in head[1].points.iter_mut().zip(rest[0].points.iter_mut()) {
        if p.0 >= hold {
            p.1 = 125.0 + if p.0 >= brk { offset } else { 0.0 };
            let prev = temp.unwrap_or(t.1);
            let next = 30.0 + (prev - 30.0) * (-10.0f64 / 600.0).exp();
            temp = Some(next);
            t.1 = next;
        }
    }
    h
}

#[test]
fn troubleshooting_puts_the_broken_relation_first() {
    let a = asset();
    let train = history(30.0, 21);
    let m = fit(&a, &train, &FitConfig::default()).expect("fits");
    let h = steady_history(40.0, 34.0, 38.5, 40.0);
    let window = (38 * 3_600) as i64 * S;
    let causes = troubleshoot(
        &[RelatedHistory {
            twin: "toy-1",
            relation: "self",
            asset: &a,
            model: Some(&m),
            history: &h,
        }],
        window,
        &TroubleshootConfig::default(),
    )
    .expect("runs");
    let top = causes.first().expect("the offset is found");
    assert_eq!(
        (top.signal.as_str(), top.kind),
        ("power", CauseKind::RelationBreak)
    );
    let onset_h = top.onset as f64 / 3.6e12;
    assert!((38.5..38.6).contains(&onset_h), "onset at {onset_h} h");
    assert!(causes.iter().all(|c| c.signal != "temp"), "{causes:?}");

    // Without the offset nothing departs.
    let calm = steady_history(40.0, 34.0, 99.0, 0.0);
    let none = troubleshoot(
        &[RelatedHistory {
            twin: "toy-1",
            relation: "self",
            asset: &a,
            model: Some(&m),
            history: &calm,
        }],
        window,
        &TroubleshootConfig::default(),
    )
    .expect("runs");
    assert!(none.is_empty(), "{none:?}");
}

#[test]
fn troubleshooting_refuses_bad_requests() {
    let a = asset();
    assert!(matches!(
        troubleshoot(&[], 0, &TroubleshootConfig::default()),
        Err(SysIdError::InvalidConfig { .. })
    ));
    let h = history(2.0, 1);
    let r = troubleshoot(
        &[RelatedHistory {
            twin: "toy-1",
            relation: "self",
            asset: &a,
            model: None,
            history: &h,
        }],
        (10 * 3_600) as i64 * S,
        &TroubleshootConfig::default(),
    );
    assert!(matches!(r, Err(SysIdError::Twin { .. })), "{r:?}");
    let empty: Vec<Series> = vec![Series::new("u", vec![(0, f64::NAN)])];
    let r = troubleshoot(
        &[RelatedHistory {
            twin: "toy-1",
            relation: "self",
            asset: &a,
            model: None,
            history: &empty,
        }],
        0,
        &TroubleshootConfig::default(),
    );
    assert!(matches!(r, Err(SysIdError::Twin { .. })), "{r:?}");
}

#[test]
fn scenario_spec_reads_from_json() {
    let spec: ScenarioSpec = serde_json::from_str(
        r#"{"horizon_s": 86400, "changes": [
            {"signal": "u", "kind": "step", "at_s": 600, "value": 7},
            {"signal": "u", "kind": "ramp", "from_s": 3600, "to_s": 7200, "to_value": 3},
            {"signal": "u", "kind": "profile", "points": [[10000, 4], [20000, 6]]}
        ], "baseline": "repeat_day"}"#,
    )
    .expect("parses");
    assert_eq!(spec.output_step_s, 1.0);
    assert_eq!(spec.baseline, Baseline::RepeatDay);
    assert_eq!(
        spec.changes[1].change,
        Change::Ramp {
            from_s: 3_600.0,
            to_s: 7_200.0,
            to_value: 3.0
        }
    );
}
