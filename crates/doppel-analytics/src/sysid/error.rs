//! What can go wrong when identifying a twin or asking its model.

/// Why a model could not be fitted, or a scenario, optimization or troubleshooting run could
/// not be answered. Every variant names the signal, twin or field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SysIdError {
    #[error("the history is empty (no finite readings of any model signal)")]
    EmptyHistory,
    #[error("history spans {got_s:.0} s, need at least {needed_s:.0} s to fit, validate and test")]
    TooShort { needed_s: f64, got_s: f64 },
    #[error("the history spans {bins} model steps, more than {max}: a timestamp is far off, or the step is too fine")]
    TooLong { bins: usize, max: usize },
    #[error("signal {signal:?}: {problem}")]
    Signal { signal: String, problem: String },
    #[error("no input or disturbance signal varies in the history, so nothing drives the outputs")]
    NoInputs,
    #[error("no numeric output signal could be identified: {reasons}")]
    NoOutputs { reasons: String },
    #[error("invalid configuration: {}", problems.join("; "))]
    InvalidConfig { problems: Vec<String> },
    #[error("invalid scenario: {}", problems.join("; "))]
    InvalidScenario { problems: Vec<String> },
    #[error("the history belongs to model {got:?}, the identified model to {expected:?}")]
    ModelMismatch { expected: String, got: String },
    #[error("twin {twin:?}: {problem}")]
    Twin { twin: String, problem: String },
    #[error("the links between twins form a cycle through {twins}")]
    Cycle { twins: String },
    #[error("least squares for {signal:?} is singular even with regularization")]
    Singular { signal: String },
}
