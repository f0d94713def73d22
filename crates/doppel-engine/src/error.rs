//! Engine errors. Each variant carries what failed; the server maps them to HTTP status codes
//! in one place (doppel-server `error.rs`).

use std::path::PathBuf;

use doppel_model::{ModelError, ValidationErrors};
use doppel_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Input refused as a whole; nothing was stored.
    #[error("invalid input: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("twin `{0}` not found")]
    TwinNotFound(String),
    #[error("twin `{twin}` has no signal `{signal}`")]
    SignalNotFound { twin: String, signal: String },
    #[error("history: {0}")]
    Store(#[from] StoreError),
    #[error("could not persist {path}: {source}")]
    Persist {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the catalog in {path} is invalid: {errors}")]
    CatalogCorrupt { path: PathBuf, errors: String },
    #[error("alarm `{0}` not found")]
    AlarmNotFound(String),
    /// The action does not fit the alarm's state (acknowledging twice, clearing a cleared one).
    #[error("{0}")]
    AlarmConflict(String),
    #[error("advice `{0}` not found")]
    AdviceNotFound(String),
    /// The action does not fit the advice's state (scheduling or closing done advice).
    #[error("{0}")]
    AdviceConflict(String),
    /// The twin's history cannot answer this yet (too short, or nothing in the window).
    #[error("{0}")]
    NotEnoughHistory(String),
    /// A what-if question that cannot be answered (bad scenario, too little history...).
    #[error("{0}")]
    WhatIf(doppel_analytics::sysid::SysIdError),
    #[error("doppel is shutting down")]
    ShuttingDown,
}
