//! Anomaly detection for twins: per-signal detectors (adaptive robust baseline, rate of
//! change, stuck, dropout, normal range, CUSUM shift), a multivariate PCA model over a twin's
//! signals, and [`TwinDetector`], which combines them into one explainable [`Score`] per
//! reading with a persistent, feedback-adapted alarm decision. [`rul`] learns the remaining
//! useful life from a fleet of run-to-failure histories. [`sysid`] identifies how a twin's
//! outputs respond to its inputs and answers what-if scenarios, input optimization and
//! troubleshooting with the learned model.
//!
//! Architecture Invariant: this crate has no async, no IO and no clock; detectors are driven
//! by the timestamps they are given, so every score is reproducible from a recorded stream,
//! and a RUL model is a pure function of its training runs, configuration and seed; a
//! system-identification model of its history and configuration.
//! The `eval` module (feature `eval`) reads CSV and C-MAPSS files for offline evaluation;
//! the detector and RUL cores never touch it.

pub mod advice;
mod config;
pub mod forecast;
mod multivariate;
pub mod rul;
mod signal;
mod stats;
pub mod sysid;
mod twin;

#[cfg(feature = "eval")]
pub mod eval;

pub use advice::{
    recommend, AdviceConfig, AdviceEvent, AdviceInput, AdviceTracker, AdviceUpdate,
    ExplanationWindow, MaintenanceAdvice, PastCase, Recommendation, RemainingLife,
};
pub use config::DetectorConfig;
pub use doppel_model::Timestamp;
pub use forecast::{
    forecast, time_to_threshold, time_to_threshold_of, Forecast, ForecastConfig, ForecastError,
    RegularSeries, SignalHistory, Threshold, TimeToThreshold, TwinHistory,
};
pub use multivariate::Multivariate;
pub use rul::fleet::{fleet_config, FleetLayout, FLEET_STEP_NS};
pub use rul::{RulConfig, RulError, RulEstimate, RulModel, RulRun, RulStep};
pub use signal::{ContributionKind, SignalDetector, SignalSpec};
pub use sysid::SysIdError;
pub use twin::{DetectorState, Score, SignalContribution, TwinDetector};
