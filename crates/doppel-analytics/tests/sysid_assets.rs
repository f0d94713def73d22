//! System identification on the simulator's other assets, driven only by their own
//! schedules (office occupancy, scanner use, weather): the fit must work for any asset model,
//! leave inputs that never move unidentified, and say how well it did.

#![allow(
    clippy::print_stdout,
    reason = "the figures are the point of this test"
)]

use doppel_analytics::sysid::{fit, FitConfig, Series};
use doppel_sim::{seeded_rng, AssetKind, RUN_START};
use serde_json::json;

const NS: i64 = 1_000_000_000;

fn natural_history(kind: AssetKind, seed: u64, days: f64) -> Vec<Series> {
    let mut asset = kind.build("unit-1", seed);
    let mut rng = seeded_rng(seed);
    let names: Vec<String> = asset
        .model()
        .signals
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let mut out = vec![0.0; names.len()];
    let mut readings: Vec<Vec<(i64, f64)>> = vec![Vec::new(); names.len()];
    let mut t = RUN_START;
    let mut i = 0u64;
    while t < RUN_START + (days * 86_400.0) as i64 * NS {
        // Irregular spacing: 2, 3 or 4 s.
        let dt = 2 + (i % 3) as i64;
        i += 1;
        t += dt * NS;
        asset.step_into(t, dt as f64, &mut rng, &mut out);
        for (k, v) in out.iter().enumerate() {
            if v.is_finite() {
                readings[k].push((t, *v));
            }
        }
    }
    names
        .into_iter()
        .zip(readings)
        .map(|(n, r)| Series::new(n, r))
        .collect()
}

#[test]
fn chiller_and_mri_are_identified_from_their_own_schedules() {
    for kind in [AssetKind::Chiller, AssetKind::MriCompressor] {
        let history = natural_history(kind, 3, 5.0);
        let model = fit(&kind.model(), &history, &FitConfig::default())
            .unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
        let rows: Vec<_> = model
            .outputs
            .iter()
            .map(|o| {
                json!({"signal": o.signal, "nrmse_one_step": o.quality.nrmse_one_step,
                       "nrmse_1h": o.quality.nrmse_horizon,
                       "structure": format!("na={} nb={} delay={} {:?}{}", o.na, o.nb, o.delay, o.nonlinearity, if o.integrating { " integrating" } else { "" })})
            })
            .collect();
        let unidentified: Vec<_> = model
            .inputs
            .iter()
            .filter(|i| !i.identified)
            .map(|i| i.signal.clone())
            .collect();
        println!(
            "SYSID_FIGURES {}",
            json!({"test": "natural_schedule", "asset": kind.name(), "outputs": rows,
                   "unidentified_inputs": unidentified, "skipped": model.skipped})
        );
        assert!(!model.outputs.is_empty());
        for o in &model.outputs {
            assert!(
                o.quality.nrmse_horizon.is_finite() && o.quality.nrmse_horizon <= 0.25,
                "{} {}: {:?}",
                kind.name(),
                o.signal,
                o.quality
            );
        }
    }
}
