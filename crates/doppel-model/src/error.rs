//! Errors of the model layer. Validation collects every problem at once, each with the path of
//! the field that caused it, so a user fixes a document in one round trip.

use serde::Serialize;

/// One problem in a document, located by a JSON-pointer-like dotted path
/// (`signals[2].unit`, `values.bearing_temp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Every problem found in one document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ValidationErrors {
    pub errors: Vec<FieldError>,
}

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// The first field at fault, used as the headline of an HTTP error body.
    pub fn first_field(&self) -> Option<&str> {
        self.errors.first().map(|e| e.field.as_str())
    }

    /// `Ok(())` when nothing was found, the collected errors otherwise.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl std::fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Errors of catalog operations.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid document: {0}")]
    Invalid(ValidationErrors),
    #[error("model `{0}` not found")]
    ModelNotFound(String),
    #[error("twin `{0}` not found")]
    TwinNotFound(String),
    #[error("model `{model}` is used by {count} twin(s), e.g. `{example}`; delete them first")]
    ModelInUse {
        model: String,
        count: usize,
        example: String,
    },
    #[error("twin `{twin}` has {count} child twin(s), e.g. `{example}`; delete them first")]
    TwinHasChildren {
        twin: String,
        count: usize,
        example: String,
    },
    #[error("{kind} `{id}` already exists")]
    AlreadyExists { kind: &'static str, id: String },
}
