//! Faults: what can go wrong with an asset or one of its sensors, when it starts and how hard it
//! hits, plus the ground truth each asset keeps so detectors and RUL models can be scored.
//!
//! Three families share one [`FaultSpec`]:
//! - *steady* process faults (cavitation, misalignment, seal leak, motor overheating, fouled
//!   coil, stuck damper): `severity` in `[0, 1]` is the magnitude reached `ramp_s` after onset;
//! - *progressive* process faults (bearing wear, compressor degradation, helium and refrigerant
//!   leaks): `severity` is a rate, 1.0 meaning "fails in about a day at rated load" for wear and
//!   "loses half its charge per day" for leaks; `ramp_s` ramps the rate in. They end in a
//!   recorded failure;
//! - *sensor* faults on one named signal (drift, stuck, spikes, dropout, noise burst): the
//!   physics is untouched, only what the sensor reports is wrong.

use doppel_model::{AssetModel, Timestamp, Value, ValueKind};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::physics::{add_secs, secs_between};
use crate::{SimError, SimRng};

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Pump: rolling-element bearing spalling at the drive end; progressive, ends in failure.
    BearingWear,
    /// Pump: suction pressure too low (clogged strainer), vapour bubbles collapse in the impeller.
    Cavitation,
    /// Pump: shaft misalignment at the coupling.
    Misalignment,
    /// Pump: mechanical seal leaking pumped water out of the loop.
    SealLeak,
    /// Pump: motor running hot (voltage unbalance, blocked cooling).
    MotorOverheating,
    /// Chiller: refrigerant escaping; progressive, ends in a low-pressure trip.
    RefrigerantLeak,
    /// Chiller: fouled air-side cooling coil.
    FouledCoil,
    /// Chiller: supply-air damper actuator failed; the damper springs toward closed and stays.
    StuckDamper,
    /// MRI compressor: wear and adsorber saturation; progressive, ends in failure.
    CompressorDegradation,
    /// MRI compressor: helium escaping; progressive, ends in a low-pressure trip.
    HeliumLeak,
    /// Sensor: offset growing to `severity` × the signal's normal span over `ramp_s`, then held.
    SensorDrift,
    /// Sensor: reports the value it had when the fault started.
    SensorStuck,
    /// Sensor: random spikes, about `0.05 × severity` per second, up to a span or more high.
    SensorSpikes,
    /// Sensor: each reading is lost with probability `severity`.
    SensorDropout,
    /// Sensor: extra Gaussian noise of `0.1 × severity` × the span.
    SensorNoiseBurst,
}

impl FaultKind {
    pub const ALL: [FaultKind; 15] = [
        FaultKind::BearingWear,
        FaultKind::Cavitation,
        FaultKind::Misalignment,
        FaultKind::SealLeak,
        FaultKind::MotorOverheating,
        FaultKind::RefrigerantLeak,
        FaultKind::FouledCoil,
        FaultKind::StuckDamper,
        FaultKind::CompressorDegradation,
        FaultKind::HeliumLeak,
        FaultKind::SensorDrift,
        FaultKind::SensorStuck,
        FaultKind::SensorSpikes,
        FaultKind::SensorDropout,
        FaultKind::SensorNoiseBurst,
    ];

    pub const SENSOR: [FaultKind; 5] = [
        FaultKind::SensorDrift,
        FaultKind::SensorStuck,
        FaultKind::SensorSpikes,
        FaultKind::SensorDropout,
        FaultKind::SensorNoiseBurst,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::BearingWear => "bearing_wear",
            FaultKind::Cavitation => "cavitation",
            FaultKind::Misalignment => "misalignment",
            FaultKind::SealLeak => "seal_leak",
            FaultKind::MotorOverheating => "motor_overheating",
            FaultKind::RefrigerantLeak => "refrigerant_leak",
            FaultKind::FouledCoil => "fouled_coil",
            FaultKind::StuckDamper => "stuck_damper",
            FaultKind::CompressorDegradation => "compressor_degradation",
            FaultKind::HeliumLeak => "helium_leak",
            FaultKind::SensorDrift => "sensor_drift",
            FaultKind::SensorStuck => "sensor_stuck",
            FaultKind::SensorSpikes => "sensor_spikes",
            FaultKind::SensorDropout => "sensor_dropout",
            FaultKind::SensorNoiseBurst => "sensor_noise_burst",
        }
    }

    /// Whether the fault is in a sensor (needs `signal`) rather than in the process.
    pub fn is_sensor(self) -> bool {
        Self::SENSOR.contains(&self)
    }

    /// Whether `severity` is a rate of damage that ends in failure rather than a magnitude.
    pub fn is_progressive(self) -> bool {
        matches!(
            self,
            FaultKind::BearingWear
                | FaultKind::CompressorDegradation
                | FaultKind::HeliumLeak
                | FaultKind::RefrigerantLeak
        )
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One fault to inject: what, on which signal (sensor faults only), from when, how hard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub kind: FaultKind,
    /// The affected signal; required for sensor faults, absent for process faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// When the fault starts (ns since the epoch).
    pub onset: Timestamp,
    /// Magnitude for steady and sensor faults, rate for progressive ones (see the module doc).
    pub severity: f64,
    /// Seconds from onset until `severity` is fully reached; 0 means at once.
    #[serde(default)]
    pub ramp_s: f64,
    /// Seconds the fault lasts; `None` means until the end of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
}

impl FaultSpec {
    /// A fault at full `severity` from `onset` on, for good.
    pub fn new(kind: FaultKind, onset: Timestamp, severity: f64) -> Self {
        FaultSpec {
            kind,
            signal: None,
            onset,
            severity,
            ramp_s: 0.0,
            duration_s: None,
        }
    }

    pub fn ramp(mut self, ramp_s: f64) -> Self {
        self.ramp_s = ramp_s;
        self
    }

    pub fn on_signal(mut self, signal: impl Into<String>) -> Self {
        self.signal = Some(signal.into());
        self
    }

    pub fn lasting(mut self, duration_s: f64) -> Self {
        self.duration_s = Some(duration_s);
        self
    }

    /// Fraction of `severity` in effect at `t`: 0 before onset and after the end, ramping
    /// linearly to 1 over `ramp_s`.
    pub fn intensity(&self, t: Timestamp) -> f64 {
        if t < self.onset {
            return 0.0;
        }
        let elapsed = secs_between(self.onset, t);
        if self.duration_s.is_some_and(|d| elapsed >= d) {
            return 0.0;
        }
        if self.ramp_s <= 0.0 {
            1.0
        } else {
            (elapsed / self.ramp_s).min(1.0)
        }
    }
}

/// What really happened to an asset: the label detectors and RUL models are scored against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    pub asset_id: String,
    pub kind: FaultKind,
    /// The affected sensor, for sensor faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    pub onset: Timestamp,
    /// When a fault with a duration stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Timestamp>,
    /// When this fault made the asset fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Timestamp>,
}

#[derive(Debug)]
struct Injected {
    spec: FaultSpec,
    /// Index into the ground truth once the fault has started.
    truth: Option<usize>,
    /// Position of the affected signal in the model, for sensor faults.
    slot: Option<usize>,
    /// A stuck sensor's frozen value, taken at the first step of the fault.
    held: Option<f64>,
}

/// Span and kind of one signal, used to scale sensor faults to what is normal for it.
#[derive(Debug)]
struct SignalScale {
    name: String,
    kind: ValueKind,
    span: Option<f64>,
}

/// An asset's injected faults and ground truth, and the sensor-fault layer applied to its
/// outputs. Sensor faults draw from their own generator, so adding one never shifts the
/// process noise of the asset.
#[derive(Debug)]
pub(crate) struct FaultBook {
    asset_id: String,
    supported: &'static [FaultKind],
    signals: Vec<SignalScale>,
    faults: Vec<Injected>,
    truth: Vec<GroundTruth>,
    rng: SimRng,
}

impl FaultBook {
    pub fn new(
        asset_id: &str,
        model: &AssetModel,
        supported: &'static [FaultKind],
        seed: u64,
    ) -> Self {
        let mut rng = SimRng::seed_from_u64(seed);
        // A stream of its own: independent of the unit's construction draws.
        rng.set_stream(0x5e45_0f17);
        FaultBook {
            asset_id: asset_id.to_string(),
            supported,
            signals: model
                .signals
                .iter()
                .map(|s| SignalScale {
                    name: s.name.clone(),
                    kind: s.kind,
                    span: s
                        .min
                        .zip(s.max)
                        .map(|(lo, hi)| hi - lo)
                        .filter(|d| *d > 0.0),
                })
                .collect(),
            faults: Vec::new(),
            truth: Vec::new(),
            rng,
        }
    }

    /// Checks and records a fault; it takes effect at its onset.
    pub fn inject(&mut self, spec: FaultSpec) -> Result<(), SimError> {
        let asset = || self.asset_id.clone();
        let invalid = |field, reason: &str| SimError::InvalidFault {
            asset: self.asset_id.clone(),
            field,
            reason: reason.to_string(),
        };
        if !spec.severity.is_finite() || spec.severity < 0.0 {
            return Err(invalid("severity", "must be a finite number ≥ 0"));
        }
        if !spec.ramp_s.is_finite() || spec.ramp_s < 0.0 {
            return Err(invalid("ramp_s", "must be a finite number of seconds ≥ 0"));
        }
        if spec.duration_s.is_some_and(|d| !d.is_finite() || d <= 0.0) {
            return Err(invalid(
                "duration_s",
                "must be a finite number of seconds > 0",
            ));
        }
        let mut slot = None;
        if spec.kind.is_sensor() {
            let Some(signal) = &spec.signal else {
                return Err(SimError::MissingSignal {
                    asset: asset(),
                    kind: spec.kind.to_string(),
                });
            };
            slot = self.signals.iter().position(|s| &s.name == signal);
            if slot.is_none() {
                return Err(SimError::UnknownSignal {
                    asset: asset(),
                    signal: signal.clone(),
                });
            }
        } else {
            if !self.supported.contains(&spec.kind) {
                return Err(SimError::UnsupportedFault {
                    asset: asset(),
                    kind: spec.kind.to_string(),
                    supported: self
                        .supported
                        .iter()
                        .chain(FaultKind::SENSOR.iter())
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            if let Some(signal) = &spec.signal {
                return Err(SimError::UnexpectedSignal {
                    asset: asset(),
                    kind: spec.kind.to_string(),
                    signal: signal.clone(),
                });
            }
        }
        self.faults.push(Injected {
            spec,
            truth: None,
            slot,
            held: None,
        });
        Ok(())
    }

    /// Records faults that have started or ended by `t`. Returns the kinds that started now,
    /// for assets that capture state at onset (a damper freezing where it was).
    pub fn update(&mut self, t: Timestamp) -> Vec<FaultKind> {
        let mut started = Vec::new();
        for f in &mut self.faults {
            if f.truth.is_none() && t >= f.spec.onset {
                f.truth = Some(self.truth.len());
                self.truth.push(GroundTruth {
                    asset_id: self.asset_id.clone(),
                    kind: f.spec.kind,
                    signal: f.spec.signal.clone(),
                    onset: f.spec.onset,
                    end: None,
                    failure: None,
                });
                started.push(f.spec.kind);
            }
            if let (Some(i), Some(d)) = (f.truth, f.spec.duration_s) {
                let end = add_secs(f.spec.onset, d);
                if t >= end && self.truth[i].end.is_none() {
                    self.truth[i].end = Some(end);
                }
            }
        }
        started
    }

    /// The combined severity of process faults of `kind` in effect at `t`.
    pub fn level(&self, kind: FaultKind, t: Timestamp) -> f64 {
        self.faults
            .iter()
            .filter(|f| f.spec.kind == kind && f.truth.is_some())
            .map(|f| f.spec.severity * f.spec.intensity(t))
            .sum()
    }

    /// Whether a fault of `kind` has started and not yet ended at `t`, whatever its ramp.
    pub fn is_active(&self, kind: FaultKind, t: Timestamp) -> bool {
        self.faults.iter().any(|f| {
            f.spec.kind == kind
                && f.truth.is_some()
                && !f
                    .spec
                    .duration_s
                    .is_some_and(|d| secs_between(f.spec.onset, t) >= d)
        })
    }

    /// Marks the asset's failure, caused by the started faults of `kind`.
    pub fn fail(&mut self, kind: FaultKind, t: Timestamp) {
        for g in self.truth.iter_mut().filter(|g| g.kind == kind) {
            g.failure.get_or_insert(t);
        }
    }

    pub fn truth(&self) -> Vec<GroundTruth> {
        self.truth.clone()
    }

    /// What the sensors report: copies the true `values` (one per model signal, in model
    /// order) into `out` and applies the sensor faults in effect at `t`. A dropped signal
    /// becomes NaN. Allocation-free: this is the hot path of dataset generation.
    pub fn sense_into(&mut self, t: Timestamp, dt_s: f64, values: &[f64], out: &mut [f64]) {
        for (o, v) in out.iter_mut().zip(values) {
            *o = *v;
        }
        for f in &mut self.faults {
            if !f.spec.kind.is_sensor() || f.truth.is_none() {
                continue;
            }
            let k = f.spec.intensity(t);
            if k <= 0.0 {
                continue;
            }
            // Fixed draws per active fault and step keep the sequence independent of values.
            let u1: f64 = self.rng.random();
            let u2: f64 = self.rng.random();
            let z: f64 = StandardNormal.sample(&mut self.rng);
            let Some(pos) = f.slot else { continue };
            let Some(v) = out.get_mut(pos) else { continue };
            if v.is_nan() {
                // Already dropped by another fault this step.
                continue;
            }
            // Severity in effect: ramps in like a process fault's does.
            let sev = f.spec.severity * k;
            let scale = self.signals.get(pos);
            let kind = scale.map_or(ValueKind::Float, |s| s.kind);
            let span = scale
                .and_then(|s| s.span)
                .unwrap_or_else(|| (v.abs() * 0.1).max(1.0));
            let numeric = matches!(kind, ValueKind::Float | ValueKind::Int);
            match f.spec.kind {
                FaultKind::SensorStuck => *v = *f.held.get_or_insert(*v),
                FaultKind::SensorDropout if u1 < sev.min(1.0) => *v = f64::NAN,
                FaultKind::SensorDrift if numeric => shift(v, kind, sev * span),
                FaultKind::SensorSpikes if numeric => {
                    let p = 1.0 - (-0.05 * sev * dt_s).exp();
                    if u1 < p {
                        let sign = if z < 0.0 { -1.0 } else { 1.0 };
                        let amplitude = span * (0.3 + 0.7 * sev.min(2.0)) * (0.5 + u2);
                        shift(v, kind, sign * amplitude);
                    }
                }
                FaultKind::SensorNoiseBurst if numeric => shift(v, kind, 0.1 * sev * span * z),
                _ => {}
            }
        }
    }

    /// The named, typed form of what [`FaultBook::sense_into`] wrote: NaN slots (dropouts)
    /// are left out, integers and booleans get their kind back.
    pub fn values(&self, out: &[f64]) -> Vec<(String, Value)> {
        self.signals
            .iter()
            .zip(out)
            .filter(|(_, x)| !x.is_nan())
            .map(|(s, &x)| (s.name.clone(), typed(s.kind, x)))
            .collect()
    }
}

/// A slot of the fast path as a typed value: integers were stored exactly as f64, booleans
/// as 0 or 1.
pub(crate) fn typed(kind: ValueKind, x: f64) -> Value {
    match kind {
        ValueKind::Int => Value::Int(x as i64),
        ValueKind::Bool => Value::Bool(x != 0.0),
        _ => Value::Float(x),
    }
}

/// Adds `by` to a numeric value, keeping its kind (an integer counter stays an integer).
fn shift(v: &mut f64, kind: ValueKind, by: f64) {
    *v = match kind {
        ValueKind::Int => ((*v + by).round() as i64) as f64,
        _ => *v + by,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intensity_ramps_and_ends() {
        let s = FaultSpec::new(FaultKind::Cavitation, 1_000_000_000, 0.5)
            .ramp(10.0)
            .lasting(20.0);
        assert_eq!(s.intensity(0), 0.0);
        assert!((s.intensity(6_000_000_000) - 0.5).abs() < 1e-12);
        assert_eq!(s.intensity(15_000_000_000), 1.0);
        assert_eq!(s.intensity(21_000_000_000), 0.0);
    }

    #[test]
    fn fault_spec_json_is_readable() {
        let s: FaultSpec = serde_json::from_str(
            r#"{"kind":"sensor_drift","signal":"flow","onset":5,"severity":0.2,"ramp_s":60}"#,
        )
        .unwrap();
        assert_eq!(
            s,
            FaultSpec::new(FaultKind::SensorDrift, 5, 0.2)
                .on_signal("flow")
                .ramp(60.0)
        );
        for k in FaultKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
    }
}
