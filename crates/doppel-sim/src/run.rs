//! Run-to-failure histories: one asset, one progressive fault at a seeded onset and rate,
//! stepped from a fixed start until it fails. These are the labelled trajectories that
//! remaining-useful-life models are trained and scored on.

use doppel_model::{AssetModel, Reading, Timestamp};
use rand::{Rng, SeedableRng};

use crate::physics::uniform;
use crate::plant::mix;
use crate::{AssetKind, FaultKind, FaultSpec, GroundTruth, SimRng};

/// Where every run starts: 2026-01-05T00:00:00Z, a Monday, so weekly cycles line up.
pub const RUN_START: Timestamp = 1_767_571_200_000_000_000;

/// The longest a run goes on without failing, in simulated seconds (two weeks).
const MAX_RUN_S: f64 = 14.0 * 86_400.0;

/// A whole degradation history of one asset.
#[derive(Debug, Clone)]
pub struct RunToFailure {
    pub asset_id: String,
    pub model: AssetModel,
    /// One reading per step, from [`RUN_START`] to the failure step inclusive.
    pub readings: Vec<Reading>,
    pub ground_truth: Vec<GroundTruth>,
    /// When the asset failed; `None` only if it outlived the two-week horizon.
    pub failure: Option<Timestamp>,
}

/// Runs one healthy asset of `kind` into a progressive fault until it fails:
/// pumps wear a bearing, chillers leak refrigerant, MRI compressors degrade or leak helium
/// (chosen by the seed). The fault starts 1–6 h in and fails the asset roughly 12–48 h
/// later, both seeded. `dt_s` is clamped to `[0.1, 3600]`; a value that is not a number
/// gives one minute. At `dt_s = 60` a run is a few thousand readings.
pub fn run_to_failure(seed: u64, kind: AssetKind, dt_s: f64) -> RunToFailure {
    let dt_s = if dt_s.is_nan() {
        60.0
    } else {
        dt_s.clamp(0.1, 3_600.0)
    };
    let mut plan = SimRng::seed_from_u64(mix(seed, 0));
    let onset_s = uniform(&mut plan, 3_600.0, 6.0 * 3_600.0);
    let (fault, severity) = match kind {
        AssetKind::PumpMotor => (FaultKind::BearingWear, uniform(&mut plan, 0.8, 2.5)),
        AssetKind::Chiller => (FaultKind::RefrigerantLeak, uniform(&mut plan, 0.8, 2.0)),
        AssetKind::MriCompressor => {
            if plan.random::<bool>() {
                (
                    FaultKind::CompressorDegradation,
                    uniform(&mut plan, 0.6, 2.0),
                )
            } else {
                (FaultKind::HeliumLeak, uniform(&mut plan, 0.3, 0.8))
            }
        }
    };

    let asset_id = format!("{}-{seed}", kind.slug());
    let mut asset = kind.build(&asset_id, mix(seed, 1));
    let dt_ns = (dt_s * 1e9).round() as i64;
    let onset = RUN_START + (onset_s * 1e9) as i64;
    let injected = asset.inject(FaultSpec::new(fault, onset, severity));
    debug_assert!(injected.is_ok(), "{injected:?}");

    let mut rng = SimRng::seed_from_u64(mix(seed, 2));
    rng.set_stream(1);
    let steps = (MAX_RUN_S / dt_s).ceil() as i64;
    let mut readings = Vec::new();
    for i in 0..=steps {
        let t = RUN_START + i * dt_ns;
        let values = asset.step(t, dt_s, &mut rng);
        if !values.is_empty() {
            readings.push(Reading {
                twin: asset_id.clone(),
                ts: t,
                values,
            });
        }
        if asset.failed_at().is_some() {
            break;
        }
    }
    RunToFailure {
        model: asset.model(),
        ground_truth: asset.ground_truth(),
        failure: asset.failed_at(),
        asset_id,
        readings,
    }
}
