//! Maintenance advice: which failure mode of its model a twin is developing, what to do and
//! by when, with the evidence. [`recommend`] is a pure function of one moment (the twin's
//! model and its failure-mode catalogue, the detector's explanation, the bucketed history
//! the forecasts are fitted on, an optional remaining-useful-life estimate and labelled past
//! cases); [`AdviceTracker`] is the small per-twin state that turns those moments into
//! advice that opens, updates and withdraws with hysteresis, so it does not flap.
//!
//! How a failure mode is matched: each signal of its signature gets an evidence strength in
//! `[0, 1]` in the signature's direction, the strongest of (a) the detector's contribution on
//! that signal (level, range, shift, multivariate; rate counts as "noisy"), (b) a significant
//! recent trend that has moved the signal by a meaningful share of its normal span, and (c) a
//! predicted crossing of the signal's model limit within the mode's horizon. The mode's match
//! is the weighted mean over its signature; it is a candidate only when a heaviest signal of
//! the signature shows persistent evidence (a deseasonalised trend or a limit crossing: the
//! detector alone also fires on operating changes a failure mode does not make) and the
//! twin is off normal on the mode's signals (detector above threshold or a limit crossing
//! predicted), so trends alone never raise advice either.

use std::collections::BTreeMap;
use std::sync::Arc;

use doppel_model::{AssetModel, FailureMode, SignalDirection, Urgency};
use serde::{Deserialize, Serialize};

use crate::forecast::{
    forecast, time_to_threshold, Forecast, ForecastConfig, Threshold, TimeToThreshold, TwinHistory,
};
use crate::{ContributionKind, Score, SignalContribution, Timestamp};

const NS_PER_HOUR: f64 = 3_600e9;
/// Buckets at the end of an input's history checked against its forecast from before them:
/// the window of the outputs' slopes, so no output trend spans an unexplained input change.
const HOLDOUT_BUCKETS: usize = 24;

/// Settings of the advice engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdviceConfig {
    pub forecast: ForecastConfig,
    /// Persistent evidence (a trend or a limit crossing, not only the detector) a heaviest
    /// signature signal needs for the mode to be a candidate.
    pub min_primary_evidence: f64,
    /// Confidence to open advice, and to keep it open (hysteresis).
    pub open_confidence: f64,
    pub keep_confidence: f64,
    /// A candidate opens after this many consecutive evaluations spanning this many seconds.
    pub open_after: u32,
    pub open_after_s: f64,
    /// Open advice is withdrawn after this many consecutive evaluations without it, spanning
    /// this many seconds.
    pub close_after: u32,
    pub close_after_s: f64,
    /// |t| of a recent slope for it to count as a trend.
    pub trend_t: f64,
    /// Least change over the slope's window, as a share of the signal's normal span, for a
    /// trend to count (a significant but negligible drift is not evidence).
    pub min_change_share: f64,
    /// Detector contribution score that counts as full evidence (0.5 is its threshold).
    pub full_detector_score: f64,
    /// Due-by is this share of the time to the earliest limit crossing, RUL lower bound or
    /// the mode's typical horizon, whichever is soonest...
    pub safety_factor: f64,
    /// ...but never sooner than this many hours.
    pub min_due_h: f64,
    /// Jaccard similarity for a past case to count as similar.
    pub case_similarity: f64,
    /// After advice is dismissed (maintenance done), the mode is not advised again for this
    /// many seconds.
    pub hold_off_s: f64,
}

impl Default for AdviceConfig {
    fn default() -> Self {
        AdviceConfig {
            forecast: ForecastConfig::default(),
            min_primary_evidence: 0.5,
            open_confidence: 0.45,
            keep_confidence: 0.25,
            open_after: 3,
            open_after_s: 3_600.0,
            close_after: 4,
            close_after_s: 6.0 * 3_600.0,
            trend_t: 3.0,
            min_change_share: 0.03,
            full_detector_score: 0.5,
            safety_factor: 0.5,
            min_due_h: 2.0,
            case_similarity: 0.5,
            hold_off_s: 86_400.0,
        }
    }
}

/// A remaining-useful-life estimate in hours (convert a [`RulEstimate`](crate::RulEstimate)
/// with the duration of one of its steps).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RemainingLife {
    pub hours: f64,
    pub lower_h: f64,
    pub upper_h: f64,
}

impl RemainingLife {
    pub fn from_estimate(e: &crate::RulEstimate, hours_per_step: f64) -> Option<Self> {
        let r = RemainingLife {
            hours: e.rul * hours_per_step,
            lower_h: e.lower * hours_per_step,
            upper_h: e.upper * hours_per_step,
        };
        (r.hours.is_finite() && r.lower_h.is_finite() && r.upper_h.is_finite()).then_some(r)
    }
}

/// One signal of a labelled case, and how it moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseSignal {
    pub signal: String,
    pub direction: SignalDirection,
}

/// A confirmed past case (an alarm an operator confirmed with its fault kind, a work order):
/// which failure mode it was and which signals moved how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastCase {
    pub id: String,
    pub failure_mode: String,
    pub signals: Vec<CaseSignal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// Everything [`recommend`] looks at for one twin at one moment.
#[derive(Debug, Clone, Copy)]
pub struct AdviceInput<'a> {
    pub now: Timestamp,
    pub model: &'a AssetModel,
    /// The detector's recent explanation (see [`ExplanationWindow`]) or its open alarm's.
    pub contributions: &'a [SignalContribution],
    /// Whether the twin's detector is in alarm.
    pub in_alarm: bool,
    pub history: &'a TwinHistory,
    pub rul: Option<RemainingLife>,
    pub past_cases: &'a [PastCase],
}

/// How one signature signal supports a recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalEvidence {
    pub signal: String,
    /// The direction the failure mode predicts.
    pub expected_direction: SignalDirection,
    /// The direction seen (detector first, else trend), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_direction: Option<SignalDirection>,
    /// 0..1 in the predicted direction.
    pub strength: f64,
    pub weight: f64,
    /// What the detector expected and saw, when it flagged the signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detector: Option<ContributionKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detector_score: Option<f64>,
    /// Recent trend and its significance (slope over its standard error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trend_per_hour: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trend_t: Option<f64>,
    /// The model limit in the predicted direction and when it is expected to be crossed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_limit: Option<TimeToThreshold>,
}

/// A past case like the present one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarCase {
    pub id: String,
    pub failure_mode: String,
    pub similarity: f64,
}

/// What happens if nothing is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskOfWaiting {
    pub consequence: String,
    /// The first signature signal expected to leave its normal range, and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_limit_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_earliest: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_likely: Option<Timestamp>,
    /// Failure expected from the RUL estimate (earliest from its lower bound).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_likely: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_earliest: Option<Timestamp>,
    pub summary: String,
}

/// One recommendation: a failure mode, what to do, by when, how sure, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub failure_mode: String,
    pub name: String,
    /// The first action of the mode; `actions` has them all.
    pub action: String,
    pub actions: Vec<String>,
    pub urgency: Urgency,
    pub due_by: Timestamp,
    pub due_in_h: f64,
    /// 0..1: signature match, weighted by how much of the anomaly it explains, plus support
    /// from similar past cases.
    pub confidence: f64,
    pub match_score: f64,
    /// Share of the detector's explanation carried by this mode's signals (1 when the
    /// detector explains nothing).
    pub coverage: f64,
    pub evidence: Vec<SignalEvidence>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub similar_cases: Vec<SimilarCase>,
    pub risk: RiskOfWaiting,
    pub summary: String,
}

/// Per-signal facts shared by every mode that names the signal.
struct SignalFacts {
    forecast: Option<Forecast>,
    span: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    contributions: Vec<SignalContribution>,
}

/// The direction a contribution shows, if it shows one.
fn contribution_direction(c: &SignalContribution) -> Option<SignalDirection> {
    match c.kind {
        ContributionKind::Stuck | ContributionKind::Dropout => None,
        ContributionKind::Rate => Some(SignalDirection::Noisy),
        _ => {
            let o = c.observed?;
            if !(o.is_finite() && c.expected.is_finite()) || o == c.expected {
                None
            } else if o > c.expected {
                Some(SignalDirection::Rising)
            } else {
                Some(SignalDirection::Falling)
            }
        }
    }
}

fn agrees(want: SignalDirection, seen: SignalDirection) -> bool {
    use SignalDirection::*;
    match want {
        Shift => matches!(seen, Rising | Falling | Shift),
        _ => want == seen,
    }
}

fn clamp01(x: f64) -> f64 {
    if x.is_finite() {
        x.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Ranked recommendations for one twin at `input.now`, best first; empty when nothing
/// matches. Deterministic: the same input gives the same output.
pub fn recommend(input: &AdviceInput<'_>, config: &AdviceConfig) -> Vec<Recommendation> {
    let model = input.model;
    if model.failure_modes.is_empty() {
        return Vec::new();
    }
    // Facts per signature signal, computed once.
    let mut facts: BTreeMap<&str, SignalFacts> = BTreeMap::new();
    for m in &model.failure_modes {
        for p in &m.signature {
            if facts.contains_key(p.signal.as_str()) {
                continue;
            }
            let spec = model.signal(&p.signal);
            let (min, max) = spec.map_or((None, None), |s| (s.min, s.max));
            let forecast = input
                .history
                .signal(&p.signal)
                .and_then(|h| forecast(&h.series(input.now), &config.forecast).ok());
            facts.insert(
                p.signal.as_str(),
                SignalFacts {
                    forecast,
                    span: min.zip(max).map(|(a, b)| b - a).filter(|d| *d > 0.0),
                    min,
                    max,
                    contributions: input
                        .contributions
                        .iter()
                        .filter(|c| &*c.signal == p.signal.as_str())
                        .cloned()
                        .collect(),
                },
            );
        }
    }
    let observed = observed_set(&facts, config);
    let steady = operating_point_is_steady(input, config);
    let total_explained: f64 = input
        .contributions
        .iter()
        .filter(|c| c.score >= 0.3 && contribution_direction(c).is_some())
        .map(|c| c.score)
        .sum();

    let mut recs: Vec<Recommendation> = model
        .failure_modes
        .iter()
        .filter_map(|m| {
            let ctx = ModeContext {
                facts: &facts,
                observed: &observed,
                total_explained,
                steady,
            };
            mode_recommendation(m, input, &ctx, config)
        })
        .collect();
    recs.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(a.due_by.cmp(&b.due_by))
            .then(a.failure_mode.cmp(&b.failure_mode))
    });
    recs
}

/// The (signal, direction) pairs in evidence, for matching past cases.
fn observed_set(facts: &BTreeMap<&str, SignalFacts>, config: &AdviceConfig) -> Vec<CaseSignal> {
    let mut out = Vec::new();
    for (name, f) in facts {
        let det = f
            .contributions
            .iter()
            .filter(|c| c.score >= config.full_detector_score)
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .and_then(contribution_direction);
        let trend = f.forecast.as_ref().and_then(|fc| {
            (fc.slope.t_stat().abs() >= config.trend_t).then_some(if fc.slope.per_hour > 0.0 {
                SignalDirection::Rising
            } else {
                SignalDirection::Falling
            })
        });
        if let Some(d) = det.or(trend) {
            out.push(CaseSignal {
                signal: (*name).to_string(),
                direction: d,
            });
        }
    }
    out
}

fn similarity(case: &PastCase, observed: &[CaseSignal]) -> f64 {
    if case.signals.is_empty() && observed.is_empty() {
        return 0.0;
    }
    let hit = case
        .signals
        .iter()
        .filter(|c| {
            observed
                .iter()
                .any(|o| o.signal == c.signal && agrees(c.direction, o.direction))
        })
        .count();
    let union = case.signals.len() + observed.len() - hit;
    if union == 0 {
        0.0
    } else {
        hit as f64 / union as f64
    }
}

/// Whether the twin's inputs and disturbances (setpoints, load, speed, weather) have held
/// steady over the slope window: none has a significant trend that moved it by a meaningful
/// share of its span. When one has, the outputs' trends follow the operating point (a
/// weekend's lower production, a hot afternoon), not a failure, and are not evidence.
fn operating_point_is_steady(input: &AdviceInput<'_>, config: &AdviceConfig) -> bool {
    input
        .model
        .signals
        .iter()
        .filter(|s| s.role != doppel_model::SignalRole::Output)
        .filter(|s| {
            matches!(
                s.kind,
                doppel_model::ValueKind::Float | doppel_model::ValueKind::Int
            )
        })
        .all(|s| {
            let Some(series) = input.history.signal(&s.name).map(|h| h.series(input.now)) else {
                return true;
            };
            // A recent change its daily pattern does not predict (a weekend, a new setpoint):
            // forecast the last few buckets from the ones before and compare.
            let n = series.values.len();
            if n > HOLDOUT_BUCKETS {
                let mut earlier = series.clone();
                earlier.values.truncate(n - HOLDOUT_BUCKETS);
                if let Ok(fc) = forecast(&earlier, &config.forecast) {
                    let surprised = series.values[n - HOLDOUT_BUCKETS..]
                        .iter()
                        .zip(&fc.points)
                        .any(|(x, p)| x.is_some_and(|x| x < p.lower || x > p.upper));
                    if surprised {
                        return false;
                    }
                }
            }
            let Ok(fc) = forecast(&series, &config.forecast) else {
                return true;
            };
            let span = s.min.zip(s.max).map(|(a, b)| b - a).filter(|d| *d > 0.0);
            let change = (fc.slope.per_hour * fc.slope.window_h).abs();
            let big = match span {
                Some(span) => change >= config.min_change_share * span,
                None => change >= 3.0 * fc.residual_std,
            };
            !(big && fc.slope.t_stat().abs() >= config.trend_t)
        })
}

/// What every mode of one evaluation shares.
struct ModeContext<'a, 'b> {
    facts: &'a BTreeMap<&'b str, SignalFacts>,
    observed: &'a [CaseSignal],
    total_explained: f64,
    steady: bool,
}

fn mode_recommendation(
    m: &FailureMode,
    input: &AdviceInput<'_>,
    ctx: &ModeContext<'_, '_>,
    config: &AdviceConfig,
) -> Option<Recommendation> {
    let (facts, observed, total_explained) = (ctx.facts, ctx.observed, ctx.total_explained);
    let horizon_h = m.typical_horizon_h.unwrap_or(168.0);
    let mut evidence = Vec::with_capacity(m.signature.len());
    let mut weighted = 0.0;
    let mut weights = 0.0;
    let mut explained = 0.0;
    let mut off_normal = false;
    let mut primary: f64 = 0.0;
    let heaviest = m.signature.iter().map(|p| p.weight).fold(0.0_f64, f64::max);
    for p in &m.signature {
        let Some(f) = facts.get(p.signal.as_str()) else {
            continue;
        };
        // (a) the detector
        let mut det_strength: f64 = 0.0;
        let mut det: Option<&SignalContribution> = None;
        for c in &f.contributions {
            let Some(d) = contribution_direction(c) else {
                continue;
            };
            if !agrees(p.direction, d) {
                continue;
            }
            let scale = if c.kind == ContributionKind::Multivariate {
                0.7
            } else {
                1.0
            };
            let s = clamp01((c.score - 0.2) / (config.full_detector_score - 0.2).max(1e-6)) * scale;
            if c.score >= 0.3 {
                explained += c.score;
            }
            if s > det_strength {
                det_strength = s;
                det = Some(c);
            }
        }
        if det.is_some_and(|c| c.score >= config.full_detector_score) {
            off_normal = true;
        }
        // (b) the trend, (c) the limit
        let mut trend_strength: f64 = 0.0;
        let mut limit_strength: f64 = 0.0;
        let mut trend_dir = None;
        let mut limit = None;
        let mut ttl = None;
        if let Some(fc) = &f.forecast {
            let t = fc.slope.t_stat();
            let dir = if fc.slope.per_hour > 0.0 {
                SignalDirection::Rising
            } else {
                SignalDirection::Falling
            };
            let change = (fc.slope.per_hour * fc.slope.window_h).abs();
            let big_enough = match f.span {
                Some(span) => change >= config.min_change_share * span,
                None => change >= 3.0 * fc.residual_std,
            };
            // Before a daily season can be fitted, a slope over the last day is mostly the
            // daily cycle: no trend evidence then.
            let trend_usable = ctx.steady && (fc.seasonal || !config.forecast.daily_seasonality);
            if trend_usable && t.abs() >= config.trend_t && big_enough {
                trend_dir = Some(dir);
                if agrees(p.direction, dir) {
                    trend_strength = clamp01(t.abs() / (2.0 * config.trend_t));
                }
            }
            let threshold = match p.direction {
                SignalDirection::Rising => f.max.map(|v| (v, true)),
                SignalDirection::Falling => f.min.map(|v| (v, false)),
                SignalDirection::Shift => {
                    if fc.slope.per_hour >= 0.0 {
                        f.max.map(|v| (v, true))
                    } else {
                        f.min.map(|v| (v, false))
                    }
                }
                SignalDirection::Noisy => None,
            };
            if let Some((value, upper)) = threshold {
                limit = Some(value);
                let r = time_to_threshold(fc, Threshold { value, upper });
                match &r {
                    TimeToThreshold::AlreadyBeyond { .. } => limit_strength = 1.0,
                    // A predicted crossing extrapolates the trend: it counts only when the
                    // trend would (season fitted, operating point steady).
                    TimeToThreshold::Predicted { likely_h, .. } if trend_usable => {
                        if likely_h.is_some_and(|h| h <= horizon_h) {
                            limit_strength = 1.0;
                        }
                    }
                    TimeToThreshold::Predicted { .. } | TimeToThreshold::NotPredicted { .. } => {}
                }
                if limit_strength >= 1.0 {
                    off_normal = true;
                }
                ttl = Some(r);
            }
        }
        let strength = det_strength.max(trend_strength).max(limit_strength);
        if p.weight >= heaviest {
            primary = primary.max(trend_strength.max(limit_strength));
        }
        weighted += p.weight * strength;
        weights += p.weight;
        evidence.push(SignalEvidence {
            signal: p.signal.clone(),
            expected_direction: p.direction,
            observed_direction: det.and_then(contribution_direction).or(trend_dir),
            strength,
            weight: p.weight,
            expected: det.map(|c| c.expected),
            observed: det.and_then(|c| c.observed),
            detector: det.map(|c| c.kind),
            detector_score: det.map(|c| c.score),
            trend_per_hour: f.forecast.as_ref().map(|fc| fc.slope.per_hour),
            trend_t: f
                .forecast
                .as_ref()
                .map(|fc| fc.slope.t_stat().clamp(-1e6, 1e6)),
            limit,
            time_to_limit: ttl,
        });
    }
    if weights <= 0.0 || primary < config.min_primary_evidence || !off_normal {
        return None;
    }
    let match_score = clamp01(weighted / weights);
    let coverage = if total_explained > 0.0 {
        clamp01(explained / total_explained)
    } else {
        1.0
    };
    let similar: Vec<SimilarCase> = input
        .past_cases
        .iter()
        .filter(|c| c.failure_mode == m.id)
        .map(|c| SimilarCase {
            id: c.id.clone(),
            failure_mode: c.failure_mode.clone(),
            similarity: similarity(c, observed),
        })
        .filter(|c| c.similarity >= config.case_similarity)
        .collect();
    let case_boost = similar.iter().map(|c| c.similarity).fold(0.0_f64, f64::max) * 0.15;
    let confidence = clamp01(match_score * (0.5 + 0.5 * coverage) + case_boost);

    // Due by: a share of the soonest of the earliest limit crossing, the RUL's lower bound
    // and the mode's typical horizon.
    let now = input.now;
    let mut soonest_h = horizon_h;
    let mut first_limit: Option<(usize, f64)> = None;
    for (i, e) in evidence.iter().enumerate() {
        if e.strength <= 0.0 {
            continue;
        }
        if let Some(h) = e.time_to_limit.as_ref().and_then(|t| t.earliest_hours()) {
            soonest_h = soonest_h.min(h);
            if first_limit.is_none_or(|(_, best)| h < best) {
                first_limit = Some((i, h));
            }
        }
    }
    if let Some(r) = input.rul {
        soonest_h = soonest_h.min(r.lower_h.max(0.0));
    }
    let due_in_h = (config.safety_factor * soonest_h).max(config.min_due_h);
    let at = |h: f64| now.saturating_add((h * NS_PER_HOUR) as i64);
    let due_by = at(due_in_h);

    let first_limit = first_limit.and_then(|(i, h)| evidence.get(i).map(|e| (e, h)));
    let (limit_earliest, limit_likely) = first_limit
        .and_then(|(e, _)| match &e.time_to_limit {
            Some(TimeToThreshold::Predicted {
                earliest, likely, ..
            }) => Some((Some(*earliest), *likely)),
            Some(TimeToThreshold::AlreadyBeyond { .. }) => Some((Some(now), Some(now))),
            _ => None,
        })
        .unwrap_or((None, None));
    let failure_likely = input.rul.map(|r| at(r.hours.max(0.0)));
    let failure_earliest = input.rul.map(|r| at(r.lower_h.max(0.0)));
    let mut risk_summary = if m.consequence.is_empty() {
        format!("{} progresses", m.name)
    } else {
        format!("if nothing is done, {}", m.consequence)
    };
    if let Some((e, h)) = first_limit {
        if h <= 0.0 {
            risk_summary.push_str(&format!("; {} is already beyond its limit", e.signal));
        } else {
            risk_summary.push_str(&format!(
                "; {} leaves its normal range in {:.0} h at the earliest",
                e.signal, h
            ));
        }
    }
    if let Some(r) = input.rul {
        risk_summary.push_str(&format!(
            "; failure expected in {:.0} h ({:.0}–{:.0} h)",
            r.hours, r.lower_h, r.upper_h
        ));
    }
    let first_limit_signal = first_limit.map(|(e, _)| e.signal.clone());
    let action = m.actions.first().cloned().unwrap_or_default();
    let strongest = evidence
        .iter()
        .filter(|e| e.strength > 0.0)
        .max_by(|a, b| {
            (a.strength * a.weight)
                .total_cmp(&(b.strength * b.weight))
                .then(b.signal.cmp(&a.signal))
        })
        .map(|e| {
            let trend = e
                .trend_per_hour
                .map(|t| format!(", {t:+.3}/h"))
                .unwrap_or_default();
            format!("{} {}{}", e.signal, e.expected_direction, trend)
        })
        .unwrap_or_default();
    let summary = format!(
        "{}: {} within {:.0} h ({}; confidence {:.0} %)",
        m.name,
        action,
        due_in_h,
        strongest,
        confidence * 100.0
    );
    Some(Recommendation {
        failure_mode: m.id.clone(),
        name: m.name.clone(),
        action,
        actions: m.actions.clone(),
        urgency: m.urgency,
        due_by,
        due_in_h,
        confidence,
        match_score,
        coverage,
        evidence,
        similar_cases: similar,
        risk: RiskOfWaiting {
            consequence: m.consequence.clone(),
            first_limit_signal,
            limit_earliest,
            limit_likely,
            failure_likely,
            failure_earliest,
            summary: risk_summary,
        },
        summary,
    })
}

/// The detector's explanation over an evaluation interval: the strongest contribution of
/// each signal and kind among the scores added since the last [`take`](Self::take), and
/// whether the twin was in alarm. A single reading's explanation is too jumpy to advise on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExplanationWindow {
    strongest: BTreeMap<(Arc<str>, String), SignalContribution>,
    in_alarm: bool,
}

impl ExplanationWindow {
    pub fn add(&mut self, score: &Score) {
        self.in_alarm |= score.is_anomaly;
        for c in &score.per_signal {
            let key = (c.signal.clone(), format!("{:?}", c.kind));
            match self.strongest.get_mut(&key) {
                Some(old) if old.score >= c.score => {}
                Some(old) => *old = c.clone(),
                None => {
                    self.strongest.insert(key, c.clone());
                }
            }
        }
    }

    /// The contributions gathered (strongest first) and whether the twin was in alarm;
    /// starts a new interval.
    pub fn take(&mut self) -> (Vec<SignalContribution>, bool) {
        let mut v: Vec<SignalContribution> =
            std::mem::take(&mut self.strongest).into_values().collect();
        v.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.signal.cmp(&b.signal)));
        (v, std::mem::take(&mut self.in_alarm))
    }
}

/// Advice as published: a recommendation with its lifecycle times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceAdvice {
    pub failure_mode: String,
    pub opened_at: Timestamp,
    pub updated_at: Timestamp,
    pub recommendation: Recommendation,
}

/// A change of a twin's advice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum AdviceEvent {
    Opened {
        advice: MaintenanceAdvice,
    },
    /// Due-by moved earlier (by more than a quarter of the time left), or urgency changed.
    Updated {
        advice: MaintenanceAdvice,
    },
    /// The evidence went away for long enough.
    Withdrawn {
        failure_mode: String,
        at: Timestamp,
    },
}

/// What one evaluation changed, and the advice open after it (ranked).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdviceUpdate {
    pub events: Vec<AdviceEvent>,
    pub open: Vec<MaintenanceAdvice>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pending {
    first_seen: Timestamp,
    seen: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Open {
    advice: MaintenanceAdvice,
    last_seen: Timestamp,
    missing: u32,
}

/// A twin's advice over time: feed it periodically (every few minutes of the twin's time)
/// with [`evaluate`](Self::evaluate); it opens advice that persists, keeps it stable while
/// the evidence holds (due-by only moves earlier), and withdraws it when the evidence has
/// been gone for a while. Plain data, serializable with the twin's other state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdviceTracker {
    config: AdviceConfig,
    pending: BTreeMap<String, Pending>,
    open: BTreeMap<String, Open>,
    held_off: BTreeMap<String, Timestamp>,
}

impl AdviceTracker {
    pub fn new(config: AdviceConfig) -> Self {
        AdviceTracker {
            config,
            ..Default::default()
        }
    }

    pub fn config(&self) -> &AdviceConfig {
        &self.config
    }

    /// Recommends from `input` and applies the hysteresis.
    pub fn evaluate(&mut self, input: &AdviceInput<'_>) -> AdviceUpdate {
        let recs = recommend(input, &self.config);
        self.update(input.now, recs)
    }

    /// Applies the hysteresis to one evaluation's recommendations.
    pub fn update(&mut self, now: Timestamp, recs: Vec<Recommendation>) -> AdviceUpdate {
        let c = &self.config;
        let mut events = Vec::new();
        self.held_off.retain(|_, until| *until > now);
        let mut seen_now: Vec<String> = Vec::new();
        for rec in recs {
            let id = rec.failure_mode.clone();
            if self.held_off.contains_key(&id) {
                continue;
            }
            if let Some(o) = self.open.get_mut(&id) {
                if rec.confidence < c.keep_confidence {
                    continue;
                }
                seen_now.push(id.clone());
                o.last_seen = now;
                o.missing = 0;
                let old = &o.advice.recommendation;
                let earlier = rec.due_by < old.due_by
                    && (old.due_by - rec.due_by) as f64 > 0.25 * (old.due_by - now).max(0) as f64;
                // Confidence moves silently: an event for every wobble would be flapping.
                let changed = earlier || rec.urgency != old.urgency;
                let due_by = if earlier { rec.due_by } else { old.due_by };
                let mut rec = rec;
                rec.due_by = due_by;
                rec.due_in_h = ((due_by - now) as f64 / NS_PER_HOUR).max(0.0);
                o.advice.recommendation = rec;
                if changed {
                    o.advice.updated_at = now;
                    events.push(AdviceEvent::Updated {
                        advice: o.advice.clone(),
                    });
                }
                continue;
            }
            if rec.confidence < c.open_confidence {
                continue;
            }
            seen_now.push(id.clone());
            let p = self.pending.entry(id.clone()).or_insert(Pending {
                first_seen: now,
                seen: 0,
            });
            p.seen += 1;
            let lasted = (now - p.first_seen) as f64 / 1e9;
            if p.seen >= c.open_after && lasted >= c.open_after_s {
                self.pending.remove(&id);
                let advice = MaintenanceAdvice {
                    failure_mode: id.clone(),
                    opened_at: now,
                    updated_at: now,
                    recommendation: rec,
                };
                events.push(AdviceEvent::Opened {
                    advice: advice.clone(),
                });
                self.open.insert(
                    id,
                    Open {
                        advice,
                        last_seen: now,
                        missing: 0,
                    },
                );
            }
        }
        // Candidates must persist without a break to open.
        self.pending.retain(|id, _| seen_now.contains(id));
        let mut withdrawn = Vec::new();
        for (id, o) in &mut self.open {
            if seen_now.contains(id) {
                continue;
            }
            o.missing += 1;
            let gone = (now - o.last_seen) as f64 / 1e9;
            if o.missing >= c.close_after && gone >= c.close_after_s {
                withdrawn.push(id.clone());
            }
        }
        for id in withdrawn {
            self.open.remove(&id);
            events.push(AdviceEvent::Withdrawn {
                failure_mode: id,
                at: now,
            });
        }
        AdviceUpdate {
            events,
            open: self.open_advice(),
        }
    }

    /// The open advice, ranked like [`recommend`] ranks.
    pub fn open_advice(&self) -> Vec<MaintenanceAdvice> {
        let mut v: Vec<MaintenanceAdvice> = self.open.values().map(|o| o.advice.clone()).collect();
        v.sort_by(|a, b| {
            let (ra, rb) = (&a.recommendation, &b.recommendation);
            rb.confidence
                .total_cmp(&ra.confidence)
                .then(ra.due_by.cmp(&rb.due_by))
                .then(a.failure_mode.cmp(&b.failure_mode))
        });
        v
    }

    /// Closes advice because the work was done (or rejected): it is not advised again for
    /// `hold_off_s`, so the evidence that lingers after a repair does not reopen it at once.
    /// Returns whether it was open.
    pub fn dismiss(&mut self, failure_mode: &str, now: Timestamp) -> bool {
        let hold = (self.config.hold_off_s.max(0.0) * 1e9) as i64;
        self.held_off
            .insert(failure_mode.to_string(), now.saturating_add(hold));
        self.pending.remove(failure_mode);
        self.open.remove(failure_mode).is_some()
    }
}

#[cfg(test)]
mod tests;
