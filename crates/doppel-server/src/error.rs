//! The one place where errors become HTTP responses: a status code and a JSON body
//! `{"error": "...", "field": "...", "errors": [{"field", "message"}]}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use doppel_analytics::sysid::SysIdError;
use doppel_engine::EngineError;
use doppel_model::{FieldError, ModelError, ValidationErrors};
use doppel_store::StoreError;
use serde::Serialize;

/// Body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a human.
    pub error: String,
    /// The first field at fault, when the error is about the request's content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every problem found, when there were several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                field: None,
                errors: vec![],
            },
        }
    }

    /// A 400 about one field.
    pub fn field(field: impl Into<String>, error: impl Into<String>) -> Self {
        let (field, error) = (field.into(), error.into());
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: ErrorBody {
                error: format!("{field}: {error}"),
                field: Some(field.clone()),
                errors: vec![FieldError {
                    field,
                    message: error,
                }],
            },
        }
    }

    pub fn invalid(errs: ValidationErrors) -> Self {
        let n = errs.len();
        let error = if n == 1 {
            errs.to_string()
        } else {
            format!("{n} problems: {errs}")
        };
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: ErrorBody {
                error,
                field: errs.first_field().map(String::from),
                errors: errs.errors,
            },
        }
    }

    pub fn unauthorized(msg: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, msg)
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, msg)
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, msg)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let msg = e.to_string();
        match e {
            EngineError::Invalid(errs) => ApiError::invalid(errs),
            EngineError::Model(ModelError::Invalid(errs)) => ApiError::invalid(errs),
            EngineError::Model(ModelError::ModelNotFound(_))
            | EngineError::Model(ModelError::TwinNotFound(_))
            | EngineError::TwinNotFound(_)
            | EngineError::SignalNotFound { .. }
            | EngineError::AlarmNotFound(_)
            | EngineError::AdviceNotFound(_) => ApiError::not_found(msg),
            EngineError::AlarmConflict(_) | EngineError::AdviceConflict(_) => {
                ApiError::new(StatusCode::CONFLICT, msg)
            }
            EngineError::Model(ModelError::ModelInUse { .. })
            | EngineError::Model(ModelError::TwinHasChildren { .. })
            | EngineError::Model(ModelError::AlreadyExists { .. }) => {
                ApiError::new(StatusCode::CONFLICT, msg)
            }
            EngineError::Store(StoreError::InvalidQuery(m)) => {
                ApiError::new(StatusCode::BAD_REQUEST, m)
            }
            EngineError::Store(StoreError::NotNumeric { .. }) => ApiError::field("agg", msg),
            EngineError::Store(StoreError::InvalidRow { ref signal, .. }) => {
                ApiError::field(format!("values.{signal}"), msg)
            }
            EngineError::Store(StoreError::BatchTooLarge { .. }) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, msg)
            }
            // ENOSPC, or a file-size limit (EFBIG) or quota (EDQUOT): the disk is full as far
            // as this server is concerned.
            EngineError::Store(StoreError::Io { ref source, .. })
                if matches!(source.raw_os_error(), Some(28 | 27 | 122)) =>
            {
                tracing::error!(error = %msg, "storage full");
                ApiError::new(StatusCode::INSUFFICIENT_STORAGE, msg)
            }
            EngineError::NotEnoughHistory(_) => ApiError::new(StatusCode::CONFLICT, msg),
            EngineError::WhatIf(ref w) => match w {
                SysIdError::InvalidScenario { .. } => ApiError::field("scenarios", msg),
                SysIdError::InvalidConfig { .. } => ApiError::field("config", msg),
                SysIdError::Signal { signal, .. } => ApiError::field(signal.clone(), msg),
                SysIdError::ModelMismatch { .. }
                | SysIdError::Twin { .. }
                | SysIdError::Cycle { .. } => ApiError::new(StatusCode::BAD_REQUEST, msg),
                // The twin's history cannot answer yet: too short, empty, nothing varies.
                SysIdError::EmptyHistory
                | SysIdError::TooShort { .. }
                | SysIdError::TooLong { .. }
                | SysIdError::NoInputs
                | SysIdError::NoOutputs { .. }
                | SysIdError::Singular { .. } => ApiError::new(StatusCode::CONFLICT, msg),
            },
            EngineError::ShuttingDown => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, msg),
            EngineError::Store(_)
            | EngineError::Persist { .. }
            | EngineError::CatalogCorrupt { .. } => {
                tracing::error!(error = %msg, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, msg)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// Result of an API handler.
pub type ApiResult<T> = Result<T, ApiError>;
