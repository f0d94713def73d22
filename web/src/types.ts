// The shapes of doppel's HTTP API and live stream, as the dashboard reads them
// (see crates/doppel-server/src/api and crates/doppel-engine/src/engine.rs).

export type Value = number | boolean | string;
export type ValueKind = 'float' | 'int' | 'bool' | 'string';
export type SignalRole = 'output' | 'input' | 'disturbance';

export interface SignalSpec {
  name: string;
  unit: string;
  kind: ValueKind;
  /** Lower bound of normal operation (numeric signals only). */
  min?: number;
  /** Upper bound of normal operation (numeric signals only). */
  max?: number;
  role: SignalRole;
  description?: string;
}

export interface PropertySpec {
  name: string;
  kind: ValueKind;
  required: boolean;
  unit?: string;
  description?: string;
}

export interface RelationSpec {
  kind: string;
  target_model?: string;
  description?: string;
}

export interface AssetModel {
  id: string;
  name: string;
  version: number;
  description: string;
  signals: SignalSpec[];
  properties: PropertySpec[];
  relations: RelationSpec[];
}

export interface Relation {
  kind: string;
  target: string;
}

export interface Twin {
  id: string;
  model: string;
  name: string;
  parent?: string;
  properties: Record<string, Value>;
  relations: Relation[];
}

export interface SignalState {
  value: Value | null;
  time: string | null;
  /** Nanoseconds since the epoch. */
  ts: number | null;
  unit: string;
  kind: ValueKind;
}

export interface TwinState extends Twin {
  model_info: { id: string; name: string; version: number };
  at?: string;
  signals: Record<string, SignalState>;
  /** What the twin's anomaly detector says now (absent before its first numeric reading). */
  health?: TwinHealth;
  /** The twin's open alarm, if any. */
  alarm?: Alarm;
}

/** What the detector saw: level, rate, stuck, dropout, range, shift, multivariate. */
export type ContributionKind = 'level' | 'rate' | 'stuck' | 'dropout' | 'range' | 'shift' | 'multivariate';

/** One signal's part in the latest anomaly score (0..1; 0.5 is the threshold). */
export interface SignalContribution {
  signal: string;
  kind: ContributionKind;
  score: number;
  expected: number;
  /** `null` for a dropout. */
  observed: number | null;
}

/** `health` of `GET /api/v1/twins/{id}` (crates/doppel-engine/src/detect.rs). */
export interface TwinHealth {
  score: number;
  anomalous: boolean;
  learning: boolean;
  /** 1 at start; above 1 after false alarms. */
  sensitivity: number;
  scored_at?: string;
  contributions: SignalContribution[];
}

export type AlarmState = 'active' | 'acknowledged' | 'shelved' | 'cleared';
export type Severity = 'warning' | 'major' | 'critical';
export type Verdict = 'false_alarm' | 'confirmed';

/** One signal behind an alarm, at its highest contribution. */
export interface AlarmSignal extends SignalContribution {
  since: string;
  since_ts: number;
}

export interface Transition {
  at: string;
  /** raised, escalated, reopened, acknowledged, shelved, unshelved, cleared, feedback. */
  what: string;
  /** Token id of the operator; absent for the detector's own transitions. */
  by?: string;
  note?: string;
}

export interface Feedback {
  verdict: Verdict;
  fault_kind?: string;
  note?: string;
  by: string;
  at: string;
}

/** An alarm (crates/doppel-engine/src/alarms.rs). */
export interface Alarm {
  id: string;
  twin: string;
  model: string;
  state: AlarmState;
  severity: Severity;
  /** True while the detector still sees the anomalous condition. */
  condition: boolean;
  summary: string;
  raised_at: string;
  /** Nanoseconds since the epoch. */
  raised_ts: number;
  last_ts: number;
  cleared_at?: string;
  peak_score: number;
  last_score: number;
  occurrences: number;
  /** Highest score first. */
  signals: AlarmSignal[];
  acknowledged: boolean;
  shelved_until?: string;
  shelved_until_ts?: number;
  feedback?: Feedback;
  history: Transition[];
}

export type AlarmChange = 'raised' | 'reopened' | 'escalated' | 'acknowledged' | 'shelved' | 'unshelved' | 'cleared' | 'feedback';

/** One message of `/api/v1/stream?type=alarm`: an alarm changed. */
export interface AlarmEvent {
  type: 'alarm';
  twin: string;
  model: string;
  time: string;
  ts: number;
  change: AlarmChange;
  alarm: Alarm;
}

export type EventType = 'reading' | 'alarm' | 'advice';

/** One message of `/api/v1/stream?type=advice`: a maintenance-advice item changed. */
export interface AdviceEvent {
  type: 'advice';
  twin: string;
  model: string;
  time: string;
  ts: number;
  change: AdviceChange;
  advice: AdviceItem;
}

/** One message of `/api/v1/stream`: a reading of one twin. */
export interface LiveEvent {
  type?: 'reading';
  twin: string;
  model: string;
  time: string;
  /** Nanoseconds since the epoch. */
  ts: number;
  values: Record<string, Value>;
  /** Older than the twin's state: stored in history only. */
  late: boolean;
}

/** Sent instead of events the subscriber was too slow to take. */
export interface LaggedMessage {
  type: 'lagged';
  skipped: number;
}

export interface Bucket {
  time: string;
  /** Start of the bucket, nanoseconds since the epoch. */
  ts: number;
  value: number;
  count: number;
}

export interface HistoryAnswer {
  twin: string;
  signal: string;
  buckets?: Bucket[];
  points?: { time: string; ts: number; value: Value }[];
  step?: string;
  agg?: string;
  truncated: boolean;
}

export function isNumericKind(kind: ValueKind): boolean {
  return kind === 'float' || kind === 'int';
}

// ---- what-if: identified dynamics, scenarios, optimization, troubleshooting ----

/** How well the identified model of one output predicts held-out history. */
export interface OutputFit {
  signal: string;
  /** One step ahead: RMSE over the range of the held-out truth. */
  nrmse_one_step: number;
  /** Free run, error at `horizon_s` ahead, over the same range. */
  nrmse_horizon: number;
  /** The same error over the standard deviation of the truth (`sqrt(1 − R²)`). */
  nrmse_std_horizon: number;
  horizon_s: number;
  test_points: number;
}

export interface Dynamics {
  twin?: string;
  step_s: number;
  /** Epoch ns. */
  history_from: number;
  history_to: number;
  outputs: OutputFit[];
  skipped: { signal: string; reason: string }[];
}

export type Side = 'above' | 'below';

/** The first time a trajectory (or its band) leaves the declared normal range. */
export interface LimitCrossing {
  /** Seconds from the scenario start. */
  at_s: number;
  side: Side;
  limit: number;
  value: number;
}

export interface OutputTrajectory {
  signal: string;
  values: number[];
  lower: number[];
  upper: number[];
  mean?: number;
  crossing?: LimitCrossing | null;
  band_crossing?: LimitCrossing | null;
}

export interface ScenarioResult {
  /** Epoch ns. */
  start: number;
  step_s: number;
  outputs: OutputTrajectory[];
  inputs: { signal: string; values: number[] }[];
  extrapolated_inputs: string[];
}

export interface OutputComparison {
  signal: string;
  baseline_mean: number;
  scenario_mean: number;
  mean_delta: number;
  final_delta: number;
  max_abs_delta: number;
  max_abs_delta_at_s: number;
  baseline_crossing?: LimitCrossing | null;
  scenario_crossing?: LimitCrossing | null;
}

export type InputChange =
  | { signal: string; kind: 'step'; at_s: number; value: number }
  | { signal: string; kind: 'ramp'; from_s: number; to_s: number; to_value: number }
  | { signal: string; kind: 'profile'; points: [number, number][] };

export interface ScenarioSpec {
  name?: string;
  horizon_s: number;
  output_step_s?: number;
  changes: InputChange[];
  baseline?: 'hold' | 'repeat_day';
}

export interface ScenariosRequest {
  start?: string;
  scenarios?: ScenarioSpec[];
  horizon_s?: number;
}

export interface WhatIfAnswer {
  twin: string;
  /** Epoch ns. */
  start: number;
  model: Dynamics;
  baseline: ScenarioResult;
  scenarios: { name?: string; result: ScenarioResult; comparison: { outputs: OutputComparison[] } }[];
}

export interface OptimizeRequest {
  horizon_s: number;
  objective: { sense: 'minimize' | 'maximize'; terms: { signal: string; weight?: number }[] };
  constraints?: { signal: string; min?: number; max?: number }[];
  inputs: { signal: string; min: number; max: number }[];
}

export interface OptimizeAnswer {
  settings: { signal: string; value: number }[];
  objective: number;
  baseline_objective: number;
  feasible: boolean;
  violations?: string[];
  evaluations?: number;
}

export interface Cause {
  twin: string;
  relation: string;
  signal: string;
  /** Epoch ns. */
  onset: number;
  kind: 'relation_break' | 'input_change' | 'level_shift' | 'explained';
  score: number;
  evidence: string;
}

export interface Troubleshooting {
  twin: string;
  from: number;
  to: number;
  causes: Cause[];
}

// ---- maintenance advice (crates/doppel-engine/src/advice.rs, doppel-analytics/src/advice.rs) ----

export type AdviceState = 'open' | 'scheduled' | 'done' | 'withdrawn';
export type AdviceChange = 'opened' | 'updated' | 'scheduled' | 'done' | 'withdrawn';
export type Outcome = 'confirmed' | 'not_found' | 'other';
export type SignalDirection = 'rising' | 'falling' | 'shift' | 'noisy';
export type Urgency = 'low' | 'medium' | 'high' | 'critical';

export interface Threshold {
  value: number;
  /** True for an upper limit (crossing means going above it). */
  upper: boolean;
}

export type NoCrossing =
  | { reason: 'cannot_forecast'; detail: string }
  | { reason: 'no_trend_toward_limit' }
  | { reason: 'not_within_horizon' }
  | { reason: 'bad_threshold' };

/** When a signal is expected to cross its limit (epoch ns). */
export type TimeToThreshold =
  | { status: 'already_beyond'; level: number; threshold: Threshold }
  | {
      status: 'predicted';
      threshold: Threshold;
      earliest: number;
      likely?: number | null;
      latest?: number | null;
      earliest_h: number;
      likely_h?: number | null;
      trend_per_hour: number;
    }
  | { status: 'not_predicted'; threshold: Threshold; why: NoCrossing };

/** How one signal of the failure mode's signature supports the advice. */
export interface SignalEvidence {
  signal: string;
  /** The direction the failure mode predicts. */
  expected_direction: SignalDirection;
  observed_direction?: SignalDirection;
  /** 0..1 in the predicted direction. */
  strength: number;
  weight: number;
  /** What the detector expected and saw, when it flagged the signal. */
  expected?: number;
  observed?: number;
  detector?: ContributionKind;
  detector_score?: number;
  trend_per_hour?: number;
  /** The slope over its standard error. */
  trend_t?: number;
  limit?: number;
  time_to_limit?: TimeToThreshold;
}

export interface SimilarCase {
  id: string;
  failure_mode: string;
  similarity: number;
}

/** What happens if nothing is done (epoch ns). */
export interface RiskOfWaiting {
  consequence: string;
  first_limit_signal?: string;
  limit_earliest?: number;
  limit_likely?: number;
  failure_likely?: number;
  failure_earliest?: number;
  summary: string;
}

export interface Recommendation {
  failure_mode: string;
  /** The failure mode's name (`Bearing wear`). */
  name: string;
  action: string;
  actions: string[];
  urgency: Urgency;
  /** Epoch ns (reading time). */
  due_by: number;
  due_in_h: number;
  /** 0..1. */
  confidence: number;
  match_score: number;
  coverage: number;
  evidence: SignalEvidence[];
  similar_cases?: SimilarCase[];
  risk: RiskOfWaiting;
  summary: string;
}

export interface AdviceScheduled {
  /** When the work is planned (RFC 3339; `for_ts` in ns). */
  for: string;
  for_ts: number;
  /** Token id of the operator who scheduled it. */
  by: string;
  note?: string;
  at: string;
}

export interface AdviceDone {
  outcome: Outcome;
  note?: string;
  by: string;
  at: string;
  at_ts: number;
}

/** One piece of maintenance advice on a twin. */
export interface AdviceItem {
  id: string;
  twin: string;
  model: string;
  failure_mode: string;
  state: AdviceState;
  recommendation: Recommendation;
  opened_at: string;
  opened_ts: number;
  updated_at: string;
  updated_ts: number;
  scheduled?: AdviceScheduled;
  done?: AdviceDone;
  withdrawn_at?: string;
  history: Transition[];
}

// ---- remaining useful life (GET /api/v1/twins/{id}/rul, GET /api/v1/rul) ----

export type RulStatus = 'estimated' | 'untrained' | 'no_history';

export interface RulEstimate {
  twin: string;
  model: string;
  status: RulStatus;
  /** Why there is no estimate (when not `estimated`). */
  reason?: string;
  /** Hours; present only when `estimated`. */
  rul_h?: number;
  lower_h?: number;
  upper_h?: number;
  as_of?: string;
  since?: string;
  /** Run-to-failure histories the model learned from. */
  trained_on?: number;
  /** The model saturates at its cap: the remaining life is at least `rul_h`. */
  capped?: boolean;
}
