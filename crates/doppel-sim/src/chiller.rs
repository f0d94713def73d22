//! An air-cooled chiller and the air-handling unit it feeds, conditioning one office floor:
//! a lumped zone heat balance driven by weather, sun and occupancy, a PI-controlled supply-air
//! damper, a coil with NTU effectiveness, and a chiller whose COP follows the Carnot lift.

use doppel_model::{
    AssetModel, PropertySpec, RelationSpec, SignalRole, Timestamp, Value, ValueKind,
};
use rand::SeedableRng;

use crate::asset::{float_signal, running_signal, usable_dt, InputLimit, Inputs};
use crate::fault::FaultBook;
use crate::physics::{
    daily_wave, hour_of_day, lag, leak_rate_per_day, normals, office_occupancy, uniform, Ou,
};
use crate::{Asset, AssetKind, FaultKind, FaultSpec, GroundTruth, SimError, SimRng};

/// Number of signals of the model, the length of a fast-path row.
pub(crate) const SIGNALS: usize = 11;

pub(crate) const MODEL_ID: &str = "chiller";

/// Nominal cooling capacity, kW.
const CAPACITY_KW: f64 = 90.0;
/// Chilled-water flow (constant-speed primary pump), kg/s, and water heat capacity, kJ/(kg·K).
const WATER_KG_S: f64 = 4.3;
const CP_WATER: f64 = 4.186;
/// Supply-air flow at a fully open damper, kg/s, and air heat capacity, kJ/(kg·K).
const AIR_MAX_KG_S: f64 = 8.0;
const CP_AIR: f64 = 1.006;
/// Clean coil conductance, kW/K.
const UA_COIL: f64 = 5.5;
/// Zone heat capacity (air, furniture, a share of the slab), kJ/K: hours of thermal inertia.
const ZONE_CAPACITY: f64 = 25_000.0;
/// Zone setpoints: comfort when occupied, setback when empty.
const ZONE_OCCUPIED: f64 = 23.0;
const ZONE_SETBACK: f64 = 27.0;
/// Refrigerant lost at which the low-pressure switch trips the chiller for good.
const CHARGE_LOSS_TRIP: f64 = 0.5;

const INPUTS: &[InputLimit] = &[
    InputLimit {
        name: "supply_temp_setpoint",
        min: 4.0,
        max: 15.0,
    },
    InputLimit {
        name: "occupancy",
        min: 0.0,
        max: 100.0,
    },
    InputLimit {
        name: "outside_temp",
        min: -30.0,
        max: 50.0,
    },
];

pub(crate) const FAULTS: &[FaultKind] = &[
    FaultKind::RefrigerantLeak,
    FaultKind::FouledCoil,
    FaultKind::StuckDamper,
];

pub(crate) fn model() -> AssetModel {
    use SignalRole::{Disturbance, Input, Output};
    AssetModel {
        id: MODEL_ID.into(),
        name: "Chiller with air-handling unit".into(),
        version: 1,
        description: "90 kW air-cooled chiller and AHU conditioning one office floor".into(),
        signals: vec![
            float_signal(
                "supply_temp_setpoint",
                "°C",
                Input,
                (5.0, 10.0),
                "chilled water",
            ),
            float_signal(
                "occupancy",
                "%",
                Input,
                (0.0, 100.0),
                "share of seats occupied",
            ),
            float_signal(
                "outside_temp",
                "°C",
                Disturbance,
                (-10.0, 40.0),
                "outdoor air",
            ),
            float_signal(
                "supply_water_temp",
                "°C",
                Output,
                (5.0, 10.0),
                "chilled water out",
            ),
            float_signal(
                "return_water_temp",
                "°C",
                Output,
                (5.0, 16.0),
                "chilled water back",
            ),
            float_signal(
                "supply_air_temp",
                "°C",
                Output,
                (5.0, 20.0),
                "after the coil",
            ),
            float_signal("zone_temp", "°C", Output, (18.0, 29.0), "floor average"),
            float_signal(
                "chiller_power",
                "kW",
                Output,
                (0.0, 40.0),
                "electrical input",
            ),
            float_signal("cop", "", Output, (1.0, 7.0), "coefficient of performance"),
            float_signal(
                "damper_position",
                "%",
                Output,
                (0.0, 100.0),
                "supply-air damper",
            ),
            running_signal(),
        ],
        properties: vec![PropertySpec {
            name: "capacity_kw".into(),
            kind: ValueKind::Float,
            required: false,
            unit: "kW".into(),
            description: "nominal cooling capacity".into(),
        }],
        relations: vec![RelationSpec {
            kind: "serves".into(),
            target_model: Some("building_floor".into()),
            description: "the floor this unit conditions".into(),
        }],
        failure_modes: crate::failure_modes::chiller(),
        retention: None,
    }
}

#[derive(Debug, Clone)]
struct Unit {
    capacity: f64,
    ua_envelope: f64,
    solar_gain: f64,
    outside_mean: f64,
}

/// A chiller and AHU serving an office floor. Inputs `supply_temp_setpoint` (°C) and
/// `occupancy` (%) follow a fixed setpoint and the office schedule until pinned;
/// `outside_temp` follows a daily sinusoid plus weather.
#[derive(Debug)]
pub struct Chiller {
    id: String,
    unit: Unit,
    inputs: Inputs,
    faults: FaultBook,
    weather: Ou,
    started: bool,
    zone: f64,
    supply_water: f64,
    return_water: f64,
    damper: f64,
    integral: f64,
    /// Where a failed damper actuator left the damper.
    stuck_from: Option<f64>,
    /// Fraction of the refrigerant charge lost.
    charge_lost: f64,
    failed_at: Option<Timestamp>,
}

impl Chiller {
    pub fn new(id: &str, seed: u64) -> Self {
        let mut rng = SimRng::seed_from_u64(seed);
        let unit = Unit {
            capacity: CAPACITY_KW * uniform(&mut rng, 0.95, 1.05),
            ua_envelope: uniform(&mut rng, 0.8, 1.0),
            solar_gain: uniform(&mut rng, 10.0, 14.0),
            outside_mean: uniform(&mut rng, 20.0, 25.0),
        };
        Chiller {
            id: id.to_string(),
            unit,
            inputs: Inputs::new(INPUTS),
            faults: FaultBook::new(id, &model(), FAULTS, seed),
            weather: Ou::new(2.0, 6.0 * 3_600.0, &mut rng),
            started: false,
            zone: 0.0,
            supply_water: 0.0,
            return_water: 0.0,
            damper: 0.0,
            integral: 0.0,
            stuck_from: None,
            charge_lost: 0.0,
            failed_at: None,
        }
    }
}

impl Asset for Chiller {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> AssetKind {
        AssetKind::Chiller
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
        let z = normals::<10>(rng);
        if self.faults.update(t).contains(&FaultKind::StuckDamper) {
            self.stuck_from = Some(self.damper);
        }
        if !self.faults.is_active(FaultKind::StuckDamper, t) {
            self.stuck_from = None;
        }
        let leak_rate = self.faults.level(FaultKind::RefrigerantLeak, t);
        let fouling = self.faults.level(FaultKind::FouledCoil, t).min(1.0);
        let stuck = self.faults.level(FaultKind::StuckDamper, t).min(1.0);

        let setpoint = self.inputs.get(0, 7.0);
        let occupancy = self.inputs.get(1, 100.0 * office_occupancy(t));
        let weather = self.weather.step(dt, z[0]);
        let outside = self.inputs.get(
            2,
            self.unit.outside_mean + 6.0 * daily_wave(t, 15.0) + weather,
        );
        let occ = occupancy / 100.0;
        let occupied = occupancy > 5.0;
        let zone_setpoint = if occupied {
            ZONE_OCCUPIED
        } else {
            ZONE_SETBACK
        };

        // Heat gains into the zone (kW): people, lights and plug loads, sun through the
        // glazing (06–20, peaking at 13), conduction through the envelope and, when the AHU ventilates, fresh air.
        let h = hour_of_day(t);
        let sun = (std::f64::consts::PI * (h - 6.0) / 14.0).sin().max(0.0);
        let ventilation = if occupied { 0.5 + 1.0 * occ } else { 0.0 };
        let gains = 9.6 * occ
            + 3.0
            + 15.0 * occ
            + self.unit.solar_gain * sun
            + self.unit.ua_envelope * (outside - self.zone_or(zone_setpoint))
            + ventilation * CP_AIR * (outside - self.zone_or(zone_setpoint));

        if !self.started {
            // Warm start near equilibrium, so a demo does not open on a minutes-long transient.
            self.zone = zone_setpoint;
            self.supply_water = setpoint;
            self.return_water = setpoint + 1.0;
            let per_kg = CP_AIR * 0.65 * (self.zone - setpoint).max(1.0);
            self.integral = (100.0 * gains / (AIR_MAX_KG_S * per_kg)).clamp(0.0, 100.0);
            self.damper = self.integral;
        }

        // Damper: PI on zone temperature (reverse acting: warmer opens), minimum position for
        // ventilation when occupied, fan off when not. A failed actuator lets the spring pull
        // the damper from where it was toward closed, by `severity`.
        let error = self.zone - zone_setpoint;
        let (kp, ti) = (25.0, 900.0);
        self.integral = (self.integral + kp / ti * error * dt).clamp(0.0, 100.0);
        let min_position = if occupied { 10.0 } else { 0.0 };
        let command = (kp * error + self.integral).clamp(min_position, 100.0);
        let target = match self.stuck_from {
            Some(from) => from * (1.0 - stuck),
            None => command,
        };
        self.damper = lag(self.damper, target, dt, 30.0);

        // Coil: counterflow with air the smaller heat-capacity stream, ε = 1 − e^(−NTU).
        // Fouling insulates the fins and cuts UA, so the air leaves warmer (larger approach).
        let air = (AIR_MAX_KG_S * self.damper / 100.0).max(1e-3);
        let ntu = UA_COIL * (1.0 - 0.65 * fouling) / (air * CP_AIR);
        let effectiveness = 1.0 - (-ntu).exp();
        let supply_air = self.zone - effectiveness * (self.zone - self.supply_water);
        let coil_kw = air * CP_AIR * (self.zone - supply_air);

        // Zone heat balance, explicit over dt: hours of inertia against a step of seconds.
        self.zone += (gains - coil_kw) * dt / ZONE_CAPACITY;

        // Refrigerant escapes at a rate proportional to what is left; undercharge lowers the
        // evaporating pressure and the mass flow, so capacity and COP both fall, and the
        // low-pressure switch trips the machine for good.
        let running = self.failed_at.is_none();
        if running && leak_rate > 0.0 {
            let remaining =
                (1.0 - self.charge_lost) * (-leak_rate * leak_rate_per_day() * dt).exp();
            self.charge_lost = 1.0 - remaining;
            if self.charge_lost >= CHARGE_LOSS_TRIP {
                self.failed_at = Some(t);
                self.faults.fail(FaultKind::RefrigerantLeak, t);
            }
        }
        let running = self.failed_at.is_none();
        let lost = self.charge_lost;

        // Chiller: removes what it takes to bring the return water to setpoint, up to its
        // capacity (less when undercharged or when the condenser air is very hot).
        let capacity = self.unit.capacity
            * (1.0 - 1.2 * lost).max(0.0)
            * (1.0 - 0.01 * (outside - 35.0).max(0.0));
        let wanted = WATER_KG_S * CP_WATER * (self.return_water - setpoint);
        let chiller_kw = if running {
            wanted.clamp(0.0, capacity)
        } else {
            0.0
        };
        let supply_target = self.return_water - chiller_kw / (WATER_KG_S * CP_WATER);
        let return_target = self.supply_water + coil_kw / (WATER_KG_S * CP_WATER);
        self.supply_water = lag(self.supply_water, supply_target, dt, 120.0);
        self.return_water = lag(self.return_water, return_target, dt, 180.0);

        // COP: half the Carnot COP between evaporating and condensing temperatures, derated
        // at part load (cycling, fixed losses) and when undercharged.
        let t_evap = self.supply_water - 4.0 - 8.0 * lost;
        let t_cond = outside + 10.0;
        let carnot = (t_evap + 273.15) / (t_cond - t_evap).max(5.0);
        let plr = (chiller_kw / CAPACITY_KW).clamp(0.0, 1.2);
        let part_load = 0.5 + plr - 0.5 * plr * plr;
        let cop = if running {
            (0.5 * carnot * part_load * (1.0 - 0.3 * lost)).clamp(0.5, 9.0)
        } else {
            0.0
        };
        let power = if running { chiller_kw / cop + 1.0 } else { 0.0 };

        self.started = true;
        let values: [f64; SIGNALS] = [
            // supply_temp_setpoint
            setpoint,
            // occupancy
            occupancy,
            // outside_temp
            outside + 0.1 * z[8],
            // supply_water_temp
            self.supply_water + 0.05 * z[1],
            // return_water_temp
            self.return_water + 0.05 * z[2],
            // supply_air_temp
            supply_air + 0.1 * z[3],
            // zone_temp
            self.zone + 0.05 * z[4],
            // chiller_power
            (power + 0.1 * z[5]).max(0.0),
            // cop
            (cop + 0.02 * z[6]).max(0.0),
            // damper_position
            (self.damper + 0.2 * z[7]).clamp(0.0, 100.0),
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

impl Chiller {
    /// The zone temperature, or `fallback` before the first step has set it.
    fn zone_or(&self, fallback: f64) -> f64 {
        if self.started {
            self.zone
        } else {
            fallback
        }
    }
}
