//! A plant: simulated assets placed in a twin hierarchy (site → line → pumps, building →
//! floor → chiller, hospital → department → MRI compressors), stepped together, each with its own noise
//! stream so one asset's faults never change another's readings.

use std::collections::BTreeMap;

use doppel_model::{AssetModel, Reading, Relation, RelationSpec, Timestamp, Twin, Value};
use rand::SeedableRng;

use crate::physics::{add_secs, uniform};
use crate::{Asset, AssetKind, FaultKind, FaultSpec, GroundTruth, SimError, SimRng};

/// One simulated asset with its twin definition and its own noise stream. Units of a plant
/// are independent of each other, so they can be stepped on different threads (see
/// [`Plant::simulated_twins_mut`]) and still give the readings `Plant::step` would.
#[derive(Debug)]
pub struct SimulatedTwin {
    twin: Twin,
    asset: Box<dyn Asset>,
    rng: SimRng,
}

impl SimulatedTwin {
    pub fn twin(&self) -> &Twin {
        &self.twin
    }

    pub fn asset(&self) -> &dyn Asset {
        self.asset.as_ref()
    }

    /// Advances the asset to `t`; `None` when every signal dropped out this step.
    pub fn step(&mut self, t: Timestamp, dt_s: f64) -> Option<Reading> {
        let values = self.asset.step(t, dt_s, &mut self.rng);
        (!values.is_empty()).then(|| Reading {
            twin: self.twin.id.clone(),
            ts: t,
            values,
        })
    }

    /// The allocation-free form of [`SimulatedTwin::step`]; see [`Asset::step_into`].
    pub fn step_into(&mut self, t: Timestamp, dt_s: f64, out: &mut [f64]) {
        self.asset.step_into(t, dt_s, &mut self.rng, out);
    }
}

/// A fault whose onset is given relative to the plant's first step.
#[derive(Debug)]
struct Scheduled {
    unit: usize,
    after_s: f64,
    spec: FaultSpec,
}

/// Named assets in a hierarchy of twins, stepped together.
#[derive(Debug)]
pub struct Plant {
    seed: u64,
    container_models: Vec<AssetModel>,
    containers: Vec<Twin>,
    units: Vec<SimulatedTwin>,
    scheduled: Vec<Scheduled>,
    start: Option<Timestamp>,
}

impl Plant {
    /// An empty plant; `seed` derives every asset's noise stream.
    pub fn new(seed: u64) -> Self {
        Plant {
            seed,
            container_models: Vec::new(),
            containers: Vec::new(),
            units: Vec::new(),
            scheduled: Vec::new(),
            start: None,
        }
    }

    /// Adds a twin that only groups others (a site, a line, a building): no signals, no
    /// physics. Its model is added once, however many twins use it. Add parents first.
    pub fn add_container(&mut self, model: AssetModel, twin: Twin) {
        if !self.container_models.iter().any(|m| m.id == model.id) {
            self.container_models.push(model);
        }
        self.containers.push(twin);
    }

    /// Adds a simulated asset under the twin `twin` (whose model should be the asset's).
    pub fn add_asset(&mut self, twin: Twin, asset: Box<dyn Asset>) {
        let mut rng = SimRng::seed_from_u64(mix(self.seed, self.units.len() as u64));
        rng.set_stream(1);
        self.units.push(SimulatedTwin { twin, asset, rng });
    }

    /// The demo plant: a site with two cooling-water lines of two pumps each, an office floor
    /// with its chiller, and a hospital with three MRI compressors. Faults start at seeded
    /// times relative to the first step, so a 1 Hz demo shows something going wrong within
    /// 5–30 simulated minutes:
    /// - `pump-1`: bearing wear from the start, failing after roughly 8–24 h;
    /// - `pump-2`: misalignment after 10–15 min;
    /// - `pump-3`: discharge-pressure sensor spikes after 5–12 min, cavitation episode after
    ///   20–30 min;
    /// - `chiller-1`: supply-air damper sticks after 15–25 min;
    /// - `mri-2`: helium leak after 10–30 min (trips after many hours);
    /// - `mri-3`: slow compressor degradation (days) and oil-temperature dropouts after
    ///   20–30 min;
    /// - `pump-4` and `mri-1` stay healthy, as references.
    pub fn demo(seed: u64) -> Plant {
        let mut p = Plant::new(seed);
        let mut rng = SimRng::seed_from_u64(seed);
        rng.set_stream(0xde30);

        p.add_container(
            container("site", "Site", "a production site", &[]),
            twin("site-1", "site", "North works", None),
        );
        let line = container(
            "production_line",
            "Production line",
            "a line of equipment sharing one cooling-water loop",
            &[],
        );
        p.add_container(
            line.clone(),
            twin(
                "line-1",
                "production_line",
                "Cooling loop A",
                Some("site-1"),
            ),
        );
        p.add_container(
            line,
            twin(
                "line-2",
                "production_line",
                "Cooling loop B",
                Some("site-1"),
            ),
        );
        p.add_container(
            container("building", "Building", "an office building", &[]),
            twin("building-1", "building", "Harbour office tower", None),
        );
        p.add_container(
            container(
                "building_floor",
                "Building floor",
                "one conditioned floor",
                &[],
            ),
            twin("floor-3", "building_floor", "Floor 3", Some("building-1")),
        );
        p.add_container(
            container("hospital", "Hospital", "a hospital campus", &[]),
            twin("hospital-1", "hospital", "City hospital", None),
        );
        p.add_container(
            container("department", "Department", "a clinical department", &[]),
            twin("radiology-1", "department", "Radiology", Some("hospital-1")),
        );
        p.add_container(
            container("room", "Room", "a room housing equipment", &[]),
            twin(
                "plantroom-1",
                "room",
                "Radiology plant room",
                Some("hospital-1"),
            ),
        );

        for (i, line) in [(1, "line-1"), (2, "line-1"), (3, "line-2"), (4, "line-2")] {
            let id = format!("pump-{i}");
            let mut t = twin(
                &id,
                crate::pump::MODEL_ID,
                &format!("Cooling pump P{i}"),
                Some(line),
            );
            t.properties
                .insert("rated_power_kw".into(), Value::Float(30.0));
            t.properties.insert(
                "serial".into(),
                Value::String(format!("CP30-{:05}", 1200 + i)),
            );
            t.relations.push(Relation {
                kind: "feeds".into(),
                target: line.into(),
            });
            let asset = AssetKind::PumpMotor.build(&id, mix(seed, 100 + i));
            p.add_asset(t, asset);
        }

        let mut t = twin(
            "chiller-1",
            crate::chiller::MODEL_ID,
            "Chiller CH-3",
            Some("floor-3"),
        );
        t.properties
            .insert("capacity_kw".into(), Value::Float(90.0));
        t.relations.push(Relation {
            kind: "serves".into(),
            target: "floor-3".into(),
        });
        p.add_asset(t, AssetKind::Chiller.build("chiller-1", mix(seed, 200)));

        for i in 1..=3u64 {
            let id = format!("mri-{i}");
            let mut t = twin(
                &id,
                crate::mri::MODEL_ID,
                &format!("MRI {i} helium compressor"),
                Some("radiology-1"),
            );
            t.properties
                .insert("scanner".into(), Value::String(format!("MR-{i}")));
            t.relations.push(Relation {
                kind: "located_in".into(),
                target: "plantroom-1".into(),
            });
            p.add_asset(t, AssetKind::MriCompressor.build(&id, mix(seed, 300 + i)));
        }

        let mut at = |lo: f64, hi: f64| uniform(&mut rng, lo, hi);
        let wear = at(2.5, 4.0);
        let misalignment = (at(600.0, 900.0), at(0.6, 0.9));
        let spikes = at(300.0, 720.0);
        let cavitation = (at(1_200.0, 1_800.0), at(0.5, 0.8), at(1_800.0, 3_600.0));
        let damper = (at(900.0, 1_500.0), at(0.5, 0.8));
        let leak = (at(600.0, 1_800.0), at(0.5, 1.0));
        let dropout = at(1_200.0, 1_800.0);
        let degradation = at(0.2, 0.4);
        let f = FaultSpec::new;
        let plan = [
            ("pump-1", 0.0, f(FaultKind::BearingWear, 0, wear)),
            (
                "pump-2",
                misalignment.0,
                f(FaultKind::Misalignment, 0, misalignment.1).ramp(300.0),
            ),
            (
                "pump-3",
                spikes,
                f(FaultKind::SensorSpikes, 0, 0.4).on_signal("discharge_pressure"),
            ),
            (
                "pump-3",
                cavitation.0,
                f(FaultKind::Cavitation, 0, cavitation.1)
                    .ramp(120.0)
                    .lasting(cavitation.2),
            ),
            (
                "chiller-1",
                damper.0,
                f(FaultKind::StuckDamper, 0, damper.1).ramp(60.0),
            ),
            ("mri-2", leak.0, f(FaultKind::HeliumLeak, 0, leak.1)),
            (
                "mri-3",
                0.0,
                f(FaultKind::CompressorDegradation, 0, degradation),
            ),
            (
                "mri-3",
                dropout,
                f(FaultKind::SensorDropout, 0, 0.3)
                    .on_signal("oil_temp")
                    .lasting(1_800.0),
            ),
        ];
        for (id, after_s, spec) in plan {
            if let Some(unit) = p.units.iter().position(|u| u.twin.id == id) {
                p.schedule(unit, after_s, spec);
            }
        }
        p
    }

    /// Schedules `spec` on the `unit`-th asset, `after_s` seconds after the first step.
    pub(crate) fn schedule(&mut self, unit: usize, after_s: f64, spec: FaultSpec) {
        self.scheduled.push(Scheduled {
            unit,
            after_s,
            spec,
        });
    }

    /// Every model the plant's twins use: containers first, then one per asset kind.
    pub fn models(&self) -> Vec<AssetModel> {
        let mut out = self.container_models.clone();
        for u in &self.units {
            if !out.iter().any(|m| m.id == u.twin.model) {
                out.push(u.asset.model());
            }
        }
        out
    }

    /// Every twin, parents before children and relation targets before their sources, so
    /// they can be put into a catalog one by one.
    pub fn twins(&self) -> Vec<Twin> {
        self.containers
            .iter()
            .cloned()
            .chain(self.units.iter().map(|u| u.twin.clone()))
            .collect()
    }

    /// The simulated asset behind twin `id`.
    pub fn asset(&self, id: &str) -> Option<&dyn Asset> {
        self.units
            .iter()
            .find(|u| u.twin.id == id)
            .map(|u| u.asset.as_ref())
    }

    /// The time of the first step, once stepped.
    pub fn start(&self) -> Option<Timestamp> {
        self.start
    }

    /// Advances every asset to `t` and returns one reading per asset, under its twin id.
    /// An asset whose every signal dropped out this step gives no reading (an empty reading
    /// is not valid). The first step fixes the start that scheduled faults are relative to.
    pub fn step(&mut self, t: Timestamp, dt_s: f64) -> Vec<Reading> {
        self.begin(t);
        self.units
            .iter_mut()
            .filter_map(|u| u.step(t, dt_s))
            .collect()
    }

    /// Fixes the start at `t` and schedules the plant's faults relative to it, unless the
    /// plant has started already. [`Plant::step`] does this at the first step; call it before
    /// stepping [`Plant::simulated_twins_mut`] one by one.
    pub fn begin(&mut self, t: Timestamp) {
        if self.start.is_some() {
            return;
        }
        self.start = Some(t);
        for s in std::mem::take(&mut self.scheduled) {
            let mut spec = s.spec;
            spec.onset = add_secs(t, s.after_s);
            let injected = self.units[s.unit].asset.inject(spec);
            debug_assert!(injected.is_ok(), "scheduled fault refused: {injected:?}");
        }
    }

    /// The simulated assets, in the order of [`Plant::twins`] after the containers.
    pub fn simulated_twins(&self) -> &[SimulatedTwin] {
        &self.units
    }

    /// The simulated assets, to step independently (each has its own noise stream, so
    /// splitting them across threads changes nothing in their readings). Call
    /// [`Plant::begin`] first so scheduled faults are in place.
    pub fn simulated_twins_mut(&mut self) -> &mut [SimulatedTwin] {
        &mut self.units
    }

    /// Schedules a fault on the asset of twin `id` (absolute onset).
    pub fn inject(&mut self, id: &str, fault: FaultSpec) -> Result<(), SimError> {
        self.unit_mut(id)?.asset.inject(fault)
    }

    /// Pins an input or disturbance of the asset of twin `id`.
    pub fn set_input(&mut self, id: &str, name: &str, value: f64) -> Result<(), SimError> {
        self.unit_mut(id)?.asset.set_input(name, value)
    }

    /// What has really happened so far, every asset's faults and failures.
    pub fn ground_truth(&self) -> Vec<GroundTruth> {
        self.units
            .iter()
            .flat_map(|u| u.asset.ground_truth())
            .collect()
    }

    fn unit_mut(&mut self, id: &str) -> Result<&mut SimulatedTwin, SimError> {
        self.units
            .iter_mut()
            .find(|u| u.twin.id == id)
            .ok_or_else(|| SimError::UnknownAsset(id.to_string()))
    }
}

/// A model of a grouping twin: no signals, optionally allowed relations.
pub(crate) fn container(id: &str, name: &str, description: &str, relations: &[&str]) -> AssetModel {
    AssetModel {
        id: id.into(),
        name: name.into(),
        version: 1,
        description: description.into(),
        signals: Vec::new(),
        properties: Vec::new(),
        relations: relations
            .iter()
            .map(|k| RelationSpec {
                kind: (*k).into(),
                target_model: None,
                description: String::new(),
            })
            .collect(),
        failure_modes: Vec::new(),
        retention: None,
    }
}

pub(crate) fn twin(id: &str, model: &str, name: &str, parent: Option<&str>) -> Twin {
    Twin {
        id: id.into(),
        model: model.into(),
        name: name.into(),
        parent: parent.map(Into::into),
        properties: BTreeMap::new(),
        relations: Vec::new(),
    }
}

/// SplitMix64 of `seed` and `i`: well-spread, independent seeds for each asset from one
/// plant seed.
pub(crate) fn mix(seed: u64, i: u64) -> u64 {
    let mut z = seed ^ i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
