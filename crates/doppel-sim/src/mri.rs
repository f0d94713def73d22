//! The helium compressor of an MRI scanner's cryocooler: a closed helium circuit whose
//! pressures follow the gas charge, an oil-cooled compressor capsule, and a cold head whose
//! 4 K stage temperature follows the ratio of heat load to refrigeration capacity.

use doppel_model::{
    AssetModel, PropertySpec, RelationSpec, SignalRole, SignalSpec, Timestamp, Value, ValueKind,
};
use rand::SeedableRng;

use crate::asset::{float_signal, running_signal, usable_dt, InputLimit, Inputs};
use crate::fault::FaultBook;
use crate::physics::{
    daily_wave, damage_rate_per_day, grow_damage, lag, leak_rate_per_day, normals, scan_activity,
    uniform, Ou,
};
use crate::{Asset, AssetKind, FaultKind, FaultSpec, GroundTruth, SimError, SimRng};

/// Number of signals of the model, the length of a fast-path row.
pub(crate) const SIGNALS: usize = 9;

pub(crate) const MODEL_ID: &str = "mri_compressor";

/// Rated compressor input power, kW.
const POWER_KW: f64 = 7.2;
/// Cold-head displacer frequency, Hz (72 rpm).
const CYCLE_HZ: f64 = 1.2;
/// Helium charge fraction below which the low-return-pressure switch trips the compressor.
const CHARGE_TRIP: f64 = 0.75;
/// Temperature the 2nd stage warms toward once refrigeration stops, K.
const WARM_K: f64 = 40.0;

const INPUTS: &[InputLimit] = &[
    InputLimit {
        name: "scan_load",
        min: 0.0,
        max: 100.0,
    },
    InputLimit {
        name: "cooling_water_temp",
        min: 0.0,
        max: 40.0,
    },
];

pub(crate) const FAULTS: &[FaultKind] = &[FaultKind::CompressorDegradation, FaultKind::HeliumLeak];

pub(crate) fn model() -> AssetModel {
    use SignalRole::{Disturbance, Input, Output};
    AssetModel {
        id: MODEL_ID.into(),
        name: "MRI helium compressor".into(),
        version: 1,
        description: "water-cooled helium compressor driving a 4 K cold head (7 kW class)".into(),
        signals: vec![
            float_signal(
                "scan_load",
                "%",
                Input,
                (0.0, 100.0),
                "gradient duty of the scanner",
            ),
            float_signal(
                "cooling_water_temp",
                "°C",
                Disturbance,
                (5.0, 25.0),
                "facility water in",
            ),
            float_signal(
                "helium_supply_pressure",
                "bar",
                Output,
                (19.0, 24.0),
                "high side",
            ),
            float_signal(
                "helium_return_pressure",
                "bar",
                Output,
                (6.0, 8.5),
                "low side",
            ),
            float_signal(
                "oil_temp",
                "°C",
                Output,
                (20.0, 50.0),
                "compressor capsule oil",
            ),
            float_signal("coldhead_temp", "K", Output, (3.8, 4.5), "2nd stage"),
            SignalSpec {
                name: "cycle_count".into(),
                unit: "cycles".into(),
                kind: ValueKind::Int,
                min: None,
                max: None,
                role: Output,
                description: "cold-head displacer cycles since installation".into(),
            },
            float_signal(
                "compressor_power",
                "kW",
                Output,
                (5.0, 9.0),
                "electrical input",
            ),
            running_signal(),
        ],
        properties: vec![PropertySpec {
            name: "scanner".into(),
            kind: ValueKind::String,
            required: false,
            unit: String::new(),
            description: "the MRI scanner this compressor cools".into(),
        }],
        relations: vec![RelationSpec {
            kind: "located_in".into(),
            target_model: None,
            description: "the room or building housing the compressor".into(),
        }],
        failure_modes: crate::failure_modes::mri(),
        retention: None,
    }
}

#[derive(Debug, Clone)]
struct Unit {
    static_bar: f64,
    capacity: f64,
    power: f64,
    water_mean: f64,
}

/// An MRI helium compressor. Input `scan_load` (%) follows the hospital's scanning schedule
/// until pinned; `cooling_water_temp` follows a small daily cycle.
#[derive(Debug)]
pub struct MriCompressor {
    id: String,
    unit: Unit,
    inputs: Inputs,
    faults: FaultBook,
    water: Ou,
    started: bool,
    supply: f64,
    ret: f64,
    oil: f64,
    coldhead: f64,
    cycles: f64,
    /// Helium charge as a fraction of the commissioned charge.
    charge: f64,
    /// Compressor damage, 0 = new, 1 = failed.
    wear: f64,
    failed_at: Option<Timestamp>,
}

impl MriCompressor {
    pub fn new(id: &str, seed: u64) -> Self {
        let mut rng = SimRng::seed_from_u64(seed);
        let unit = Unit {
            static_bar: uniform(&mut rng, 16.2, 16.8),
            capacity: uniform(&mut rng, 0.97, 1.03),
            power: uniform(&mut rng, 0.97, 1.03),
            water_mean: uniform(&mut rng, 14.0, 18.0),
        };
        let cycles = uniform(&mut rng, 5.0e7, 3.0e8).floor();
        MriCompressor {
            id: id.to_string(),
            unit,
            inputs: Inputs::new(INPUTS),
            faults: FaultBook::new(id, &model(), FAULTS, seed),
            water: Ou::new(0.5, 2.0 * 3_600.0, &mut rng),
            started: false,
            supply: 0.0,
            ret: 0.0,
            oil: 0.0,
            coldhead: 0.0,
            cycles,
            charge: 1.0,
            wear: 0.0,
            failed_at: None,
        }
    }

    /// Helium charge left, as a fraction of the commissioned charge.
    pub fn charge(&self) -> f64 {
        self.charge
    }
}

impl Asset for MriCompressor {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> AssetKind {
        AssetKind::MriCompressor
    }

    fn model(&self) -> AssetModel {
        model()
    }

    fn step(&mut self, t: Timestamp, dt_s: f64, rng: &mut SimRng) -> Vec<(String, Value)> {
        let mut out = [0.0; SIGNALS];
        self.step_into(t, dt_s, rng, &mut out);
        self.faults.values(&out)
    }

    fn step_into(&mut self, t: Timestamp, dt_s: f64, rng: &mut SimRng, out: &mut [f64]) {
        let dt = usable_dt(dt_s);
        let z = normals::<8>(rng);
        self.faults.update(t);
        let wear_rate = self.faults.level(FaultKind::CompressorDegradation, t);
        let leak_rate = self.faults.level(FaultKind::HeliumLeak, t);

        let scan = self.inputs.get(0, 100.0 * scan_activity(t));
        let water_noise = self.water.step(dt, z[0]);
        let water = self.inputs.get(
            1,
            self.unit.water_mean + 1.5 * daily_wave(t, 16.0) + water_noise,
        );

        // Damage: compressor wear and adsorber saturation grow on their own (the machine runs
        // 24/7 at constant speed); helium diffuses out at a rate proportional to the charge.
        if self.failed_at.is_none() {
            if wear_rate > 0.0 {
                let rate = damage_rate_per_day() * wear_rate;
                self.wear = grow_damage(self.wear, rate, dt).min(1.0);
                if self.wear >= 1.0 {
                    self.failed_at = Some(t);
                    self.faults.fail(FaultKind::CompressorDegradation, t);
                }
            }
            if leak_rate > 0.0 {
                self.charge *= (-leak_rate * leak_rate_per_day() * dt).exp();
                if self.charge < CHARGE_TRIP && self.failed_at.is_none() {
                    self.failed_at = Some(t);
                    self.faults.fail(FaultKind::HeliumLeak, t);
                }
            }
        }
        let running = self.failed_at.is_none();
        let w = self.wear;

        // Pressures: the static (settle-out) pressure is the charge at gas temperature; running,
        // the compressor splits it into a high and a low side. Worn valves and seals leak
        // internally and narrow the split.
        let gas_k = water + 5.0 + 273.15;
        let p_static = self.unit.static_bar * self.charge * gas_k / 293.15;
        let split = 1.0 - 0.25 * w;
        let (supply_target, return_target) = if running {
            (
                p_static * (1.0 + 0.30 * split),
                p_static * (1.0 - 0.575 * split),
            )
        } else {
            (p_static, p_static)
        };

        // Power: less gas means less mass flow to compress; a worn compressor works harder
        // for the same flow. Heat of compression goes to the oil, cooled by facility water.
        let power = if running {
            POWER_KW * self.unit.power * self.charge.powf(0.8) * (1.0 + 0.15 * w)
        } else {
            0.0
        };
        let oil_target = water + 18.0 * (power / POWER_KW) * (1.0 + 0.8 * w);

        // Cold head: near 4 K the stage temperature rises roughly linearly with heat load over
        // refrigeration capacity. Load is radiation and conduction plus eddy-current heating
        // while gradients run; capacity falls with charge and wear. Without refrigeration the
        // stage warms toward tens of kelvin.
        let load = 0.55 + 0.25 * scan / 100.0;
        let capacity = self.unit.capacity * self.charge.powf(1.5) * (1.0 - 0.45 * w) * split.sqrt();
        let coldhead_target = if running {
            (3.6 + 0.9 * load / capacity.max(0.05)).min(WARM_K)
        } else {
            WARM_K
        };

        if !self.started {
            self.supply = supply_target;
            self.ret = return_target;
            self.oil = oil_target;
            self.coldhead = coldhead_target;
        }
        self.supply = lag(
            self.supply,
            supply_target,
            dt,
            if running { 20.0 } else { 120.0 },
        );
        self.ret = lag(
            self.ret,
            return_target,
            dt,
            if running { 20.0 } else { 120.0 },
        );
        self.oil = lag(self.oil, oil_target, dt, 600.0);
        self.coldhead = lag(
            self.coldhead,
            coldhead_target,
            dt,
            if running { 300.0 } else { 1_800.0 },
        );
        if running {
            self.cycles += CYCLE_HZ * dt;
        }

        self.started = true;
        let values: [f64; SIGNALS] = [
            // scan_load
            scan,
            // cooling_water_temp
            water + 0.05 * z[6],
            // helium_supply_pressure
            self.supply + 0.03 * z[1],
            // helium_return_pressure
            self.ret + 0.02 * z[2],
            // oil_temp
            self.oil + 0.1 * z[3],
            // coldhead_temp
            self.coldhead + 0.005 * z[4],
            // cycle_count
            (self.cycles as i64) as f64,
            // compressor_power
            (power + 0.04 * z[5]).max(0.0),
            // running
            if running { 1.0 } else { 0.0 },
        ];
        self.faults.sense_into(t, dt, &values, out);
    }

    fn inject(&mut self, fault: FaultSpec) -> Result<(), SimError> {
        self.faults.inject(fault)
    }

    fn set_input(&mut self, name: &str, value: f64) -> Result<(), SimError> {
        self.inputs.set(&self.id, name, value)
    }

    fn ground_truth(&self) -> Vec<GroundTruth> {
        self.faults.truth()
    }

    fn failed_at(&self) -> Option<Timestamp> {
        self.failed_at
    }
}
