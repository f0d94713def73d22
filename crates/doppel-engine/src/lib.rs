//! The engine wires the pure model and the store into a running system.
//!
//! One reading's path: a decoded [`doppel_model::Batch`] enters [`Engine::ingest`], is
//! validated against a snapshot of the catalog (all or nothing), appended durably to the store
//! (group commit), then applied by the shard that owns each twin (hash of the twin id), which
//! updates the live state and publishes an [`Event`] on the live bus. The caller is answered
//! only after all of that, so an acknowledged reading is durable, visible in the twin's state
//! and already sent to subscribers.

pub mod advice;
mod advice_service;
mod alarm_service;
pub mod alarms;
mod catalog_file;
mod detect;
mod engine;
mod error;
pub mod forecast;
mod intake;
mod jsonl;
mod live;
mod metrics;
mod retention;
pub mod rul;
mod shard;
pub mod whatif;

pub use advice::{AdviceChange, AdviceItem, AdviceQuery, AdviceState, Outcome};
pub use alarms::{Alarm, AlarmChange, AlarmQuery, AlarmState, Severity, Verdict};
pub use detect::{TwinHealth, SCORE_SIGNAL};
pub use engine::{
    Engine, EngineConfig, FleetSeries, ImportReceipt, IngestReceipt, IngestSource, SignalState,
    TwinState,
};
pub use error::EngineError;
pub use forecast::{ForecastSpec, SignalForecast};
pub use live::{Event, EventBody, EventFilter, Subscription};
pub use metrics::Metrics;
pub use rul::{
    FitRecord, MaintenanceEvent, MaintenanceKind, NewMaintenance, RulModelInfo, RunInfo, TwinRul,
};
