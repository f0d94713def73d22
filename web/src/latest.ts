// The latest value of every signal of a twin, from its state and then from live events.

import type { Latest } from './health';
import { nsToMs } from './format';
import type { LiveEvent, TwinState } from './types';

export type LatestMap = Record<string, Latest>;

export function fromState(state: TwinState): LatestMap {
  const out: LatestMap = {};
  for (const [name, s] of Object.entries(state.signals)) {
    out[name] = { value: s.value, ms: s.ts === null ? null : nsToMs(s.ts) };
  }
  return out;
}

/**
 * Applies a live event; a value older than the one held is ignored, as the engine does
 * (state never moves backwards). Returns the names of the signals that changed.
 */
export function applyEvent(latest: LatestMap, ev: LiveEvent): string[] {
  if (ev.late) return [];
  const ms = nsToMs(ev.ts);
  const changed: string[] = [];
  for (const [name, value] of Object.entries(ev.values)) {
    const cur = latest[name];
    if (cur && cur.ms !== null && cur.ms > ms) continue;
    latest[name] = { value, ms };
    changed.push(name);
  }
  return changed;
}
