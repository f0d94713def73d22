//! Pump histories from the physics simulator, driven like a real plant's operating history:
//! the speed setpoint and the discharge valve are moved by a seeded random schedule of steps
//! (the simulator's own schedule keeps the valve fixed, which would leave its effect
//! unidentifiable), the ambient temperature follows the simulator's weather, and readings come
//! at irregular intervals of 1 to 5 s.

#![allow(dead_code)]

use doppel_analytics::sysid::Series;
use doppel_sim::{seeded_rng, Asset, AssetKind, PumpMotor, SimRng, RUN_START};

pub const NS: i64 = 1_000_000_000;

/// A deterministic xorshift generator for schedules, separate from the simulator's noise.
#[derive(Debug, Clone)]
pub struct Xorshift(pub u64);

impl Xorshift {
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
}

/// Random operating schedule: speed steps every 15–75 min, valve moves every 30–150 min.
#[derive(Debug, Clone)]
pub struct Schedule {
    rng: Xorshift,
    pub speed: f64,
    pub valve: f64,
    next_speed_s: f64,
    next_valve_s: f64,
}

impl Schedule {
    pub fn new(seed: u64) -> Self {
        Schedule {
            rng: Xorshift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            speed: 2_600.0,
            valve: 80.0,
            next_speed_s: 0.0,
            next_valve_s: 0.0,
        }
    }

    /// Advances to `t_s` seconds into the run; true when a setpoint changed.
    pub fn at(&mut self, t_s: f64) -> bool {
        let mut changed = false;
        if t_s >= self.next_speed_s {
            self.speed = self.rng.range(1_800.0, 3_000.0).round();
            self.next_speed_s = t_s + self.rng.range(900.0, 4_500.0);
            changed = true;
        }
        if t_s >= self.next_valve_s {
            self.valve = self.rng.range(35.0, 100.0).round();
            self.next_valve_s = t_s + self.rng.range(1_800.0, 9_000.0);
            changed = true;
        }
        changed
    }
}

/// A pump with its noise generator and recorded readings.
#[derive(Debug)]
pub struct SimPump {
    pub pump: PumpMotor,
    pub rng: SimRng,
    pub names: Vec<String>,
    pub readings: Vec<Vec<(i64, f64)>>,
    /// Simulated time, ns.
    pub t: i64,
    buf: Vec<f64>,
}

impl SimPump {
    pub fn new(id: &str, seed: u64) -> Self {
        let pump = PumpMotor::new(id, seed);
        let names: Vec<String> = pump
            .model()
            .signals
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let n = names.len();
        SimPump {
            pump,
            rng: seeded_rng(seed ^ 0x5EED),
            readings: vec![Vec::new(); n],
            names,
            t: RUN_START,
            buf: vec![0.0; n],
        }
    }

    pub fn set(&mut self, name: &str, value: f64) {
        self.pump
            .set_input(name, value)
            .unwrap_or_else(|e| panic!("set {name}={value}: {e}"));
    }

    /// One step of `dt_s` seconds; records and returns the readings.
    pub fn step(&mut self, dt_s: f64) -> &[f64] {
        self.t += (dt_s * NS as f64).round() as i64;
        self.pump
            .step_into(self.t, dt_s, &mut self.rng, &mut self.buf);
        for (i, v) in self.buf.iter().enumerate() {
            if v.is_finite() {
                self.readings[i].push((self.t, *v));
            }
        }
        &self.buf
    }

    pub fn value(&self, name: &str) -> f64 {
        let i = self.index(name);
        self.buf[i]
    }

    pub fn index(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no signal {name}"))
    }

    pub fn elapsed_s(&self) -> f64 {
        (self.t - RUN_START) as f64 / NS as f64
    }

    /// Runs `duration_s` under `schedule` at irregular 1–5 s steps, ending exactly on a
    /// multiple of 30 s.
    pub fn run_schedule(
        &mut self,
        schedule: &mut Schedule,
        jitter: &mut Xorshift,
        duration_s: f64,
    ) {
        let end = self.elapsed_s() + duration_s;
        while self.elapsed_s() < end - 1e-9 {
            if schedule.at(self.elapsed_s()) {
                self.set("speed_cmd", schedule.speed);
                self.set("valve_opening", schedule.valve);
            }
            let dt = (1.0 + (jitter.next() * 5.0).floor()).min(end - self.elapsed_s());
            self.step(dt);
        }
    }

    /// The recorded readings as series.
    pub fn history(&self) -> Vec<Series> {
        self.names
            .iter()
            .zip(&self.readings)
            .map(|(n, r)| Series::new(n.clone(), r.clone()))
            .collect()
    }

    /// Readings from `from` (ns, inclusive) on.
    pub fn history_since(&self, from: i64) -> Vec<Series> {
        self.names
            .iter()
            .zip(&self.readings)
            .map(|(n, r)| {
                let i = r.partition_point(|p| p.0 < from);
                Series::new(n.clone(), r[i..].to_vec())
            })
            .collect()
    }
}

/// The pump's asset model.
pub fn pump_model() -> doppel_model::AssetModel {
    AssetKind::PumpMotor.model()
}

/// A pump run for `days` under a random schedule (seeds for the unit and the schedule).
pub fn pump_history(seed: u64, days: f64) -> SimPump {
    let mut p = SimPump::new("pump-1", seed);
    let mut schedule = Schedule::new(seed);
    let mut jitter = Xorshift(seed.wrapping_add(77) | 1);
    p.run_schedule(&mut schedule, &mut jitter, days * 86_400.0);
    p
}
