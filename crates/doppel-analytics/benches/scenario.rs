//! Cost of identifying a pump from three days of readings, and of asking the model: a 24 h
//! what-if at 1 s resolution (every output with its band and limit crossings), the same at
//! the model step, and optimizations of speed and valve over 4 h and 24 h.

use criterion::{criterion_group, criterion_main, Criterion};
use doppel_analytics::sysid::{
    fit, optimize, simulate, Change, FitConfig, InputChange, InputRange, Objective, ObjectiveTerm,
    OptimizeSpec, ScenarioSpec, Sense,
};

#[path = "../tests/common/plant.rs"]
mod plant;

fn bench(c: &mut Criterion) {
    let sim = plant::pump_history(11, 3.0);
    let history = sim.history();
    let model = fit(&plant::pump_model(), &history, &FitConfig::default()).expect("fits");
    let tail = sim.history_since(sim.t - 6 * 3_600 * plant::NS);
    let spec = ScenarioSpec {
        horizon_s: 86_400.0,
        output_step_s: 1.0,
        changes: vec![InputChange {
            signal: "speed_cmd".into(),
            change: Change::Ramp {
                from_s: 3_600.0,
                to_s: 7_200.0,
                to_value: 2_200.0,
            },
        }],
        baseline: Default::default(),
    };
    let opt = OptimizeSpec {
        horizon_s: 4.0 * 3_600.0,
        objective: Objective {
            sense: Sense::Minimize,
            terms: vec![ObjectiveTerm {
                signal: "motor_power".into(),
                weight: 1.0,
            }],
        },
        constraints: vec![doppel_analytics::sysid::Constraint {
            signal: "flow".into(),
            min: Some(90.0),
            max: None,
        }],
        normal_range_constraints: true,
        inputs: vec![
            InputRange {
                signal: "speed_cmd".into(),
                min: 1_800.0,
                max: 3_000.0,
            },
            InputRange {
                signal: "valve_opening".into(),
                min: 35.0,
                max: 100.0,
            },
        ],
        baseline: Default::default(),
        output_step_s: 60.0,
    };
    let mut g = c.benchmark_group("sysid");
    g.sample_size(10);
    g.bench_function("fit_pump_3_days", |b| {
        b.iter(|| fit(&plant::pump_model(), &history, &FitConfig::default()).expect("fits"))
    });
    g.bench_function("scenario_24h_at_1s_pump", |b| {
        b.iter(|| simulate(&model, &tail, &spec).expect("runs"))
    });
    // The same scenario reported at the model step: the rest is interpolation to 1 s.
    let coarse = ScenarioSpec {
        output_step_s: model.step_s,
        ..spec.clone()
    };
    g.bench_function("scenario_24h_at_model_step_pump", |b| {
        b.iter(|| simulate(&model, &tail, &coarse).expect("runs"))
    });
    g.bench_function("optimize_speed_valve_4h_pump", |b| {
        b.iter(|| optimize(&model, &tail, &opt).expect("runs"))
    });
    let day = OptimizeSpec {
        horizon_s: 86_400.0,
        ..opt.clone()
    };
    g.bench_function("optimize_speed_valve_24h_pump", |b| {
        b.iter(|| optimize(&model, &tail, &day).expect("runs"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
