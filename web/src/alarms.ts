// What the dashboard knows about alarms without the DOM: which states each view lists, which
// actions an alarm allows, how a live change updates a list, and how numbers read.

import { ApiError } from './api';
import { formatNumber } from './format';
import type { Alarm, AlarmState, ContributionKind, Severity } from './types';

/** The alarms page's views and the states each lists. */
export type AlarmView = 'open' | 'cleared' | 'all';

export const VIEW_STATES: Record<AlarmView, AlarmState[]> = {
  open: ['active', 'acknowledged', 'shelved'],
  cleared: ['cleared'],
  all: ['active', 'acknowledged', 'shelved', 'cleared'],
};

export const VIEW_LABEL: Record<AlarmView, string> = { open: 'Open', cleared: 'Cleared', all: 'All' };

/** The view named by `?view=` (open when absent or unknown). */
export function parseView(v: string | null): AlarmView {
  return v === 'cleared' || v === 'all' ? v : 'open';
}

export interface AllowedActions {
  ack: boolean;
  shelve: boolean;
  unshelve: boolean;
  clear: boolean;
}

/**
 * What an operator may do with `a`, as the server's alarm book allows it (anything else
 * answers 409): acknowledge once while open, shelve an open alarm not already shelved,
 * unshelve a shelved one, clear an open one. Feedback is always allowed.
 */
export function allowedActions(a: Alarm): AllowedActions {
  const open = a.state !== 'cleared';
  return {
    ack: open && !a.acknowledged,
    shelve: open && a.state !== 'shelved',
    unshelve: a.state === 'shelved',
    clear: open,
  };
}

/** Newest first: by the time raised, then by id (ids grow with each alarm). */
export function compareAlarms(a: Alarm, b: Alarm): number {
  return b.raised_ts - a.raised_ts || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/**
 * `list` with `alarm`'s newest version: replaced or added when its state is one of `states`,
 * removed otherwise; sorted newest first. An older version than the one held (a late event
 * after the HTTP answer of an action) is ignored: its history is shorter.
 */
export function upsertAlarm(list: readonly Alarm[], alarm: Alarm, states: readonly AlarmState[]): Alarm[] {
  const held = list.find((a) => a.id === alarm.id);
  if (held && isOlder(alarm, held)) return [...list];
  const rest = list.filter((a) => a.id !== alarm.id);
  if (states.includes(alarm.state)) rest.push(alarm);
  return rest.sort(compareAlarms);
}

/** Whether `a` is an earlier version of the same alarm than `b`. */
function isOlder(a: Alarm, b: Alarm): boolean {
  const last = (x: Alarm) => x.history[x.history.length - 1]?.at ?? '';
  // History entries are capped (the oldest middle ones go), so compare the last entry's time
  // too: RFC 3339 times of one server sort as text.
  return last(a) < last(b) || (last(a) === last(b) && a.history.length < b.history.length);
}

export const STATE_LABEL: Record<AlarmState, string> = {
  active: 'active',
  acknowledged: 'acknowledged',
  shelved: 'shelved',
  cleared: 'cleared',
};

export const SEVERITY_LABEL: Record<Severity, string> = { critical: 'Critical', major: 'Major', warning: 'Warning' };

export const KIND_LABEL: Record<ContributionKind, string> = {
  level: 'level off expected',
  rate: 'jumped',
  stuck: 'stuck',
  dropout: 'stopped reporting',
  range: 'out of normal range',
  shift: 'sustained shift',
  multivariate: 'inconsistent with other signals',
};

/** An anomaly score (0..1, 0.5 the threshold) with two decimals: `0.73`. */
export function formatScore(x: number): string {
  return Number.isFinite(x) ? x.toFixed(2) : '—';
}

/** Observed against expected: `91.20 (expected 60.10, +52 %)`; a dropout reads `no reading`. */
export function formatDeviation(expected: number, observed: number | null): string {
  if (observed === null) return `no reading (expected ${formatNumber(expected)})`;
  const rel = expected !== 0 ? ((observed - expected) / Math.abs(expected)) * 100 : null;
  const pct = rel === null || !Number.isFinite(rel) ? '' : `, ${rel >= 0 ? '+' : '−'}${Math.abs(rel) < 10 ? Math.abs(rel).toFixed(1) : Math.round(Math.abs(rel))} %`;
  return `${formatNumber(observed)} (expected ${formatNumber(expected)}${pct})`;
}

/** An API error as the user reads it: the server's message and the field it names. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    // The server's messages often start with the field already.
    const field = err.field && !err.message.includes(err.field) ? ` (field ${err.field})` : '';
    const status = err.status === 409 ? 'Not possible now: ' : '';
    return `${status}${err.message}${field}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * The alarm that colours a twin after a change of `incoming` on it: an open alarm wins; a
 * change of another, cleared alarm (feedback on an old one) leaves the open one held.
 */
export function twinAlarmAfter(held: Alarm | null, incoming: Alarm): Alarm | null {
  if (held && held.id === incoming.id) return isOlder(incoming, held) ? held : incoming;
  if (incoming.state !== 'cleared') return incoming;
  return held && held.state !== 'cleared' ? held : incoming;
}
