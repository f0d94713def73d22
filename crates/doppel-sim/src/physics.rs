//! Building blocks shared by the assets: exact first-order lags, weather-like random walks,
//! calendar position of a simulated timestamp and the daily/weekly schedules that make a plant
//! look lived-in.

use doppel_model::Timestamp;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::SimRng;

const NS_PER_S: i64 = 1_000_000_000;
const NS_PER_DAY: i64 = 86_400 * NS_PER_S;

/// Seconds from `from` to `to`.
pub(crate) fn secs_between(from: Timestamp, to: Timestamp) -> f64 {
    to.saturating_sub(from) as f64 / NS_PER_S as f64
}

/// `t` plus `s` seconds, saturating rather than wrapping at the ends of the timeline.
pub(crate) fn add_secs(t: Timestamp, s: f64) -> Timestamp {
    let ns = (s * NS_PER_S as f64).clamp(i64::MIN as f64, i64::MAX as f64) as i64;
    t.saturating_add(ns)
}

/// Hour of the (UTC) day in `[0, 24)`. Integer arithmetic first, so the answer does not lose
/// precision on 1.7e18-ns timestamps.
pub(crate) fn hour_of_day(t: Timestamp) -> f64 {
    t.rem_euclid(NS_PER_DAY) as f64 / (3_600.0 * NS_PER_S as f64)
}

/// Day of the week, 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday).
pub(crate) fn weekday(t: Timestamp) -> i64 {
    (t.div_euclid(NS_PER_DAY) + 3).rem_euclid(7)
}

pub(crate) fn is_weekend(t: Timestamp) -> bool {
    weekday(t) >= 5
}

/// One step of `dx/dt = (target - x) / tau`, solved exactly over `dt` rather than by Euler, so
/// the lag neither overshoots nor goes unstable whatever step the caller picks.
pub(crate) fn lag(x: f64, target: f64, dt_s: f64, tau_s: f64) -> f64 {
    if tau_s <= 0.0 {
        return target;
    }
    target + (x - target) * (-dt_s / tau_s).exp()
}

/// 0 before `a`, 1 after `b`, a smooth S between: schedules ramp rather than jump, as people
/// arriving at work or a shift starting do.
pub(crate) fn smoothstep(a: f64, b: f64, x: f64) -> f64 {
    let u = ((x - a) / (b - a)).clamp(0.0, 1.0);
    u * u * (3.0 - 2.0 * u)
}

/// A daily cosine with its peak at `peak_hour`, in `[-1, 1]`.
pub(crate) fn daily_wave(t: Timestamp, peak_hour: f64) -> f64 {
    (std::f64::consts::TAU * (hour_of_day(t) - peak_hour) / 24.0).cos()
}

/// Production demand in `[0, 1]`: two shifts (06–22) on weekdays, a reduced day on weekends,
/// base load at night.
pub(crate) fn production_demand(t: Timestamp) -> f64 {
    let h = hour_of_day(t);
    let on = smoothstep(5.5, 6.5, h) * (1.0 - smoothstep(21.5, 22.5, h));
    let (night, day) = if is_weekend(t) {
        (0.35, 0.55)
    } else {
        (0.35, 0.9)
    };
    night + (day - night) * on
}

/// Office occupancy in `[0, 1]`: arrive 07–09, a lunch dip, leave 17–19; almost empty at
/// weekends.
pub(crate) fn office_occupancy(t: Timestamp) -> f64 {
    let h = hour_of_day(t);
    if is_weekend(t) {
        return 0.05 * smoothstep(9.0, 10.0, h) * (1.0 - smoothstep(15.0, 16.0, h));
    }
    let present = smoothstep(7.0, 9.0, h) * (1.0 - smoothstep(17.0, 19.0, h));
    let lunch = 1.0 - 0.3 * smoothstep(11.8, 12.2, h) * (1.0 - smoothstep(13.0, 13.4, h));
    present * lunch
}

/// Hospital scanner use in `[0, 1]`: long weekday sessions (07–21), shorter at weekends, and a
/// little emergency scanning at night.
pub(crate) fn scan_activity(t: Timestamp) -> f64 {
    let h = hour_of_day(t);
    let (start, end, busy) = if is_weekend(t) {
        (9.0, 17.0, 0.35)
    } else {
        (7.0, 21.0, 0.85)
    };
    let on = smoothstep(start - 0.5, start + 0.5, h) * (1.0 - smoothstep(end - 0.5, end + 0.5, h));
    0.05 + (busy - 0.05) * on
}

/// Draws `N` standard normal samples. Every asset draws a fixed number per step whatever its
/// faults, so a faulty twin and a healthy twin with the same seed see the same noise and differ
/// only by the fault.
pub(crate) fn normals<const N: usize>(rng: &mut SimRng) -> [f64; N] {
    std::array::from_fn(|_| StandardNormal.sample(rng))
}

/// Uniform in `[lo, hi)`.
pub(crate) fn uniform(rng: &mut SimRng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// Ornstein–Uhlenbeck process: mean-reverting noise with standard deviation `sigma` and
/// correlation time `tau_s`, the usual model of weather deviations from the seasonal mean.
/// Stepped exactly, so its statistics do not depend on the step size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ou {
    pub x: f64,
    sigma: f64,
    tau_s: f64,
}

impl Ou {
    /// Starts from the stationary distribution so a plant does not begin on a calm average.
    pub fn new(sigma: f64, tau_s: f64, rng: &mut SimRng) -> Self {
        let [z] = normals::<1>(rng);
        Ou {
            x: sigma * z,
            sigma,
            tau_s,
        }
    }

    pub fn step(&mut self, dt_s: f64, z: f64) -> f64 {
        let a = (-dt_s / self.tau_s).exp();
        self.x = self.x * a + self.sigma * (1.0 - a * a).max(0.0).sqrt() * z;
        self.x
    }
}

/// Exponential damage growth `dw/dt = k (w + w0)`, the usual shape of spall or seal wear:
/// slow at first, accelerating as damage feeds on itself. Stepped exactly.
pub(crate) fn grow_damage(w: f64, rate_per_s: f64, dt_s: f64) -> f64 {
    (w + DAMAGE_SEED) * (rate_per_s * dt_s).exp() - DAMAGE_SEED
}

/// Initial flaw size: sets how long damage stays invisible before it accelerates.
pub(crate) const DAMAGE_SEED: f64 = 0.02;

/// Growth constant for which damage starting at 0 reaches 1.0 in one day: severity 1.0 of a
/// progressive fault means "fails in about a day at rated load".
pub(crate) fn damage_rate_per_day() -> f64 {
    (1.0 + 1.0 / DAMAGE_SEED).ln() / 86_400.0
}

/// A decay constant (1/s) for which a quantity halves in one day: severity 1.0 of a leak.
pub(crate) fn leak_rate_per_day() -> f64 {
    std::f64::consts::LN_2 / 86_400.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_of_known_instants() {
        // 2026-01-05T00:00:00Z is a Monday.
        let monday = 1_767_571_200 * NS_PER_S;
        assert_eq!(doppel_model::format_ts(monday), "2026-01-05T00:00:00Z");
        assert_eq!(weekday(monday), 0);
        assert_eq!(weekday(monday + 5 * NS_PER_DAY), 5);
        assert!((hour_of_day(monday + 13 * 3_600 * NS_PER_S) - 13.0).abs() < 1e-9);
        assert_eq!(weekday(-1), 2, "the day before the epoch was a Wednesday");
    }

    #[test]
    fn lag_is_exact_and_stable() {
        let x = lag(0.0, 10.0, 60.0, 60.0);
        assert!((x - 10.0 * (1.0 - (-1.0f64).exp())).abs() < 1e-12);
        assert_eq!(lag(0.0, 10.0, 1e9, 1.0), 10.0);
        assert_eq!(lag(3.0, 10.0, 0.0, 5.0), 3.0);
    }

    #[test]
    fn damage_reaches_one_in_a_day_at_unit_rate() {
        let mut w = 0.0;
        let k = damage_rate_per_day();
        for _ in 0..24 {
            w = grow_damage(w, k, 3_600.0);
        }
        assert!((w - 1.0).abs() < 1e-9, "{w}");
    }

    #[test]
    fn schedules_stay_in_unit_range() {
        let monday = 1_767_571_200 * NS_PER_S;
        for i in 0..(7 * 96) {
            let t = monday + i * 900 * NS_PER_S;
            for v in [production_demand(t), office_occupancy(t), scan_activity(t)] {
                assert!((0.0..=1.0).contains(&v), "{v}");
            }
        }
        let noon = monday + 10 * 3_600 * NS_PER_S;
        assert!(office_occupancy(noon) > 0.9);
        assert!(office_occupancy(monday + 3 * 3_600 * NS_PER_S) < 0.01);
    }
}
