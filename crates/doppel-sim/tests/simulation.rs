//! Behaviour of the simulator through its public API: determinism, physics sanity, fault
//! signatures against a healthy twin with the same seed, failure and ground truth, and that
//! the demo plant is a valid doppel catalog whose readings validate.
// Helpers outside `#[test]` fns are test code too; clippy.toml's allowance does not see them.
#![allow(clippy::unwrap_used)]

use doppel_model::{Batch, Catalog, Reading, Timestamp, Value};
use doppel_sim::{
    run_to_failure, seeded_rng, Asset, AssetKind, FaultKind, FaultSpec, Plant, SimError, RUN_START,
};
use proptest::prelude::*;

const S: i64 = 1_000_000_000;
const H: i64 = 3_600 * S;

/// One step's output.
type Row = (Timestamp, Vec<(String, Value)>);

/// Steps `asset` `steps` times by `dt_s` from `start`, with noise from `seed`.
fn run(asset: &mut dyn Asset, seed: u64, start: Timestamp, dt_s: f64, steps: usize) -> Vec<Row> {
    let mut rng = seeded_rng(seed);
    let dt_ns = (dt_s * 1e9) as i64;
    (0..steps as i64)
        .map(|i| {
            let t = start + i * dt_ns;
            (t, asset.step(t, dt_s, &mut rng))
        })
        .collect()
}

fn get(row: &Row, name: &str) -> Option<f64> {
    row.1
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_f64())
}

/// `name`'s values in `[from, to)`.
fn window(rows: &[Row], name: &str, from: Timestamp, to: Timestamp) -> Vec<f64> {
    rows.iter()
        .filter(|r| r.0 >= from && r.0 < to)
        .filter_map(|r| get(r, name))
        .collect()
}

fn mean(xs: &[f64]) -> f64 {
    assert!(!xs.is_empty());
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn std(xs: &[f64]) -> f64 {
    let m = mean(xs);
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len() as f64).sqrt()
}

/// A healthy unit and a faulty one built from the same seed and driven by the same noise.
fn healthy_and_faulty(
    kind: AssetKind,
    faults: &[FaultSpec],
    start: Timestamp,
    dt_s: f64,
    steps: usize,
) -> (Vec<Row>, Vec<Row>) {
    let mut healthy = kind.build("unit", 11);
    let mut faulty = kind.build("unit", 11);
    for f in faults {
        faulty.inject(f.clone()).unwrap();
    }
    (
        run(healthy.as_mut(), 5, start, dt_s, steps),
        run(faulty.as_mut(), 5, start, dt_s, steps),
    )
}

fn catalog_of(plant: &Plant) -> Catalog {
    let mut c = Catalog::new();
    for m in plant.models() {
        c.put_model(m).unwrap();
    }
    for t in plant.twins() {
        c.put_twin(t).unwrap();
    }
    c
}

// ---------------------------------------------------------------------------------------
// Determinism

fn demo_run(seed: u64, steps: i64) -> Vec<Reading> {
    let mut plant = Plant::demo(seed);
    (0..steps)
        .flat_map(|i| plant.step(RUN_START + 7 * H + i * S, 1.0))
        .collect()
}

/// Bit patterns, so equal means bit-identical (and NaN would not compare equal to itself).
fn bits(readings: &[Reading]) -> Vec<(String, Timestamp, String, u64)> {
    readings
        .iter()
        .flat_map(|r| {
            r.values.iter().map(move |(n, v)| {
                let b = match v {
                    Value::Float(f) => f.to_bits(),
                    Value::Int(i) => *i as u64,
                    Value::Bool(b) => *b as u64,
                    Value::String(_) => u64::MAX,
                };
                (r.twin.clone(), r.ts, n.clone(), b)
            })
        })
        .collect()
}

#[test]
fn same_seed_gives_bit_identical_readings_and_another_seed_does_not() {
    let a = demo_run(42, 1_000);
    let b = demo_run(42, 1_000);
    assert_eq!(a.len(), b.len());
    assert_eq!(bits(&a), bits(&b));
    let c = demo_run(43, 1_000);
    assert_ne!(bits(&a), bits(&c));
}

// ---------------------------------------------------------------------------------------
// Physics sanity

#[test]
fn pump_flow_head_and_power_follow_the_affinity_laws() {
    let mut pump = AssetKind::PumpMotor.build("p", 3);
    pump.set_input("valve_opening", 80.0).unwrap();
    pump.set_input("ambient_temp", 20.0).unwrap();
    let mut rng = seeded_rng(1);
    let mut at_speed = |cmd: f64, t0: Timestamp| {
        pump.set_input("speed_cmd", cmd).unwrap();
        let rows: Vec<Row> = (0..200)
            .map(|i| {
                let t = t0 + i * S;
                (t, pump.step(t, 1.0, &mut rng))
            })
            .collect();
        let settled = &rows[60..];
        let avg = |n: &str| mean(&settled.iter().filter_map(|r| get(r, n)).collect::<Vec<_>>());
        let head = avg("discharge_pressure") - avg("suction_pressure");
        (avg("speed"), avg("flow"), head, avg("motor_power"))
    };
    let (n1, q1, h1, p1) = at_speed(1_475.0, RUN_START);
    let (n2, q2, h2, p2) = at_speed(2_212.0, RUN_START + 200 * S);
    let (n3, q3, h3, p3) = at_speed(2_950.0, RUN_START + 400 * S);
    assert!(q1 < q2 && q2 < q3, "flow rises with speed: {q1} {q2} {q3}");
    // Q ∝ n and H ∝ n² at a fixed valve in a loop without static head.
    for (n, q, h) in [(n1, q1, h1), (n2, q2, h2)] {
        let r = n / n3;
        assert!(
            (q / q3 / r - 1.0).abs() < 0.015,
            "Q/Q3 {} vs n/n3 {r}",
            q / q3
        );
        assert!(
            (h / h3 / (r * r) - 1.0).abs() < 0.03,
            "H/H3 {} vs r² {}",
            h / h3,
            r * r
        );
    }
    // P ∝ n³ for the hydraulic part; friction and motor losses soften it.
    let r = n1 / n3;
    let cube = p1 / p3 / r.powi(3);
    assert!((0.9..1.5).contains(&cube), "P/P3 over r³ = {cube}");
    assert!(p1 < p2 && p2 < p3);
}

#[test]
fn bearing_temperature_settles_under_constant_load_within_the_normal_range() {
    let mut pump = AssetKind::PumpMotor.build("p", 9);
    let model = pump.model();
    let spec = model.signal("bearing_temp_de").unwrap().clone();
    pump.set_input("valve_opening", 80.0).unwrap();
    pump.set_input("ambient_temp", 25.0).unwrap();
    pump.set_input("speed_cmd", 1_800.0).unwrap();
    let mut rng = seeded_rng(2);
    let mut t = RUN_START;
    for _ in 0..360 {
        t += 10 * S;
        pump.step(t, 10.0, &mut rng);
    }
    pump.set_input("speed_cmd", 2_950.0).unwrap();
    let rows: Vec<Row> = (1..=(5 * 360))
        .map(|i| {
            let ti = t + i * 10 * S;
            (ti, pump.step(ti, 10.0, &mut rng))
        })
        .collect();
    let temp = |from_h: f64, to_h: f64| {
        let from = t + (from_h * H as f64) as i64;
        let to = t + (to_h * H as f64) as i64;
        mean(&window(&rows, "bearing_temp_de", from, to))
    };
    let (early, mid, late, end) = (
        temp(0.0, 0.1),
        temp(1.0, 1.25),
        temp(4.0, 4.5),
        temp(4.5, 5.0),
    );
    assert!(early < mid && mid < late, "warms up: {early} {mid} {late}");
    assert!(
        late - early > 3.0,
        "a load step is visible: {early} → {late}"
    );
    assert!(
        (end - late).abs() < 0.2,
        "steady state reached: {late} vs {end}"
    );
    for r in &rows {
        let v = get(r, "bearing_temp_de").unwrap();
        assert!(spec.min.unwrap() <= v && v <= spec.max.unwrap(), "{v}");
    }
}

#[test]
fn chiller_draws_more_power_on_a_hot_afternoon_than_at_night() {
    let mut chiller = AssetKind::Chiller.build("c", 4);
    // Wednesday of the run's first week, 60 s steps.
    let rows = run(chiller.as_mut(), 3, RUN_START, 60.0, 3 * 24 * 60);
    let day = RUN_START + 2 * 24 * H;
    let afternoon = window(&rows, "chiller_power", day + 14 * H, day + 16 * H);
    let night = window(&rows, "chiller_power", day + 2 * H, day + 4 * H);
    let outside_pm = mean(&window(&rows, "outside_temp", day + 14 * H, day + 16 * H));
    let outside_night = mean(&window(&rows, "outside_temp", day + 2 * H, day + 4 * H));
    assert!(outside_pm > outside_night);
    assert!(
        mean(&afternoon) > 3.0 * mean(&night),
        "{} vs {}",
        mean(&afternoon),
        mean(&night)
    );
}

#[test]
fn healthy_assets_stay_within_their_normal_ranges() {
    for kind in AssetKind::ALL {
        for seed in [1, 2, 3] {
            let mut a = kind.build("u", seed);
            let model = a.model();
            for row in run(a.as_mut(), seed, RUN_START, 60.0, 3 * 24 * 60) {
                for (name, v) in &row.1 {
                    let spec = model.signal(name).unwrap();
                    if let (Some(x), Some(lo), Some(hi)) = (v.as_f64(), spec.min, spec.max) {
                        assert!(
                            lo <= x && x <= hi,
                            "{kind:?} seed {seed}: {name} = {x} outside {lo}..{hi} at {}",
                            doppel_model::format_ts(row.0)
                        );
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fault signatures: each fault moves its signals the right way against a healthy twin.

/// Asserts `mean(faulty) - mean(healthy)` over the window has the sign of `dir` and is at
/// least `min_change`.
fn moved(
    (healthy, faulty): &(Vec<Row>, Vec<Row>),
    name: &str,
    from: Timestamp,
    to: Timestamp,
    dir: f64,
    min_change: f64,
) {
    let h = mean(&window(healthy, name, from, to));
    let f = mean(&window(faulty, name, from, to));
    assert!(
        (f - h) * dir >= min_change,
        "{name}: healthy {h:.4}, faulty {f:.4}, expected a change of at least {min_change} \
         in direction {dir}"
    );
}

#[test]
fn pump_process_faults_have_their_signatures() {
    let start = RUN_START + 8 * H;
    let onset = start + 600 * S;
    let (from, to) = (start + H, start + 2 * H);
    let pair = |kind| {
        healthy_and_faulty(
            AssetKind::PumpMotor,
            &[FaultSpec::new(kind, onset, 0.8).ramp(300.0)],
            start,
            10.0,
            2 * 360,
        )
    };

    let cav = pair(FaultKind::Cavitation);
    moved(&cav, "suction_pressure", from, to, -1.0, 0.5);
    moved(&cav, "vib_broadband", from, to, 1.0, 1.0);
    let flow_std = |rows: &[Row]| std(&window(rows, "flow", from, to));
    assert!(
        flow_std(&cav.1) > 3.0 * flow_std(&cav.0),
        "cavitation makes flow noisy"
    );

    let mis = pair(FaultKind::Misalignment);
    moved(&mis, "vib_2x", from, to, 1.0, 1.5);
    moved(&mis, "bearing_temp_de", from, to, 1.0, 3.0);
    moved(&mis, "bearing_temp_nde", from, to, 1.0, 3.0);

    let seal = pair(FaultKind::SealLeak);
    moved(&seal, "flow", from, to, -1.0, 2.0);
    moved(&seal, "discharge_pressure", from, to, -1.0, 0.2);

    let hot = pair(FaultKind::MotorOverheating);
    moved(&hot, "motor_winding_temp", from, to, 1.0, 15.0);
    moved(&hot, "motor_current", from, to, 1.0, 2.0);

    // Before onset the twins are identical: the fault, not the noise, makes the difference.
    assert_eq!(mis.0[..60], mis.1[..60]);
}

#[test]
fn chiller_faults_have_their_signatures() {
    let start = RUN_START + 8 * H;
    let onset = start + H;
    let (from, to) = (start + 4 * H, start + 6 * H + H / 2);
    let pair =
        |spec: FaultSpec| healthy_and_faulty(AssetKind::Chiller, &[spec], start, 30.0, 8 * 120);

    let leak = pair(FaultSpec::new(FaultKind::RefrigerantLeak, onset, 4.0));
    moved(&leak, "cop", from, to, -1.0, 0.3);
    moved(&leak, "supply_water_temp", from, to, 1.0, 0.3);

    let fouled = pair(FaultSpec::new(FaultKind::FouledCoil, onset, 0.8).ramp(600.0));
    let approach = |rows: &[Row]| {
        mean(&window(rows, "supply_air_temp", from, to))
            - mean(&window(rows, "supply_water_temp", from, to))
    };
    assert!(
        approach(&fouled.1) > approach(&fouled.0) + 1.0,
        "approach {} vs {}",
        approach(&fouled.1),
        approach(&fouled.0)
    );
    moved(&fouled, "damper_position", from, to, 1.0, 5.0);

    let stuck = pair(FaultSpec::new(FaultKind::StuckDamper, onset, 0.7).ramp(60.0));
    moved(&stuck, "damper_position", from, to, -1.0, 10.0);
    moved(&stuck, "zone_temp", from, to, 1.0, 1.0);
    let stuck_positions = window(&stuck.1, "damper_position", from, to);
    assert!(std(&stuck_positions) < 0.5, "a stuck damper does not move");
}

#[test]
fn mri_compressor_faults_have_their_signatures() {
    let start = RUN_START;
    let onset = start + H;
    let (from, to) = (start + 5 * H, start + 6 * H);
    let pair = |spec| healthy_and_faulty(AssetKind::MriCompressor, &[spec], start, 60.0, 6 * 60);

    let worn = pair(FaultSpec::new(FaultKind::CompressorDegradation, onset, 4.0));
    moved(&worn, "oil_temp", from, to, 1.0, 1.0);
    moved(&worn, "coldhead_temp", from, to, 1.0, 0.05);

    let leak = pair(FaultSpec::new(FaultKind::HeliumLeak, onset, 1.0));
    moved(&leak, "helium_supply_pressure", from, to, -1.0, 1.0);
    moved(&leak, "helium_return_pressure", from, to, -1.0, 0.3);
}

#[test]
fn sensor_faults_corrupt_only_the_named_signal() {
    let start = RUN_START + 9 * H;
    let onset = start + 300 * S;
    let (from, to) = (start + 900 * S, start + 1_800 * S);
    let on = |kind, severity| {
        FaultSpec::new(kind, onset, severity)
            .on_signal("bearing_temp_de")
            .ramp(60.0)
    };
    let pair = |spec| healthy_and_faulty(AssetKind::PumpMotor, &[spec], start, 1.0, 1_800);
    let diff = |(h, f): &(Vec<Row>, Vec<Row>)| -> Vec<f64> {
        h.iter()
            .zip(f)
            .filter(|(r, _)| r.0 >= from && r.0 < to)
            .map(|(a, b)| get(b, "bearing_temp_de").unwrap() - get(a, "bearing_temp_de").unwrap())
            .collect()
    };

    // Drift: offset of severity × span (80 K) once ramped.
    let drift = pair(on(FaultKind::SensorDrift, 0.1));
    assert!(diff(&drift).iter().all(|d| (d - 8.0).abs() < 1e-9));
    assert_eq!(
        window(&drift.0, "bearing_temp_nde", from, to),
        window(&drift.1, "bearing_temp_nde", from, to),
        "other signals are untouched"
    );

    let stuck = pair(on(FaultKind::SensorStuck, 1.0));
    let held = window(&stuck.1, "bearing_temp_de", from, to);
    assert!(
        held.windows(2).all(|w| w[0] == w[1]),
        "stuck value is constant"
    );
    assert!(std(&window(&stuck.0, "bearing_temp_de", from, to)) > 0.0);

    let spikes = pair(on(FaultKind::SensorSpikes, 0.5));
    let d = diff(&spikes);
    let big = d.iter().filter(|x| x.abs() > 10.0).count();
    assert!(
        big > 3 && big < d.len() / 2,
        "{big} spikes in {} readings",
        d.len()
    );

    let burst = pair(on(FaultKind::SensorNoiseBurst, 0.5).lasting(600.0));
    let during: Vec<f64> = burst
        .0
        .iter()
        .zip(&burst.1)
        .filter(|(r, _)| r.0 >= onset + 60 * S && r.0 < onset + 600 * S)
        .map(|(a, b)| get(b, "bearing_temp_de").unwrap() - get(a, "bearing_temp_de").unwrap())
        .collect();
    assert!(std(&during) > 2.0, "σ {}", std(&during));
    let after = window(&burst.1, "bearing_temp_de", onset + 600 * S, to);
    let healthy_after = window(&burst.0, "bearing_temp_de", onset + 600 * S, to);
    assert_eq!(after, healthy_after, "a burst ends");
}

#[test]
fn dropouts_omit_the_signal() {
    let start = RUN_START;
    let onset = start + 100 * S;
    let mut pump = AssetKind::PumpMotor.build("p", 1);
    pump.inject(FaultSpec::new(FaultKind::SensorDropout, onset, 1.0).on_signal("flow"))
        .unwrap();
    let rows = run(pump.as_mut(), 1, start, 1.0, 300);
    for r in &rows {
        let has_flow = r.1.iter().any(|(n, _)| n == "flow");
        assert_eq!(has_flow, r.0 < onset, "at {}", r.0 - start);
        assert!(r.1.iter().any(|(n, _)| n == "speed"), "only flow drops out");
    }

    let mut pump = AssetKind::PumpMotor.build("p", 1);
    pump.inject(FaultSpec::new(FaultKind::SensorDropout, onset, 0.3).on_signal("flow"))
        .unwrap();
    let rows = run(pump.as_mut(), 1, start, 1.0, 1_100);
    let missing = rows.iter().filter(|r| get(r, "flow").is_none()).count();
    assert!(
        (200..400).contains(&missing),
        "{missing} of 1000 dropped at p = 0.3"
    );
}

// ---------------------------------------------------------------------------------------
// Failure and ground truth

#[test]
fn bearing_wear_runs_to_failure_and_records_it() {
    let run = run_to_failure(7, AssetKind::PumpMotor, 60.0);
    let failure = run.failure.expect("the pump fails");
    let truth = &run.ground_truth;
    assert_eq!(truth.len(), 1);
    assert_eq!(truth[0].kind, FaultKind::BearingWear);
    assert_eq!(truth[0].asset_id, run.asset_id);
    assert_eq!(truth[0].failure, Some(failure));
    assert!(truth[0].onset > RUN_START && truth[0].onset < failure);
    let last = run.readings.last().unwrap();
    assert_eq!(last.ts, failure);
    assert_eq!(
        last.values.last().unwrap(),
        &("running".to_string(), Value::Bool(false))
    );

    let rows: Vec<Row> = run
        .readings
        .iter()
        .map(|r| (r.ts, r.values.clone()))
        .collect();
    let vib_start = mean(&window(&rows, "vib_bearing", RUN_START, truth[0].onset));
    let vib_end = mean(&window(&rows, "vib_bearing", failure - 1_800 * S, failure));
    assert!(vib_end > 10.0 * vib_start, "{vib_start} → {vib_end}");
    let temp_start = mean(&window(&rows, "bearing_temp_de", RUN_START, truth[0].onset));
    let temp_end = mean(&window(
        &rows,
        "bearing_temp_de",
        failure - 1_800 * S,
        failure,
    ));
    assert!(temp_end > temp_start + 20.0, "{temp_start} → {temp_end}");
    // Damage accelerates: the last quarter of the life adds more vibration than the first.
    let life = failure - truth[0].onset;
    let quarter = |q: i64| {
        let a = truth[0].onset + q * life / 4;
        mean(&window(&rows, "vib_bearing", a, a + life / 4))
    };
    assert!(quarter(3) - quarter(2) > quarter(1) - quarter(0));
}

#[test]
fn every_kind_runs_to_failure_within_the_horizon() {
    for kind in AssetKind::ALL {
        for seed in [1, 2] {
            let run = run_to_failure(seed, kind, 120.0);
            let failure = run
                .failure
                .unwrap_or_else(|| panic!("{kind:?} {seed} never failed"));
            let hours = (failure - RUN_START) as f64 / H as f64;
            assert!((6.0..(10.0 * 24.0)).contains(&hours), "{kind:?}: {hours} h");
            assert!(run.ground_truth.iter().any(|g| g.failure == Some(failure)));
            let again = run_to_failure(seed, kind, 120.0);
            assert_eq!(
                again.readings, run.readings,
                "run_to_failure is deterministic"
            );
        }
    }
}

#[test]
fn ground_truth_appears_only_once_a_fault_has_started() {
    let mut mri = AssetKind::MriCompressor.build("m", 1);
    let onset = RUN_START + 600 * S;
    mri.inject(FaultSpec::new(FaultKind::HeliumLeak, onset, 0.5).lasting(60.0))
        .unwrap();
    run(mri.as_mut(), 1, RUN_START, 60.0, 10);
    assert!(mri.ground_truth().is_empty());
    run(mri.as_mut(), 1, onset, 60.0, 3);
    let truth = mri.ground_truth();
    assert_eq!(truth.len(), 1);
    assert_eq!(truth[0].onset, onset);
    assert_eq!(truth[0].end, Some(onset + 60 * S));
    assert_eq!(truth[0].failure, None);
    let json = serde_json::to_string(&truth[0]).unwrap();
    assert!(json.contains("\"kind\":\"helium_leak\""), "{json}");
}

// ---------------------------------------------------------------------------------------
// Inputs and fault validation

#[test]
fn inputs_are_validated_and_pinned_inputs_are_reported() {
    let mut pump = AssetKind::PumpMotor.build("p-1", 1);
    assert!(matches!(
        pump.set_input("flow", 10.0),
        Err(SimError::UnknownInput { ref name, .. }) if name == "flow"
    ));
    assert!(matches!(
        pump.set_input("speed_cmd", 9_000.0),
        Err(SimError::InputOutOfRange { .. })
    ));
    assert!(pump.set_input("speed_cmd", f64::NAN).is_err());
    pump.set_input("speed_cmd", 2_000.0).unwrap();
    let rows = run(pump.as_mut(), 1, RUN_START + 10 * H, 1.0, 30);
    assert_eq!(get(&rows[0], "speed_cmd"), Some(2_000.0));
    assert!((get(&rows[29], "speed").unwrap() - 2_000.0).abs() < 60.0);

    // Every input and disturbance of every model can be pinned, nothing else can.
    for kind in AssetKind::ALL {
        let mut a = kind.build("a", 1);
        for s in a.model().signals {
            let pinned = a.set_input(&s.name, s.min.unwrap_or(0.0));
            let driver = s.role != doppel_model::SignalRole::Output;
            assert_eq!(pinned.is_ok(), driver, "{kind:?} {}: {pinned:?}", s.name);
        }
    }
}

#[test]
fn faults_are_validated() {
    let mut mri = AssetKind::MriCompressor.build("m-1", 1);
    let err = mri
        .inject(FaultSpec::new(FaultKind::Cavitation, 0, 0.5))
        .unwrap_err();
    assert!(err.to_string().contains("helium_leak"), "{err}");
    assert!(matches!(
        mri.inject(FaultSpec::new(FaultKind::SensorDrift, 0, 0.5)),
        Err(SimError::MissingSignal { .. })
    ));
    assert!(matches!(
        mri.inject(FaultSpec::new(FaultKind::SensorDrift, 0, 0.5).on_signal("flow")),
        Err(SimError::UnknownSignal { .. })
    ));
    assert!(matches!(
        mri.inject(FaultSpec::new(FaultKind::HeliumLeak, 0, 0.5).on_signal("oil_temp")),
        Err(SimError::UnexpectedSignal { .. })
    ));
    assert!(matches!(
        mri.inject(FaultSpec::new(FaultKind::HeliumLeak, 0, -1.0)),
        Err(SimError::InvalidFault {
            field: "severity",
            ..
        })
    ));
    assert!(mri
        .inject(FaultSpec::new(FaultKind::HeliumLeak, 0, 0.5).ramp(f64::INFINITY))
        .is_err());
    assert!(mri
        .inject(FaultSpec::new(FaultKind::HeliumLeak, 0, 0.5).lasting(0.0))
        .is_err());
    assert!(mri.ground_truth().is_empty());
}

// ---------------------------------------------------------------------------------------
// The demo plant

#[test]
fn demo_plant_is_a_valid_catalog_and_its_readings_validate() {
    let mut plant = Plant::demo(1);
    let catalog = catalog_of(&plant);
    assert_eq!(catalog.twin_count(), plant.twins().len());
    Catalog::from_parts(plant.models(), plant.twins()).unwrap();
    let pumps = plant
        .twins()
        .into_iter()
        .filter(|t| t.model == "centrifugal_pump")
        .count();
    assert_eq!(pumps, 4);
    assert_eq!(
        catalog.children("hospital-1").len(),
        2,
        "radiology and a plant room"
    );
    assert_eq!(catalog.children("radiology-1").len(), 3, "3 MRIs");
    assert_eq!(catalog.children("line-1").len(), 2);

    for i in 0..600 {
        let readings = plant.step(RUN_START + i * S, 1.0);
        assert_eq!(readings.len(), 8, "one reading per asset");
        let batch = catalog
            .validate_batch(Batch { readings }, |i| format!("[{i}]."))
            .unwrap();
        // Validation keeps every value's kind: nothing needed a lossy conversion.
        for r in batch.readings {
            let model = catalog.model(&r.model).unwrap();
            for (name, v) in r.values.iter() {
                assert_eq!(model.signal(name).unwrap().kind, v.kind());
            }
        }
    }
}

#[test]
fn demo_shows_faults_within_half_an_hour_and_a_pump_fails_later() {
    let mut plant = Plant::demo(5);
    let start = RUN_START + 10 * H;
    for i in 0..1_800 {
        plant.step(start + i * S, 1.0);
    }
    let truth = plant.ground_truth();
    assert!(truth.len() >= 6, "{truth:#?}");
    assert!(truth.iter().all(|g| g.onset <= start + 1_800 * S));
    assert!(truth.iter().any(|g| g.kind.is_sensor()));
    assert!(truth.iter().any(|g| g.asset_id == "chiller-1"));
    assert_eq!(plant.start(), Some(start));

    let mut t = start + 1_800 * S;
    while t < start + 48 * H && plant.asset("pump-1").unwrap().failed_at().is_none() {
        t += 60 * S;
        plant.step(t, 60.0);
    }
    let failed = plant
        .asset("pump-1")
        .unwrap()
        .failed_at()
        .expect("pump-1 fails");
    let hours = (failed - start) as f64 / H as f64;
    assert!(
        (4.0..30.0).contains(&hours),
        "pump-1 failed after {hours} h"
    );
    assert!(plant
        .ground_truth()
        .iter()
        .any(|g| g.asset_id == "pump-1" && g.failure == Some(failed)));
    assert!(plant.asset("pump-4").unwrap().ground_truth().is_empty());
}

#[test]
fn plant_routes_inputs_and_faults_by_twin_id() {
    let mut plant = Plant::demo(1);
    assert!(matches!(
        plant.set_input("nope", "speed_cmd", 1.0),
        Err(SimError::UnknownAsset(_))
    ));
    plant.set_input("pump-4", "speed_cmd", 1_600.0).unwrap();
    plant
        .inject(
            "pump-4",
            FaultSpec::new(FaultKind::SensorDropout, 0, 1.0).on_signal("flow"),
        )
        .unwrap();
    let readings = plant.step(RUN_START, 1.0);
    let p4 = readings.iter().find(|r| r.twin == "pump-4").unwrap();
    assert!(p4.values.iter().all(|(n, _)| n != "flow"));
    assert!(p4
        .values
        .contains(&("speed_cmd".into(), Value::Float(1_600.0))));
}

// ---------------------------------------------------------------------------------------
// Robustness

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn no_value_is_ever_nan_or_infinite(
        seed in any::<u64>(),
        dt in 0.1f64..10.0,
        severity in 0.0f64..3.0,
        onset_steps in 0i64..100,
        hour in 0i64..(24 * 7),
    ) {
        let start = RUN_START + hour * H;
        for kind in AssetKind::ALL {
            let mut a = kind.build("u", seed);
            let model = a.model();
            let onset = start + (onset_steps as f64 * dt * 1e9) as i64;
            for fk in FaultKind::ALL {
                let mut spec = FaultSpec::new(fk, onset, severity).ramp(dt * 20.0);
                if fk.is_sensor() {
                    // Aim sensor faults at the first output, not at a dropout-only check.
                    if fk == FaultKind::SensorDropout { continue; }
                    spec = spec.on_signal(model.signals[3].name.clone());
                }
                // Faults another kind of asset cannot have are refused, not ignored.
                let _ = a.inject(spec);
            }
            for row in run(a.as_mut(), seed ^ 1, start, dt, 200) {
                for (name, v) in &row.1 {
                    let spec = model.signal(name);
                    prop_assert!(spec.is_some(), "{} not in model", name);
                    prop_assert_eq!(spec.unwrap().kind, v.kind());
                    if let Value::Float(x) = v {
                        prop_assert!(x.is_finite(), "{:?} {} = {}", kind, name, x);
                    }
                }
            }
        }
    }
}

#[test]
fn non_positive_or_nan_steps_do_not_advance_or_break_anything() {
    for kind in AssetKind::ALL {
        let mut a = kind.build("u", 1);
        let mut rng = seeded_rng(1);
        for dt in [0.0, -5.0, f64::NAN, f64::INFINITY, 1e12] {
            for (name, v) in a.step(RUN_START, dt, &mut rng) {
                if let Value::Float(x) = v {
                    assert!(x.is_finite(), "{kind:?} dt {dt}: {name} = {x}");
                }
            }
        }
    }
}

#[test]
fn plants_and_assets_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<Plant>();
    send::<Box<dyn Asset>>();
}

// ---------------------------------------------------------------------------------------
// The fast path and fleets

/// `step_into`'s row read back as `step` reports it: NaN is a dropout, kinds from the model.
fn typed_row(model: &doppel_model::AssetModel, row: &[f64]) -> Vec<(String, Value)> {
    model
        .signals
        .iter()
        .zip(row)
        .filter(|(_, x)| !x.is_nan())
        .map(|(s, &x)| {
            let v = match s.kind {
                doppel_model::ValueKind::Int => Value::Int(x as i64),
                doppel_model::ValueKind::Bool => Value::Bool(x != 0.0),
                _ => Value::Float(x),
            };
            (s.name.clone(), v)
        })
        .collect()
}

#[test]
fn step_into_reports_what_step_reports_in_model_order() {
    for kind in AssetKind::ALL {
        let model = kind.model();
        let mut slow = kind.build("u", 3);
        let mut fast = kind.build("u", 3);
        // A sensor fault of every kind on some signal, including the non-float ones.
        for (i, fk) in FaultKind::SENSOR.iter().enumerate() {
            let signal = &model.signals[(i * 5 + 2) % model.signals.len()].name;
            let f = FaultSpec::new(*fk, RUN_START + (60 + 30 * i as i64) * S, 0.8)
                .on_signal(signal.clone())
                .lasting(900.0);
            slow.inject(f.clone()).unwrap();
            fast.inject(f).unwrap();
        }
        let running = model.signals.iter().position(|s| s.name == "running");
        let process = kind.process_faults()[0];
        for a in [&mut slow, &mut fast] {
            a.inject(FaultSpec::new(process, RUN_START + 600 * S, 1.0))
                .unwrap();
        }
        let (mut r1, mut r2) = (seeded_rng(9), seeded_rng(9));
        let mut row = vec![0.0; model.signals.len()];
        let mut dropped = 0;
        for i in 0..2_000 {
            let t = RUN_START + i * S;
            let values = slow.step(t, 1.0, &mut r1);
            fast.step_into(t, 1.0, &mut r2, &mut row);
            assert_eq!(values, typed_row(&model, &row), "{kind:?} step {i}");
            if i == 0 {
                let names: Vec<_> = values.iter().map(|(n, _)| n.as_str()).collect();
                let model_names: Vec<_> = model.signals.iter().map(|s| s.name.as_str()).collect();
                assert_eq!(names, model_names, "{kind:?}: step follows the model order");
            }
            dropped += row.iter().filter(|x| x.is_nan()).count();
            if let Some(r) = running {
                assert!(row[r] == 0.0 || row[r] == 1.0 || row[r].is_nan());
            }
        }
        assert!(dropped > 0, "{kind:?}: the dropout fault dropped something");
        assert_eq!(slow.ground_truth(), fast.ground_truth());
    }
}

#[test]
fn fleet_is_a_valid_catalog_with_faults_over_its_horizon() {
    let kinds = [
        AssetKind::PumpMotor,
        AssetKind::Chiller,
        AssetKind::MriCompressor,
    ];
    let horizon = 7.0 * 86_400.0;
    let plant = Plant::fleet(4, 30, &kinds, horizon);
    let catalog = catalog_of(&plant);
    assert_eq!(plant.simulated_twins().len(), 30);
    assert_eq!(catalog.children("line-1").len(), 10);
    assert!(catalog.twin("pump-010").is_some());
    assert!(catalog.twin("chiller-010").is_some());
    assert!(catalog.twin("mri-010").is_some());
    assert_eq!(catalog.children("department-1").len(), 10);

    // Step hourly over the horizon: faults start within its first 70 %, some assets fail.
    let mut plant = plant;
    let mut t = RUN_START;
    while t <= RUN_START + (horizon as i64) * S {
        plant.step(t, 3_600.0);
        t += H;
    }
    let truth = plant.ground_truth();
    let faulty: std::collections::BTreeSet<_> = truth.iter().map(|g| &g.asset_id).collect();
    assert!((12..=28).contains(&faulty.len()), "{} faulty", faulty.len());
    assert!(truth.iter().any(|g| g.kind.is_sensor()));
    assert!(truth.iter().any(|g| g.failure.is_some()), "{truth:#?}");
    let last_onset = RUN_START + (0.7 * horizon) as i64 * S;
    assert!(truth.iter().all(|g| g.onset <= last_onset));

    // Growing the fleet keeps the first assets as they were.
    let a = Plant::fleet(4, 5, &kinds, horizon);
    let b = Plant::fleet(4, 9, &kinds, horizon);
    for (x, y) in a.simulated_twins().iter().zip(b.simulated_twins()) {
        assert_eq!(x.twin(), y.twin());
    }
    let (mut a, mut b) = (a, b);
    for i in 0..300 {
        let ra = a.step(RUN_START + i * S, 1.0);
        let rb = b.step(RUN_START + i * S, 1.0);
        assert_eq!(bits(&ra), bits(&rb[..ra.len()]));
    }
}

#[test]
fn stepping_simulated_twins_on_threads_gives_the_plant_readings() {
    let mut whole = Plant::fleet(8, 6, &[], 86_400.0);
    let mut split = Plant::fleet(8, 6, &[], 86_400.0);
    let steps = 500;
    let mut expected = Vec::new();
    for i in 0..steps {
        expected.extend(whole.step(RUN_START + i * S, 1.0));
    }
    split.begin(RUN_START);
    let mut got = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = split
            .simulated_twins_mut()
            .chunks_mut(4)
            .map(|chunk| {
                s.spawn(move || {
                    let mut out = Vec::new();
                    for u in chunk.iter_mut() {
                        for i in 0..steps {
                            out.extend(u.step(RUN_START + i * S, 1.0));
                        }
                    }
                    out
                })
            })
            .collect();
        for h in handles {
            got.extend(h.join().unwrap());
        }
    });
    let key = |r: &Reading| (r.twin.clone(), r.ts);
    expected.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(bits(&expected), bits(&got));
    assert_eq!(whole.ground_truth().len(), split.ground_truth().len());
}

#[test]
fn asset_kinds_parse_from_slug_and_name() {
    for k in AssetKind::ALL {
        assert_eq!(AssetKind::parse(k.slug()), Some(k));
        assert_eq!(AssetKind::parse(k.name()), Some(k));
        assert_eq!(
            serde_json::to_value(k).unwrap(),
            serde_json::json!(k.name())
        );
    }
    assert_eq!(AssetKind::parse("boiler"), None);
}
