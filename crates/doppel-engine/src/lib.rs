//! The engine wires the pure model and the store into a running system.
//!
//! One reading's path: a decoded [`doppel_model::Batch`] enters [`Engine::ingest`], is
//! validated against a snapshot of the catalog (all or nothing), appended durably to the store
//! (group commit), then applied by the shard that owns each twin (hash of the twin id), which
//! updates the live state and publishes an [`Event`] on the live bus. The caller is answered
//! only after all of that, so an acknowledged reading is durable, visible in the twin's state
//! and already sent to subscribers.

mod catalog_file;
mod engine;
mod error;
mod live;
mod metrics;
mod shard;

pub use engine::{Engine, EngineConfig, IngestReceipt, IngestSource, SignalState, TwinState};
pub use error::EngineError;
pub use live::{Event, EventFilter, Subscription};
pub use metrics::Metrics;
