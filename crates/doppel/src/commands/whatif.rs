//! `doppel whatif`: runs a scenario file against a server's learned twin model and prints,
//! per scenario, how every output would differ from the baseline (nothing changed), with the
//! predicted limit crossings. The file is the body of `POST /api/v1/twins/{id}/scenarios`,
//! optionally with the twin in it:
//!
//! ```json
//! {"twin": "pump-1",
//!  "scenarios": [{"name": "slower", "horizon_s": 7200, "output_step_s": 60,
//!                 "changes": [{"signal": "speed_cmd", "kind": "step", "at_s": 600, "value": 1600}]}]}
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use doppel_model::format_ts;
use serde_json::Value;

/// Flags of `doppel whatif`.
#[derive(Debug, Clone, clap::Args)]
pub struct WhatIfArgs {
    /// Scenario file (JSON): `{"twin"?, "start"?, "scenarios": [...]}`.
    pub file: PathBuf,
    /// Server URL.
    #[arg(long, env = "DOPPEL_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API token (any role).
    #[arg(long, env = "DOPPEL_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Twin to ask (overrides the file's `twin`).
    #[arg(long)]
    pub twin: Option<String>,
    /// Print the server's whole answer as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[allow(clippy::print_stdout)]
pub fn run(a: WhatIfArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("reading {}", a.file.display()))?;
    let mut body: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", a.file.display()))?;
    let Some(obj) = body.as_object_mut() else {
        bail!(
            "{}: expected a JSON object with `scenarios`",
            a.file.display()
        );
    };
    let twin = match (a.twin.clone(), obj.remove("twin")) {
        (Some(t), _) => t,
        (None, Some(Value::String(t))) => t,
        _ => bail!("name the twin with --twin or a \"twin\" field in the file"),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (answer, units) = rt.block_on(ask(&a, &twin, &body))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", table(&answer, &units));
    }
    Ok(())
}

async fn ask(a: &WhatIfArgs, twin: &str, body: &Value) -> anyhow::Result<(Value, Value)> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let base = a.url.trim_end_matches('/');
    let get = |path: String| {
        let client = client.clone();
        let token = a.token.clone();
        async move {
            let r = client
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .with_context(|| format!("GET {base}{path}"))?;
            let status = r.status();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                bail!(
                    "GET {path}: {status}: {}",
                    v["error"].as_str().unwrap_or("")
                );
            }
            Ok::<Value, anyhow::Error>(v)
        }
    };
    let state = get(format!("/api/v1/twins/{twin}")).await?;
    let model = state["model"].as_str().unwrap_or_default().to_string();
    let units = get(format!("/api/v1/models/{model}")).await?;
    let url = format!("{base}/api/v1/twins/{twin}/scenarios");
    let r = client
        .post(&url)
        .bearer_auth(&a.token)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = r.status();
    let answer: Value = r.json().await.context("reading the answer")?;
    if !status.is_success() {
        bail!(
            "the server refused the scenarios ({status}): {}",
            answer["error"].as_str().unwrap_or("no reason given")
        );
    }
    Ok((answer, units))
}

/// The answer as text: a header with the start and the model's fit, then per scenario one
/// line per output.
fn table(answer: &Value, model: &Value) -> String {
    use std::fmt::Write as _;
    let unit = |signal: &str| -> String {
        model["signals"]
            .as_array()
            .and_then(|l| {
                l.iter()
                    .find(|s| s["signal"] == signal || s["name"] == signal)
            })
            .and_then(|s| s["unit"].as_str())
            .unwrap_or("")
            .to_string()
    };
    let mut out = String::new();
    let start = answer["start"].as_i64().map(format_ts).unwrap_or_default();
    let _ = writeln!(
        out,
        "what-if on {} from {start} (model step {} s)",
        answer["twin"].as_str().unwrap_or("?"),
        answer["model"]["step_s"]
    );
    let fits: Vec<String> = answer["model"]["outputs"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|o| {
                    format!(
                        "{} {:.1} %",
                        o["signal"].as_str().unwrap_or("?"),
                        o["nrmse_horizon"].as_f64().unwrap_or(f64::NAN) * 100.0
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let _ = writeln!(out, "held-out error 1 h ahead (NRMSE): {}", fits.join(", "));
    let Some(scenarios) = answer["scenarios"].as_array().filter(|l| !l.is_empty()) else {
        let _ = writeln!(out, "\n(no scenario: the baseline alone)");
        return out;
    };
    for (i, s) in scenarios.iter().enumerate() {
        let name = s["name"]
            .as_str()
            .map_or_else(|| format!("#{}", i + 1), str::to_string);
        let _ = writeln!(out, "\nscenario {name}");
        for x in s["result"]["extrapolated_inputs"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let _ = writeln!(
                out,
                "  note: {} leaves the range seen in the history; the model extrapolates",
                x.as_str().unwrap_or("?")
            );
        }
        let _ = writeln!(
            out,
            "  {:<22} {:>8} {:>12} {:>12} {:>11} {:>16}  limit crossing",
            "output", "unit", "baseline", "scenario", "Δ mean", "max |Δ| (at)"
        );
        for o in s["comparison"]["outputs"].as_array().into_iter().flatten() {
            let sig = o["signal"].as_str().unwrap_or("?");
            let f = |k: &str| o[k].as_f64().unwrap_or(f64::NAN);
            let crossing = match &o["scenario_crossing"] {
                Value::Null => match &o["baseline_crossing"] {
                    Value::Null => String::new(),
                    _ => "baseline crosses, scenario does not".to_string(),
                },
                c => format!(
                    "{} {} after {:.0} min",
                    match c["side"].as_str() {
                        Some("above") => "above the upper limit",
                        Some("below") => "below the lower limit",
                        _ => "outside the limit",
                    },
                    c["limit"],
                    c["at_s"].as_f64().unwrap_or(f64::NAN) / 60.0
                ),
            };
            let _ = writeln!(
                out,
                "  {sig:<22} {:>8} {:>12.3} {:>12.3} {:>+11.3} {:>9.3} ({:>3.0}m)  {crossing}",
                unit(sig),
                f("baseline_mean"),
                f("scenario_mean"),
                f("mean_delta"),
                f("max_abs_delta"),
                f("max_abs_delta_at_s") / 60.0,
            );
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn table_names_each_output_with_its_delta_and_crossing() {
        let answer = serde_json::json!({
            "twin": "pump-1", "start": 0,
            "model": {"step_s": 30.0, "outputs": [{"signal": "flow", "nrmse_horizon": 0.0031}]},
            "scenarios": [{"name": "slower",
                "result": {"extrapolated_inputs": ["speed_cmd"]},
                "comparison": {"outputs": [
                    {"signal": "flow", "baseline_mean": 90.0, "scenario_mean": 70.5,
                     "mean_delta": -19.5, "max_abs_delta": 23.2, "max_abs_delta_at_s": 1200.0,
                     "baseline_crossing": null,
                     "scenario_crossing": {"side": "below", "limit": 40.0, "value": 39.0, "at_s": 3000.0}}]}}]
        });
        let model = serde_json::json!({"signals": [{"name": "flow", "unit": "m³/h"}]});
        let t = table(&answer, &model);
        assert!(
            t.contains("what-if on pump-1 from 1970-01-01T00:00:00Z"),
            "{t}"
        );
        assert!(t.contains("flow 0.3 %"), "{t}");
        assert!(t.contains("scenario slower"), "{t}");
        assert!(t.contains("speed_cmd leaves the range"), "{t}");
        let line = t
            .lines()
            .find(|l| l.trim_start().starts_with("flow "))
            .unwrap();
        assert!(line.contains("m³/h") && line.contains("-19.500"), "{line}");
        assert!(
            line.contains("below the lower limit 40.0 after 50 min"),
            "{line}"
        );
    }
}
