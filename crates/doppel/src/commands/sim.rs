//! `doppel sim`: the physics simulator three ways. `live` runs a plant against a running
//! server in real time or faster, `dataset` writes months of history to CSV and line-protocol
//! files with the ground-truth fault log, and `load` is the benchmark load generator: N
//! simulated twins at R readings per second, reporting achieved rate and latency percentiles.
//!
//! `live` and `load` talk to the server only through its public API (models and twins by
//! `PUT`, readings by bulk `POST`, line protocol or MQTT QoS 1), like any device would;
//! `dataset` needs no server.

mod api;
mod dataset;
mod live;
mod load;
mod mqtt;
mod rows;

use clap::Subcommand;
use doppel_sim::AssetKind;

pub(crate) use api::Api;

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Run the demo plant (or a fleet of pumps) against a running server, over HTTP or MQTT,
    /// in real time or faster.
    Live(live::LiveArgs),
    /// Generate history without a server: per-twin CSV and/or line-protocol files plus the
    /// ground-truth fault log, using every core.
    Dataset(dataset::DatasetArgs),
    /// Benchmark load: N simulated twins at R readings/s in total; reports the achieved rate
    /// and latency percentiles.
    Load(load::LoadArgs),
}

pub fn run(cmd: SimCommand) -> anyhow::Result<()> {
    match cmd {
        SimCommand::Dataset(args) => dataset::run(args),
        SimCommand::Live(args) => runtime()?.block_on(live::run(args)),
        SimCommand::Load(args) => runtime()?.block_on(load::run(args)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Parses `--kinds pump,chiller,mri` (slugs or snake_case names).
pub(crate) fn parse_kind(s: &str) -> Result<AssetKind, String> {
    AssetKind::parse(s.trim()).ok_or_else(|| {
        format!(
            "unknown asset kind `{s}`; one of {}",
            AssetKind::ALL.map(|k| k.slug()).join(", ")
        )
    })
}

/// Parses a time flag: RFC 3339 or epoch milliseconds.
fn parse_start(s: &str) -> Result<doppel_model::Timestamp, String> {
    doppel_model::parse_time(s).map_err(|e| e.to_string())
}
