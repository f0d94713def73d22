// Remaining useful life without the DOM: which twins have the least life left, and how an
// estimate reads (`3.2 days (1.9–5.0)`, `36 h (20–61)`, `at least 5.2 days`) or why there
// is none.

import type { RulEstimate } from './types';

/** Below this many hours a life reads in hours, from it on in days. */
const HOURS_UNTIL = 48;

/** The unit a life of `hours` reads in, so an estimate and its interval share one. */
function unitFor(hours: number): 'h' | 'days' {
  return Math.abs(hours) < HOURS_UNTIL ? 'h' : 'days';
}

function amount(hours: number, unit: 'h' | 'days'): string {
  if (unit === 'days') return (hours / 24).toFixed(1);
  // Whole hours from 10 h on; one decimal below, where an hour matters.
  return Math.abs(hours) < 10 ? hours.toFixed(1) : String(Math.round(hours));
}

/** A span of life: `7.5 h`, `36 h`, `3.2 days`. */
export function formatLife(hours: number): string {
  if (!Number.isFinite(hours)) return '—';
  const unit = unitFor(hours);
  return `${amount(hours, unit)} ${unit}`;
}

/** An estimate with an estimate, from an answer whose status is `estimated`. */
export function hasEstimate(r: RulEstimate): r is RulEstimate & { rul_h: number } {
  return r.status === 'estimated' && typeof r.rul_h === 'number' && Number.isFinite(r.rul_h);
}

/**
 * An estimate in words: `3.2 days (1.9–5.0)` with its interval in the estimate's unit,
 * `at least 5.2 days` when the model saturates at its cap (its interval says nothing then),
 * or `null` when there is no estimate.
 */
export function formatRul(r: RulEstimate): string | null {
  if (!hasEstimate(r)) return null;
  if (r.capped) return `at least ${formatLife(r.rul_h)}`;
  const unit = unitFor(r.rul_h);
  const lo = r.lower_h;
  const hi = r.upper_h;
  const interval =
    typeof lo === 'number' && typeof hi === 'number' && Number.isFinite(lo) && Number.isFinite(hi)
      ? ` (${amount(lo, unit)}–${amount(hi, unit)})`
      : '';
  return `${amount(r.rul_h, unit)} ${unit}${interval}`;
}

const STATUS_TEXT: Record<string, string> = {
  untrained: 'no remaining-life model is trained for this model yet',
  no_history: 'not enough history of this twin yet',
};

/** Why an answer has no estimate: the server's reason, else its status in words. */
export function rulUnavailable(r: RulEstimate): string {
  if (hasEstimate(r)) return '';
  return r.reason?.trim() || STATUS_TEXT[r.status] || `no estimate (${r.status})`;
}

/**
 * The `n` twins with the least estimated life: shortest first (then the lower bound, then
 * the twin id, so the order is stable); twins without an estimate are left out.
 */
export function worstRul(list: readonly RulEstimate[], n: number): (RulEstimate & { rul_h: number })[] {
  return list
    .filter(hasEstimate)
    .sort((a, b) => a.rul_h - b.rul_h || (a.lower_h ?? a.rul_h) - (b.lower_h ?? b.rul_h) || (a.twin < b.twin ? -1 : a.twin > b.twin ? 1 : 0))
    .slice(0, Math.max(0, n));
}

/** How many twins of the answer have no estimate, for a line under the list. */
export function countUnestimated(list: readonly RulEstimate[]): number {
  return list.filter((r) => !hasEstimate(r)).length;
}
