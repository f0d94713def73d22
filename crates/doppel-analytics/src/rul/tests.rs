//! A synthetic fleet with two operating regimes, three sensors that degrade towards failure,
//! one constant and one pure-noise sensor: the RUL must be learnable from it.

use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;

fn gauss(rng: &mut SplitMix64) -> f64 {
    // Sum of uniforms: close enough to normal for a test fleet.
    (0..6)
        .map(|_| rng.below(1_000_001) as f64 / 1e6)
        .sum::<f64>()
        - 3.0
}

/// Run `i` of a fleet: life 120..=300 steps, a wear that grows faster towards the end.
fn synthetic_run(seed: u64, i: usize) -> RulRun {
    let mut rng = SplitMix64::new(seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
    let life = 120 + rng.below(181);
    let initial = rng.below(100) as f64 / 400.0;
    let steps = (0..life)
        .map(|t| {
            let regime = rng.below(2);
            let wear = initial + ((t as f64 / life as f64) * 3.0).exp() / 20.0;
            let offset = if regime == 0 { 0.0 } else { 40.0 };
            let settings = vec![regime as f64 * 20.0 + gauss(&mut rng) * 0.01, 100.0];
            let sensors = vec![
                500.0 + offset + 3.0 * wear + 0.5 * gauss(&mut rng),
                10.0 - offset / 10.0 - 0.8 * wear + 0.2 * gauss(&mut rng),
                1_000.0 + 2.0 * offset + 10.0 * wear * wear + 2.0 * gauss(&mut rng),
                7.0,
                gauss(&mut rng),
            ];
            RulStep { settings, sensors }
        })
        .collect();
    RulRun {
        id: format!("unit-{i}"),
        steps,
    }
}

fn small_config() -> RulConfig {
    RulConfig {
        trees: 80,
        learning_rate: 0.1,
        ..RulConfig::default()
    }
}

fn fleet_model() -> &'static (Vec<RulRun>, RulModel) {
    static MODEL: OnceLock<(Vec<RulRun>, RulModel)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let runs: Vec<RulRun> = (0..40).map(|i| synthetic_run(1, i)).collect();
        let model = RulModel::fit(&runs, &small_config()).unwrap();
        (runs, model)
    })
}

#[test]
fn learns_rul_of_a_synthetic_fleet() {
    let (_, model) = fleet_model();
    assert_eq!(model.regimes(), 2);
    assert_eq!(model.sensors_used(), &[0, 1, 2]);
    // Fresh runs cut at known points.
    let mut sq = 0.0;
    let mut n = 0;
    let mut inside = 0;
    for i in 0..30 {
        let run = synthetic_run(2, i);
        for cut in [
            run.steps.len() / 2,
            run.steps.len() * 3 / 4,
            run.steps.len() - 5,
        ] {
            let truth = (run.steps.len() - cut) as f64;
            let e = model.predict(&run.steps[..cut]).unwrap();
            sq += (e.rul - truth.min(125.0)).powi(2);
            n += 1;
            if truth >= e.lower && truth <= e.upper {
                inside += 1;
            }
        }
    }
    let rmse = (sq / n as f64).sqrt();
    assert!(rmse < 20.0, "rmse {rmse}");
    assert!(
        model.held_out().rmse_capped < 25.0,
        "{:?}",
        model.held_out()
    );
    let coverage = inside as f64 / n as f64;
    assert!(coverage > 0.7, "coverage {coverage}");
}

#[test]
fn fitting_is_deterministic() {
    let runs: Vec<RulRun> = (0..8).map(|i| synthetic_run(4, i)).collect();
    let cfg = RulConfig {
        trees: 10,
        ..RulConfig::default()
    };
    assert_eq!(
        RulModel::fit(&runs, &cfg).unwrap(),
        RulModel::fit(&runs, &cfg).unwrap()
    );
}

#[test]
fn model_round_trips_through_json() {
    let (runs, model) = fleet_model();
    let json = serde_json::to_string(model).unwrap();
    let back: RulModel = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, model);
    let h = &runs[0].steps[..50];
    assert_eq!(back.predict(h).unwrap(), model.predict(h).unwrap());
}

#[test]
fn bad_input_is_refused_with_its_place() {
    let (runs, model) = fleet_model();
    assert_eq!(model.predict(&[]), Err(RulError::EmptyHistory));
    let mut h = runs[0].steps[..3].to_vec();
    h[2].sensors.pop();
    assert!(matches!(
        model.predict(&h),
        Err(RulError::Dimension {
            field: "sensors",
            expected: 5,
            got: 4,
            ..
        })
    ));
    h[2] = runs[0].steps[2].clone();
    h[1].settings[0] = f64::NAN;
    let err = model.predict(&h).unwrap_err();
    assert_eq!(
        err.to_string(),
        "history step 1: settings[0] is not a finite number"
    );
    assert!(matches!(
        RulModel::fit(&runs[..1], &RulConfig::default()),
        Err(RulError::TooFewRuns { .. })
    ));
    let bad = RulConfig {
        trees: 0,
        coverage: 1.5,
        ..RulConfig::default()
    };
    match bad.validate() {
        Err(RulError::InvalidConfig { problems }) => assert_eq!(problems.len(), 2),
        other => panic!("{other:?}"),
    }
    let mut flat = runs[..4].to_vec();
    for r in &mut flat {
        for s in &mut r.steps {
            s.sensors = vec![1.0, 2.0];
        }
    }
    assert!(matches!(
        RulModel::fit(&flat, &small_config()),
        Err(RulError::NoInformativeSensor { .. })
    ));
}

fn any_step() -> impl Strategy<Value = RulStep> {
    let v = prop_oneof![-1e300..1e300f64, -1e3..1e3f64, Just(0.0)];
    (
        proptest::collection::vec(v.clone(), 2),
        proptest::collection::vec(v, 5),
    )
        .prop_map(|(settings, sensors)| RulStep { settings, sensors })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_finite_history_gives_a_finite_ordered_estimate(
        h in proptest::collection::vec(any_step(), 1..60)
    ) {
        let (_, model) = fleet_model();
        let e = model.predict(&h).unwrap();
        prop_assert!(e.rul.is_finite() && e.lower.is_finite() && e.upper.is_finite());
        prop_assert!(0.0 <= e.lower && e.lower <= e.rul && e.rul <= e.upper);
        prop_assert!(e.rul <= model.config().rul_cap);
    }
}

/// Run `i` of a fleet whose operating condition is continuous (a load between 0.3 and 1 that
/// changes every step) and moves every sensor more than the wear does until late in life.
fn continuous_load_run(seed: u64, i: usize) -> RulRun {
    let mut rng = SplitMix64::new(seed.wrapping_mul(7_919).wrapping_add(i as u64));
    let life = 120 + rng.below(181);
    let steps = (0..life)
        .map(|t| {
            let load = 0.3 + 0.7 * rng.below(1_001) as f64 / 1_000.0;
            let wear = ((t as f64 / life as f64) * 3.0).exp() / 20.0;
            RulStep {
                settings: vec![load],
                sensors: vec![
                    60.0 + 30.0 * load * load + 4.0 * wear + 0.3 * gauss(&mut rng),
                    2.0 + 5.0 * load + 1.5 * wear + 0.1 * gauss(&mut rng),
                ],
            }
        })
        .collect();
    RulRun {
        id: format!("unit-{i}"),
        steps,
    }
}

#[test]
fn continuous_conditions_are_taken_out_before_the_wear_is_learned() {
    let runs: Vec<RulRun> = (0..30).map(|i| continuous_load_run(3, i)).collect();
    let test: Vec<RulRun> = (0..15).map(|i| continuous_load_run(4, i)).collect();
    let rmse = |share: f64| {
        let model = RulModel::fit(
            &runs,
            &RulConfig {
                condition_share: share,
                ..small_config()
            },
        )
        .unwrap();
        let (mut sq, mut n) = (0.0, 0);
        for run in &test {
            for (t, e) in model.predict_each(&run.steps).unwrap().iter().enumerate() {
                let truth = ((run.steps.len() - 1 - t) as f64).min(125.0);
                sq += (e.rul - truth).powi(2);
                n += 1;
            }
        }
        (sq / n as f64).sqrt()
    };
    let (plain, conditioned) = (rmse(0.0), rmse(0.3));
    eprintln!("continuous load: RMSE {plain:.1} without, {conditioned:.1} with conditions");
    assert!(
        conditioned < 0.8 * plain,
        "with the load taken out {conditioned:.1}, without {plain:.1}"
    );
}

#[test]
fn a_bad_condition_share_is_refused() {
    let c = RulConfig {
        condition_share: 1.0,
        ..RulConfig::default()
    };
    assert!(matches!(c.validate(), Err(RulError::InvalidConfig { .. })));
}
