//! `doppel eval fleet-rul`: how the remaining-useful-life model the engine learns from a
//! fleet's recorded failures improves as failures accumulate.
//!
//! Simulates pumps that run healthy for one to four days, then wear a drive-end bearing to
//! failure (the simulator's `bearing_wear`, rate drawn from `--wear-rate`: failures four to
//! fourteen days after onset at the default), reads each as the engine reads a twin's
//! stored history (hourly bucket means of the model's inputs, disturbances and outputs,
//! [`FleetLayout::steps`]), and fits [`RulModel`] with [`fleet_config`] on the first 2, 4,
//! 8... failed pumps of a training pool, `--repeats` different subsets per size. Every fit
//! is scored on the same held-out test pumps at every hour of their lives: RMSE against the
//! true RUL where it is at most the cap (240 h; before that the target is the cap) and over
//! the last three days, and how often the interval held the truth.

use std::io::Write;
use std::time::Instant;

use anyhow::bail;
use doppel_analytics::{fleet_config, FleetLayout, RulModel, RulRun, FLEET_STEP_NS};
use doppel_model::Timestamp;
use doppel_sim::{seeded_rng, AssetKind, FaultKind, FaultSpec, RUN_START};
use serde::Serialize;

use super::eval_advice::Draws;

const NS_PER_S: f64 = 1e9;
const HOUR_S: f64 = 3_600.0;
const DAY_S: f64 = 86_400.0;

/// Flags of `doppel eval fleet-rul`.
#[derive(Debug, Clone, clap::Args)]
pub struct FleetRulArgs {
    /// Pumps in the training pool (the largest fleet size).
    #[arg(long, default_value_t = 32)]
    pub train: usize,
    /// Held-out pumps every fit is scored on.
    #[arg(long, default_value_t = 12)]
    pub test: usize,
    /// Fleet sizes (recorded failures) to fit on.
    #[arg(long, value_delimiter = ',', default_value = "2,4,8,16,32")]
    pub sizes: Vec<usize>,
    /// Healthy pumps (ten days, no fault) every fit is also scored on.
    #[arg(long, default_value_t = 6)]
    pub healthy: usize,
    /// Subsets of the pool fitted per size (results are averaged).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Range of the bearing wear rate (the simulator's severity; 1.0 fails in about a day).
    #[arg(long = "wear-rate", value_delimiter = ',', default_value = "0.12,0.4")]
    pub wear_rate: Vec<f64>,
    /// Seconds between simulated readings.
    #[arg(long = "rate-secs", default_value_t = 60.0)]
    pub rate_secs: f64,
    #[arg(long, default_value_t = 11)]
    pub seed: u64,
}

/// One fit on a subset of the pool, scored on the test pumps.
#[derive(Debug, Clone, Serialize)]
pub struct Fit {
    pub runs: usize,
    pub train_secs: f64,
    /// RMSE (hours) over the test pumps' hours with a true RUL up to the cap.
    pub rmse_h: f64,
    /// RMSE (hours) over the last 72 hours before each test failure.
    pub rmse_last_72h: f64,
    /// Share of those hours (true RUL up to the cap) inside the interval.
    pub coverage: f64,
    /// The model's own cross-validated RMSE within the cap (what the engine reports).
    pub cv_rmse_h: f64,
    /// Healthy pumps (no fault, ten days): the median estimate over their hours after the
    /// first day, and the share of those hours estimated below three days (false alarms).
    pub healthy_median_h: f64,
    pub healthy_short_share: f64,
}

/// Every fit of one fleet size and their mean.
#[derive(Debug, Clone, Serialize)]
pub struct Size {
    pub runs: usize,
    pub rmse_h: f64,
    pub rmse_last_72h: f64,
    pub coverage: f64,
    pub train_secs: f64,
    pub healthy_median_h: f64,
    pub healthy_short_share: f64,
    pub fits: Vec<Fit>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FleetRulReport {
    pub pool: usize,
    pub test: usize,
    /// Simulated pumps that did not fail within 30 days (left out).
    pub no_failure: usize,
    pub rul_cap_h: f64,
    /// Median hours of life per run (healthy part included).
    pub median_life_h: f64,
    pub sizes: Vec<Size>,
    pub simulate_secs: f64,
}

pub fn run(a: FleetRulArgs) -> anyhow::Result<()> {
    let report = evaluate(&a)?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &report)?;
    writeln!(out)?;
    Ok(())
}

/// One simulated pump read as the engine reads history: hourly means per layout column.
fn simulate(i: usize, a: &FleetRulArgs, draws: &mut Draws, healthy: bool) -> Option<RulRun> {
    let kind = AssetKind::PumpMotor;
    let id = format!("pump-{:03}", i + 1);
    let seed = draws.next();
    let onset_s = draws.uniform(DAY_S, 4.0 * DAY_S);
    let rate = draws.uniform(a.wear_rate[0], a.wear_rate[1]);
    let mut asset = kind.build(&id, seed);
    let at = RUN_START + (onset_s * NS_PER_S) as i64;
    if !healthy {
        asset
            .inject(FaultSpec::new(FaultKind::BearingWear, at, rate))
            .ok()?;
    }
    let model = asset.model();
    let layout = FleetLayout::for_model(&model);
    let index: Vec<usize> = layout
        .columns()
        .filter_map(|c| model.signals.iter().position(|s| s.name == c))
        .collect();
    let dt_ns = (a.rate_secs * NS_PER_S).round() as i64;
    let days = if healthy { 10.0 } else { 30.0 };
    let steps = (days * DAY_S / a.rate_secs).ceil() as i64;
    let mut rng = seeded_rng(seed ^ 0x5eed);
    let mut row = vec![0.0; model.signals.len()];
    let mut sums = vec![(0.0, 0u32); index.len()];
    let mut columns: Vec<Vec<(Timestamp, f64)>> = vec![Vec::new(); index.len()];
    let mut hour = RUN_START.div_euclid(FLEET_STEP_NS);
    let flush = |hour: i64, sums: &mut Vec<(f64, u32)>, columns: &mut Vec<Vec<_>>| {
        for (s, c) in sums.iter_mut().zip(columns.iter_mut()) {
            if s.1 > 0 {
                c.push((hour * FLEET_STEP_NS, s.0 / f64::from(s.1)));
            }
            *s = (0.0, 0);
        }
    };
    for k in 0..steps {
        let ts = RUN_START + k * dt_ns;
        if ts.div_euclid(FLEET_STEP_NS) != hour {
            flush(hour, &mut sums, &mut columns);
            hour = ts.div_euclid(FLEET_STEP_NS);
        }
        asset.step_into(ts, a.rate_secs, &mut rng, &mut row);
        for (s, &j) in sums.iter_mut().zip(&index) {
            if row[j].is_finite() {
                s.0 += row[j];
                s.1 += 1;
            }
        }
        if asset.failed_at().is_some() {
            flush(hour, &mut sums, &mut columns);
            return Some(RulRun {
                id,
                steps: layout.steps(&columns),
            });
        }
    }
    if healthy {
        flush(hour, &mut sums, &mut columns);
        return Some(RulRun {
            id,
            steps: layout.steps(&columns),
        });
    }
    None
}

fn evaluate(a: &FleetRulArgs) -> anyhow::Result<FleetRulReport> {
    let [lo, hi] = a.wear_rate[..] else {
        bail!("--wear-rate takes two numbers: low,high");
    };
    if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
        bail!("--wear-rate must be two positive numbers, low first");
    }
    if !(a.rate_secs.is_finite() && a.rate_secs > 0.0 && a.rate_secs <= HOUR_S) {
        bail!("--rate-secs must be in (0, 3600]");
    }
    if a.test == 0 || a.repeats == 0 {
        bail!("--test and --repeats must be at least 1");
    }
    if let Some(s) = a.sizes.iter().find(|&&s| s < 2 || s > a.train) {
        bail!("--sizes: {s} is not between 2 and --train ({})", a.train);
    }
    let began = Instant::now();
    let wanted = a.train + a.test;
    let mut draws = Draws(a.seed ^ 0xf1ee_7000);
    let mut runs = Vec::with_capacity(wanted);
    let mut no_failure = 0;
    // Draw every pump's plan first (sequentially, so the plan depends on the seed alone),
    // then simulate on two threads.
    let plans: Vec<(usize, Draws)> = (0..wanted * 2).map(|i| (i, Draws(draws.next()))).collect();
    let results: Vec<Option<RulRun>> = std::thread::scope(|scope| {
        let chunks: Vec<_> = plans
            .chunks(plans.len().div_ceil(2).max(1))
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(i, d)| simulate(*i, a, &mut Draws(d.0), false))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        chunks
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for r in results {
        if runs.len() == wanted {
            break;
        }
        match r {
            Some(run) if run.steps.len() >= 2 => runs.push(run),
            _ => no_failure += 1,
        }
    }
    if runs.len() < wanted {
        bail!(
            "only {} of {wanted} simulated pumps failed within 30 days; lower --train/--test or raise --wear-rate",
            runs.len()
        );
    }
    let healthy: Vec<RulRun> = (0..a.healthy)
        .filter_map(|i| simulate(10_000 + i, a, &mut Draws(draws.next()), true))
        .collect();
    let simulate_secs = began.elapsed().as_secs_f64();
    let (pool, test) = runs.split_at(a.train);
    let mut lives: Vec<f64> = runs.iter().map(|r| r.steps.len() as f64).collect();
    lives.sort_by(f64::total_cmp);
    let cap = fleet_config(a.seed).rul_cap;
    let mut sizes = Vec::new();
    for &n in &a.sizes {
        let mut fits = Vec::new();
        for r in 0..a.repeats {
            // A different subset per repeat: a seeded shuffle of the pool.
            let mut order: Vec<usize> = (0..pool.len()).collect();
            let mut d = Draws(a.seed ^ (r as u64 + 1).wrapping_mul(0x9E37_79B9));
            for i in (1..order.len()).rev() {
                order.swap(i, (d.next() % (i as u64 + 1)) as usize);
            }
            let subset: Vec<RulRun> = order[..n].iter().map(|&i| pool[i].clone()).collect();
            let t0 = Instant::now();
            let model = RulModel::fit(&subset, &fleet_config(a.seed.wrapping_add(r as u64)))?;
            let train_secs = t0.elapsed().as_secs_f64();
            let mut fit = score(&model, test, train_secs, cap)?;
            (fit.healthy_median_h, fit.healthy_short_share) = score_healthy(&model, &healthy)?;
            fits.push(fit);
        }
        let mean = |f: fn(&Fit) -> f64| fits.iter().map(f).sum::<f64>() / fits.len() as f64;
        sizes.push(Size {
            runs: n,
            rmse_h: mean(|f| f.rmse_h),
            rmse_last_72h: mean(|f| f.rmse_last_72h),
            coverage: mean(|f| f.coverage),
            train_secs: mean(|f| f.train_secs),
            healthy_median_h: mean(|f| f.healthy_median_h),
            healthy_short_share: mean(|f| f.healthy_short_share),
            fits,
        });
    }
    Ok(FleetRulReport {
        pool: a.train,
        test: a.test,
        no_failure,
        rul_cap_h: cap,
        median_life_h: lives[lives.len() / 2],
        sizes,
        simulate_secs,
    })
}

fn score(model: &RulModel, test: &[RulRun], train_secs: f64, cap: f64) -> anyhow::Result<Fit> {
    let (mut sq, mut n, mut sq72, mut n72, mut inside) = (0.0, 0usize, 0.0, 0usize, 0usize);
    for run in test {
        let estimates = model.predict_each(&run.steps)?;
        let last = estimates.len() - 1;
        for (t, e) in estimates.iter().enumerate() {
            let truth = (last - t) as f64;
            if truth > cap {
                continue;
            }
            let err = (e.rul - truth).powi(2);
            sq += err;
            n += 1;
            if truth <= 72.0 {
                sq72 += err;
                n72 += 1;
            }
            if truth >= e.lower && truth <= e.upper {
                inside += 1;
            }
        }
    }
    Ok(Fit {
        runs: model.held_out().runs,
        train_secs,
        rmse_h: (sq / n.max(1) as f64).sqrt(),
        rmse_last_72h: (sq72 / n72.max(1) as f64).sqrt(),
        coverage: inside as f64 / n.max(1) as f64,
        cv_rmse_h: model.held_out().rmse_within_cap,
        healthy_median_h: f64::NAN,
        healthy_short_share: f64::NAN,
    })
}

/// Median estimate and share below 72 h over healthy pumps' hours after their first day.
fn score_healthy(model: &RulModel, healthy: &[RulRun]) -> anyhow::Result<(f64, f64)> {
    let mut all = Vec::new();
    for run in healthy {
        let estimates = model.predict_each(&run.steps)?;
        all.extend(estimates.iter().skip(24).map(|e| e.rul));
    }
    if all.is_empty() {
        return Ok((f64::NAN, f64::NAN));
    }
    let short = all.iter().filter(|&&r| r < 72.0).count() as f64 / all.len() as f64;
    all.sort_by(f64::total_cmp);
    Ok((all[all.len() / 2], short))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn more_recorded_failures_give_a_smaller_error() {
        let a = FleetRulArgs {
            train: 8,
            test: 4,
            sizes: vec![2, 8],
            repeats: 1,
            healthy: 2,
            wear_rate: vec![0.12, 0.4],
            rate_secs: 120.0,
            seed: 11,
        };
        let r = evaluate(&a).unwrap();
        assert_eq!(r.sizes.len(), 2);
        let (few, many) = (&r.sizes[0], &r.sizes[1]);
        assert!(
            many.rmse_h < few.rmse_h,
            "{} vs {}",
            many.rmse_h,
            few.rmse_h
        );
        assert!(many.rmse_last_72h < few.rmse_last_72h);
        // An error of a day or two over lives of about ten days, not a constant guess.
        assert!(many.rmse_h < 60.0, "{}", many.rmse_h);
        assert!(many.coverage > 0.6, "{}", many.coverage);
    }

    #[test]
    fn bad_flags_are_refused() {
        let a = FleetRulArgs {
            train: 4,
            test: 2,
            sizes: vec![8],
            repeats: 1,
            healthy: 0,
            wear_rate: vec![0.12, 0.4],
            rate_secs: 60.0,
            seed: 1,
        };
        assert!(evaluate(&a).unwrap_err().to_string().contains("--sizes"));
        let a = FleetRulArgs {
            wear_rate: vec![0.4],
            sizes: vec![2],
            ..a
        };
        assert!(evaluate(&a)
            .unwrap_err()
            .to_string()
            .contains("--wear-rate"));
    }
}
