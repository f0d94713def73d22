//! doppel's history of every accepted reading.
//!
//! The store is synchronous and owns its own writer thread; it knows nothing about tokio,
//! HTTP or MQTT. A write is acknowledged (its completion called) only after the records are
//! in the write-ahead log and fsynced; readers only ever see acknowledged data.
//!
//! Public API (callers depend only on this):
//! - [`Store::open`] loads the checkpointed segment files' indexes and replays the WAL tail
//!   (truncating a torn tail), then serves queries;
//! - [`Store::write_batch`] / [`Store::write_batch_with`] append a validated batch durably
//!   (group commit; what ingest uses), [`Store::write`] / [`Store::write_with`] rows;
//! - [`Store::delete_twin`] forgets a twin and [`Store::drop_before`] the points of a series
//!   (or of a twin's every series) older than a cutoff (retention), both durably; a cut
//!   keeps minute and hour rollups of what it forgets;
//! - [`Store::range`], [`Store::downsample`], [`Store::last`], [`Store::as_of`] answer queries;
//! - [`Store::checkpoint`] moves history from the WAL into compressed segment files (it also
//!   runs by itself every `checkpoint_wal_bytes` of WAL and at close);
//! - [`Store::close`] flushes, checkpoints and stops the writer.
//!
//! Data layout: each series buffers recent points and seals every `chunk_points` of them
//! into an immutable compressed chunk with a summary (count, first/last, min/max/sum and
//! the sum of squared deviations from the mean);
//! checkpoints write chunks to segment files named by a manifest, after which the WAL they
//! cover is deleted. Queries skip chunks outside their range and answer whole-chunk
//! aggregates from summaries, and aggregates at whole-minute steps past retention from the
//! rollups.
//!
//! Code map: `wal.rs` is the WAL format (framing, row encoding, the replay scanner that tells
//! a torn tail from corruption); `store.rs` opens, replays, runs the group-commit writer
//! thread and the index thread that applies durable groups, and answers queries; `index.rs` holds each series' chunks and open buffer and
//! answers queries over both; `chunk.rs` is the chunk and summary format; `codec/` the
//! column codecs (pure, public for benches); `segment.rs` the segment file format;
//! `manifest.rs` the manifest; `checkpoint.rs` the checkpoint procedure and its crash
//! reasoning; `rollup.rs` the rollups of forgotten points and their block format; `query.rs` query checks and bucket aggregates; `error.rs` the one error type.

use std::sync::Arc;

use doppel_model::{Timestamp, Value};

mod checkpoint;
mod chunk;
pub mod codec;
mod error;
mod index;
mod manifest;
mod open;
mod query;
mod rollup;
mod segment;
mod store;
mod wal;

pub use error::StoreError;
pub use store::{Store, StoreOptions};

/// One value of one signal of one twin at one time: the unit of history.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub twin: Arc<str>,
    pub signal: Arc<str>,
    pub ts: Timestamp,
    pub value: Value,
}

/// A stored value at its time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Point {
    pub ts: Timestamp,
    pub value: Value,
}

/// Aggregation applied per time bucket by [`Store::downsample`].
///
/// `Stddev` is the sample standard deviation (divisor n − 1, the estimate of the signal's
/// spread from the readings a bucket happens to hold); a bucket of one point has 0, and its
/// `count` of 1 tells it apart from a flat signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Agg {
    Mean,
    Min,
    Max,
    First,
    Last,
    Count,
    Sum,
    Stddev,
}

impl Agg {
    pub fn parse(s: &str) -> Option<Agg> {
        Some(match s {
            "mean" | "avg" => Agg::Mean,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "first" => Agg::First,
            "last" => Agg::Last,
            "count" => Agg::Count,
            "sum" => Agg::Sum,
            "stddev" => Agg::Stddev,
            _ => return None,
        })
    }
}

/// One time bucket `[start, start + step)` holding at least one point.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Bucket {
    pub start: Timestamp,
    /// Number of points in the bucket.
    pub count: u64,
    /// The aggregate; for `count` it equals `count`.
    pub value: f64,
}

/// Size figures of one series, for `doppel store stats`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SeriesStats {
    pub twin: Arc<str>,
    pub signal: Arc<str>,
    pub points: u64,
    /// Sealed chunks and their compressed bytes (in memory or in segment files).
    pub chunks: u64,
    pub chunk_bytes: u64,
    /// Points in the open buffer, not yet sealed.
    pub open_points: u64,
    /// Blocks of minute and hour rollups of points retention forgot, and their compressed
    /// bytes (in memory or in segment files).
    pub rollup_blocks: u64,
    pub rollup_bytes: u64,
}

/// Size figures of the store.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StoreStats {
    pub series: usize,
    pub points: u64,
    pub wal_bytes: u64,
    /// Sealed chunks, in memory or in segment files.
    pub chunks: u64,
    /// Points in open buffers, not yet sealed.
    pub open_points: u64,
    /// Rollup blocks (minute and hour summaries of points retention forgot) and their
    /// compressed bytes, part of the segment bytes once checkpointed.
    pub rollup_blocks: u64,
    pub rollup_bytes: u64,
    /// Live segment files and their bytes.
    pub segment_files: u64,
    pub segment_bytes: u64,
    /// Checkpoints completed since open.
    pub checkpoints: u64,
}
