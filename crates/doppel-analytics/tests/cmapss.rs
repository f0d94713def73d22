//! Regression guard on NASA C-MAPSS FD001 (`shared/data/cmapss`, next to the repository):
//! fit the RUL model on the 100 run-to-failure engines, predict the 100 cut-short test
//! engines, compare with the true RUL. Skipped, with a message, where the data is missing.

use std::path::PathBuf;

use doppel_analytics::eval::cmapss::{read_truth_file, read_units_file, score};
use doppel_analytics::{RulConfig, RulModel, RulRun};

#[test]
fn fd001_rmse_stays_below_its_bound() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cmapss");
    if !dir.is_dir() {
        eprintln!("skipping: {} not found", dir.display());
        return;
    }
    let train = read_units_file(&dir.join("train_FD001.txt")).unwrap();
    let test = read_units_file(&dir.join("test_FD001.txt")).unwrap();
    let truth = read_truth_file(&dir.join("RUL_FD001.txt")).unwrap();
    assert_eq!((train.len(), test.len(), truth.len()), (100, 100, 100));
    let runs: Vec<RulRun> = train.into_iter().map(|u| u.run).collect();
    // Unoptimized builds fit a lighter model (one member, fewer folds) to stay quick; the
    // release figure is the one in BENCHMARKS.md.
    let (config, bound) = if cfg!(debug_assertions) {
        let light = RulConfig {
            members: 1,
            folds: 2,
            trees: 100,
            learning_rate: 0.15,
            ..RulConfig::default()
        };
        (light, LIGHT_RMSE + 0.6)
    } else {
        (RulConfig::default(), DEFAULT_RMSE + 0.6)
    };
    let model = RulModel::fit(&runs, &config).unwrap();
    let report = score(&model, &test, &truth).unwrap();
    eprintln!(
        "FD001: RMSE {:.3}, PHM08 {:.1}, MAE {:.2}, interval coverage {:.2}, regimes {}, sensors {:?}",
        report.rmse,
        report.phm08_score,
        report.mae,
        report.coverage,
        report.regimes,
        report.sensors_used
    );
    assert_eq!(report.engines, 100);
    assert_eq!(report.regimes, 1);
    // FD001's usual 14 informative sensors, found without being told.
    assert_eq!(
        report.sensors_used,
        vec![2, 3, 4, 7, 8, 9, 11, 12, 13, 14, 15, 17, 20, 21]
    );
    assert!(report.rmse <= bound, "RMSE rose to {}", report.rmse);
    assert!(
        report.coverage >= 0.75,
        "coverage fell to {}",
        report.coverage
    );
}

/// Measured RMSE with the default configuration (release build).
const DEFAULT_RMSE: f64 = 10.446;
/// Measured RMSE with the light configuration of unoptimized builds.
const LIGHT_RMSE: f64 = 10.636;
