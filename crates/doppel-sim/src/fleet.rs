//! Fleets: many assets of a few kinds with faults at seeded times over a horizon, for datasets
//! (`doppel sim dataset`) and load tests (`doppel sim load`) where the demo plant's eight
//! assets and half-hour fault schedule are too few and too soon.

use doppel_model::{Relation, Value, ValueKind};
use rand::{Rng, SeedableRng};

use crate::physics::uniform;
use crate::plant::{container, mix, twin};
use crate::{AssetKind, FaultKind, FaultSpec, Plant, SimRng};

/// Assets per line, floor or department.
const GROUP: usize = 10;

impl Plant {
    /// A fleet of `n` assets, their kinds taken in turn from `kinds` (pumps when empty), under
    /// one site (pumps, ten per line), one building (a chiller per floor) and one hospital
    /// (MRI compressors, ten per department). Ids are `pump-001`, `chiller-001`, `mri-001`….
    ///
    /// Faults are drawn per asset from the seed, at onsets spread over the first 70 % of
    /// `horizon_s` (seconds after the first step): about two assets in three get a process
    /// fault of their kind — progressive ones sized to fail the asset somewhere around the end
    /// of the horizon, so some fail within it and some do not — and about one in three a
    /// sensor fault on an output signal. The same seed, count, kinds and horizon give the
    /// same fleet; adding assets does not change the earlier ones.
    pub fn fleet(seed: u64, n: usize, kinds: &[AssetKind], horizon_s: f64) -> Plant {
        let kinds = if kinds.is_empty() {
            &[AssetKind::PumpMotor][..]
        } else {
            kinds
        };
        let horizon_s = if horizon_s.is_finite() {
            horizon_s.max(600.0)
        } else {
            86_400.0
        };
        let mut p = Plant::new(seed);
        let mut counts = [0usize; AssetKind::ALL.len()];
        for i in 0..n {
            let kind = kinds[i % kinds.len()];
            let k = AssetKind::ALL.iter().position(|x| *x == kind).unwrap_or(0);
            counts[k] += 1;
            let nth = counts[k];
            let id = format!("{}-{nth:03}", kind.slug());
            let t = fleet_twin(&mut p, kind, &id, nth);
            let asset = kind.build(&id, mix(seed, 1_000 + i as u64));
            p.add_asset(t, asset);
            let mut plan = SimRng::seed_from_u64(mix(seed, 2_000 + i as u64));
            plan.set_stream(0xf1ee7);
            for (after_s, spec) in fleet_faults(kind, horizon_s, &mut plan) {
                p.schedule(i, after_s, spec);
            }
        }
        p
    }
}

/// The twin of the `nth` asset of its kind, adding the containers it sits in when they are
/// new.
fn fleet_twin(p: &mut Plant, kind: AssetKind, id: &str, nth: usize) -> doppel_model::Twin {
    let group = (nth - 1) / GROUP + 1;
    match kind {
        AssetKind::PumpMotor => {
            let line = format!("line-{group}");
            if nth == 1 {
                p.add_container(
                    container("site", "Site", "a production site", &[]),
                    twin("site-1", "site", "Fleet site", None),
                );
            }
            if (nth - 1).is_multiple_of(GROUP) {
                p.add_container(
                    container(
                        "production_line",
                        "Production line",
                        "a line of equipment sharing one cooling-water loop",
                        &[],
                    ),
                    twin(
                        &line,
                        "production_line",
                        &format!("Line {group}"),
                        Some("site-1"),
                    ),
                );
            }
            let mut t = twin(
                id,
                crate::pump::MODEL_ID,
                &format!("Pump {nth}"),
                Some(&line),
            );
            t.properties
                .insert("rated_power_kw".into(), Value::Float(30.0));
            t.properties
                .insert("serial".into(), Value::String(format!("CP30-{nth:05}")));
            t.relations.push(Relation {
                kind: "feeds".into(),
                target: line,
            });
            t
        }
        AssetKind::Chiller => {
            let floor = format!("floor-{nth}");
            if nth == 1 {
                p.add_container(
                    container("building", "Building", "an office building", &[]),
                    twin("building-1", "building", "Fleet office tower", None),
                );
            }
            p.add_container(
                container(
                    "building_floor",
                    "Building floor",
                    "one conditioned floor",
                    &[],
                ),
                twin(
                    &floor,
                    "building_floor",
                    &format!("Floor {nth}"),
                    Some("building-1"),
                ),
            );
            let mut t = twin(
                id,
                crate::chiller::MODEL_ID,
                &format!("Chiller {nth}"),
                Some(&floor),
            );
            t.properties
                .insert("capacity_kw".into(), Value::Float(90.0));
            t.relations.push(Relation {
                kind: "serves".into(),
                target: floor,
            });
            t
        }
        AssetKind::MriCompressor => {
            let dept = format!("department-{group}");
            if nth == 1 {
                p.add_container(
                    container("hospital", "Hospital", "a hospital campus", &[]),
                    twin("hospital-1", "hospital", "Fleet hospital", None),
                );
            }
            if (nth - 1).is_multiple_of(GROUP) {
                p.add_container(
                    container("department", "Department", "a clinical department", &[]),
                    twin(
                        &dept,
                        "department",
                        &format!("Radiology {group}"),
                        Some("hospital-1"),
                    ),
                );
            }
            let mut t = twin(
                id,
                crate::mri::MODEL_ID,
                &format!("MRI {nth} helium compressor"),
                Some(&dept),
            );
            t.properties
                .insert("scanner".into(), Value::String(format!("MR-{nth}")));
            t
        }
    }
}

/// The seeded fault plan of one fleet asset: `(seconds after the first step, fault)`.
fn fleet_faults(kind: AssetKind, horizon_s: f64, rng: &mut SimRng) -> Vec<(f64, FaultSpec)> {
    let mut out = Vec::new();
    // Every draw happens whatever the outcome, so one asset's plan has a fixed length of
    // randomness and changing a probability does not reshuffle the rest.
    let process = rng.random::<f64>() < 0.65;
    let faults = kind.process_faults();
    let fault = faults[rng.random_range(0..faults.len())];
    let after = uniform(rng, 0.02, 0.7) * horizon_s;
    let share = uniform(rng, 0.3, 1.5);
    let magnitude = uniform(rng, 0.4, 0.9);
    let ramp = uniform(rng, 60.0, 1_800.0);
    let episode = uniform(rng, 1_800.0, 6.0 * 3_600.0);
    if process {
        let spec = if fault.is_progressive() {
            // Severity 1 fails a unit in about a day (pumps at partial load in about two).
            let days = (share * (horizon_s - after) / 86_400.0).max(1.0 / 24.0);
            let per_day = if kind == AssetKind::PumpMotor {
                2.0
            } else {
                1.0
            };
            FaultSpec::new(fault, 0, per_day / days)
        } else {
            let spec = FaultSpec::new(fault, 0, magnitude).ramp(ramp);
            if fault == FaultKind::Cavitation {
                spec.lasting(episode)
            } else {
                spec
            }
        };
        out.push((after, spec));
    }

    let sensor = rng.random::<f64>() < 0.35;
    let model = kind.model();
    let outputs: Vec<&str> = model
        .signals
        .iter()
        .filter(|s| s.kind == ValueKind::Float && s.role == doppel_model::SignalRole::Output)
        .map(|s| s.name.as_str())
        .collect();
    let signal = outputs
        .get(rng.random_range(0..outputs.len().max(1)))
        .copied();
    let sensor_kind = FaultKind::SENSOR[rng.random_range(0..FaultKind::SENSOR.len())];
    let after = uniform(rng, 0.02, 0.7) * horizon_s;
    let lasting = uniform(rng, 600.0, 6.0 * 3_600.0).min(horizon_s - after);
    let x = uniform(rng, 0.0, 1.0);
    if let (true, Some(signal)) = (sensor, signal) {
        let spec = FaultSpec::new(sensor_kind, 0, 0.0).on_signal(signal);
        let spec = match sensor_kind {
            FaultKind::SensorDrift => FaultSpec {
                severity: 0.1 + 0.2 * x,
                ..spec
            }
            .ramp(lasting),
            FaultKind::SensorStuck => FaultSpec {
                severity: 1.0,
                ..spec
            }
            .lasting(lasting),
            FaultKind::SensorSpikes => FaultSpec {
                severity: 0.3 + 0.5 * x,
                ..spec
            }
            .lasting(lasting),
            FaultKind::SensorDropout => FaultSpec {
                severity: 0.2 + 0.4 * x,
                ..spec
            }
            .lasting(lasting),
            _ => FaultSpec {
                severity: 0.5 + x,
                ..spec
            }
            .lasting(lasting),
        };
        out.push((after, spec));
    }
    out
}
