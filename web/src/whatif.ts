// The what-if page's logic without the DOM: the scenario and optimize requests built from
// what the user typed (with every mistake reported at once), baseline and scenario series
// paired on one time axis for a chart, and deltas, offsets and crossings worded for people.

import { formatAge, formatNumber } from './format';
import type {
  Cause,
  InputChange,
  LimitCrossing,
  OptimizeAnswer,
  OptimizeRequest,
  OutputFit,
  ScenarioResult,
  ScenariosRequest,
  SignalSpec,
  WhatIfAnswer,
} from './types';

/** The longest horizon the server simulates (31 days), in minutes. */
export const MAX_HORIZON_MIN = 31 * 24 * 60;

/** Points per trajectory the page asks for at most: enough for a laptop-wide chart. */
const MAX_POINTS = 400;

/** One input's row of the scenario form. */
export interface InputEdit {
  signal: string;
  /** The value now, from the twin's latest reading; what the form starts with. */
  current: number | null;
  /** The new value; `null` (left blank) or the current value means no change. */
  value: number | null;
  /** Minutes after the last reading when the change starts. */
  atMin: number;
  kind: 'step' | 'ramp';
  /** How long a ramp takes to reach the new value, minutes. */
  rampMin: number;
}

export interface ScenarioForm {
  name: string;
  horizonMin: number;
  edits: InputEdit[];
}

/** A mistake in the form: which field (the input's signal, or `horizon`) and what is wrong. */
export interface FieldError {
  field: string;
  message: string;
}

export type Built<T> = { ok: true; request: T } | { ok: false; errors: FieldError[] };

/** The spacing of returned trajectories for a horizon: a round step giving at most 400 points. */
export function outputStepFor(horizonS: number): number {
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
  return steps.find((s) => horizonS / s <= MAX_POINTS) ?? steps[steps.length - 1];
}

function changed(e: InputEdit): boolean {
  return e.value !== null && (e.current === null || Math.abs(e.value - e.current) > 1e-9 * Math.max(1, Math.abs(e.current)));
}

/** The input changes the form describes, in seconds after the start. */
export function changesOf(edits: readonly InputEdit[]): InputChange[] {
  return edits.filter(changed).map((e): InputChange => {
    const at = Math.round(e.atMin * 60);
    return e.kind === 'ramp'
      ? { signal: e.signal, kind: 'ramp', from_s: at, to_s: at + Math.round(e.rampMin * 60), to_value: e.value as number }
      : { signal: e.signal, kind: 'step', at_s: at, value: e.value as number };
  });
}

/** The `POST /scenarios` body for one named scenario, or every mistake in the form. */
export function buildScenarioRequest(form: ScenarioForm): Built<ScenariosRequest> {
  const errors: FieldError[] = [];
  const h = form.horizonMin;
  const horizonOk = Number.isFinite(h) && h > 0 && h <= MAX_HORIZON_MIN;
  if (!Number.isFinite(h) || h <= 0) errors.push({ field: 'horizon', message: 'The horizon must be a positive number of minutes.' });
  else if (h > MAX_HORIZON_MIN) errors.push({ field: 'horizon', message: `The horizon can be at most ${MAX_HORIZON_MIN} minutes (31 days).` });
  for (const e of form.edits) {
    if (e.value !== null && !Number.isFinite(e.value)) errors.push({ field: e.signal, message: `${e.signal}: the new value is not a number.` });
    if (!changed(e)) continue;
    if (!Number.isFinite(e.atMin) || e.atMin < 0) errors.push({ field: e.signal, message: `${e.signal}: the change must start now or later.` });
    else if (horizonOk && e.atMin >= h) errors.push({ field: e.signal, message: `${e.signal}: the change starts after the horizon.` });
    if (e.kind === 'ramp' && (!Number.isFinite(e.rampMin) || e.rampMin <= 0)) {
      errors.push({ field: e.signal, message: `${e.signal}: a ramp needs a duration above 0 minutes.` });
    }
  }
  const changes = changesOf(form.edits.filter((e) => e.value === null || Number.isFinite(e.value)));
  if (!changes.length && !errors.length) errors.push({ field: 'inputs', message: 'Change at least one input from its current value.' });
  if (errors.length) return { ok: false, errors };
  const horizonS = Math.round(h * 60);
  return {
    ok: true,
    request: {
      scenarios: [{ name: form.name.trim() || 'scenario', horizon_s: horizonS, output_step_s: outputStepFor(horizonS), changes }],
    },
  };
}

/** One output of the baseline and of a scenario on the scenario's time axis (epoch seconds). */
export interface PairedSeries {
  signal: string;
  xs: number[];
  baseline: (number | null)[];
  scenario: number[];
  lower: number[];
  upper: number[];
  /** Where the scenario (or its band) first leaves the normal range, epoch seconds. */
  crossingAt: number | null;
  bandCrossingAt: number | null;
  baselineCrossingAt: number | null;
}

const NS_PER_S = 1e9;

/** The value of `r`'s output `signal` at epoch second `t`, when a point of it falls there. */
function valueAt(r: ScenarioResult, values: readonly number[], t: number): number | null {
  const i = (t - r.start / NS_PER_S) / r.step_s;
  const k = Math.round(i);
  if (Math.abs(i - k) > 1e-6 || k < 0 || k >= values.length) return null;
  return values[k];
}

/** Pairs baseline and scenario per output (the scenario's outputs, in its order). */
export function pairSeries(answer: WhatIfAnswer, scenario = 0): PairedSeries[] {
  const s = answer.scenarios[scenario];
  if (!s) return [];
  const r = s.result;
  const t0 = r.start / NS_PER_S;
  return r.outputs.map((o) => {
    const xs = o.values.map((_, i) => t0 + i * r.step_s);
    const base = answer.baseline.outputs.find((b) => b.signal === o.signal);
    const at = (c: LimitCrossing | null | undefined, start: number) => (c ? start / NS_PER_S + c.at_s : null);
    return {
      signal: o.signal,
      xs,
      baseline: xs.map((t) => (base ? valueAt(answer.baseline, base.values, t) : null)),
      scenario: o.values,
      lower: o.lower,
      upper: o.upper,
      crossingAt: at(o.crossing, r.start),
      bandCrossingAt: at(o.band_crossing, r.start),
      baselineCrossingAt: at(base?.crossing, answer.baseline.start),
    };
  });
}

/** A signed difference with its unit: `+12.5 m³/h`, `−3.20 bar`, `0 %`. */
export function formatDelta(v: number, unit = ''): string {
  const u = unit ? ` ${unit}` : '';
  if (!Number.isFinite(v)) return '—';
  if (v === 0) return `0${u}`;
  const n = formatNumber(Math.abs(v));
  return `${v > 0 ? '+' : '−'}${n}${u}`;
}

/** Seconds after the scenario start for people: `at start`, `after 42 s`, `after 1 h 30 min`. */
export function formatOffset(s: number): string {
  if (!Number.isFinite(s)) return '—';
  if (s < 1) return 'at start';
  return `after ${formatAge(s * 1000)}`;
}

/** A predicted limit crossing: `above 95 (96.3) after 23 min`. */
export function describeCrossing(c: LimitCrossing | null | undefined, unit = ''): string {
  if (!c) return 'none';
  const u = unit ? ` ${unit}` : '';
  return `${c.side} ${formatNumber(c.limit)}${u} (${formatNumber(c.value)}) ${formatOffset(c.at_s)}`;
}

/**
 * The fit quality of one output in words, from the free-run error at the horizon: as a share
 * of the output's range, and against its standard deviation (1 or more: no better than
 * predicting the mean, however small the range share looks).
 */
export function fitVerdict(fit: Pick<OutputFit, 'nrmse_horizon' | 'nrmse_std_horizon'>): 'good' | 'fair' | 'poor' {
  const range = fit.nrmse_horizon;
  const std = fit.nrmse_std_horizon;
  if (!(range >= 0) || !(std >= 0) || range >= 0.25 || std >= 1) return 'poor';
  return range < 0.1 && std < 0.5 ? 'good' : 'fair';
}

/** An NRMSE as a share of the range: `4.2 %`. */
export function formatShare(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(1)} %` : '—';
}

/** The y range of a what-if chart: the data, padded, and each limit within one data span of it. */
export function yRange(lo: number, hi: number, min?: number, max?: number): [number, number] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [min ?? 0, max ?? 1];
  const span = hi - lo || Math.abs(hi) * 0.1 || 1;
  let a = lo;
  let b = hi;
  for (const limit of [min, max]) {
    if (limit === undefined) continue;
    if (limit < a && a - limit <= span) a = limit;
    if (limit > b && limit - b <= span) b = limit;
  }
  const pad = (b - a || span) * 0.08;
  return [a - pad, b + pad];
}

/** The form of the optimize panel. */
export interface OptimizeForm {
  sense: 'minimize' | 'maximize';
  output: string;
  horizonMin: number;
  inputs: { signal: string; use: boolean; min: number; max: number }[];
}

/** The `POST /optimize` body, or every mistake in the form. */
export function buildOptimizeRequest(form: OptimizeForm): Built<OptimizeRequest> {
  const errors: FieldError[] = [];
  if (!form.output) errors.push({ field: 'objective', message: 'Pick an output to optimize.' });
  if (!Number.isFinite(form.horizonMin) || form.horizonMin <= 0 || form.horizonMin > MAX_HORIZON_MIN) {
    errors.push({ field: 'horizon', message: `The horizon must be between 0 and ${MAX_HORIZON_MIN} minutes.` });
  }
  const used = form.inputs.filter((i) => i.use);
  if (!used.length) errors.push({ field: 'inputs', message: 'Let the optimizer move at least one input.' });
  for (const i of used) {
    if (!Number.isFinite(i.min) || !Number.isFinite(i.max) || i.min >= i.max) {
      errors.push({ field: i.signal, message: `${i.signal}: the lowest allowed value must be below the highest.` });
    }
  }
  if (errors.length) return { ok: false, errors };
  return {
    ok: true,
    request: {
      horizon_s: Math.round(form.horizonMin * 60),
      objective: { sense: form.sense, terms: [{ signal: form.output }] },
      inputs: used.map((i) => ({ signal: i.signal, min: i.min, max: i.max })),
    },
  };
}

/** The scenario form with the optimizer's settings as new values, applied from the start as steps. */
export function applySettings(edits: readonly InputEdit[], answer: OptimizeAnswer): InputEdit[] {
  const best = new Map(answer.settings.map((s) => [s.signal, s.value]));
  return edits.map((e) => {
    const v = best.get(e.signal);
    return v === undefined ? e : { ...e, value: roundForInput(v), atMin: 0, kind: 'step' };
  });
}

/** A value rounded to four significant digits (at least whole units above 1000) for a form field. */
export function roundForInput(v: number): number {
  if (!Number.isFinite(v) || v === 0) return v;
  const digits = Math.max(0, 3 - Math.floor(Math.log10(Math.abs(v))));
  return Number(v.toFixed(Math.min(digits, 6)));
}

/** The inputs a scenario can change, in model order: inputs first, then disturbances. */
export function editableSignals(signals: readonly SignalSpec[]): SignalSpec[] {
  const numeric = signals.filter((s) => s.kind === 'float' || s.kind === 'int');
  return [...numeric.filter((s) => s.role === 'input'), ...numeric.filter((s) => s.role === 'disturbance')];
}

export const CAUSE_KIND_LABEL: Record<Cause['kind'], string> = {
  relation_break: 'no longer follows its inputs',
  input_change: 'input changed',
  level_shift: 'level shift',
  explained: 'moved, explained by its inputs',
};

/** Where a cause is, seen from the troubled twin: `flow`, or `tank-1 (feeds) · level`. */
export function causeWhere(c: Cause, twin: string): string {
  if (c.twin === twin) return c.signal;
  return `${c.twin}${c.relation ? ` (${c.relation})` : ''} · ${c.signal}`;
}
