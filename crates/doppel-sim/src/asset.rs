//! The [`Asset`] trait every simulated machine implements, the [`AssetKind`] catalogue of them,
//! and small helpers the assets share for declaring signals and pinning inputs.

use doppel_model::{AssetModel, SignalRole, SignalSpec, Timestamp, Value, ValueKind};

use crate::{Chiller, FaultKind, FaultSpec, GroundTruth, MriCompressor, PumpMotor, SimError};

/// The generator that drives process noise. ChaCha8 is portable and reproducible across
/// platforms and releases, which a plain `StdRng` does not promise.
pub type SimRng = rand_chacha::ChaCha8Rng;

/// A noise generator for driving an [`Asset`] by hand, without depending on `rand` yourself.
pub fn seeded_rng(seed: u64) -> SimRng {
    <SimRng as rand::SeedableRng>::seed_from_u64(seed)
}

/// One simulated machine. Object-safe, so a [`Plant`](crate::Plant) holds `Box<dyn Asset>`.
pub trait Asset: std::fmt::Debug + Send {
    /// The asset's id, used in its [`GroundTruth`].
    fn id(&self) -> &str;

    fn kind(&self) -> AssetKind;

    /// The doppel model of this kind of asset: every signal `step` can return, with unit,
    /// kind, normal range and role. The same for every unit of a kind.
    fn model(&self) -> AssetModel;

    /// Advances the physics from `t - dt_s` to `t` (nanoseconds) and returns what the sensors
    /// report at `t`. A signal lost to a dropout fault is left out. A `dt_s` that is not a
    /// positive finite number is treated as 0: the asset is measured without advancing.
    fn step(&mut self, t: Timestamp, dt_s: f64, rng: &mut SimRng) -> Vec<(String, Value)>;

    /// The allocation-free form of [`Asset::step`], for generating long histories: writes one
    /// value per signal of [`Asset::model`], in model order, into `out` (slots beyond
    /// `out.len()` are not written). A signal lost to a dropout is NaN, an integer is stored
    /// exactly, a boolean as 0 or 1. Draws the same noise as `step`, so the two can be mixed
    /// and give the same readings.
    fn step_into(&mut self, t: Timestamp, dt_s: f64, rng: &mut SimRng, out: &mut [f64]);

    /// Schedules a fault. Refused when the asset cannot have it, a sensor fault names no or an
    /// unknown signal, or a number is out of range.
    fn inject(&mut self, fault: FaultSpec) -> Result<(), SimError>;

    /// Pins an input (a signal with role `input`, such as a setpoint) or a disturbance (such as
    /// ambient temperature) to `value`, replacing its schedule from the next step on. What-if
    /// scenarios drive assets through this.
    fn set_input(&mut self, name: &str, value: f64) -> Result<(), SimError>;

    /// Faults that have started so far, with their failure time where they caused one.
    fn ground_truth(&self) -> Vec<GroundTruth>;

    /// When the asset failed, if it has.
    fn failed_at(&self) -> Option<Timestamp>;
}

/// The kinds of asset the simulator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    PumpMotor,
    Chiller,
    MriCompressor,
}

impl AssetKind {
    pub const ALL: [AssetKind; 3] = [
        AssetKind::PumpMotor,
        AssetKind::Chiller,
        AssetKind::MriCompressor,
    ];

    /// A new healthy unit. `seed` sets the unit's manufacturing spread and initial weather, so
    /// two units with different seeds are alike but not identical.
    pub fn build(self, id: &str, seed: u64) -> Box<dyn Asset> {
        match self {
            AssetKind::PumpMotor => Box::new(PumpMotor::new(id, seed)),
            AssetKind::Chiller => Box::new(Chiller::new(id, seed)),
            AssetKind::MriCompressor => Box::new(MriCompressor::new(id, seed)),
        }
    }

    pub fn model(self) -> AssetModel {
        match self {
            AssetKind::PumpMotor => crate::pump::model(),
            AssetKind::Chiller => crate::chiller::model(),
            AssetKind::MriCompressor => crate::mri::model(),
        }
    }

    /// The process faults this kind can have (any kind can have every sensor fault).
    pub fn process_faults(self) -> &'static [FaultKind] {
        match self {
            AssetKind::PumpMotor => crate::pump::FAULTS,
            AssetKind::Chiller => crate::chiller::FAULTS,
            AssetKind::MriCompressor => crate::mri::FAULTS,
        }
    }

    /// Short name used in twin ids: `pump`, `chiller`, `mri`.
    pub fn slug(self) -> &'static str {
        match self {
            AssetKind::PumpMotor => "pump",
            AssetKind::Chiller => "chiller",
            AssetKind::MriCompressor => "mri",
        }
    }

    /// Reads a kind from its slug or its snake_case name.
    pub fn parse(s: &str) -> Option<AssetKind> {
        AssetKind::ALL
            .into_iter()
            .find(|k| s == k.slug() || s == k.name())
    }

    /// The snake_case name, as serialized.
    pub fn name(self) -> &'static str {
        match self {
            AssetKind::PumpMotor => "pump_motor",
            AssetKind::Chiller => "chiller",
            AssetKind::MriCompressor => "mri_compressor",
        }
    }
}

/// A float signal with its normal range.
pub(crate) fn float_signal(
    name: &str,
    unit: &str,
    role: SignalRole,
    range: (f64, f64),
    description: &str,
) -> SignalSpec {
    SignalSpec {
        name: name.into(),
        unit: unit.into(),
        kind: ValueKind::Float,
        min: Some(range.0),
        max: Some(range.1),
        role,
        description: description.into(),
    }
}

/// The `running` flag every asset reports: false once it has tripped or failed.
pub(crate) fn running_signal() -> SignalSpec {
    SignalSpec {
        name: "running".into(),
        unit: String::new(),
        kind: ValueKind::Bool,
        min: None,
        max: None,
        role: SignalRole::Output,
        description: "false once the asset has tripped or failed".into(),
    }
}

/// The physical limits of one input: what an actuator can do, wider than its normal range.
#[derive(Debug)]
pub(crate) struct InputLimit {
    pub name: &'static str,
    pub min: f64,
    pub max: f64,
}

/// Inputs that follow a schedule until a what-if pins them.
#[derive(Debug)]
pub(crate) struct Inputs {
    limits: &'static [InputLimit],
    pinned: Vec<Option<f64>>,
}

impl Inputs {
    pub fn new(limits: &'static [InputLimit]) -> Self {
        Inputs {
            limits,
            pinned: vec![None; limits.len()],
        }
    }

    /// The pinned value of input `i`, or `scheduled` when it is not pinned.
    pub fn get(&self, i: usize, scheduled: f64) -> f64 {
        self.pinned.get(i).copied().flatten().unwrap_or(scheduled)
    }

    pub fn set(&mut self, asset: &str, name: &str, value: f64) -> Result<(), SimError> {
        let Some(i) = self.limits.iter().position(|l| l.name == name) else {
            return Err(SimError::UnknownInput {
                asset: asset.to_string(),
                name: name.to_string(),
                inputs: self
                    .limits
                    .iter()
                    .map(|l| l.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let l = &self.limits[i];
        if !(value.is_finite() && (l.min..=l.max).contains(&value)) {
            return Err(SimError::InputOutOfRange {
                asset: asset.to_string(),
                name: name.to_string(),
                value,
                min: l.min,
                max: l.max,
            });
        }
        self.pinned[i] = Some(value);
        Ok(())
    }
}

/// A step size the physics can use: not-a-number, negative or zero steps do not advance, and
/// a step is capped at an hour because the lumped models say nothing useful beyond that.
pub(crate) fn usable_dt(dt_s: f64) -> f64 {
    if dt_s.is_finite() && dt_s > 0.0 {
        dt_s.min(3_600.0)
    } else {
        0.0
    }
}
