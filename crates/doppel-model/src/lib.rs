//! The vocabulary of doppel: asset models, twins, relations, readings, and the validation
//! that keeps them consistent.
//!
//! This crate is pure: no IO, no async, no clock. Everything here is a value type that can be
//! serialized, compared and property-tested. The engine owns persistence and concurrency.

mod asset;
mod catalog;
mod error;
mod failure;
mod id;
mod reading;
mod retention;
mod time;
mod twin;
mod value;

pub use asset::{AssetModel, PropertySpec, RelationSpec, SignalRole, SignalSpec};
pub use catalog::{Catalog, TwinFilter};
pub use error::{FieldError, ModelError, ValidationErrors};
pub use failure::{FailureMode, SignalDirection, SignalPattern, Urgency};
pub use id::validate_id;
pub use reading::{
    Batch, Reading, ReadingRef, ReadingSource, SignalValues, ValidatedBatch, ValidatedReading,
};
pub use retention::{parse_period, Retention, MIN_RETENTION};
pub use time::{format_ts, from_epoch_ms, parse_time, Precision, TimeParseError, Timestamp};
pub use twin::{Relation, Twin};
pub use value::{Value, ValueKind};
