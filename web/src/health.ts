// A twin's health colour, from its open alarm and its latest readings: the alarm's severity
// (critical, major, warning) while an alarm is active or acknowledged; red when a numeric
// signal is outside its model's normal range; grey when nothing arrived for STALE_MS; green
// otherwise. A shelved alarm does not colour the twin: shelving is how an operator says
// "not now", so it is only named among the reasons.

import { formatAge, formatNumber } from './format';
import type { Alarm, AssetModel, Severity, SignalSpec, Value } from './types';

export type Health = Severity | 'red' | 'grey' | 'green' | 'none';

/** A twin whose newest reading is older than this is stale. */
export const STALE_MS = 120_000;

/** The latest value of one signal and when it was measured (epoch ms). */
export interface Latest {
  value: Value | null;
  ms: number | null;
}

export interface HealthVerdict {
  health: Health;
  /** Why, in words, one line per cause. */
  reasons: string[];
}

/** Where `v` lies against the normal range of `spec`: below, above, or within (also for non-numbers). */
export function rangeCheck(spec: SignalSpec | undefined, v: Value | null): 'below' | 'above' | 'ok' {
  if (!spec || typeof v !== 'number') return 'ok';
  if (spec.min !== undefined && v < spec.min) return 'below';
  if (spec.max !== undefined && v > spec.max) return 'above';
  return 'ok';
}

/** Newest reading time over all signals (epoch ms), or null when none. */
export function lastUpdate(latest: Record<string, Latest>): number | null {
  let best: number | null = null;
  for (const l of Object.values(latest)) {
    if (l.ms !== null && (best === null || l.ms > best)) best = l.ms;
  }
  return best;
}

/** The colour an open alarm gives its twin: its severity, or none when shelved or cleared. */
export function alarmHealth(alarm: Alarm | null | undefined): Health {
  if (!alarm || (alarm.state !== 'active' && alarm.state !== 'acknowledged')) return 'none';
  return alarm.severity;
}

/** The reason an alarm gives, e.g. `major alarm A-000003: bearing_temp above expected (level)`. */
export function alarmReason(alarm: Alarm): string {
  const shelved = alarm.state === 'shelved' ? ' (shelved)' : alarm.state === 'acknowledged' ? ' (acknowledged)' : '';
  return `${alarm.severity} alarm ${alarm.id}${shelved}: ${alarm.summary}`;
}

/**
 * The health of a twin of `model` whose latest readings are `latest`, at `now` (epoch ms),
 * with its open `alarm` if it has one. A twin whose model has no signals (a site, a line)
 * has no health of its own: `none`. Out of range wins over stale: a stale out-of-range value
 * is still the last thing known. An alarm's severity joins by rank (see `worst`); its
 * reason comes first.
 */
export function twinHealth(
  model: AssetModel | undefined,
  latest: Record<string, Latest>,
  now: number,
  alarm?: Alarm | null,
): HealthVerdict {
  const base = readingsHealth(model, latest, now);
  if (!alarm || alarm.state === 'cleared') return base;
  return { health: worst([base.health, alarmHealth(alarm)]), reasons: [alarmReason(alarm), ...base.reasons] };
}

function readingsHealth(model: AssetModel | undefined, latest: Record<string, Latest>, now: number): HealthVerdict {
  if (!model || model.signals.length === 0) return { health: 'none', reasons: [] };
  const reasons: string[] = [];
  for (const spec of model.signals) {
    const l = latest[spec.name];
    if (!l) continue;
    const where = rangeCheck(spec, l.value);
    if (where === 'ok') continue;
    const unit = spec.unit ? ` ${spec.unit}` : '';
    const bound = where === 'below' ? `below min ${spec.min}` : `above max ${spec.max}`;
    reasons.push(`${spec.name} ${formatNumber(l.value as number)}${unit} ${bound}`);
  }
  if (reasons.length) return { health: 'red', reasons };
  const last = lastUpdate(latest);
  if (last === null) return { health: 'grey', reasons: ['no readings yet'] };
  if (now - last > STALE_MS) return { health: 'grey', reasons: [`no reading for ${formatAge(now - last)}`] };
  return { health: 'green', reasons: [] };
}

/**
 * Critical and major alarms rank above a value out of its declared range, a warning alarm
 * (a statistical deviation, still within limits) below it.
 */
const RANK: Record<Health, number> = { critical: 6, major: 5, red: 4, warning: 3, grey: 2, green: 1, none: 0 };

/** The worst of several healths (critical > major > red > warning > grey > green > none). */
export function worst(healths: Iterable<Health>): Health {
  let out: Health = 'none';
  for (const h of healths) if (RANK[h] > RANK[out]) out = h;
  return out;
}

/** How many of each colour, worst first, without zeros: `2 red, 1 grey`. */
export function countHealths(healths: Iterable<Health>): string {
  const n: Record<Health, number> = { critical: 0, major: 0, red: 0, warning: 0, grey: 0, green: 0, none: 0 };
  for (const h of healths) n[h]++;
  return (['critical', 'major', 'red', 'warning', 'grey', 'green'] as const)
    .filter((h) => n[h] > 0)
    .map((h) => `${n[h]} ${h}`)
    .join(', ');
}

export const HEALTH_LABEL: Record<Health, string> = {
  critical: 'critical alarm',
  major: 'major alarm',
  warning: 'warning alarm',
  red: 'out of range',
  grey: 'stale',
  green: 'ok',
  none: '—',
};
