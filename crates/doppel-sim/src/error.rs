//! The one error type of the simulator. Every variant names the asset and the input, signal or
//! fault field that was refused, so a what-if scenario or a fault file can point at its mistake.

/// Why the simulator refused a request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    #[error("asset `{asset}` has no input `{name}` (inputs: {inputs})")]
    UnknownInput {
        asset: String,
        name: String,
        inputs: String,
    },
    #[error("input `{name}` of asset `{asset}` must be within {min}..={max}, got {value}")]
    InputOutOfRange {
        asset: String,
        name: String,
        value: f64,
        min: f64,
        max: f64,
    },
    #[error("asset `{asset}` cannot have a `{kind}` fault (it supports: {supported})")]
    UnsupportedFault {
        asset: String,
        kind: String,
        supported: String,
    },
    #[error("sensor fault `{kind}` on asset `{asset}` needs a `signal`")]
    MissingSignal { asset: String, kind: String },
    #[error("asset `{asset}` has no signal `{signal}`")]
    UnknownSignal { asset: String, signal: String },
    #[error("process fault `{kind}` on asset `{asset}` must not name a signal (got `{signal}`)")]
    UnexpectedSignal {
        asset: String,
        kind: String,
        signal: String,
    },
    #[error("fault on asset `{asset}`: `{field}` {reason}")]
    InvalidFault {
        asset: String,
        field: &'static str,
        reason: String,
    },
    #[error("no asset `{0}` in the plant")]
    UnknownAsset(String),
}
