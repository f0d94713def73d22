// Maintenance advice without the DOM: which states each view lists, the order (soonest due
// first), how a live change updates a list, the schedule and done requests built from what
// the operator typed (checked as the server checks them), and how due-by, confidence and
// evidence read.

import { formatAge, formatNumber, formatTime, nsToMs } from './format';
import type { AdviceItem, AdviceState, NoCrossing, Outcome, SignalDirection, SignalEvidence, TimeToThreshold, Urgency } from './types';

/** The advice page's views and the states each lists. */
export type AdviceView = 'active' | 'closed' | 'all';

export const ADVICE_VIEW_STATES: Record<AdviceView, AdviceState[]> = {
  active: ['open', 'scheduled'],
  closed: ['done', 'withdrawn'],
  all: ['open', 'scheduled', 'done', 'withdrawn'],
};

export const ADVICE_VIEW_LABEL: Record<AdviceView, string> = { active: 'Open and scheduled', closed: 'Done and withdrawn', all: 'All' };

/** The view named by `?view=` (open and scheduled when absent or unknown). */
export function parseAdviceView(v: string | null): AdviceView {
  return v === 'closed' || v === 'all' ? v : 'active';
}

/** Still to be worked: open or scheduled. */
export function isActive(a: AdviceItem): boolean {
  return a.state === 'open' || a.state === 'scheduled';
}

/**
 * Work to do first: active items before closed ones; active ones by due-by, soonest first
 * (then by id, oldest first); closed ones by their latest change, newest first.
 */
export function compareAdvice(a: AdviceItem, b: AdviceItem): number {
  const aa = isActive(a);
  const ba = isActive(b);
  if (aa !== ba) return aa ? -1 : 1;
  const byId = a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  if (aa) return a.recommendation.due_by - b.recommendation.due_by || byId;
  return lastChange(b).localeCompare(lastChange(a)) || -byId;
}

function lastChange(a: AdviceItem): string {
  return a.history[a.history.length - 1]?.at ?? a.updated_at;
}

export function sortAdvice(list: readonly AdviceItem[]): AdviceItem[] {
  return [...list].sort(compareAdvice);
}

/**
 * Whether `a` is an earlier version of the same item than `b`. An item's history only
 * grows (each change appends one entry), and closed items never reopen. At its cap (the
 * oldest middle entries go) lengths tie and the incoming version is taken: a live event is
 * almost always the newer one.
 */
export function isOlderAdvice(a: AdviceItem, b: AdviceItem): boolean {
  if (isActive(a) && !isActive(b)) return true;
  if (!isActive(a) && isActive(b)) return false;
  return a.history.length < b.history.length;
}

/**
 * `list` with `item`'s newest version: replaced or added when its state is one of
 * `states`, removed otherwise; sorted by {@link compareAdvice}. An older version than the
 * one held (a late event after an action's answer) is ignored.
 */
export function upsertAdvice(list: readonly AdviceItem[], item: AdviceItem, states: readonly AdviceState[]): AdviceItem[] {
  const held = list.find((a) => a.id === item.id);
  if (held && isOlderAdvice(item, held)) return [...list];
  const rest = list.filter((a) => a.id !== item.id);
  if (states.includes(item.state)) rest.push(item);
  return rest.sort(compareAdvice);
}

/** When something is relative to now: `in 3 d 4 h`, `2 h ago`, `now`. */
export function formatRelative(ms: number, now: number): string {
  const d = ms - now;
  if (Math.abs(d) < 60_000) return 'now';
  return d > 0 ? `in ${formatAge(d)}` : `${formatAge(-d)} ago`;
}

/** How due an item is: `in 3 d 4 h`, `due now`, `overdue by 2 h`. */
export function formatDueRelative(dueMs: number, now: number): string {
  const d = dueMs - now;
  if (Math.abs(d) < 60_000) return 'due now';
  return d > 0 ? `in ${formatAge(d)}` : `overdue by ${formatAge(-d)}`;
}

/** Whether the item's due-by has passed (closed items are never overdue). */
export function isOverdue(a: AdviceItem, now: number): boolean {
  return isActive(a) && nsToMs(a.recommendation.due_by) <= now;
}

/** A confidence (0..1) as a percentage: `72 %`. */
export function formatConfidence(x: number): string {
  return Number.isFinite(x) ? `${Math.round(Math.min(1, Math.max(0, x)) * 100)} %` : '—';
}

export const ADVICE_STATE_LABEL: Record<AdviceState, string> = { open: 'open', scheduled: 'scheduled', done: 'done', withdrawn: 'withdrawn' };

export const OUTCOME_LABEL: Record<Outcome, string> = {
  confirmed: 'Confirmed: the failure mode was found',
  not_found: 'Not found: nothing wrong',
  other: 'Other: something else (say what)',
};

export const OUTCOME_SHORT: Record<Outcome, string> = { confirmed: 'confirmed', not_found: 'nothing found', other: 'other' };

export const URGENCY_LABEL: Record<Urgency, string> = { low: 'Low', medium: 'Medium', high: 'High', critical: 'Critical' };

/** The state in words, with when the work is planned or what it found. */
export function adviceStateText(a: AdviceItem, now: number = Date.now()): string {
  if (a.state === 'scheduled' && a.scheduled) return `scheduled for ${formatTime(nsToMs(a.scheduled.for_ts), now)}`;
  if (a.state === 'done' && a.done) return `done · ${OUTCOME_SHORT[a.done.outcome] ?? a.done.outcome}`;
  return ADVICE_STATE_LABEL[a.state] ?? a.state;
}

const DIRECTION_WORD: Record<SignalDirection, string> = { rising: 'rising', falling: 'falling', shift: 'shifting', noisy: 'noisy' };

/** The predicted direction and what was seen: `rising`, `rising, seen falling`, `rising, not seen yet`. */
export function formatDirection(e: SignalEvidence): string {
  const want = DIRECTION_WORD[e.expected_direction] ?? e.expected_direction;
  if (!e.observed_direction) return `${want}, not seen yet`;
  if (e.observed_direction === e.expected_direction) return want;
  return `${want}, seen ${DIRECTION_WORD[e.observed_direction] ?? e.observed_direction}`;
}

/** A trend per hour with its sign and unit: `+0.42 °C/h`, `−1.3 bar/h`. */
export function formatTrend(perHour: number | undefined, unit = ''): string {
  if (perHour === undefined || !Number.isFinite(perHour)) return '—';
  const sign = perHour > 0 ? '+' : perHour < 0 ? '−' : '';
  return `${sign}${formatNumber(Math.abs(perHour))} ${unit ? `${unit}/h` : '/h'}`;
}

const NO_CROSSING: Record<NoCrossing['reason'], string> = {
  cannot_forecast: 'cannot forecast',
  no_trend_toward_limit: 'no trend toward the limit',
  not_within_horizon: 'not within the forecast horizon',
  bad_threshold: 'no usable limit',
};

/** The limit as a condition: `> 85 °C` for an upper one, `< 2 bar` for a lower one. */
function limitText(t: { value: number; upper: boolean }, unit: string): string {
  return `${t.upper ? '>' : '<'} ${formatNumber(t.value)}${unit ? ` ${unit}` : ''}`;
}

/**
 * When the signal crosses its limit: `likely in 12 h, earliest in 8 h (limit > 85 °C)`,
 * `beyond the limit now (> 85 °C)`, or why no crossing is predicted.
 */
export function formatTimeToLimit(t: TimeToThreshold | undefined, now: number, unit = ''): string {
  if (!t) return '—';
  switch (t.status) {
    case 'already_beyond':
      return `beyond the limit now (${limitText(t.threshold, unit)})`;
    case 'predicted': {
      const earliest = formatRelative(nsToMs(t.earliest), now);
      const likely = typeof t.likely === 'number' ? formatRelative(nsToMs(t.likely), now) : null;
      const when = likely && likely !== earliest ? `likely ${likely}, earliest ${earliest}` : `earliest ${earliest}`;
      return `${when} (limit ${limitText(t.threshold, unit)})`;
    }
    case 'not_predicted': {
      const why = t.why ? NO_CROSSING[t.why.reason] ?? t.why.reason : 'no crossing predicted';
      const detail = t.why?.reason === 'cannot_forecast' && t.why.detail ? `: ${t.why.detail}` : '';
      return `${why}${detail}`;
    }
    default:
      return '—';
  }
}

/** How a similar past case links: advice items (`V-…`) and alarms (`A-…`) have pages. */
export function caseRoute(id: string): string | null {
  if (/^V-\d+$/.test(id)) return `/advice/${encodeURIComponent(id)}`;
  if (/^A-\d+$/.test(id)) return `/alarms/${encodeURIComponent(id)}`;
  return null;
}

/** Longest note the server keeps, in bytes. */
export const MAX_NOTE_BYTES = 4096;

export type Checked<T> = { ok: true; body: T } | { ok: false; field: string; message: string };

function noteError(note: string): string | null {
  return new TextEncoder().encode(note).length > MAX_NOTE_BYTES ? `The note can be at most ${MAX_NOTE_BYTES} bytes.` : null;
}

/** The schedule request from the form: a planned time (epoch ms, from the date field) and an optional note. */
export function buildSchedule(forMs: number | null, note: string): Checked<{ for: string; note?: string }> {
  if (forMs === null || !Number.isFinite(forMs)) return { ok: false, field: 'for', message: 'Pick when the work is planned.' };
  const n = note.trim();
  const bad = noteError(n);
  if (bad) return { ok: false, field: 'note', message: bad };
  return { ok: true, body: n ? { for: new Date(forMs).toISOString(), note: n } : { for: new Date(forMs).toISOString() } };
}

/** The done request from the form: an outcome, and a note (required when the outcome is `other`). */
export function buildDone(outcome: string, note: string): Checked<{ outcome: Outcome; note?: string }> {
  if (outcome !== 'confirmed' && outcome !== 'not_found' && outcome !== 'other') {
    return { ok: false, field: 'outcome', message: 'Pick what the maintenance found.' };
  }
  const n = note.trim();
  if (outcome === 'other' && !n) return { ok: false, field: 'note', message: 'Say what was found when the outcome is “other”.' };
  const bad = noteError(n);
  if (bad) return { ok: false, field: 'note', message: bad };
  return { ok: true, body: n ? { outcome, note: n } : { outcome } };
}

/**
 * When the schedule form starts: the planned time of scheduled work, else the due-by, but
 * never in the past (then the next whole hour); minutes rounded down.
 */
export function defaultScheduleMs(a: AdviceItem, now: number): number {
  const planned = a.scheduled ? nsToMs(a.scheduled.for_ts) : nsToMs(a.recommendation.due_by);
  const t = planned > now ? planned : Math.ceil((now + 1) / 3_600_000) * 3_600_000;
  return Math.floor(t / 60_000) * 60_000;
}
