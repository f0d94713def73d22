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
