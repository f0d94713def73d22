//! Remaining useful life for the twins of one asset model, learned from the fleet's own
//! history: every recorded failure of a twin turns the history it had since its last renewal
//! (installation, repair, earlier failure) into a run-to-failure; the engine and
//! `doppel eval fleet-rul` both build those runs and the histories they predict from here, on
//! a grid of one step per hour of bucket means.
//!
//! Which columns: the model's numeric inputs and disturbances are the *settings* (the
//! operating condition, as C-MAPSS's altitude, Mach and throttle are), its numeric outputs
//! the *sensors*. Booleans, strings and the derived anomaly score are left out.

use doppel_model::{AssetModel, SignalRole, Timestamp, ValueKind};
use serde::{Deserialize, Serialize};

use super::{RulConfig, RulStep};

/// One step of a fleet history: an hour.
pub const FLEET_STEP_NS: i64 = 3_600 * 1_000_000_000;

/// Which signals of an asset model a fleet RUL model reads, in column order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetLayout {
    pub settings: Vec<String>,
    pub sensors: Vec<String>,
}

impl FleetLayout {
    /// Inputs and disturbances as settings, outputs as sensors; numeric signals only.
    pub fn for_model(model: &AssetModel) -> FleetLayout {
        let numeric = |k: ValueKind| matches!(k, ValueKind::Float | ValueKind::Int);
        let pick = |want: &dyn Fn(SignalRole) -> bool| {
            model
                .signals
                .iter()
                .filter(|s| numeric(s.kind) && want(s.role))
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
        };
        FleetLayout {
            settings: pick(&|r| matches!(r, SignalRole::Input | SignalRole::Disturbance)),
            sensors: pick(&|r| r == SignalRole::Output),
        }
    }

    /// Every column: the settings, then the sensors.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.settings
            .iter()
            .chain(&self.sensors)
            .map(String::as_str)
    }

    pub fn width(&self) -> usize {
        self.settings.len() + self.sensors.len()
    }

    /// The hourly steps of a history given as bucket means per column (in [`columns`]
    /// order; `(bucket start, mean)`, starts on whole hours, sorted, non-finite means
    /// ignored). The grid runs from the first hour in which any sensor reported to the last
    /// hour in which any column did; an hour without a reading of a column repeats the
    /// column's previous mean (its first mean before it ever reported; 0 for a column that
    /// never did), so the steps stay one hour apart as the RUL target assumes.
    ///
    /// [`columns`]: FleetLayout::columns
    pub fn steps(&self, columns: &[Vec<(Timestamp, f64)>]) -> Vec<RulStep> {
        let ns = self.settings.len();
        let finite = |c: &Vec<(Timestamp, f64)>| {
            c.iter()
                .filter(|p| p.1.is_finite())
                .map(|p| p.0)
                .collect::<Vec<_>>()
        };
        let first = columns
            .iter()
            .skip(ns)
            .filter_map(|c| finite(c).first().copied())
            .min();
        let last = columns
            .iter()
            .filter_map(|c| finite(c).last().copied())
            .max();
        let (Some(first), Some(last)) = (first, last) else {
            return Vec::new();
        };
        let first = first.div_euclid(FLEET_STEP_NS);
        let last = last.div_euclid(FLEET_STEP_NS);
        if last < first {
            return Vec::new();
        }
        let n = usize::try_from(last - first + 1).unwrap_or(0);
        let mut grid = vec![vec![f64::NAN; self.width()]; n];
        for (j, col) in columns.iter().take(self.width()).enumerate() {
            for &(t, v) in col {
                let k = t.div_euclid(FLEET_STEP_NS) - first;
                if v.is_finite() && (0..n as i64).contains(&k) {
                    grid[k as usize][j] = v;
                }
            }
        }
        for j in 0..self.width() {
            let mut carry = grid
                .iter()
                .map(|r| r[j])
                .find(|v| v.is_finite())
                .unwrap_or(0.0);
            for row in grid.iter_mut() {
                if row[j].is_finite() {
                    carry = row[j];
                } else {
                    row[j] = carry;
                }
            }
        }
        grid.into_iter()
            .map(|mut row| {
                let sensors = row.split_off(ns);
                RulStep {
                    settings: row,
                    sensors,
                }
            })
            .collect()
    }
}

/// The fitting configuration for fleet histories at one step per hour. The cap is ten days:
/// earlier than that, wear of the kinds modelled here leaves no mark on hourly means, and
/// the trees would only learn the spread of the healthy periods. The windows are the
/// C-MAPSS ones read as hours (a few hours to ten days), which suits degradations that run
/// over days. The history's age is not a feature: an asset runs healthy for however long
/// before wear starts, and with a few recorded failures the trees would otherwise learn the
/// fleet's typical age at failure instead of the wear. Operating conditions are continuous
/// (speed, valve, ambient), not a few regimes: what they explain of each sensor, learned on
/// the first 30 % of every run, is taken out before the wear is looked for.
pub fn fleet_config(seed: u64) -> RulConfig {
    RulConfig {
        rul_cap: 240.0,
        age_feature: false,
        condition_share: 0.3,
        seed,
        ..RulConfig::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn model() -> AssetModel {
        serde_json::from_value(serde_json::json!({
            "id": "pump", "name": "Pump",
            "signals": [
                {"name": "speed", "kind": "float", "role": "input"},
                {"name": "temp", "kind": "float"},
                {"name": "running", "kind": "bool"},
                {"name": "ambient", "kind": "float", "role": "disturbance"},
                {"name": "count", "kind": "int"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn layout_takes_numeric_settings_then_sensors() {
        let l = FleetLayout::for_model(&model());
        assert_eq!(l.settings, ["speed", "ambient"]);
        assert_eq!(l.sensors, ["temp", "count"]);
        assert_eq!(
            l.columns().collect::<Vec<_>>(),
            ["speed", "ambient", "temp", "count"]
        );
    }

    #[test]
    fn steps_fill_gaps_and_start_at_the_first_sensor_hour() {
        let l = FleetLayout::for_model(&model());
        let h = FLEET_STEP_NS;
        let cols = vec![
            // speed reported from hour 0, before any sensor: the grid starts at hour 1.
            vec![(0, 1000.0), (h, 1100.0), (3 * h, 1200.0)],
            // ambient never reported.
            vec![],
            vec![(h, 40.0), (2 * h, f64::NAN), (4 * h, 42.0)],
            vec![(2 * h, 7.0)],
        ];
        let steps = l.steps(&cols);
        assert_eq!(steps.len(), 4, "hours 1..=4");
        let s: Vec<Vec<f64>> = steps.iter().map(|s| s.settings.clone()).collect();
        assert_eq!(
            s,
            [[1100.0, 0.0], [1100.0, 0.0], [1200.0, 0.0], [1200.0, 0.0]]
        );
        let x: Vec<Vec<f64>> = steps.iter().map(|s| s.sensors.clone()).collect();
        assert_eq!(x, [[40.0, 7.0], [40.0, 7.0], [40.0, 7.0], [42.0, 7.0]]);
    }

    #[test]
    fn no_sensor_data_gives_no_steps() {
        let l = FleetLayout::for_model(&model());
        let cols = vec![vec![(0, 1.0)], vec![], vec![], vec![]];
        assert!(l.steps(&cols).is_empty());
        assert!(l.steps(&[]).is_empty());
    }
}
