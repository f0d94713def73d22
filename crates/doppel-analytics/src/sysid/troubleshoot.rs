//! Troubleshooting: rank the likely causes of an abnormal window of a twin's history.
//!
//! Every numeric signal of the twin and of its related twins is put on a grid. Two kinds of
//! departure are looked for after `window_start`, each as the first *sustained* exceedance
//! (`sustain` consecutive bins beyond `k_sigma` of the normal spread), which is robust to the
//! isolated spikes a CUSUM would accumulate:
//! - a **relation break**: an output leaves what its identified model predicts from the
//!   twin's own inputs (free run over the whole history, residual spread measured before the
//!   window). This is the strongest evidence: the physics the twin used to obey changed;
//! - a **level change**: a signal leaves the trend it followed over the last `baseline_s`
//!   before the window. For inputs and disturbances this is an *input change* (an operator
//!   action, the weather, or an upstream twin pushing it); for outputs of a twin with a model
//!   whose relation still holds it is *explained* by the inputs and scored low.
//!
//! Candidates are ranked by how early they start (the first deviation is the best root-cause
//! candidate), then by kind and strength. The evidence names the onset, the size of the
//! departure, the lead or lag against the top candidate (cross-correlation of the
//! standardized departures), and related twins that deviated earlier.

use doppel_model::{AssetModel, SignalRole, ValueKind};
use serde::{Deserialize, Serialize};

use super::fit::{feature_rows, table_for, SysIdModel};
use super::resample::{find, resample, Grid, Series};
use super::SysIdError;
use crate::Timestamp;

/// One twin's history as troubleshooting sees it.
#[derive(Debug, Clone, Copy)]
pub struct RelatedHistory<'a> {
    pub twin: &'a str,
    /// How this twin relates to the one being troubleshot: `"self"` for that twin, otherwise
    /// a relation path such as `"upstream"` or `"feeds<-pump-2"`.
    pub relation: &'a str,
    pub asset: &'a AssetModel,
    /// The twin's identified model, if it has one (enables relation-break detection).
    pub model: Option<&'a SysIdModel>,
    /// Readings from well before `window_start` (the baseline) through the window.
    pub history: &'a [Series],
}

/// Detection thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TroubleshootConfig {
    /// Grid step for twins without a model, seconds (a model's own step is used otherwise).
    pub step_s: f64,
    /// Length of the pre-window stretch whose trend is the level baseline, seconds.
    pub baseline_s: f64,
    /// A departure is `k_sigma` times the baseline spread ...
    pub k_sigma: f64,
    /// ... for this many consecutive bins.
    pub sustain: usize,
    /// Largest lead or lag looked for between two signals, seconds.
    pub max_lag_s: f64,
}

impl Default for TroubleshootConfig {
    fn default() -> Self {
        TroubleshootConfig {
            step_s: 30.0,
            baseline_s: 7_200.0,
            k_sigma: 5.0,
            sustain: 4,
            max_lag_s: 1_800.0,
        }
    }
}

/// What kind of departure a cause is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseKind {
    /// An output no longer follows its learned relation to the inputs.
    RelationBreak,
    /// An input or disturbance changed.
    InputChange,
    /// An output left its recent level, without a model to tell whether inputs explain it.
    LevelShift,
    /// An output left its recent level, but its learned relation still holds: the inputs
    /// explain it.
    Explained,
}

/// One ranked candidate cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    pub twin: String,
    pub relation: String,
    pub signal: String,
    /// End of the first bin of the sustained departure.
    pub onset: Timestamp,
    pub kind: CauseKind,
    /// In `[0, 1]`, higher is more likely the root cause.
    pub score: f64,
    pub evidence: String,
}

/// A detected departure with the standardized series it was found in.
struct Departure {
    twin: usize,
    signal: String,
    kind: CauseKind,
    onset: Timestamp,
    step_ns: i64,
    /// Mean |z| after onset.
    strength: f64,
    /// Standardized departure over the window bins.
    z: Vec<f64>,
    window_first: Timestamp,
    detail: String,
}

fn first_sustained(z: &[f64], k: f64, sustain: usize) -> Option<usize> {
    let mut run = 0;
    for (i, v) in z.iter().enumerate() {
        if v.abs() > k {
            run += 1;
            if run >= sustain {
                return Some(i + 1 - sustain);
            }
        } else {
            run = 0;
        }
    }
    None
}

/// Least-squares line through `v` (x = 0..n), as (intercept, slope, residual sd).
fn trend(v: &[f64]) -> (f64, f64, f64) {
    let n = v.len() as f64;
    let mx = (n - 1.0) / 2.0;
    let my = v.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, y) in v.iter().enumerate() {
        let dx = i as f64 - mx;
        sxy += dx * (y - my);
        sxx += dx * dx;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let a = my - slope * mx;
    let sd = if v.len() > 2 {
        (v.iter()
            .enumerate()
            .map(|(i, y)| (y - a - slope * i as f64).powi(2))
            .sum::<f64>()
            / (n - 2.0))
            .sqrt()
    } else {
        0.0
    };
    (a, slope, sd)
}

/// Ranks candidate causes of what happened from `window_start` on. `twins[0]` is usually the
/// twin being troubleshot (`relation = "self"`); the others are related twins.
pub fn troubleshoot(
    twins: &[RelatedHistory<'_>],
    window_start: Timestamp,
    config: &TroubleshootConfig,
) -> Result<Vec<Cause>, SysIdError> {
    let mut problems = Vec::new();
    if !(config.step_s.is_finite() && config.step_s > 0.0) {
        problems.push(format!("step_s must be positive, got {}", config.step_s));
    }
    if !(config.baseline_s.is_finite() && config.baseline_s > 0.0) {
        problems.push(format!(
            "baseline_s must be positive, got {}",
            config.baseline_s
        ));
    }
    if !(config.k_sigma.is_finite() && config.k_sigma > 0.0) {
        problems.push(format!("k_sigma must be positive, got {}", config.k_sigma));
    }
    if config.sustain == 0 {
        problems.push("sustain must be at least 1".into());
    }
    if !(config.max_lag_s.is_finite() && config.max_lag_s >= 0.0) {
        problems.push(format!("max_lag_s must be >= 0, got {}", config.max_lag_s));
    }
    if twins.is_empty() {
        problems.push("no twin to troubleshoot".into());
    }
    if !problems.is_empty() {
        return Err(SysIdError::InvalidConfig { problems });
    }

    let mut found: Vec<Departure> = Vec::new();
    for (ti, tw) in twins.iter().enumerate() {
        let err = |problem: String| SysIdError::Twin {
            twin: tw.twin.to_string(),
            problem,
        };
        if let Some(m) = tw.model {
            if m.model_id != tw.asset.id {
                return Err(err(format!(
                    "its model was identified for {:?}, the twin is a {:?}",
                    m.model_id, tw.asset.id
                )));
            }
        }
        let step_s = tw.model.map_or(config.step_s, |m| m.step_s);
        let grid = Grid::covering(tw.history, step_s).map_err(|e| err(e.to_string()))?;
        // First bin ending after the window start.
        let w0 = (0..grid.len).find(|&k| grid.end(k) > window_start);
        let Some(w0) = w0 else {
            return Err(err("the history ends before the window starts".into()));
        };
        let base_bins = ((config.baseline_s / step_s).round() as usize).max(3);
        if w0 < 3 {
            return Err(err(format!(
                "need at least 3 bins ({} s) of history before the window",
                3.0 * step_s
            )));
        }
        let b0 = w0.saturating_sub(base_bins);

        // Relation breaks.
        let mut broken = Vec::new();
        let mut modelled = Vec::new();
        if let Some(model) = tw.model {
            let table = table_for(model, tw.history).map_err(|e| err(e.to_string()))?;
            let rows = feature_rows(model, &table);
            let (w, m) = (model.width(), model.m());
            let warm = model.max_input_lags().max(2);
            for (om, y) in model.outputs.iter().zip(&table.outputs) {
                let Some(y) = y else { continue };
                if w0 < warm + 10 {
                    return Err(err(format!(
                        "need at least {} bins of history before the window to judge relations",
                        warm + 10
                    )));
                }
                modelled.push(om.signal.clone());
                let exo: Vec<f64> = (warm..grid.len).map(|k| om.exo(&rows, w, m, k)).collect();
                let mut pred = Vec::new();
                let prev = [
                    (y[warm - 1] - om.mean) / om.scale,
                    (y[warm - 2] - om.mean) / om.scale,
                ];
                om.run(&exo, prev, &mut pred);
                let resid: Vec<f64> = pred
                    .iter()
                    .enumerate()
                    .map(|(i, p)| y[warm + i] - (p * om.scale + om.mean))
                    .collect();
                // Spread before the window, skipping the model's own settling.
                let settle = (model.horizon_steps / 2).min((w0 - warm) / 2);
                let before = &resid[settle..w0 - warm];
                let mean = before.iter().sum::<f64>() / before.len() as f64;
                let sd = (before.iter().map(|r| (r - mean).powi(2)).sum::<f64>()
                    / before.len().max(2) as f64)
                    .sqrt()
                    .max(1e-9 * (1.0 + om.mean.abs()));
                let z: Vec<f64> = resid[w0 - warm..].iter().map(|r| (r - mean) / sd).collect();
                if let Some(i) = first_sustained(&z, config.k_sigma, config.sustain) {
                    let strength =
                        z[i..].iter().map(|v| v.abs()).sum::<f64>() / (z.len() - i) as f64;
                    let sign = if z[i..].iter().sum::<f64>() >= 0.0 {
                        "above"
                    } else {
                        "below"
                    };
                    broken.push(om.signal.clone());
                    found.push(Departure {
                        twin: ti,
                        signal: om.signal.clone(),
                        kind: CauseKind::RelationBreak,
                        onset: grid.end(w0 + i),
                        step_ns: grid.step_ns,
                        strength,
                        window_first: grid.end(w0),
                        detail: format!(
                            "reads {sign} what its inputs predict by {:.1}σ on average \
                             (σ = {:.3} before the window)",
                            strength, sd
                        ),
                        z,
                    });
                }
            }
        }

        // Level changes against the recent trend.
        for spec in &tw.asset.signals {
            if !matches!(spec.kind, ValueKind::Float | ValueKind::Int) {
                continue;
            }
            let Some(r) = find(tw.history, &spec.name).and_then(|s| resample(s, &grid)) else {
                continue;
            };
            let x = &r.values;
            let (a, slope, sd) = trend(&x[b0..w0]);
            let floor = (r.reading_sd / 4.0).max(1e-6 * (1.0 + a.abs()));
            let sd = sd.max(floor);
            let z: Vec<f64> = (w0..grid.len)
                .map(|k| (x[k] - a - slope * (k - b0) as f64) / sd)
                .collect();
            let Some(i) = first_sustained(&z, config.k_sigma, config.sustain) else {
                continue;
            };
            let kind = match spec.role {
                SignalRole::Input | SignalRole::Disturbance => CauseKind::InputChange,
                SignalRole::Output if broken.contains(&spec.name) => continue,
                SignalRole::Output if modelled.contains(&spec.name) => CauseKind::Explained,
                SignalRole::Output => CauseKind::LevelShift,
            };
            let strength = z[i..].iter().map(|v| v.abs()).sum::<f64>() / (z.len() - i) as f64;
            let before = a + slope * (w0 - b0) as f64;
            let after = x[w0 + i..].iter().sum::<f64>() / (grid.len - w0 - i) as f64;
            found.push(Departure {
                twin: ti,
                signal: spec.name.clone(),
                kind,
                onset: grid.end(w0 + i),
                step_ns: grid.step_ns,
                strength,
                window_first: grid.end(w0),
                detail: format!(
                    "moved from {before:.3} to {after:.3} {} on average ({strength:.1}σ of its \
                     recent spread)",
                    spec.unit
                ),
                z,
            });
        }
    }
    if found.is_empty() {
        return Ok(Vec::new());
    }

    // Score: earliness first, then kind, then strength.
    let first = found.iter().map(|d| d.onset).min().unwrap_or(window_start);
    let last_end = found
        .iter()
        .map(|d| d.window_first + d.step_ns * d.z.len() as i64)
        .max()
        .unwrap_or(window_start);
    let span = (last_end - first).max(1) as f64;
    let mut scored: Vec<(f64, usize)> = found
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let early = 1.0 - (d.onset - first) as f64 / span;
            let kind = match d.kind {
                CauseKind::RelationBreak => 1.0,
                CauseKind::InputChange => 0.8,
                CauseKind::LevelShift => 0.6,
                CauseKind::Explained => 0.3,
            };
            let strength = (d.strength / (4.0 * config.k_sigma)).min(1.0);
            (kind * (0.7 * early + 0.2 + 0.1 * strength), i)
        })
        .collect();
    scored.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(found[a.1].onset.cmp(&found[b.1].onset))
            .then(found[a.1].signal.cmp(&found[b.1].signal))
    });

    let top = scored[0].1;
    let causes = scored
        .iter()
        .map(|&(score, i)| {
            let d = &found[i];
            let tw = &twins[d.twin];
            let mut evidence = format!(
                "{} {} from {}: {}",
                d.signal,
                match d.kind {
                    CauseKind::RelationBreak => "broke its learned relation",
                    CauseKind::InputChange => "changed",
                    CauseKind::LevelShift => "left its recent level",
                    CauseKind::Explained => "left its recent level as its inputs predict",
                },
                doppel_model::format_ts(d.onset),
                d.detail
            );
            if i != top {
                let t = &found[top];
                let dt = (d.onset - t.onset) as f64 / 1e9;
                evidence.push_str(&format!(
                    "; starts {:.0} s {} {} {}",
                    dt.abs(),
                    if dt >= 0.0 { "after" } else { "before" },
                    twins[t.twin].twin,
                    t.signal
                ));
                if let Some((lag, r)) = lead_lag(t, d, config.max_lag_s) {
                    evidence.push_str(&format!(
                        " (cross-correlation {r:.2} at a lag of {lag:.0} s)"
                    ));
                }
            }
            let earlier: Vec<String> = found
                .iter()
                .filter(|o| o.twin != d.twin && o.onset < d.onset)
                .map(|o| format!("{} {}", twins[o.twin].twin, o.signal))
                .take(3)
                .collect();
            if !earlier.is_empty() {
                evidence.push_str(&format!(
                    "; related twins deviated earlier: {}",
                    earlier.join(", ")
                ));
            }
            Cause {
                twin: tw.twin.to_string(),
                relation: tw.relation.to_string(),
                signal: d.signal.clone(),
                onset: d.onset,
                kind: d.kind,
                score,
                evidence,
            }
        })
        .collect();
    Ok(causes)
}

/// The lag (seconds, positive when `b` follows `a`) maximizing the correlation of the two
/// standardized departures' changes, when both are on grids of the same step.
fn lead_lag(a: &Departure, b: &Departure, max_lag_s: f64) -> Option<(f64, f64)> {
    if a.step_ns != b.step_ns {
        return None;
    }
    let step_s = a.step_ns as f64 / 1e9;
    let offset = ((b.window_first - a.window_first) / a.step_ns) as isize;
    let max_lag = (max_lag_s / step_s).floor() as isize;
    let da: Vec<f64> = a.z.windows(2).map(|w| w[1] - w[0]).collect();
    let db: Vec<f64> = b.z.windows(2).map(|w| w[1] - w[0]).collect();
    let mut best: Option<(isize, f64)> = None;
    for lag in -max_lag..=max_lag {
        // b at index j corresponds to a at index j + offset − lag.
        let (mut sab, mut saa, mut sbb, mut n) = (0.0, 0.0, 0.0, 0);
        for (j, &y) in db.iter().enumerate() {
            let i = j as isize + offset - lag;
            if i < 0 || i as usize >= da.len() {
                continue;
            }
            let x = da[i as usize];
            sab += x * y;
            saa += x * x;
            sbb += y * y;
            n += 1;
        }
        if n < 8 || saa <= 0.0 || sbb <= 0.0 {
            continue;
        }
        let r = sab / (saa * sbb).sqrt();
        if best.is_none_or(|(_, br)| r.abs() > br.abs()) {
            best = Some((lag, r));
        }
    }
    best.map(|(lag, r)| (lag as f64 * step_s, r))
}
