//! Bytes per point of every float codec on the SKAB data, per column: what the store's
//! per-chunk choice gains over any single codec, and what it stores when each chunk follows
//! the seal hint the column's previous chunk left (as the store seals a series). Run with
//! `cargo run --release -p doppel-store --example skab_bytes [chunk_points]`.

#![allow(clippy::print_stdout)]

#[path = "../tests/support/skab.rs"]
mod skab;

use std::collections::BTreeMap;

use doppel_model::Value;
use doppel_store::codec::{self, floats, FloatCodec, SealHint};

fn main() {
    let Some(dir) = skab::dir() else { return };
    let chunk: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2048);
    let series = skab::load(&dir);
    // column -> (points, ts bytes, chosen value bytes, bytes per codec, chunks won per codec)
    #[derive(Default)]
    struct Acc {
        points: usize,
        ts: usize,
        chosen: usize,
        /// Both columns as sealed through the column's hint, carried through the files.
        hinted: usize,
        hint: SealHint,
        per_codec: [usize; FloatCodec::ALL.len()],
        won: [usize; FloatCodec::ALL.len()],
    }
    let mut by_column: BTreeMap<String, Acc> = BTreeMap::new();
    for s in &series {
        let acc = by_column.entry(s.column.clone()).or_default();
        for (ts, vals) in s.ts.chunks(chunk).zip(s.values.chunks(chunk)) {
            let mut t = Vec::new();
            codec::encode_timestamps(ts, &mut t);
            let values: Vec<Value> = vals.iter().map(|&v| Value::Float(v)).collect();
            let mut v = Vec::new();
            codec::encode_values(&values, &mut v);
            acc.points += ts.len();
            acc.ts += t.len();
            acc.chosen += v.len();
            let (mut ht, mut hv) = (Vec::new(), Vec::new());
            acc.hint.encode_columns(ts, &values, &mut ht, &mut hv);
            acc.hinted += ht.len() + hv.len();
            for (i, c) in FloatCodec::ALL.iter().enumerate() {
                let mut out = Vec::new();
                // A codec that cannot hold the chunk counts as raw.
                if !floats::encode_with(*c, vals, &mut out) {
                    floats::encode_with(FloatCodec::Raw, vals, &mut out);
                }
                acc.per_codec[i] += out.len() + 1;
            }
            if let Some(c) = codec::float_codec_of(&v) {
                if let Some(i) = FloatCodec::ALL.iter().position(|x| *x == c) {
                    acc.won[i] += 1;
                }
            }
        }
    }
    println!("chunk size {chunk} points; bytes/point of the value column per codec");
    print!(
        "{:<22} {:>8} {:>7} {:>7}",
        "column", "points", "ts", "chosen"
    );
    for c in FloatCodec::ALL {
        print!(" {:>8}", c.name());
    }
    println!("  chunks won");
    let mut total = Acc::default();
    for (name, a) in &by_column {
        let bpp = |x: usize| x as f64 / a.points as f64;
        print!(
            "{:<22} {:>8} {:>7.3} {:>7.3}",
            name,
            a.points,
            bpp(a.ts),
            bpp(a.chosen)
        );
        for i in 0..FloatCodec::ALL.len() {
            print!(" {:>8.3}", bpp(a.per_codec[i]));
        }
        println!("  {:?}", a.won);
        if !skab::is_label(name) {
            total.points += a.points;
            total.ts += a.ts;
            total.chosen += a.chosen;
            total.hinted += a.hinted;
            for i in 0..FloatCodec::ALL.len() {
                total.per_codec[i] += a.per_codec[i];
            }
        }
    }
    let bpp = |x: usize| x as f64 / total.points as f64;
    println!(
        "sensor columns: {} points, {:.3} B/pt = timestamps {:.3} + values {:.3}; single codec: {}",
        total.points,
        bpp(total.ts + total.chosen),
        bpp(total.ts),
        bpp(total.chosen),
        FloatCodec::ALL
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} {:.3}", c.name(), bpp(total.per_codec[i])))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "sensor columns sealed through seal hints (one per column, through all files): {:.3} B/pt",
        bpp(total.hinted)
    );
}
