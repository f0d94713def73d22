//! Behaviour of the detectors on synthetic streams: determinism, bounded state, numeric
//! safety, and that each kind of fault is caught by the detector meant for it and explained.

use doppel_analytics::{ContributionKind, DetectorConfig, Score, Timestamp, TwinDetector};
use doppel_model::AssetModel;
use proptest::prelude::*;

const SEC: Timestamp = 1_000_000_000;

/// Small deterministic Gaussian noise (xorshift + Box–Muller), so tests need no RNG crate.
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn cfg() -> DetectorConfig {
    DetectorConfig {
        warmup: 300,
        ..DetectorConfig::default()
    }
}

/// Three independent noisy signals around different levels; `f(i, values)` may alter them.
fn run(
    det: &mut TwinDetector,
    n: usize,
    start: usize,
    seed: u64,
    mut f: impl FnMut(usize, &mut [f64; 3]),
) -> Vec<Score> {
    let mut noise = Noise(seed);
    (start..start + n)
        .map(|i| {
            let mut v = [
                20.0 + noise.gauss(),
                5.0 + 0.1 * noise.gauss(),
                -3.0 + 2.0 * noise.gauss(),
            ];
            f(i, &mut v);
            det.observe(
                i as Timestamp * SEC,
                &[("temp", v[0]), ("flow", v[1]), ("pressure", v[2])],
            )
        })
        .collect()
}

fn first_alarm(scores: &[Score], from: usize) -> Option<usize> {
    scores
        .iter()
        .skip(from)
        .position(|s| s.is_anomaly)
        .map(|p| p + from)
}

#[test]
fn same_stream_same_scores_and_resume_from_serialized_state() {
    let mut a = TwinDetector::new(cfg());
    let mut b = TwinDetector::new(cfg());
    let sa = run(&mut a, 1500, 0, 7, |i, v| {
        v[0] += if i > 900 { 3.0 } else { 0.0 }
    });
    let sb = run(&mut b, 1500, 0, 7, |i, v| {
        v[0] += if i > 900 { 3.0 } else { 0.0 }
    });
    assert_eq!(sa, sb);
    // Persist mid-stream, restore, continue: identical to never stopping.
    let mut c = TwinDetector::new(cfg());
    let s1 = run(&mut c, 700, 0, 9, |_, _| {});
    let saved = serde_json::to_string(&c).unwrap();
    let mut d: TwinDetector = serde_json::from_str(&saved).unwrap();
    let rest_c = run(&mut c, 300, 700, 11, |_, _| {});
    let rest_d = run(&mut d, 300, 700, 11, |_, _| {});
    assert_eq!(rest_c, rest_d);
    assert!(s1.iter().take(300).all(|s| s.warming_up && !s.is_anomaly));
}

/// State saved mid warm-up by earlier versions kept the warm-up values per signal (and again
/// as rows, which are not read any more): it loads, and goes on exactly as if never stopped.
#[test]
fn a_warm_up_saved_per_signal_goes_on_as_if_never_stopped() {
    let mut a = TwinDetector::new(cfg());
    let mut fed: Vec<(Timestamp, [f64; 3])> = Vec::new();
    let mut noise = Noise(21);
    for i in 0..120 {
        let v = [
            20.0 + noise.gauss(),
            5.0 + 0.1 * noise.gauss(),
            -3.0 + 2.0 * noise.gauss(),
        ];
        let ts = i * SEC;
        a.observe(ts, &[("temp", v[0]), ("flow", v[1]), ("pressure", v[2])]);
        fed.push((ts, v));
    }
    let mut old: serde_json::Value = serde_json::to_value(&a).unwrap();
    old.as_object_mut().unwrap().remove("warm");
    old["warm_rows"] = serde_json::json!(fed.iter().map(|(_, v)| v.to_vec()).collect::<Vec<_>>());
    for (k, sig) in old["signals"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        sig["warm"] = serde_json::json!(fed.iter().map(|(t, v)| (*t, v[k])).collect::<Vec<_>>());
        sig["seen"] = serde_json::json!(0);
    }
    let mut b: TwinDetector = serde_json::from_value(old).unwrap();
    let rest_a = run(&mut a, 600, 120, 23, |_, _| {});
    let rest_b = run(&mut b, 600, 120, 23, |_, _| {});
    assert_eq!(rest_a, rest_b);
    assert_eq!(a, b);
    assert!(!a.is_warming_up());
}

/// A learned detector saved in JSON before its limits and daily profile were kept in single
/// precision (every number a double, some beyond single precision's range) loads, rounded,
/// and scores finite numbers.
#[test]
fn a_learned_detector_saved_in_double_precision_loads() {
    let mut a = TwinDetector::new(cfg());
    run(&mut a, 600, 0, 31, |_, _| {});
    assert!(!a.is_warming_up());
    let mut old: serde_json::Value = serde_json::to_value(&a).unwrap();
    for sig in old["signals"].as_array_mut().unwrap() {
        sig["cusum_h"] = serde_json::json!(8.123_456_789_012_345_f64);
        sig["drift"] = serde_json::json!(1e300);
        sig["rate_floor"] = serde_json::json!(0.1_f64);
        sig["season"]["offsets"] = serde_json::json!(vec![0.1_f64; 24]);
        sig["season"]["counts"] = serde_json::json!(vec![100_000u32; 24]);
    }
    let mut b: TwinDetector = serde_json::from_value(old).unwrap();
    let again: TwinDetector = serde_json::from_value(serde_json::to_value(&b).unwrap()).unwrap();
    assert_eq!(b, again);
    for s in run(&mut b, 200, 600, 33, |_, _| {}) {
        assert!(s.total.is_finite() && !s.warming_up);
    }
}

#[test]
fn state_stays_bounded_over_a_million_points() {
    // Two signals × 500k readings = 1e6 points (a tenth of that in unoptimized builds, to keep
    // `cargo test` fast; `cargo test --release` runs all of it), with a spike, a gap and a
    // stuck spell on the way.
    let n: usize = if cfg!(debug_assertions) {
        50_000
    } else {
        500_000
    };
    let mut det = TwinDetector::new(cfg());
    let mut noise = Noise(3);
    let mut sizes = Vec::new();
    let mut ts = 0;
    for i in 0..n {
        ts += if i == n / 2 { 3_600 * SEC } else { SEC };
        let mut a = 10.0 + noise.gauss();
        if i == n / 5 {
            a += 50.0;
        }
        let b = if (3 * n / 5..3 * n / 5 + 100).contains(&i) {
            1.0
        } else {
            1.0 + noise.gauss()
        };
        let s = det.observe(ts, &[("a", a), ("b", b)]);
        assert!(s.total.is_finite());
        if i % (n / 5) == n / 5 - 1 {
            sizes.push(serde_json::to_vec(&det).unwrap().len());
        }
    }
    // Fixed-size state: only the digits of its numbers vary (the daily profile's 24 bins per
    // signal fill in over the first day), so a generous constant bounds it.
    let hi = sizes.iter().max().unwrap();
    assert!(*hi < 6_000, "state grew to {hi} bytes: {sizes:?}");
}

#[test]
fn a_three_sigma_step_is_caught_quickly_and_blamed_on_its_signal() {
    let mut det = TwinDetector::new(cfg());
    // pressure has σ = 2: a step of 6 is 3σ.
    let scores = run(&mut det, 700, 0, 5, |i, v| {
        if i >= 500 {
            v[2] += 6.0
        }
    });
    assert_eq!(first_alarm(&scores, 300).map(|i| i >= 500), Some(true));
    let at = first_alarm(&scores, 300).unwrap();
    assert!(at - 500 <= 15, "detected after {} readings", at - 500);
    let top = &scores[at].per_signal[0];
    assert_eq!(&*top.signal, "pressure");
    assert!(
        (top.expected - -3.0).abs() < 1.0,
        "expected {}",
        top.expected
    );
    // The alarm holds while the shift lasts (the baseline does not learn the fault).
    assert!(scores[at..].iter().all(|s| s.is_anomaly));
}

#[test]
fn a_slow_drift_is_caught_by_the_shift_detector() {
    let mut det = TwinDetector::new(cfg());
    // temp (σ = 1) rises by 0.03σ per reading from reading 400: never a big jump.
    let scores = run(&mut det, 800, 0, 21, |i, v| {
        if i >= 400 {
            v[0] += 0.03 * (i - 400) as f64
        }
    });
    let at = first_alarm(&scores, 300).expect("drift not detected");
    assert!(at >= 400 && at - 400 <= 150, "detected at {at}");
    let top = &scores[at].per_signal[0];
    assert_eq!(&*top.signal, "temp");
    assert_eq!(top.kind, ContributionKind::Shift);
    let rise = 0.03 * (at - 400) as f64;
    assert!(rise < 4.5, "caught only after a rise of {rise}σ");
    // The explanation shows the recent level, above the baseline for a rising drift (a
    // single noisy reading could sit below it).
    for s in &scores[at..] {
        let shifts = s.per_signal.iter().filter(|c| {
            &*c.signal == "temp" && c.kind == ContributionKind::Shift && c.score >= 0.5
        });
        for c in shifts {
            assert!(c.observed.unwrap() > c.expected, "{c:?}");
        }
    }
}

#[test]
fn a_flatline_is_flagged_as_stuck() {
    let mut det = TwinDetector::new(cfg());
    let mut frozen = None;
    let scores = run(&mut det, 600, 0, 13, |i, v| {
        if i >= 450 {
            v[1] = *frozen.get_or_insert(v[1]);
        }
    });
    let at = first_alarm(&scores, 300).expect("flatline not detected");
    assert!((450..480).contains(&at), "detected at {at}");
    let top = &scores[at].per_signal[0];
    assert_eq!((&*top.signal, top.kind), ("flow", ContributionKind::Stuck));
}

#[test]
fn decoupled_signals_are_caught_by_the_multivariate_part_only() {
    let mut det = TwinDetector::new(cfg());
    let mut noise = Noise(17);
    let mut scores = Vec::new();
    for i in 0..700usize {
        let x = noise.gauss().clamp(-2.5, 2.5);
        let e = 0.1 * noise.gauss().clamp(-3.0, 3.0);
        // y follows x until 500, then moves against it: each stays within its usual range.
        let y = if i < 500 { x + e } else { -x + e };
        let w = noise.gauss().clamp(-3.0, 3.0);
        scores.push(det.observe(i as Timestamp * SEC, &[("x", x), ("y", y), ("w", w)]));
    }
    assert!(scores[300..500].iter().all(|s| !s.is_anomaly));
    let at = first_alarm(&scores, 500).expect("decoupling not detected");
    assert!(at - 500 <= 10, "detected at {at}");
    let top = &scores[at].per_signal[0];
    assert_eq!(top.kind, ContributionKind::Multivariate);
    assert!(["x", "y"].contains(&&*top.signal));
    for s in &scores[500..] {
        for c in &s.per_signal {
            if c.kind != ContributionKind::Multivariate {
                assert!(c.score < 0.5, "univariate {:?} fired: {c:?}", c.kind);
            }
        }
    }
}

#[test]
fn false_alarm_feedback_reduces_alarms_on_a_replayed_normal_stream() {
    // Over-sensitive on purpose, on heavy-tailed but normal noise.
    let touchy = DetectorConfig {
        warmup: 300,
        level_z: 2.5,
        persist_k: 1,
        persist_n: 1,
        multivariate: false,
        ..DetectorConfig::default()
    };
    let stream = |det: &mut TwinDetector, feedback: bool| {
        let mut noise = Noise(99);
        let mut alarms = 0;
        let mut prev = false;
        for i in 0..3000usize {
            let g = noise.gauss();
            let x = if noise.uniform() < 0.02 { 3.5 * g } else { g };
            let s = det.observe(i as Timestamp * SEC, &[("x", x)]);
            if s.is_anomaly && !prev && i >= 300 {
                alarms += 1;
                if feedback {
                    det.feedback(true);
                }
            }
            prev = s.is_anomaly;
        }
        alarms
    };
    let mut plain = TwinDetector::new(touchy.clone());
    let mut taught = TwinDetector::new(touchy.clone());
    stream(&mut plain, false);
    stream(&mut taught, true);
    assert!(taught.sensitivity() > 1.0 && taught.sensitivity() <= touchy.feedback_max);
    // Replay the same stream (continuing the same detectors).
    let plain_alarms = stream(&mut plain, false);
    let taught_alarms = stream(&mut taught, false);
    assert!(plain_alarms > 0);
    assert!(
        taught_alarms * 2 <= plain_alarms,
        "{taught_alarms} alarms after feedback vs {plain_alarms}"
    );
    // Bounded both ways, and confirmations make it more sensitive again.
    for _ in 0..100 {
        taught.feedback(true);
    }
    assert_eq!(taught.sensitivity(), touchy.feedback_max);
    taught.feedback(false);
    assert!(taught.sensitivity() < touchy.feedback_max);
    for _ in 0..100 {
        taught.feedback(false);
    }
    assert_eq!(taught.sensitivity(), touchy.feedback_min);
}

#[test]
fn a_single_spike_is_not_an_alarm_unless_huge() {
    let mut det = TwinDetector::new(cfg());
    let scores = run(&mut det, 600, 0, 23, |i, v| {
        if i == 400 {
            v[0] += 10.0; // 10σ: above threshold once, no persistence
        }
        if i == 500 {
            v[0] += 1000.0; // unambiguous
        }
    });
    assert!(scores[400].total >= 0.5);
    for (i, s) in scores.iter().enumerate().take(500).skip(390) {
        assert!(!s.is_anomaly, "alarm at {i}: {:?}", s.per_signal.first());
    }
    assert!(scores[500].is_anomaly);
}

#[test]
fn dropout_and_normal_range_are_reported() {
    let model: AssetModel = serde_json::from_value(serde_json::json!({
        "id": "pump", "name": "Pump",
        "signals": [{"name": "temp", "min": 0.0, "max": 30.0}, {"name": "flow"}]
    }))
    .unwrap();
    let mut det = TwinDetector::for_model(&model, cfg());
    let mut noise = Noise(31);
    for i in 0..400usize {
        let t = i as Timestamp * SEC;
        let temp = 20.0 + noise.gauss();
        let flow = 5.0 + noise.gauss();
        let s = if (350..370).contains(&i) {
            det.observe(t, &[("temp", temp)]) // flow silent for 20 readings
        } else if i == 390 {
            det.observe(t, &[("temp", 31.0), ("flow", flow)]) // out of range
        } else {
            det.observe(t, &[("temp", temp), ("flow", flow)])
        };
        if i == 369 {
            let c = &s.per_signal[0];
            assert_eq!(
                (&*c.signal, c.kind, c.observed),
                ("flow", ContributionKind::Dropout, None)
            );
        }
        if i == 390 {
            assert!(s.is_anomaly);
            let c = &s.per_signal[0];
            assert_eq!((&*c.signal, c.kind), ("temp", ContributionKind::Range));
        }
    }
}

#[test]
fn daily_seasonality_is_learned_when_the_data_has_it() {
    let day = 86_400 * SEC;
    let mut with = TwinDetector::new(DetectorConfig {
        warmup: 144,
        ..DetectorConfig::default()
    });
    let mut without = TwinDetector::new(DetectorConfig {
        warmup: 144,
        daily_seasonality: false,
        ..DetectorConfig::default()
    });
    let mut noise = Noise(41);
    let (mut alarms_with, mut alarms_without) = (0, 0);
    // Ten-minute samples over 14 days; a daily swing of ±10 on noise σ = 0.5.
    for i in 0..(14 * 144) {
        let t = i as Timestamp * 600 * SEC;
        let phase = 2.0 * std::f64::consts::PI * (t % day) as f64 / day as f64;
        let x = 50.0 + 10.0 * phase.sin() + 0.5 * noise.gauss();
        let a = with.observe(t, &[("x", x)]);
        let b = without.observe(t, &[("x", x)]);
        if i >= 10 * 144 {
            alarms_with += usize::from(a.is_anomaly);
            alarms_without += usize::from(b.is_anomaly);
        }
    }
    assert!(alarms_with <= alarms_without);
    assert_eq!(alarms_with, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn scores_are_never_nan(
        kinds in proptest::collection::vec(0u8..6, 2..4),
        gaps in proptest::collection::vec(0i64..5_000, 1..5),
        seed in 1u64..1_000,
    ) {
        let mut det = TwinDetector::new(DetectorConfig { warmup: 50, ..DetectorConfig::default() });
        let mut noise = Noise(seed);
        let mut ts: Timestamp = 0;
        for i in 0..400usize {
            ts += if i % 97 == 0 { gaps[i % gaps.len()] * SEC } else { SEC };
            let values: Vec<(String, f64)> = kinds
                .iter()
                .enumerate()
                .map(|(j, k)| {
                    let v = match k {
                        0 => 7.0,                                   // constant
                        1 => 0.0,                                   // zero
                        2 => 1e300 * noise.gauss(),                 // huge
                        3 => if i % 3 == 0 { f64::NAN } else { noise.gauss() }, // missing
                        4 => if i > 200 { 1e12 } else { noise.gauss() },        // wild step
                        _ => -1e-300 * noise.gauss(),               // tiny
                    };
                    (format!("s{j}"), v)
                })
                .collect();
            let s = det.observe(ts, &values);
            prop_assert!(s.total.is_finite() && (0.0..=1.0).contains(&s.total));
            for c in &s.per_signal {
                prop_assert!(c.score.is_finite() && c.expected.is_finite());
                prop_assert!(c.observed.is_none_or(f64::is_finite));
            }
        }
        // The state survives a JSON round trip (NaN would not).
        let json = serde_json::to_string(&det).unwrap();
        let back: TwinDetector = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, det);
    }
}

/// An input (a schedule) that varies while the detector learns and then holds one value for
/// hours is a command, not a stuck sensor; the same pattern on a measured output is stuck.
#[test]
fn an_input_holding_one_value_is_not_stuck_but_an_output_is() {
    let model: AssetModel = serde_json::from_value(serde_json::json!({
        "id": "mri", "name": "MRI compressor",
        "signals": [
            {"name": "scan_load", "unit": "%", "role": "input"},
            {"name": "head_temp", "unit": "K"}
        ]
    }))
    .unwrap();
    let mut det = TwinDetector::for_model(&model, cfg());
    let mut stuck = Vec::new();
    for i in 0..3_000i64 {
        // Both vary during the warm-up, then both freeze at their last value.
        let frozen = i >= 500;
        let k = if frozen { 499 } else { i };
        let load = 50.0 + 20.0 * ((k as f64) * 0.37).sin();
        let head = 4.2 + 0.01 * ((k as f64) * 1.3).cos();
        let s = det.observe(i * SEC, &[("scan_load", load), ("head_temp", head)]);
        for c in &s.per_signal {
            if c.kind == ContributionKind::Stuck && c.score >= 0.5 {
                stuck.push(c.signal.to_string());
            }
        }
    }
    assert!(
        !stuck.iter().any(|s| s == "scan_load"),
        "input scored stuck"
    );
    assert!(
        stuck.iter().any(|s| s == "head_temp"),
        "frozen output not scored stuck"
    );
}
