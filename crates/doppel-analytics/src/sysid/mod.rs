//! System identification and the virtual testing ground: learn how a twin's outputs respond to
//! its inputs and disturbances from its history, then ask the learned model what-if questions.
//!
//! - [`fit`] resamples a twin's irregular history onto a fixed model step (bin means) and fits,
//!   per output signal, a Hammerstein-ARX model by ridge least squares:
//!   `y[k] = Σ a_i·y[k-i] + Σ_l b_l·φ(u[k-d-l]) + c`, where `u` are the model's input and
//!   disturbance signals scaled to `[-1, 1]` and `φ` is a polynomial feature map (linear,
//!   quadratic or cubic: pump affinity laws make power go with speed³ and head with speed²).
//!   The orders `na`, `nb`, the delay `d` and the degree are chosen per output by free-run
//!   NRMSE on a validation block; fit quality is then reported on a later, held-out test block.
//! - [`simulate`] runs a [`ScenarioSpec`] (steps, ramps and profiles of inputs) from the end of
//!   a history, with a prediction band per output and the first predicted normal-range
//!   crossings; [`compare`] contrasts a scenario with its baseline; [`simulate_graph`] chains
//!   scenarios over twins whose outputs feed other twins' inputs.
//! - [`optimize`] searches the allowed input ranges for the settings that best meet an
//!   objective under output constraints.
//! - [`troubleshoot`] ranks the likely causes of an abnormal window: which signal left its
//!   baseline first, which learned relation broke, and which related twin deviated earlier.
//!
//! Fit quality is the range-normalized NRMSE: `RMSE / (max − min)` of the held-out truth
//! (bin means at the model step), for the one-step prediction and for the prediction one
//! horizon (default 1 h) ahead in free run (true inputs, no output feedback).
//!
//! Pure: no IO, no clock, no randomness; the same history and configuration give the same
//! model, and the same model, history and scenario give the same trajectories.

mod error;
mod fit;
mod linalg;
mod optimize;
mod resample;
mod scenario;
mod troubleshoot;

#[cfg(test)]
mod tests;

pub use error::SysIdError;
pub use fit::{
    fit, FitConfig, FitQuality, InputScale, Nonlinearity, OutputModel, SkippedSignal, SysIdModel,
};
pub use optimize::{
    optimize, Constraint, InputRange, Objective, ObjectiveTerm, OptimizeResult, OptimizeSpec,
    Sense, Setting,
};
pub use resample::Series;
pub use scenario::{
    compare, simulate, simulate_graph, Baseline, Change, GraphLink, GraphNode, InputChange,
    InputTrajectory, LimitCrossing, OutputComparison, OutputTrajectory, ScenarioComparison,
    ScenarioResult, ScenarioSpec, Side,
};
pub use troubleshoot::{troubleshoot, Cause, CauseKind, RelatedHistory, TroubleshootConfig};
