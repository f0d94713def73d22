//! A physics plant simulator: assets that behave like real ones, wear out and fail with a
//! known ground truth, so `doppel demo` shows a living plant and anomaly detection, RUL
//! prediction and what-if simulation can be evaluated against the truth.
//!
//! The crate is pure: no IO, no async, no clock and no global random generator. Everything is
//! driven by a seed and by the simulated timestamps the caller passes in, so the same seed and
//! the same sequence of `(t, dt)` give bit-identical readings.
//!
//! - [`Asset`] is one simulated machine: its [`AssetModel`](doppel_model::AssetModel), a
//!   `step` that advances its physics and returns sensor values, fault injection and inputs
//!   that what-if scenarios can drive. [`PumpMotor`], [`Chiller`] and [`MriCompressor`]
//!   implement it with first-order physics (thermal lags, affinity laws, load cycles).
//! - [`FaultSpec`] describes a process or sensor fault; each asset records a [`GroundTruth`]
//!   when a fault starts and when the asset fails.
//! - [`Plant`] holds named assets in a hierarchy of twins and steps them all;
//!   [`Plant::demo`] builds the demo plant with faults scheduled in its first hours,
//!   [`Plant::fleet`] a fleet of any size with faults spread over a horizon.
//! - [`Asset::step_into`] is the allocation-free step behind dataset generation: one `f64`
//!   per model signal, in model order, written into a caller's buffer.
//! - [`Plant::packs`] splits a plant's models and twins by industry: the demo packs that
//!   `doppel demo` loads through the API and `examples/packs/` holds.
//! - [`run_to_failure`] produces a whole degradation history of one asset, for training and
//!   evaluating remaining-useful-life models.
//!
//! ```
//! use doppel_sim::{Plant, RUN_START};
//!
//! let mut plant = Plant::demo(7);
//! let catalog = doppel_model::Catalog::from_parts(plant.models(), plant.twins()).unwrap();
//! let readings = plant.step(RUN_START, 1.0); // one reading per simulated asset
//! assert_eq!(readings.len(), 8);
//! assert!(catalog.twin(&readings[0].twin).is_some());
//! ```
//!
//! Architecture Invariant: nothing here reads the wall clock or an unseeded generator; a
//! simulation is a pure function of its seed, its fault specs, its inputs and the timestamps
//! it is stepped with.

mod asset;
mod chiller;
mod error;
mod failure_modes;
mod fault;
mod fleet;
mod mri;
mod pack;
mod physics;
mod plant;
mod pump;
mod run;

pub use asset::{seeded_rng, Asset, AssetKind, SimRng};
pub use chiller::Chiller;
pub use error::SimError;
pub use fault::{FaultKind, FaultSpec, GroundTruth};
pub use mri::MriCompressor;
pub use pack::Pack;
pub use plant::{Plant, SimulatedTwin};
pub use pump::PumpMotor;
pub use run::{run_to_failure, RunToFailure, RUN_START};
