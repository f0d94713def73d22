//! Runs the anomaly evaluation on CSV files or folders and prints a summary and the JSON
//! report: `cargo run --release -p doppel-analytics --example eval_anomaly -- <inputs>...`.
//! The `doppel eval anomaly` command is the user-facing entry point; this is for development.

use std::path::PathBuf;

use doppel_analytics::eval::{eval_files, eval_reader_with, EvalOptions};

#[allow(clippy::print_stdout)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = EvalOptions::default();
    let mut inputs = Vec::new();
    let mut args = std::env::args().skip(1);
    let mut json = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--trace" => {
                let f = PathBuf::from(args.next().ok_or("--trace needs a file")?);
                let name = f.display().to_string();
                let mut i = 0usize;
                eval_reader_with(&name, std::fs::File::open(&f)?, &opts, |s, label| {
                    let top: Vec<String> = s
                        .per_signal
                        .iter()
                        .take(3)
                        .map(|c| {
                            format!(
                                "{}:{:?}:{:.2}({:.4}/{:.4})",
                                &c.signal[..c.signal.len().min(8)],
                                c.kind,
                                c.score,
                                c.expected,
                                c.observed.unwrap_or(f64::NAN)
                            )
                        })
                        .collect();
                    println!(
                        "{i:5} {:.3} {} {} {}",
                        s.total,
                        u8::from(s.is_anomaly),
                        label.map_or("-".into(), |l| u8::from(l).to_string()),
                        top.join(" ")
                    );
                    i += 1;
                })?;
                return Ok(());
            }
            "--out" => opts.out = args.next().map(PathBuf::from),
            "--config" => {
                let c = args.next().ok_or("--config needs a JSON object")?;
                opts.detector = serde_json::from_str(&c)?;
            }
            _ => inputs.push(PathBuf::from(a)),
        }
    }
    let report = eval_files(&inputs, &opts)?;
    let pct = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{:.1}", 100.0 * v));
    let f3 = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.3}"));
    println!(
        "{:<28} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>4}",
        "file", "rows", "prec", "recall", "F1", "FAR%", "MAR%", "alm"
    );
    for f in &report.files {
        let m = &f.metrics;
        println!(
            "{:<28} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>4}",
            f.file,
            f.rows,
            f3(m.precision),
            f3(m.recall),
            f3(m.f1),
            pct(m.far),
            pct(m.mar),
            f.alarms
        );
    }
    for g in report.groups.iter().chain([&report.overall]) {
        let m = &g.metrics;
        println!(
            "{:<28} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
            g.group,
            g.rows,
            f3(m.precision),
            f3(m.recall),
            f3(m.f1),
            pct(m.far),
            pct(m.mar)
        );
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
