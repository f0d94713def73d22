//! A twin's detector: its signals' detectors, the multivariate model over them, and the
//! alarm decision (persistence, hysteresis, feedback-adapted sensitivity).

use std::sync::Arc;

use doppel_model::{AssetModel, SignalRole, ValueKind};
use serde::{Deserialize, Serialize};

use crate::config::DetectorConfig;
use crate::multivariate::Multivariate;
use crate::signal::{ContributionKind, SignalDetector, SignalOutcome};
use crate::stats::{ratio_to_score, sane, score_to_ratio};
use crate::Timestamp;

/// Contributions below this score are left out of [`Score::per_signal`].
const REPORT_FLOOR: f64 = 0.05;
/// Score at which a reading counts as above the threshold.
const THRESHOLD: f64 = 0.5;

/// One signal's part in a twin's score: what was expected, what was observed, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalContribution {
    pub signal: Arc<str>,
    pub kind: ContributionKind,
    /// 0..1; 0.5 is the decision threshold of this detector.
    pub score: f64,
    pub expected: f64,
    /// `None` when the signal did not report (dropout); for a shift, the recent smoothed
    /// level rather than the single reading.
    pub observed: Option<f64>,
}

/// The verdict on one reading of a twin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub ts: Timestamp,
    /// 0..1, calibrated so that 0.5 is the threshold of the most deviating detector.
    pub total: f64,
    /// The alarm state after this reading (persistence and hysteresis applied).
    pub is_anomaly: bool,
    /// True while the detector is still learning what normal looks like (nothing scored).
    pub warming_up: bool,
    /// Contributions, highest score first.
    pub per_signal: Vec<SignalContribution>,
}

/// Anomaly detector for one twin. Feed it the twin's readings in time order with
/// [`observe`](Self::observe); it learns the twin's normal behaviour from the first
/// `warmup` readings and scores every reading after that.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwinDetector {
    config: DetectorConfig,
    signals: Vec<SignalDetector>,
    /// Raw warm-up readings (signal index → value) for the multivariate fit; emptied then.
    warm_rows: Vec<Vec<Option<f64>>>,
    warm_done: bool,
    multivariate: Option<Multivariate>,
    /// Last `persist_n` decisions as bits (1 = above threshold / above clear level).
    above: u64,
    above_clear: u64,
    /// Readings in a row below the clear level.
    #[serde(default)]
    quiet: u32,
    in_alarm: bool,
    /// ≥ 1 makes the detector less sensitive; moved by feedback within configured bounds.
    sensitivity: f64,
    readings: u64,
    #[serde(skip)]
    scratch: TwinScratch,
}

/// Per-reading work buffers, reused so scoring allocates nothing in steady state. Not state:
/// never serialized, and equal to any other.
#[derive(Debug, Clone, Default)]
struct TwinScratch {
    present: Vec<Option<f64>>,
    outcomes: Vec<Option<SignalOutcome>>,
}

impl PartialEq for TwinScratch {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl TwinDetector {
    pub fn new(config: DetectorConfig) -> Self {
        TwinDetector {
            config,
            signals: Vec::new(),
            warm_rows: Vec::new(),
            warm_done: false,
            multivariate: None,
            above: 0,
            above_clear: 0,
            quiet: 0,
            in_alarm: false,
            sensitivity: 1.0,
            readings: 0,
            scratch: TwinScratch::default(),
        }
    }

    /// A detector for a twin of `model`: its numeric signals are known in advance, with
    /// their normal ranges and roles. Inputs and disturbances are imposed on the twin
    /// (setpoints, schedules, weather), so they are checked only as sensors (range, dropout,
    /// stuck) and left out of the multivariate model; outputs get every detector. Signals
    /// not in the model are still learned when they appear (as outputs).
    pub fn for_model(model: &AssetModel, config: DetectorConfig) -> Self {
        let mut d = TwinDetector::new(config);
        for s in &model.signals {
            if matches!(s.kind, ValueKind::Float | ValueKind::Int) {
                let mut sig =
                    SignalDetector::new(Arc::from(s.name.as_str()), s.min, s.max, &d.config);
                sig.set_exogenous(s.role != SignalRole::Output);
                sig.set_command(s.role == SignalRole::Input);
                d.signals.push(sig);
            }
        }
        d
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// The current sensitivity factor (1 at start; above 1 after false alarms).
    pub fn sensitivity(&self) -> f64 {
        self.sensitivity
    }

    pub fn in_alarm(&self) -> bool {
        self.in_alarm
    }

    pub fn is_warming_up(&self) -> bool {
        !self.warm_done
    }

    fn index_of(&mut self, hint: usize, name: &str) -> usize {
        if let Some(s) = self.signals.get(hint) {
            if &**s.name() == name {
                return hint;
            }
        }
        if let Some(i) = self.signals.iter().position(|s| &**s.name() == name) {
            return i;
        }
        let sig = SignalDetector::new(Arc::from(name), None, None, &self.config);
        self.signals.push(sig);
        for r in &mut self.warm_rows {
            r.push(None);
        }
        self.signals.len() - 1
    }

    /// Scores one reading of the twin: the values its signals reported at `ts` (any subset,
    /// any order). Non-finite values are treated as missing. Readings must come in time
    /// order; a timestamp earlier than the previous one is scored as if no time had passed.
    pub fn observe<S: AsRef<str>>(&mut self, ts: Timestamp, values: &[(S, f64)]) -> Score {
        self.readings = self.readings.saturating_add(1);
        let mut present = std::mem::take(&mut self.scratch.present);
        present.clear();
        present.resize(self.signals.len(), None);
        for (hint, (name, x)) in values.iter().enumerate() {
            if !x.is_finite() {
                continue;
            }
            let i = self.index_of(hint, name.as_ref());
            if i >= present.len() {
                present.resize(i + 1, None);
            }
            present[i] = Some(*x);
        }
        if !self.warm_done {
            return self.observe_warmup(ts, present);
        }
        let score = self.observe_scored(ts, &present);
        self.scratch.present = present;
        score
    }

    fn observe_warmup(&mut self, ts: Timestamp, present: Vec<Option<f64>>) -> Score {
        let cfg = &self.config;
        for (i, x) in present.iter().enumerate() {
            if let Some(x) = x {
                let s = &mut self.signals[i];
                if s.push_warm(ts, *x, cfg) && !s.is_fitted() {
                    // Fitted with the rest of the twin below.
                }
            }
        }
        self.warm_rows.push(present);
        if self.warm_rows.len() >= self.config.warmup.max(2) {
            self.finish_warmup();
        }
        Score {
            ts,
            total: 0.0,
            is_anomaly: false,
            warming_up: true,
            per_signal: Vec::new(),
        }
    }

    fn finish_warmup(&mut self) {
        let min_values = (self.config.warmup / 2).max(2);
        for s in &mut self.signals {
            if s.warm_len() >= min_values {
                s.fit(&self.config);
            }
        }
        if self.config.multivariate {
            let idx: Vec<usize> = (0..self.signals.len())
                .filter(|&i| {
                    let s = &self.signals[i];
                    s.is_fitted() && s.is_variable() && !s.is_exogenous()
                })
                .collect();
            let rows: Vec<Vec<Option<f64>>> = self
                .warm_rows
                .iter()
                .map(|r| {
                    idx.iter()
                        .map(|&i| {
                            let (level, spread) = self.signals[i].level_spread();
                            r.get(i).copied().flatten().map(|x| (x - level) / spread)
                        })
                        .collect()
                })
                .collect();
            let names = idx
                .iter()
                .map(|&i| self.signals[i].name().clone())
                .collect();
            self.multivariate = Multivariate::fit(idx, names, &rows, &self.config);
        }
        self.warm_rows = Vec::new();
        self.warm_done = true;
    }

    fn observe_scored(&mut self, ts: Timestamp, present: &[Option<f64>]) -> Score {
        let config = std::mem::take(&mut self.config);
        let score = self.observe_scored_with(ts, present, &config);
        self.config = config;
        score
    }

    fn observe_scored_with(
        &mut self,
        ts: Timestamp,
        present: &[Option<f64>],
        cfg: &DetectorConfig,
    ) -> Score {
        let sens = self.sensitivity;
        let mut outcomes = std::mem::take(&mut self.scratch.outcomes);
        outcomes.clear();
        for (i, s) in self.signals.iter_mut().enumerate() {
            let x = present.get(i).copied().flatten();
            let o = match (x, s.is_fitted()) {
                (Some(x), true) => Some(s.score(ts, x, cfg)),
                (Some(x), false) => {
                    // A signal that appeared after the twin's warm-up learns on its own.
                    if s.push_warm(ts, x, cfg) {
                        s.fit(cfg);
                    }
                    None
                }
                (None, true) => Some(s.score_absent(ts, cfg)),
                (None, false) => None,
            };
            outcomes.push(o);
        }
        // Allocated only when something is worth reporting.
        let mut per_signal = Vec::new();
        let mut max_ratio: f64 = 0.0;
        for (s, o) in self.signals.iter().zip(&outcomes) {
            if let Some(o) = o {
                max_ratio = max_ratio.max(o.ratio);
                let score = ratio_to_score(o.ratio / sens);
                if score >= REPORT_FLOOR {
                    per_signal.push(SignalContribution {
                        signal: s.name().clone(),
                        kind: o.kind,
                        score,
                        expected: o.expected,
                        observed: o.observed,
                    });
                }
            }
        }
        if let Some(mv) = self.multivariate.as_mut() {
            let oc = &outcomes;
            let z = |i: usize| oc.get(i).and_then(|o| o.as_ref().and_then(|o| o.z));
            let ratio = mv.observe(z, cfg);
            max_ratio = max_ratio.max(ratio);
            let score = ratio_to_score(ratio / sens);
            for (j, &i) in mv.signals.iter().enumerate() {
                let part = score * mv.shares()[j];
                if part >= REPORT_FLOOR {
                    let (level, spread) = self.signals[i].level_spread();
                    per_signal.push(SignalContribution {
                        signal: mv.names()[j].clone(),
                        kind: ContributionKind::Multivariate,
                        score: part,
                        expected: sane(level + spread * mv.expected_z()[j], level),
                        observed: present.get(i).copied().flatten(),
                    });
                }
            }
        }
        per_signal.sort_by(|a, b| b.score.total_cmp(&a.score));
        let total = ratio_to_score(max_ratio / sens);
        let is_anomaly = self.decide(total, cfg);
        let _ = is_anomaly;
        // A signal's baseline learns from its normal points only: never from a point where the
        // signal itself is above its threshold, little from a suspect one. Signals that are
        // fine keep adapting during another signal's alarm.
        let suspect = score_to_ratio(0.2);
        let is_off = |o: &Option<SignalOutcome>| o.as_ref().is_some_and(|o| o.ratio / sens >= 1.0);
        let n_off = outcomes.iter().filter(|o| is_off(o)).count();
        for (i, s) in self.signals.iter_mut().enumerate() {
            if let (Some(o), Some(x)) = (&outcomes[i], present.get(i).copied().flatten()) {
                let r = o.ratio / sens;
                let weight = if r >= 1.0 {
                    cfg.anomalous_weight
                } else if r >= suspect {
                    cfg.suspect_weight
                } else {
                    1.0
                };
                let others_off = n_off > usize::from(is_off(&outcomes[i]));
                s.learn(ts, x, o, weight, others_off, cfg);
            }
        }
        self.scratch.outcomes = outcomes;
        Score {
            ts,
            total,
            is_anomaly,
            warming_up: false,
            per_signal,
        }
    }

    /// Persistence and hysteresis: raise on `persist_k` of the last `persist_n` readings
    /// above the threshold (or one huge one); clear when fewer than `persist_k` of them are
    /// above `clear_ratio` × the threshold and the last `clear_quiet` all are below it.
    fn decide(&mut self, total: f64, cfg: &DetectorConfig) -> bool {
        let n = cfg.persist_n.clamp(1, 64);
        let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
        let k = cfg.persist_k.clamp(1, n);
        self.above = ((self.above << 1) | u64::from(total >= THRESHOLD)) & mask;
        let clear_level = ratio_to_score(cfg.clear_ratio * score_to_ratio(THRESHOLD));
        self.above_clear = ((self.above_clear << 1) | u64::from(total >= clear_level)) & mask;
        self.quiet = if total >= clear_level {
            0
        } else {
            self.quiet.saturating_add(1)
        };
        if self.in_alarm {
            if self.above_clear.count_ones() < k && self.quiet >= cfg.clear_quiet {
                self.in_alarm = false;
            }
        } else if self.above.count_ones() >= k || total >= cfg.instant_score {
            self.in_alarm = true;
            // Hysteresis from the start: an alarm raised by one huge reading must not clear
            // on the next because its window has not filled yet.
            self.above_clear = mask;
        }
        self.in_alarm
    }

    /// Forgets the current alarm decision (an operator cleared the alarm): if the condition
    /// persists, it is raised again after the usual persistence, as a new alarm.
    pub fn reset_alarm(&mut self) {
        self.in_alarm = false;
        self.above = 0;
        self.above_clear = 0;
    }

    /// Operator feedback on the current (or last) alarm. A false alarm makes the detector
    /// less sensitive by `feedback_step` (up to `feedback_max`), clears the alarm and lets the
    /// baselines learn the situation as normal; a confirmed alarm makes it slightly more
    /// sensitive (down to `feedback_min`).
    pub fn feedback(&mut self, false_alarm: bool) {
        let c = &self.config;
        let step = c.feedback_step.max(1.0);
        self.sensitivity = if false_alarm {
            self.sensitivity * step
        } else {
            self.sensitivity / step.sqrt()
        }
        .clamp(c.feedback_min.min(1.0), c.feedback_max.max(1.0));
        if false_alarm {
            self.in_alarm = false;
            self.above = 0;
            self.above_clear = 0;
            for s in &mut self.signals {
                s.reset_shift();
            }
            if let Some(mv) = self.multivariate.as_mut() {
                mv.reset();
            }
        }
    }
}
