//! A centrifugal pump driven by a VFD-fed induction motor, circulating a closed cooling-water
//! loop: affinity-law hydraulics, motor current from shaft power, first-order bearing and
//! winding temperatures, vibration split into the bands a condition-monitoring system reports.

use doppel_model::{AssetModel, SignalRole, Timestamp, Value};
use rand::SeedableRng;

use crate::asset::{float_signal, running_signal, usable_dt, InputLimit, Inputs};
use crate::fault::FaultBook;
use crate::physics::{
    daily_wave, damage_rate_per_day, grow_damage, lag, normals, production_demand, uniform, Ou,
};
use crate::{Asset, AssetKind, FaultKind, FaultSpec, GroundTruth, SimError, SimRng};

/// Number of signals of the model, the length of a fast-path row.
pub(crate) const SIGNALS: usize = 18;

pub(crate) const MODEL_ID: &str = "centrifugal_pump";

/// Rated speed of a 2-pole motor on 50 Hz, rpm.
const N_RATED: f64 = 2_950.0;
/// Head at zero flow and rated speed, m.
const H_SHUTOFF: f64 = 60.0;
/// Best-efficiency point at rated speed: flow (m³/h) and head (m).
const Q_BEP: f64 = 120.0;
const H_BEP: f64 = 50.0;
/// Pump curve `H = H_SHUTOFF·r² − A·Q²`, through the best-efficiency point.
const A_PUMP: f64 = (H_SHUTOFF - H_BEP) / (Q_BEP * Q_BEP);
/// System curve `H = (K_PIPE + K_VALVE / v²)·Q²`: pipework plus a valve open by fraction `v`.
/// A closed loop has no static head, so the operating point obeys the affinity laws exactly.
const K_PIPE: f64 = 2.0e-3;
const K_VALVE: f64 = 1.47e-3;
/// Conductance (m³/h per √m of head) of a seal leak at severity 1: ~40 m³/h lost at full head.
const SEAL_LEAK_CONDUCTANCE: f64 = 6.0;
/// Water: bar per metre of head.
const BAR_PER_M: f64 = 0.0981;
const MOTOR_RATED_KW: f64 = 30.0;
const MOTOR_RATED_A: f64 = 54.0;
const MOTOR_VOLTAGE: f64 = 400.0;
/// Magnetising current, constant under V/f control.
const MAGNETISING_A: f64 = 14.0;

const INPUTS: &[InputLimit] = &[
    InputLimit {
        name: "speed_cmd",
        min: 0.0,
        max: 3_600.0,
    },
    InputLimit {
        name: "valve_opening",
        min: 0.0,
        max: 100.0,
    },
    InputLimit {
        name: "ambient_temp",
        min: -40.0,
        max: 60.0,
    },
];

pub(crate) const FAULTS: &[FaultKind] = &[
    FaultKind::BearingWear,
    FaultKind::Cavitation,
    FaultKind::Misalignment,
    FaultKind::SealLeak,
    FaultKind::MotorOverheating,
];

pub(crate) fn model() -> AssetModel {
    use SignalRole::{Disturbance, Input, Output};
    AssetModel {
        id: MODEL_ID.into(),
        name: "Centrifugal pump with induction motor".into(),
        version: 1,
        description: "VFD-driven pump circulating a closed cooling-water loop (30 kW, 2950 rpm, \
                      120 m³/h at 50 m)"
            .into(),
        signals: vec![
            float_signal(
                "speed_cmd",
                "rpm",
                Input,
                (1_500.0, 3_000.0),
                "VFD speed setpoint",
            ),
            float_signal(
                "valve_opening",
                "%",
                Input,
                (20.0, 100.0),
                "discharge valve position",
            ),
            float_signal(
                "ambient_temp",
                "°C",
                Disturbance,
                (-5.0, 40.0),
                "pump-house air",
            ),
            float_signal("speed", "rpm", Output, (1_500.0, 3_000.0), "shaft speed"),
            float_signal("flow", "m³/h", Output, (40.0, 135.0), "delivered flow"),
            float_signal("suction_pressure", "bar", Output, (1.0, 2.2), "absolute"),
            float_signal("discharge_pressure", "bar", Output, (2.5, 8.0), "absolute"),
            float_signal("motor_current", "A", Output, (0.0, 54.0), "phase current"),
            float_signal("motor_power", "kW", Output, (0.0, 30.0), "electrical input"),
            float_signal(
                "motor_winding_temp",
                "°C",
                Output,
                (0.0, 110.0),
                "stator winding",
            ),
            float_signal(
                "bearing_temp_de",
                "°C",
                Output,
                (0.0, 80.0),
                "drive-end bearing",
            ),
            float_signal(
                "bearing_temp_nde",
                "°C",
                Output,
                (0.0, 80.0),
                "non-drive-end bearing",
            ),
            float_signal(
                "vib_rms",
                "mm/s",
                Output,
                (0.0, 4.5),
                "overall velocity RMS",
            ),
            float_signal(
                "vib_1x",
                "mm/s",
                Output,
                (0.0, 2.8),
                "1× running speed (unbalance)",
            ),
            float_signal(
                "vib_2x",
                "mm/s",
                Output,
                (0.0, 1.5),
                "2× running speed (misalignment)",
            ),
            float_signal(
                "vib_bearing",
                "mm/s",
                Output,
                (0.0, 1.0),
                "bearing-defect band",
            ),
            float_signal(
                "vib_broadband",
                "mm/s",
                Output,
                (0.0, 1.5),
                "broadband (hydraulic)",
            ),
            running_signal(),
        ],
        properties: vec![
            doppel_model::PropertySpec {
                name: "rated_power_kw".into(),
                kind: doppel_model::ValueKind::Float,
                required: false,
                unit: "kW".into(),
                description: "motor nameplate power".into(),
            },
            doppel_model::PropertySpec {
                name: "serial".into(),
                kind: doppel_model::ValueKind::String,
                required: false,
                unit: String::new(),
                description: String::new(),
            },
        ],
        relations: vec![doppel_model::RelationSpec {
            kind: "feeds".into(),
            target_model: None,
            description: "where the pumped water goes".into(),
        }],
        failure_modes: crate::failure_modes::pump(),
        retention: None,
    }
}

/// Manufacturing and installation spread of one unit.
#[derive(Debug, Clone)]
struct Unit {
    unbalance: f64,
    valve: f64,
    efficiency: f64,
    friction_de: f64,
    friction_nde: f64,
    tank_bar: f64,
    ambient_mean: f64,
}

/// A centrifugal pump and its motor. Inputs `speed_cmd` (rpm) and `valve_opening` (%) follow
/// the production schedule until pinned; `ambient_temp` follows the daily cycle.
#[derive(Debug)]
pub struct PumpMotor {
    id: String,
    unit: Unit,
    inputs: Inputs,
    faults: FaultBook,
    weather: Ou,
    started: bool,
    speed: f64,
    valve: f64,
    /// Shaft power as a fraction of the motor rating, from the previous step (sets the slip).
    load: f64,
    t_winding: f64,
    t_de: f64,
    t_nde: f64,
    /// Bearing damage, 0 = new, 1 = failed.
    wear: f64,
    failed_at: Option<Timestamp>,
}

impl PumpMotor {
    pub fn new(id: &str, seed: u64) -> Self {
        let mut rng = SimRng::seed_from_u64(seed);
        let unit = Unit {
            unbalance: uniform(&mut rng, 0.9, 1.4),
            valve: uniform(&mut rng, 72.0, 88.0),
            efficiency: uniform(&mut rng, 0.97, 1.01),
            friction_de: uniform(&mut rng, 0.9, 1.1),
            friction_nde: uniform(&mut rng, 0.9, 1.1),
            tank_bar: uniform(&mut rng, 1.75, 1.85),
            ambient_mean: uniform(&mut rng, 20.0, 24.0),
        };
        PumpMotor {
            id: id.to_string(),
            unit,
            inputs: Inputs::new(INPUTS),
            faults: FaultBook::new(id, &model(), FAULTS, seed),
            weather: Ou::new(1.0, 3.0 * 3_600.0, &mut rng),
            started: false,
            speed: 0.0,
            valve: 0.0,
            load: 0.0,
            t_winding: 0.0,
            t_de: 0.0,
            t_nde: 0.0,
            wear: 0.0,
            failed_at: None,
        }
    }

    /// Bearing damage so far, 0 = new, 1 = failed.
    pub fn wear(&self) -> f64 {
        self.wear
    }
}

impl Asset for PumpMotor {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> AssetKind {
        AssetKind::PumpMotor
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
        let z = normals::<16>(rng);
        self.faults.update(t);
        let wear_rate = self.faults.level(FaultKind::BearingWear, t);
        let cav = self.faults.level(FaultKind::Cavitation, t).min(1.0);
        let mis = self.faults.level(FaultKind::Misalignment, t).min(1.0);
        let seal = self.faults.level(FaultKind::SealLeak, t).min(1.0);
        let hot = self.faults.level(FaultKind::MotorOverheating, t).min(1.0);

        // Drivers: VFD speed follows production demand (flow control by speed, the efficient
        // way); the valve stays where commissioning left it.
        let speed_cmd = self
            .inputs
            .get(0, N_RATED * (0.6 + 0.4 * production_demand(t)));
        let valve_cmd = self.inputs.get(1, self.unit.valve);
        let weather = self.weather.step(dt, z[0]);
        let ambient = self.inputs.get(
            2,
            self.unit.ambient_mean + 4.0 * daily_wave(t, 15.0) + weather,
        );

        // Shaft speed: the drive ramps within seconds; slip grows with load; a failed pump
        // trips and coasts down.
        let running = self.failed_at.is_none();
        let speed_target = if running {
            speed_cmd * (1.0 - 0.012 * self.load)
        } else {
            0.0
        };
        if !self.started {
            self.speed = speed_target;
            self.valve = valve_cmd / 100.0;
        }
        self.speed = lag(
            self.speed,
            speed_target,
            dt,
            if running { 3.0 } else { 8.0 },
        );
        self.valve = lag(self.valve, valve_cmd / 100.0, dt, 10.0);
        let r = (self.speed / N_RATED).max(0.0);
        let turning = self.speed > 30.0;

        // Operating point: pump curve H = Hs·r² − A·Q², delivered flow through the system
        // conductance g·√H and a seal leak c·√H in parallel, solved in closed form. With no
        // static head, Q ∝ r and H ∝ r² (affinity laws). Cavitation breaks the head down.
        let g_sys = self.valve / (K_PIPE * self.valve * self.valve + K_VALVE).sqrt();
        let c_leak = SEAL_LEAK_CONDUCTANCE * seal;
        let g_all = g_sys + c_leak;
        let head = H_SHUTOFF * r * r / (1.0 + A_PUMP * g_all * g_all) * (1.0 - 0.06 * cav);
        let sqrt_h = head.max(0.0).sqrt();
        let q_delivered = g_sys * sqrt_h;
        let q_pump = g_all * sqrt_h;

        // Suction side: tank pressure minus line losses; a clogging strainer (cavitation)
        // adds a loss that grows with flow squared.
        let q_rel = q_pump / Q_BEP;
        let p_suction = self.unit.tank_bar - 0.12 * q_rel * q_rel - 1.6 * cav * q_rel * q_rel;
        let p_discharge = p_suction + BAR_PER_M * head;

        // Power: hydraulic power over a parabolic efficiency around the (speed-scaled) BEP,
        // plus bearing, coupling and seal friction, over the motor efficiency.
        let q_bep = (q_pump / (Q_BEP * r.max(0.05))).clamp(0.0, 3.0);
        let eta_pump = (0.78 * (1.0 - 0.9 * (q_bep - 1.0).powi(2)) * self.unit.efficiency)
            .clamp(0.1, 0.8)
            * (1.0 - 0.08 * cav);
        let p_hydraulic = 9.81 * q_pump / 3_600.0 * head;
        let p_friction = r * (0.3 + 0.5 * mis + 0.8 * self.wear * self.wear);
        let p_shaft = if turning {
            p_hydraulic / eta_pump + p_friction
        } else {
            0.0
        };
        let load = p_shaft / MOTOR_RATED_KW;
        let eta_motor = 0.94 - 0.06 * (1.0 - load.min(1.0)).powi(2);
        let p_electric = if turning {
            p_shaft / eta_motor + 0.8 * hot * r
        } else {
            0.0
        };
        // V/f control: voltage ∝ speed, so active current ∝ torque; magnetising current is
        // constant. Voltage unbalance or shorted turns draw extra (negative-sequence) current.
        let current = if turning {
            let active = p_electric * 1_000.0 / (3f64.sqrt() * MOTOR_VOLTAGE * r.max(0.1));
            (active * active + MAGNETISING_A * MAGNETISING_A).sqrt() * (1.0 + 0.12 * hot)
        } else {
            0.0
        };
        self.load = load;

        // Damage: bearing life L10 ∝ (C/P)³ per revolution, so wear grows with speed times
        // the cube of bearing load (a static share plus a hydraulic share ∝ head ∝ r²).
        // Misalignment loads the bearings too.
        if running && wear_rate > 0.0 {
            let bearing_load = (0.5 + 0.5 * r * r) * (1.0 + 0.3 * mis);
            let rate = damage_rate_per_day() * wear_rate * r * bearing_load.powi(3);
            self.wear = grow_damage(self.wear, rate, dt).min(1.0);
            if self.wear >= 1.0 {
                self.failed_at = Some(t);
                self.faults.fail(FaultKind::BearingWear, t);
            }
        }

        // Temperatures: first-order lags toward ambient plus heat generated. Copper losses go
        // with current squared, and the shaft fan cools less at low speed; bearing friction
        // heat grows with speed, load, misalignment and damage.
        let winding_target = ambient
            + 90.0 * (current / MOTOR_RATED_A).powi(2) * (1.0 + 1.2 * hot) / (0.4 + 0.6 * r);
        let de_target = ambient
            + r * self.unit.friction_de * (12.0 + 9.0 * mis + 45.0 * self.wear * self.wear)
            + 10.0 * load;
        let nde_target = ambient
            + r * self.unit.friction_nde * (10.0 + 7.0 * mis + 12.0 * self.wear * self.wear)
            + 6.0 * load;
        if !self.started {
            self.t_winding = winding_target;
            self.t_de = de_target;
            self.t_nde = nde_target;
        }
        self.t_winding = lag(self.t_winding, winding_target, dt, 1_200.0);
        self.t_de = lag(self.t_de, de_target, dt, 900.0);
        self.t_nde = lag(self.t_nde, nde_target, dt, 900.0);

        // Vibration bands (velocity RMS): unbalance at 1× grows with speed², misalignment
        // shows at 2×, spalls ring in the bearing-defect band, flow turbulence off the BEP and
        // cavitation are broadband. Band energies add, so the overall RMS is their root sum
        // of squares.
        let r2 = r * r;
        let noisy = |v: f64, z: f64| (v * (1.0 + 0.05 * z)).max(0.0);
        let v1x = noisy((self.unit.unbalance + 0.4 * mis) * r2, z[11]);
        let v2x = noisy((0.3 + 3.0 * mis) * r2, z[12]);
        let w = self.wear;
        let vbearing = noisy((0.1 + 0.5 * w + 6.0 * w * w) * r.max(0.05), z[13]);
        let vbroad = noisy(
            0.4 * r2 * (1.0 + 2.0 * (q_bep - 1.0).powi(2)) + 2.5 * cav * r2,
            z[14],
        );
        let vrms =
            (v1x * v1x + v2x * v2x + vbearing * vbearing + vbroad * vbroad + 0.02 * 0.02).sqrt();

        self.started = true;
        let flow = (q_delivered * (1.0 + 0.005 * z[2] + 0.06 * cav * z[3])).max(0.0);
        let values: [f64; SIGNALS] = [
            // speed_cmd
            speed_cmd,
            // valve_opening
            valve_cmd,
            // ambient_temp
            ambient + 0.1 * z[15],
            // speed
            (self.speed + 2.0 * z[1]).max(0.0),
            // flow
            flow,
            // suction_pressure
            p_suction + 0.01 * z[4],
            // discharge_pressure
            p_discharge + 0.015 * z[5],
            // motor_current
            (current + 0.2 * z[6]).max(0.0),
            // motor_power
            (p_electric + 0.1 * z[7]).max(0.0),
            // motor_winding_temp
            self.t_winding + 0.2 * z[8],
            // bearing_temp_de
            self.t_de + 0.15 * z[9],
            // bearing_temp_nde
            self.t_nde + 0.15 * z[10],
            // vib_rms
            vrms,
            // vib_1x
            v1x,
            // vib_2x
            v2x,
            // vib_bearing
            vbearing,
            // vib_broadband
            vbroad,
            // running
            if self.failed_at.is_none() { 1.0 } else { 0.0 },
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
