//! A twin's detector: its signals' detectors, the multivariate model over them, and the
//! alarm decision (persistence, hysteresis, feedback-adapted sensitivity).

use std::cell::Cell;
use std::sync::Arc;

use doppel_model::{AssetModel, SignalRole, ValueKind};
use serde::{Deserialize, Serialize};

use crate::config::DetectorConfig;
use crate::multivariate::{self, Multivariate};
use crate::signal::{ContributionKind, SignalDetector, SignalOutcome, SignalSpec};
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
///
/// Its state is small and fixed once learned: a few numbers and a daily profile per signal and
/// the multivariate model; while it learns, it keeps only the warm-up readings (once, for
/// every fit), and its signals' detectors are made when it has learned. The configuration
/// and the signals' specs (name, range, role) are shared by every twin given the same `Arc`s
/// ([`share_config`](Self::share_config), [`share_signals`](Self::share_signals)).
///
/// Its serde form is self-contained (configuration, and each signal's spec with its state,
/// as saved before specs were shared); [`serialize_state`](Self::serialize_state) and
/// [`from_state`](Self::from_state) leave the shared parts to the caller.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "wire::TwinOwned")]
pub struct TwinDetector {
    config: Arc<DetectorConfig>,
    specs: Arc<[SignalSpec]>,
    /// One per spec once the warm-up is over; empty while it lasts.
    signals: Box<[SignalDetector]>,
    /// The warm-up readings; dropped once learned.
    warm: Option<Box<WarmUp>>,
    warm_done: bool,
    multivariate: Option<Box<Multivariate>>,
    /// Last `persist_n` decisions as bits (1 = above threshold / above clear level).
    above: u64,
    above_clear: u64,
    /// Readings in a row below the clear level.
    quiet: u32,
    in_alarm: bool,
    /// ≥ 1 makes the detector less sensitive; moved by feedback within configured bounds.
    sensitivity: f64,
    readings: u64,
}

/// Per-reading work buffers, reused so scoring allocates nothing in steady state. Not state:
/// one per thread, shared by every twin it scores, so a twin does not carry buffers between
/// its readings.
#[derive(Debug, Default)]
struct TwinScratch {
    present: Vec<Option<f64>>,
    outcomes: Vec<Option<SignalOutcome>>,
    multivariate: multivariate::Scratch,
}

thread_local! {
    static SCRATCH: Cell<TwinScratch> = Cell::new(TwinScratch::default());
}

/// A twin's warm-up readings, kept once for every fit (each signal's baseline and the
/// multivariate model read the same rows): one timestamp per reading and one column per
/// signal, missing values as NaN (readings never hold NaN: `observe` drops non-finite
/// values). Values are kept in single precision as the offset from the column's first
/// value, which keeps the resolution where the signal varies whatever its magnitude; a column
/// whose offsets do not fit single precision (beyond its range, or below its smallest normal
/// numbers) is kept in double precision instead.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct WarmUp {
    ts: Vec<Timestamp>,
    columns: Vec<WarmColumn>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum WarmColumn {
    /// Offsets from `base`, the column's first value.
    Narrow {
        base: Option<f64>,
        #[serde(with = "nan_as_none")]
        offsets: Vec<f32>,
    },
    Wide(#[serde(with = "nan_as_none")] Vec<f64>),
}

/// Grows `v` by a quarter (at least 8) up to `limit` elements, so a warm-up buffer holds
/// little spare room whatever its length and never more than the warm-up needs.
fn reserve_for_one<T>(v: &mut Vec<T>, limit: usize) {
    if v.len() == v.capacity() {
        let want = (v.len() / 4)
            .max(8)
            .min(limit.saturating_sub(v.len()).max(1));
        v.reserve_exact(want);
    }
}

impl WarmColumn {
    fn new(rows: usize) -> Self {
        WarmColumn::Narrow {
            base: None,
            offsets: vec![f32::NAN; rows],
        }
    }

    fn len(&self) -> usize {
        match self {
            WarmColumn::Narrow { offsets, .. } => offsets.len(),
            WarmColumn::Wide(v) => v.len(),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            WarmColumn::Narrow { offsets, .. } => offsets.capacity() * 4,
            WarmColumn::Wide(v) => v.capacity() * 8,
        }
    }

    fn get(&self, row: usize) -> Option<f64> {
        let x = match self {
            WarmColumn::Narrow { base, offsets } => (*base)? + f64::from(*offsets.get(row)?),
            WarmColumn::Wide(v) => *v.get(row)?,
        };
        (!x.is_nan()).then_some(x)
    }

    fn push(&mut self, x: Option<f64>, limit: usize) {
        if let WarmColumn::Narrow { base, offsets } = self {
            let offset = match x {
                None => Some(f32::NAN),
                Some(x) => {
                    let d = x - *base.get_or_insert(x);
                    let n = d as f32;
                    (n.is_finite() && (n.is_normal() || d == 0.0)).then_some(n)
                }
            };
            if let Some(n) = offset {
                reserve_for_one(offsets, limit);
                offsets.push(n);
                return;
            }
            let mut wide = Vec::with_capacity(offsets.capacity().max(offsets.len() + 1));
            let b = base.unwrap_or(0.0);
            wide.extend(offsets.iter().map(|&o| b + f64::from(o)));
            *self = WarmColumn::Wide(wide);
        }
        if let WarmColumn::Wide(v) = self {
            reserve_for_one(v, limit);
            v.push(x.unwrap_or(f64::NAN));
        }
    }
}

impl WarmUp {
    /// Adds the values signals kept themselves during the warm-up (state saved before the
    /// twin kept them), merged into rows by time, after its own rows.
    fn take_over(&mut self, signals: &mut [SignalDetector], limit: usize) {
        let warm = self;
        let lists: Vec<Vec<(Timestamp, f64)>> =
            signals.iter_mut().map(SignalDetector::take_warm).collect();
        let mut next = vec![0usize; lists.len()];
        let mut row = vec![None; lists.len()];
        while let Some(ts) = lists
            .iter()
            .zip(&next)
            .filter_map(|(l, &n)| l.get(n).map(|p| p.0))
            .min()
        {
            for (i, l) in lists.iter().enumerate() {
                row[i] = match l.get(next[i]) {
                    Some(&(t, x)) if t == ts => {
                        next[i] += 1;
                        Some(x)
                    }
                    _ => None,
                };
            }
            warm.push(ts, &row, limit);
        }
    }

    fn rows(&self) -> usize {
        self.ts.len()
    }

    /// Appends one reading (`present[i]`: signal i's value, if it reported).
    fn push(&mut self, ts: Timestamp, present: &[Option<f64>], limit: usize) {
        let rows = self.rows();
        while self.columns.len() < present.len() {
            self.columns.push(WarmColumn::new(rows));
        }
        reserve_for_one(&mut self.ts, limit);
        self.ts.push(ts);
        for (i, c) in self.columns.iter_mut().enumerate() {
            c.push(present.get(i).copied().flatten(), limit);
        }
    }

    fn value(&self, row: usize, signal: usize) -> Option<f64> {
        self.columns.get(signal)?.get(row)
    }

    /// Signal `i`'s values with their times.
    fn points(&self, signal: usize) -> Vec<(Timestamp, f64)> {
        (0..self.rows())
            .filter_map(|r| Some((self.ts[r], self.value(r, signal)?)))
            .collect()
    }
}

/// Serde form of a column: missing values (NaN in memory) as `None`, which JSON can hold.
mod nan_as_none {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) trait Float: Copy + Serialize + for<'de> Deserialize<'de> {
        const NAN: Self;
        fn is_nan(self) -> bool;
    }
    impl Float for f32 {
        const NAN: Self = f32::NAN;
        fn is_nan(self) -> bool {
            f32::is_nan(self)
        }
    }
    impl Float for f64 {
        const NAN: Self = f64::NAN;
        fn is_nan(self) -> bool {
            f64::is_nan(self)
        }
    }

    pub(super) fn serialize<T: Float, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|x| (!x.is_nan()).then_some(*x)))
    }

    pub(super) fn deserialize<'de, T: Float, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<T>, D::Error> {
        let v: Vec<Option<T>> = Vec::deserialize(d)?;
        let mut v: Vec<T> = v.into_iter().map(|x| x.unwrap_or(T::NAN)).collect();
        v.shrink_to_fit();
        Ok(v)
    }
}

impl TwinDetector {
    /// A detector for a twin whose signals are learned as they appear. Pass an
    /// `Arc<DetectorConfig>` to share one configuration between many twins.
    pub fn new(config: impl Into<Arc<DetectorConfig>>) -> Self {
        TwinDetector::with_signals(config, Arc::from(Vec::new()))
    }

    /// A detector for a twin whose signals are `specs` (more are learned as they appear).
    fn with_signals(config: impl Into<Arc<DetectorConfig>>, specs: Arc<[SignalSpec]>) -> Self {
        TwinDetector {
            config: config.into(),
            specs,
            signals: Box::default(),
            warm: None,
            warm_done: false,
            multivariate: None,
            above: 0,
            above_clear: 0,
            quiet: 0,
            in_alarm: false,
            sensitivity: 1.0,
            readings: 0,
        }
    }

    /// A detector for a twin of `model`: its numeric signals are known in advance, with
    /// their normal ranges and roles. Inputs and disturbances are imposed on the twin
    /// (setpoints, schedules, weather), so they are checked only as sensors (range, dropout,
    /// stuck) and left out of the multivariate model; outputs get every detector. Signals
    /// not in the model are still learned when they appear (as outputs).
    pub fn for_model(model: &AssetModel, config: impl Into<Arc<DetectorConfig>>) -> Self {
        TwinDetector::with_signals(config, Self::model_signals(model))
    }

    /// The specs of `model`'s numeric signals, as [`for_model`](Self::for_model) takes them.
    pub fn model_signals(model: &AssetModel) -> Arc<[SignalSpec]> {
        model
            .signals
            .iter()
            .filter(|s| matches!(s.kind, ValueKind::Float | ValueKind::Int))
            .map(|s| SignalSpec {
                name: Arc::from(s.name.as_str()),
                min: s.min,
                max: s.max,
                exogenous: s.role != SignalRole::Output,
                command: s.role == SignalRole::Input,
            })
            .collect()
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// The specs of the twin's signals, in the order it holds them.
    pub fn signals(&self) -> &Arc<[SignalSpec]> {
        &self.specs
    }

    /// The configuration, to share or to save once for many twins.
    pub fn shared_config(&self) -> &Arc<DetectorConfig> {
        &self.config
    }

    /// Uses `config` instead of an equal configuration of its own (a detector read from a
    /// file holds its own copy), so twins share one. Does nothing when they differ.
    pub fn share_config(&mut self, config: &Arc<DetectorConfig>) {
        if !Arc::ptr_eq(&self.config, config) && *self.config == **config {
            self.config = Arc::clone(config);
        }
    }

    /// Replaces the twin's signal specs by `intern(specs)`, an equal list shared with other
    /// twins' detectors, so a fleet of one model holds its specs (names included) once.
    /// Does nothing when `intern` returns a different list.
    pub fn share_signals(&mut self, intern: impl FnOnce(&Arc<[SignalSpec]>) -> Arc<[SignalSpec]>) {
        let shared = intern(&self.specs);
        if !Arc::ptr_eq(&shared, &self.specs) && *shared == *self.specs {
            self.specs = shared;
        }
    }

    /// Approximate bytes this detector holds: its own size and the heap it owns. Shared
    /// parts (the configuration, signal specs) are not counted.
    pub fn memory_bytes(&self) -> usize {
        let warm = self.warm.as_ref().map_or(0, |w| {
            std::mem::size_of::<WarmUp>()
                + w.ts.capacity() * std::mem::size_of::<Timestamp>()
                + w.columns.capacity() * std::mem::size_of::<WarmColumn>()
                + w.columns.iter().map(WarmColumn::heap_bytes).sum::<usize>()
        });
        std::mem::size_of::<Self>()
            + self.signals.len() * std::mem::size_of::<SignalDetector>()
            + self
                .signals
                .iter()
                .map(SignalDetector::heap_bytes)
                .sum::<usize>()
            + warm
            + self
                .multivariate
                .as_ref()
                .map_or(0, |m| std::mem::size_of::<Multivariate>() + m.heap_bytes())
    }

    /// Whether the state is one this code could have built (dimensions agree): state read
    /// from a file is checked with this before it is used, so a damaged file that still
    /// decodes cannot make scoring index out of bounds.
    pub fn is_consistent(&self) -> bool {
        let n = self.specs.len();
        let learned = if self.warm_done {
            self.signals.len() == n && self.warm.is_none()
        } else {
            self.signals.is_empty() && self.multivariate.is_none()
        };
        learned
            && self
                .multivariate
                .as_ref()
                .is_none_or(|m| m.is_consistent(n))
            && self.warm.as_ref().is_none_or(|w| {
                w.columns.len() <= n && w.columns.iter().all(|c| c.len() == w.ts.len())
            })
    }

    /// Writes the detector's own state, without the configuration and signal specs (which
    /// the caller saves once for the twins sharing them); [`from_state`](Self::from_state)
    /// reads it back.
    pub fn serialize_state<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        wire::StateRef {
            signals: &self.signals,
            warm: &self.warm,
            warm_done: self.warm_done,
            multivariate: &self.multivariate,
            above: self.above,
            above_clear: self.above_clear,
            quiet: self.quiet,
            in_alarm: self.in_alarm,
            sensitivity: self.sensitivity,
            readings: self.readings,
        }
        .serialize(s)
    }

    /// A detector from state written by [`serialize_state`](Self::serialize_state) and the
    /// configuration and signal specs it was saved with. Refuses state whose dimensions do
    /// not agree with `specs` (damage).
    pub fn from_state(
        config: Arc<DetectorConfig>,
        specs: Arc<[SignalSpec]>,
        state: DetectorState,
    ) -> Result<Self, String> {
        let wire::StateOwned {
            signals,
            warm,
            warm_done,
            multivariate,
            above,
            above_clear,
            quiet,
            in_alarm,
            sensitivity,
            readings,
        } = state.0;
        let mut d = TwinDetector {
            config,
            specs,
            signals: signals.into_boxed_slice(),
            warm,
            warm_done,
            multivariate,
            above,
            above_clear,
            quiet,
            in_alarm,
            sensitivity: crate::stats::sane(sensitivity, 1.0),
            readings,
        };
        if !d.warm_done && !d.signals.is_empty() {
            // Saved before the twin kept every warm-up reading itself: its signals kept
            // theirs, which it takes over (or, beside its own, drops as it always did).
            let limit = d.config.warmup.max(2);
            let mut signals = std::mem::take(&mut d.signals);
            if d.warm.is_none() && signals.len() <= d.specs.len() {
                let mut warm = WarmUp::default();
                warm.take_over(&mut signals, limit);
                d.warm = (warm.rows() > 0).then(|| Box::new(warm));
            }
        }
        if d.is_consistent() {
            Ok(d)
        } else {
            Err(format!(
                "inconsistent detector state ({} signals)",
                d.specs.len()
            ))
        }
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
        if let Some(s) = self.specs.get(hint) {
            if &*s.name == name {
                return hint;
            }
        }
        if let Some(i) = self.specs.iter().position(|s| &*s.name == name) {
            return i;
        }
        // A signal the twin's specs do not name: its own list from now on.
        let mut specs = self.specs.to_vec();
        specs.push(SignalSpec::output(Arc::from(name)));
        self.specs = specs.into();
        if self.warm_done {
            let mut signals = std::mem::take(&mut self.signals).into_vec();
            signals.push(SignalDetector::new(&self.config));
            self.signals = signals.into_boxed_slice();
        }
        self.specs.len() - 1
    }

    /// Scores one reading of the twin: the values its signals reported at `ts` (any subset,
    /// any order). Non-finite values are treated as missing. Readings must come in time
    /// order; a timestamp earlier than the previous one is scored as if no time had passed.
    pub fn observe<S: AsRef<str>>(&mut self, ts: Timestamp, values: &[(S, f64)]) -> Score {
        self.readings = self.readings.saturating_add(1);
        let mut sc = SCRATCH.take();
        let mut present = std::mem::take(&mut sc.present);
        present.clear();
        present.resize(self.specs.len(), None);
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
        let score = if self.warm_done {
            let config = Arc::clone(&self.config);
            self.observe_scored(ts, &present, &config, &mut sc)
        } else {
            self.observe_warmup(ts, &present)
        };
        sc.present = present;
        SCRATCH.set(sc);
        score
    }

    fn observe_warmup(&mut self, ts: Timestamp, present: &[Option<f64>]) -> Score {
        let limit = self.config.warmup.max(2);
        let warm = self.warm.get_or_insert_with(Box::default);
        warm.push(ts, present, limit);
        if warm.rows() >= limit {
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
        let warm = self.warm.take().map(|w| *w).unwrap_or_default();
        let min_values = (self.config.warmup / 2).max(2);
        self.signals = self
            .specs
            .iter()
            .map(|_| SignalDetector::new(&self.config))
            .collect();
        for (i, s) in self.signals.iter_mut().enumerate() {
            let points = warm.points(i);
            if points.len() >= min_values {
                s.fit(&points, &self.config);
            } else if !points.is_empty() {
                // Too few to learn from yet: the signal goes on learning on its own.
                s.set_warm(points);
            }
        }
        if self.config.multivariate {
            let idx: Box<[usize]> = (0..self.signals.len())
                .filter(|&i| {
                    let s = &self.signals[i];
                    s.is_fitted() && s.is_variable() && !self.specs[i].is_exogenous()
                })
                .collect();
            let rows: Vec<Vec<Option<f64>>> = (0..warm.rows())
                .map(|r| {
                    idx.iter()
                        .map(|&i| {
                            let (level, spread) = self.signals[i].level_spread();
                            warm.value(r, i).map(|x| (x - level) / spread)
                        })
                        .collect()
                })
                .collect();
            self.multivariate = Multivariate::fit(&idx, &rows, &self.config).map(Box::new);
        }
        self.warm_done = true;
    }

    fn observe_scored(
        &mut self,
        ts: Timestamp,
        present: &[Option<f64>],
        cfg: &DetectorConfig,
        sc: &mut TwinScratch,
    ) -> Score {
        let sens = self.sensitivity;
        let mut outcomes = std::mem::take(&mut sc.outcomes);
        outcomes.clear();
        let specs = &*self.specs;
        for (i, (s, spec)) in self.signals.iter_mut().zip(specs).enumerate() {
            let x = present.get(i).copied().flatten();
            let o = match (x, s.is_fitted()) {
                (Some(x), true) => Some(s.score(spec, ts, x, cfg)),
                (Some(x), false) => {
                    // A signal that appeared after the twin's warm-up learns on its own.
                    if s.push_warm(ts, x, cfg) {
                        let warm = s.take_warm();
                        s.fit(&warm, cfg);
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
        for (spec, o) in specs.iter().zip(&outcomes) {
            if let Some(o) = o {
                max_ratio = max_ratio.max(o.ratio);
                let score = ratio_to_score(o.ratio / sens);
                if score >= REPORT_FLOOR {
                    per_signal.push(SignalContribution {
                        signal: spec.name.clone(),
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
            let mvs = &mut sc.multivariate;
            let ratio = mv.observe(z, cfg, mvs);
            max_ratio = max_ratio.max(ratio);
            let score = ratio_to_score(ratio / sens);
            for (j, i) in mv.signal_indices().enumerate() {
                let part = score * mvs.shares()[j];
                if part >= REPORT_FLOOR {
                    let (level, spread) = self.signals[i].level_spread();
                    per_signal.push(SignalContribution {
                        signal: specs[i].name.clone(),
                        kind: ContributionKind::Multivariate,
                        score: part,
                        expected: sane(level + spread * mvs.expected_z()[j], level),
                        observed: present.get(i).copied().flatten(),
                    });
                }
            }
        }
        per_signal.sort_by(|a, b| b.score.total_cmp(&a.score));
        let total = ratio_to_score(max_ratio / sens);
        // A signal's baseline learns from its normal points only: never from a point where the
        // signal itself is above its threshold, little from a suspect one. Signals that are
        // fine keep adapting during another signal's alarm.
        let suspect = score_to_ratio(0.2);
        let is_off = |o: &Option<SignalOutcome>| o.as_ref().is_some_and(|o| o.ratio / sens >= 1.0);
        let n_off = outcomes.iter().filter(|o| is_off(o)).count();
        for (i, (s, spec)) in self.signals.iter_mut().zip(specs).enumerate() {
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
                s.learn(spec, ts, x, o, weight, others_off, cfg);
            }
        }
        sc.outcomes = outcomes;
        let is_anomaly = self.decide(total, cfg);
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

/// A twin detector's own state as [`TwinDetector::serialize_state`] writes it: everything but
/// the configuration and the signal specs. Read it with serde, then hand it to
/// [`TwinDetector::from_state`].
#[derive(Debug, Deserialize)]
pub struct DetectorState(wire::StateOwned);

/// Serde forms of a [`TwinDetector`].
mod wire {
    use super::*;

    /// The detector's own state, borrowed for writing...
    #[derive(Serialize)]
    pub(super) struct StateRef<'a> {
        pub signals: &'a [SignalDetector],
        pub warm: &'a Option<Box<WarmUp>>,
        pub warm_done: bool,
        pub multivariate: &'a Option<Box<Multivariate>>,
        pub above: u64,
        pub above_clear: u64,
        pub quiet: u32,
        pub in_alarm: bool,
        pub sensitivity: f64,
        pub readings: u64,
    }

    /// ...and read back.
    #[derive(Debug, Deserialize)]
    pub(super) struct StateOwned {
        pub signals: Vec<SignalDetector>,
        pub warm: Option<Box<WarmUp>>,
        pub warm_done: bool,
        pub multivariate: Option<Box<Multivariate>>,
        pub above: u64,
        pub above_clear: u64,
        pub quiet: u32,
        pub in_alarm: bool,
        pub sensitivity: f64,
        pub readings: u64,
    }

    /// A signal in the self-contained form: its spec and its state in one object.
    #[derive(Serialize)]
    struct SignalRef<'a> {
        #[serde(flatten)]
        spec: &'a SignalSpec,
        #[serde(flatten)]
        state: &'a SignalDetector,
    }

    #[derive(Deserialize)]
    struct SignalOwned {
        #[serde(flatten)]
        spec: SignalSpec,
        #[serde(flatten)]
        state: SignalDetector,
    }

    /// The self-contained form (JSON), the fields a detector was saved with before its
    /// configuration and specs were shared; a signal still learning is written with a
    /// fresh state.
    #[derive(Serialize)]
    struct TwinRef<'a> {
        config: &'a DetectorConfig,
        signals: Vec<SignalRef<'a>>,
        warm: &'a Option<Box<WarmUp>>,
        warm_done: bool,
        multivariate: &'a Option<Box<Multivariate>>,
        above: u64,
        above_clear: u64,
        quiet: u32,
        in_alarm: bool,
        sensitivity: f64,
        readings: u64,
    }

    #[derive(Deserialize)]
    pub(super) struct TwinOwned {
        config: DetectorConfig,
        signals: Vec<SignalOwned>,
        #[serde(default)]
        warm: Option<Box<WarmUp>>,
        warm_done: bool,
        multivariate: Option<Box<Multivariate>>,
        above: u64,
        above_clear: u64,
        #[serde(default)]
        quiet: u32,
        in_alarm: bool,
        sensitivity: f64,
        readings: u64,
    }

    impl Serialize for TwinDetector {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let fresh = SignalDetector::new(&self.config);
            let signals = self
                .specs
                .iter()
                .enumerate()
                .map(|(i, spec)| SignalRef {
                    spec,
                    state: self.signals.get(i).unwrap_or(&fresh),
                })
                .collect();
            TwinRef {
                config: &self.config,
                signals,
                warm: &self.warm,
                warm_done: self.warm_done,
                multivariate: &self.multivariate,
                above: self.above,
                above_clear: self.above_clear,
                quiet: self.quiet,
                in_alarm: self.in_alarm,
                sensitivity: self.sensitivity,
                readings: self.readings,
            }
            .serialize(s)
        }
    }

    impl TryFrom<TwinOwned> for TwinDetector {
        type Error = String;

        fn try_from(t: TwinOwned) -> Result<Self, String> {
            let (specs, signals): (Vec<SignalSpec>, Vec<SignalDetector>) =
                t.signals.into_iter().map(|s| (s.spec, s.state)).unzip();
            let state = StateOwned {
                signals,
                warm: t.warm,
                warm_done: t.warm_done,
                multivariate: t.multivariate,
                above: t.above,
                above_clear: t.above_clear,
                quiet: t.quiet,
                in_alarm: t.in_alarm,
                sensitivity: t.sensitivity,
                readings: t.readings,
            };
            TwinDetector::from_state(Arc::new(t.config), specs.into(), DetectorState(state))
        }
    }
}
