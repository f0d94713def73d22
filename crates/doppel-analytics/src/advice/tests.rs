use super::*;

const H: i64 = 3_600_000_000_000;
const T0: i64 = 1_767_571_200_000_000_000;

fn model() -> AssetModel {
    serde_json::from_value(serde_json::json!({
        "id": "pump", "name": "Pump",
        "signals": [
            {"name": "vib_bearing", "unit": "mm/s", "min": 0.0, "max": 1.0},
            {"name": "vib_2x", "unit": "mm/s", "min": 0.0, "max": 1.5},
            {"name": "bearing_temp", "unit": "°C", "min": 0.0, "max": 80.0},
            {"name": "flow", "unit": "m3/h", "min": 40.0, "max": 135.0}
        ],
        "failure_modes": [
            {"id": "bearing_wear", "name": "Bearing wear",
             "signature": [{"signal": "vib_bearing", "direction": "rising", "weight": 3},
                           {"signal": "bearing_temp", "direction": "rising"}],
             "actions": ["inspect the bearing", "replace it"], "typical_horizon_h": 168,
             "urgency": "high", "consequence": "the bearing seizes"},
            {"id": "misalignment", "name": "Misalignment",
             "signature": [{"signal": "vib_2x", "direction": "rising", "weight": 3},
                           {"signal": "bearing_temp", "direction": "rising"}],
             "actions": ["align"], "typical_horizon_h": 720},
            {"id": "seal_leak", "name": "Seal leak",
             "signature": [{"signal": "flow", "direction": "falling"}],
             "actions": ["replace the seal"]}
        ]
    }))
    .unwrap()
}

fn noise(i: u64) -> f64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
}

/// The healthy level of each signal.
fn base(signal: &str) -> f64 {
    match signal {
        "vib_bearing" => 0.1,
        "vib_2x" => 0.3,
        "bearing_temp" => 40.0,
        _ => 100.0,
    }
}

/// 72 hours of every signal, one reading per 10 minutes, `f(signal, hour)` each, plus noise.
fn history_of(f: impl Fn(&str, f64) -> f64) -> TwinHistory {
    let mut hist = TwinHistory::new(H, 336);
    for i in 0..72 * 6 {
        let h = i as f64 / 6.0;
        let n = |k: u64| noise(i as u64 * 8 + k);
        let values: Vec<(&str, f64)> = ["vib_bearing", "vib_2x", "bearing_temp", "flow"]
            .iter()
            .enumerate()
            .map(|(k, s)| (*s, f(s, h) + 0.005 * base(s) * n(k as u64)))
            .collect();
        hist.observe(T0 + i as i64 * H / 6, &values);
    }
    hist
}

/// Every signal at its healthy level but vib_bearing, which follows `vib(hour)`.
fn history(vib: impl Fn(f64) -> f64) -> TwinHistory {
    history_of(|s, h| if s == "vib_bearing" { vib(h) } else { base(s) })
}

fn contribution(
    signal: &str,
    kind: ContributionKind,
    score: f64,
    exp: f64,
    obs: f64,
) -> SignalContribution {
    SignalContribution {
        signal: Arc::from(signal),
        kind,
        score,
        expected: exp,
        observed: Some(obs),
    }
}

const NOW: i64 = T0 + 72 * H;

fn input<'a>(
    model: &'a AssetModel,
    hist: &'a TwinHistory,
    contributions: &'a [SignalContribution],
    cases: &'a [PastCase],
) -> AdviceInput<'a> {
    AdviceInput {
        now: NOW,
        model,
        contributions,
        in_alarm: !contributions.is_empty(),
        history: hist,
        rul: None,
        past_cases: cases,
    }
}

#[test]
fn rising_bearing_vibration_names_bearing_wear_with_evidence_and_due_date() {
    let m = model();
    // 0.1 mm/s rising 0.006 per hour: at 0.53 now, crosses 1.0 in about 80 h.
    let hist = history(|h| 0.1 + 0.006 * h);
    let c = [contribution(
        "vib_bearing",
        ContributionKind::Level,
        0.9,
        0.1,
        0.53,
    )];
    let recs = recommend(&input(&m, &hist, &c, &[]), &AdviceConfig::default());
    assert_eq!(recs.len(), 1, "{recs:#?}");
    let r = &recs[0];
    assert_eq!(r.failure_mode, "bearing_wear");
    assert_eq!(r.action, "inspect the bearing");
    assert!(r.confidence > 0.6, "{}", r.confidence);
    let e = &r.evidence[0];
    assert_eq!(e.signal, "vib_bearing");
    assert_eq!(e.observed_direction, Some(SignalDirection::Rising));
    assert!((e.trend_per_hour.unwrap() - 0.006).abs() < 0.001, "{e:?}");
    let to_limit = e.time_to_limit.as_ref().unwrap().likely_hours().unwrap();
    assert!((50.0..120.0).contains(&to_limit), "{to_limit}");
    // Due at half the earliest crossing: before the likely crossing, after now.
    assert!(r.due_in_h < to_limit && r.due_in_h >= 2.0, "{}", r.due_in_h);
    assert_eq!(r.due_by, NOW + (r.due_in_h * 3600e9) as i64);
    assert!(
        r.risk.summary.contains("the bearing seizes"),
        "{}",
        r.risk.summary
    );
    assert_eq!(r.risk.first_limit_signal.as_deref(), Some("vib_bearing"));
    // Serializable without NaN.
    let json = serde_json::to_string(&recs).unwrap();
    assert!(!json.contains("NaN"));
}

#[test]
fn nothing_is_advised_on_a_healthy_twin_or_from_a_trend_alone() {
    let m = model();
    let flat = history(|_| 0.1);
    assert!(recommend(&input(&m, &flat, &[], &[]), &AdviceConfig::default()).is_empty());
    // A real but slow trend, far from the limit over the horizon, with a quiet detector.
    let slow = history(|h| 0.1 + 0.0005 * h);
    assert!(recommend(&input(&m, &slow, &[], &[]), &AdviceConfig::default()).is_empty());
}

#[test]
fn the_detector_alone_is_not_enough() {
    // A strong contribution on a signal that is flat over days (an operating change the
    // detector has not learned yet) raises no advice.
    let m = model();
    let hist = history(|_| 0.1);
    let c = [contribution(
        "vib_bearing",
        ContributionKind::Level,
        0.9,
        0.1,
        0.4,
    )];
    assert!(recommend(&input(&m, &hist, &c, &[]), &AdviceConfig::default()).is_empty());
}

#[test]
fn direction_and_the_characteristic_signal_decide_the_mode() {
    let m = model();
    let cfg = AdviceConfig::default();
    // Bearing temperature alone is shared by two modes and heaviest in neither: no advice.
    let hot = history_of(|s, h| {
        if s == "bearing_temp" {
            40.0 + 0.2 * h
        } else {
            base(s)
        }
    });
    let c = [contribution(
        "bearing_temp",
        ContributionKind::Level,
        0.9,
        40.0,
        54.0,
    )];
    assert!(recommend(&input(&m, &hot, &c, &[]), &cfg).is_empty());
    // vib_2x up: misalignment, not bearing wear.
    let twox = history_of(|s, h| match s {
        "vib_2x" => 0.3 + 0.005 * h,
        "bearing_temp" => 40.0 + 0.05 * h,
        _ => base(s),
    });
    let c = [
        contribution("vib_2x", ContributionKind::Level, 0.9, 0.3, 0.65),
        contribution("bearing_temp", ContributionKind::Shift, 0.6, 40.0, 43.0),
    ];
    let recs = recommend(&input(&m, &twox, &c, &[]), &cfg);
    let ids: Vec<_> = recs.iter().map(|r| r.failure_mode.as_str()).collect();
    assert_eq!(ids, ["misalignment"]);
    // Flow going up is not a seal leak; flow going down is.
    let up = history_of(|s, h| {
        if s == "flow" {
            100.0 + 0.3 * h
        } else {
            base(s)
        }
    });
    let c = [contribution(
        "flow",
        ContributionKind::Level,
        0.9,
        100.0,
        120.0,
    )];
    assert!(recommend(&input(&m, &up, &c, &[]), &cfg).is_empty());
    let down = history_of(|s, h| {
        if s == "flow" {
            100.0 - 0.3 * h
        } else {
            base(s)
        }
    });
    let c = [contribution(
        "flow",
        ContributionKind::Level,
        0.9,
        100.0,
        80.0,
    )];
    let recs = recommend(&input(&m, &down, &c, &[]), &cfg);
    assert_eq!(recs[0].failure_mode, "seal_leak");
}

#[test]
fn similar_past_cases_are_cited_and_raise_confidence() {
    let m = model();
    let hist = history(|h| 0.1 + 0.006 * h);
    let c = [contribution(
        "vib_bearing",
        ContributionKind::Level,
        0.9,
        0.1,
        0.4,
    )];
    let cfg = AdviceConfig::default();
    let without = recommend(&input(&m, &hist, &c, &[]), &cfg);
    let cases = [
        PastCase {
            id: "alarm-17".into(),
            failure_mode: "bearing_wear".into(),
            signals: vec![CaseSignal {
                signal: "vib_bearing".into(),
                direction: SignalDirection::Rising,
            }],
            ts: None,
            note: String::new(),
        },
        PastCase {
            id: "alarm-3".into(),
            failure_mode: "bearing_wear".into(),
            signals: vec![CaseSignal {
                signal: "flow".into(),
                direction: SignalDirection::Falling,
            }],
            ts: None,
            note: String::new(),
        },
    ];
    let with = recommend(&input(&m, &hist, &c, &cases), &cfg);
    assert_eq!(with[0].similar_cases.len(), 1);
    assert_eq!(with[0].similar_cases[0].id, "alarm-17");
    assert!(with[0].confidence > without[0].confidence);
}

fn rec(conf: f64, due_h: f64, now: i64) -> Recommendation {
    let m = model();
    let hist = history(|h| 0.1 + 0.006 * h);
    let c = [contribution(
        "vib_bearing",
        ContributionKind::Level,
        0.9,
        0.1,
        0.4,
    )];
    let mut r = recommend(&input(&m, &hist, &c, &[]), &AdviceConfig::default()).remove(0);
    r.confidence = conf;
    r.due_by = now + (due_h * 3600e9) as i64;
    r
}

#[test]
fn tracker_opens_after_persistence_never_flaps_and_withdraws_late() {
    let step = H / 4; // evaluated every 15 minutes
    let mut t = AdviceTracker::new(AdviceConfig::default());
    // Every other evaluation: never persistent, never opened.
    for k in 0..40 {
        let now = T0 + k * step;
        let recs = if k % 2 == 0 {
            vec![rec(0.8, 48.0, now)]
        } else {
            vec![]
        };
        let u = t.update(now, recs);
        assert!(u.events.is_empty() && u.open.is_empty(), "opened at {k}");
    }
    // Persistent: opens once 1 h has passed (5th evaluation), exactly once.
    let base = T0 + 40 * step;
    let mut opened = Vec::new();
    for k in 0..12 {
        let now = base + k * step;
        let u = t.update(now, vec![rec(0.8, 48.0, now)]);
        for e in &u.events {
            if let AdviceEvent::Opened { .. } = e {
                opened.push(k);
            }
        }
    }
    assert_eq!(opened, [4]);
    let due = t.open_advice()[0].recommendation.due_by;
    // A later due-by, a brief dip below the open level and a short absence change nothing.
    let now = base + 12 * step;
    let u = t.update(now, vec![rec(0.35, 200.0, now)]);
    assert!(u.events.is_empty(), "{:?}", u.events);
    assert_eq!(u.open[0].recommendation.due_by, due);
    for k in 13..16 {
        let u = t.update(base + k * step, vec![]);
        assert!(u.events.is_empty() && u.open.len() == 1);
    }
    // A much earlier due-by is an update.
    let now = base + 16 * step;
    let u = t.update(now, vec![rec(0.8, 4.0, now)]);
    assert!(
        matches!(u.events[..], [AdviceEvent::Updated { .. }]),
        "{:?}",
        u.events
    );
    // Gone for 6 h (and at least 4 evaluations): withdrawn, once.
    let mut withdrawn = Vec::new();
    for k in 17..60 {
        let u = t.update(base + k * step, vec![]);
        if !u.events.is_empty() {
            withdrawn.push(k);
        }
    }
    assert_eq!(withdrawn, [16 + 24]);
    assert!(t.open_advice().is_empty());
}

#[test]
fn dismissed_advice_is_held_off() {
    let mut t = AdviceTracker::new(AdviceConfig {
        open_after: 1,
        open_after_s: 0.0,
        ..Default::default()
    });
    let u = t.update(T0, vec![rec(0.8, 48.0, T0)]);
    assert_eq!(u.open.len(), 1);
    assert!(t.dismiss("bearing_wear", T0));
    assert!(t
        .update(T0 + H, vec![rec(0.8, 48.0, T0 + H)])
        .open
        .is_empty());
    assert_eq!(
        t.update(T0 + 25 * H, vec![rec(0.8, 48.0, T0 + 25 * H)])
            .open
            .len(),
        1
    );
    let json = serde_json::to_string(&t).unwrap();
    let back: AdviceTracker = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t);
}

#[test]
fn explanation_window_keeps_the_strongest_per_signal() {
    let mut w = ExplanationWindow::default();
    let score = |s: f64, anomaly| Score {
        ts: T0,
        total: s,
        is_anomaly: anomaly,
        warming_up: false,
        per_signal: vec![contribution(
            "vib_bearing",
            ContributionKind::Level,
            s,
            0.1,
            0.2,
        )],
    };
    w.add(&score(0.3, false));
    w.add(&score(0.7, true));
    w.add(&score(0.4, false));
    let (c, alarm) = w.take();
    assert!(alarm);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].score, 0.7);
    assert_eq!(w.take(), (vec![], false));
}
