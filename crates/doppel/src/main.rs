//! The doppel binary: parses flags into typed configs and calls into the library crates.

use clap::{Parser, Subcommand};

mod commands;

/// jemalloc instead of the system allocator: a fleet's state is millions of small
/// allocations, which its size classes hold without a per-allocation header, and memory a
/// burst freed (a fleet's warm-up buffers, a checkpoint's) goes back to the OS after a few
/// seconds (its background thread purges dirty pages) instead of staying resident.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// doppel: a real-time digital-twin engine.
///
/// Models and twins in a hierarchy, readings over MQTT / HTTP / InfluxDB line protocol,
/// durable history, live push, token security: one binary.
#[derive(Debug, Parser)]
#[command(name = "doppel", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: HTTP API, live push and the embedded MQTT broker.
    Serve(commands::serve::ServeArgs),
    /// Run a simulated plant (pumps, a chiller, MRI compressors) with realistic faults,
    /// served like `doppel serve`.
    Demo(commands::demo::DemoArgs),
    /// Manage API and MQTT tokens in the data directory.
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
    /// The physics simulator: run a plant against a server, generate datasets, offer
    /// benchmark load.
    #[command(subcommand)]
    Sim(commands::sim::SimCommand),
    /// Measure a running server: load generators.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
    /// Inspect the history store of a stopped server.
    #[command(subcommand)]
    Store(commands::store::StoreCommand),
    /// Offline evaluation: anomaly detectors on labelled CSV files, the RUL model on C-MAPSS.
    #[command(subcommand)]
    Eval(commands::eval::EvalCommand),
    /// Ask a twin's learned model what-if questions (a scenario file against a server) and
    /// print how each output would differ from the baseline.
    Whatif(commands::whatif::WhatIfArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Token(cmd) => commands::token::run(cmd),
        Command::Sim(cmd) => commands::sim::run(cmd),
        Command::Bench(cmd) => commands::bench::run(cmd),
        Command::Store(cmd) => commands::store::run(cmd),
        Command::Eval(cmd) => commands::eval::run(cmd),
        Command::Whatif(args) => commands::whatif::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
