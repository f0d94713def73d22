//! What one twin's detector holds in memory, and what its saved state weighs: builds
//! 10-signal detectors the way the engine does (`TwinDetector::for_model`), feeds them 3,
//! 200 (mid warm-up) and 2,000 (learned) readings, and prints the bytes per twin (the
//! detector itself plus the heap it owns, counted by a counting allocator over many twins
//! so per-thread work buffers do not count) and the size of its JSON form and of its record
//! in the engine's binary snapshot (postcard of its own state; the configuration and signal
//! specs it shares are saved once per file).
//!
//!     cargo run -p doppel-analytics --example detector_state

#![allow(clippy::print_stdout)] // a report on stdout is this example's whole point

use std::collections::HashSet;
use std::sync::Arc;

use doppel_analytics::{DetectorConfig, SignalSpec, TwinDetector};
use doppel_model::AssetModel;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const SIGNALS: usize = 10;
const TWINS: usize = 200;
const SEC: i64 = 1_000_000_000;

fn model() -> AssetModel {
    let signals: Vec<_> = (0..SIGNALS)
        .map(|i| {
            serde_json::json!({"name": format!("signal_{i}"), "unit": "", "kind": "float",
                "min": -100.0, "max": 200.0, "role": "output"})
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "id": "m10", "name": "10 signals", "version": 1, "signals": signals
    }))
    .expect("a valid model")
}

/// Reading `k` of twin `t`: correlated signals with noise, a slow daily wave.
fn reading(t: usize, k: usize, names: &[String]) -> Vec<(&str, f64)> {
    let mut seed = (t as u64 * 1_000_003 + k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut noise = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let load = 50.0 + 10.0 * (k as f64 / 300.0).sin();
    names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), load * (1.0 + i as f64 / 10.0) + noise()))
        .collect()
}

/// A detector as the engine's binary snapshot holds it: its own state, the configuration
/// and signal specs being saved once for all the twins that share them.
struct State<'a>(&'a TwinDetector);

impl serde::Serialize for State<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_state(s)
    }
}

fn main() {
    let model = model();
    let names: Vec<String> = model.signals.iter().map(|s| s.name.clone()).collect();
    // As the engine does: one configuration and one list of signal specs for all twins.
    let config = Arc::new(DetectorConfig::default());
    let mut specs_seen: HashSet<Arc<[SignalSpec]>> = HashSet::new();
    println!(
        "size_of::<TwinDetector>() = {} B; {SIGNALS} signals, mean over {TWINS} twins",
        std::mem::size_of::<TwinDetector>()
    );
    println!(
        "{:>9} {:>12} {:>12} {:>12} {:>12}",
        "readings", "memory B", "counted B", "JSON B", "binary B"
    );
    for readings in [3usize, 200, 2_000] {
        specs_seen.clear();
        let region = Region::new(GLOBAL);
        let mut twins: Vec<TwinDetector> = Vec::with_capacity(TWINS);
        let vec_heap = (TWINS * std::mem::size_of::<TwinDetector>()) as isize;
        for t in 0..TWINS {
            let mut det = TwinDetector::for_model(&model, Arc::clone(&config));
            det.share_signals(|specs| {
                if let Some(seen) = specs_seen.get(specs) {
                    return Arc::clone(seen);
                }
                specs_seen.insert(Arc::clone(specs));
                Arc::clone(specs)
            });
            twins.push(det);
            for k in 0..readings {
                twins[t].observe(k as i64 * SEC, &reading(t, k, &names));
            }
        }
        let stats = region.change();
        let heap = stats.bytes_allocated as isize - stats.bytes_deallocated as isize - vec_heap;
        let per_twin = std::mem::size_of::<TwinDetector>() as isize + heap / TWINS as isize;
        let json: usize = twins
            .iter()
            .map(|d| serde_json::to_vec(d).expect("serializable").len())
            .sum();
        let binary: usize = twins
            .iter()
            .map(|d| {
                postcard::to_allocvec(&State(d))
                    .expect("serializable")
                    .len()
            })
            .sum();
        let counted: usize = twins.iter().map(TwinDetector::memory_bytes).sum();
        println!(
            "{readings:>9} {per_twin:>12} {:>12} {:>12} {:>12}",
            counted / TWINS,
            json / TWINS,
            binary / TWINS
        );
        drop(twins);
    }
}
