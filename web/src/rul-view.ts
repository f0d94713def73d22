// Remaining useful life on screen: a twin's card and the fleet's "Worst remaining life"
// panel. Both ask the server only when it documents the RUL routes (`api.rul`,
// `api.fleetRul`); otherwise, or when the request fails, they say "not available".

import { api } from './api';
import { h, link, replace, seg } from './dom';
import { formatTime } from './format';
import { countUnestimated, formatRul, rulUnavailable, worstRul } from './rul';
import type { RulEstimate } from './types';

/** How many twins the fleet panel lists. */
const WORST = 5;

function when(iso: string | undefined): string | null {
  const ms = iso ? Date.parse(iso) : Number.NaN;
  return Number.isFinite(ms) ? formatTime(ms) : null;
}

/** One twin's estimate, or why there is none. */
export function rulBody(r: RulEstimate | null): HTMLElement[] {
  if (!r) return [h('p', { class: 'muted rul-na', 'data-rul': 'not_available' }, 'Not available: this server does not estimate remaining useful life.')];
  const text = formatRul(r);
  if (text === null) return [h('p', { class: 'muted rul-na', 'data-rul': r.status }, `Not available: ${rulUnavailable(r)}.`)];
  const asOf = when(r.as_of);
  const since = when(r.since);
  return [
    h('p', { class: 'rul-value', 'data-rul': 'estimated' }, h('strong', { class: 'num' }, text)),
    h(
      'p',
      { class: 'muted small' },
      r.capped ? 'The model saturates at its cap: the remaining life is at least this. ' : 'Estimate with its interval. ',
      asOf ? `As of ${asOf}` : '',
      since ? `, from history since ${since}` : '',
      typeof r.trained_on === 'number' ? `; learned from ${r.trained_on} run-to-failure histor${r.trained_on === 1 ? 'y' : 'ies'}.` : '.',
    ),
  ];
}

/** Fills `target` with the fleet's panel; a failed request reads "not available right now". */
export async function loadWorstRul(target: HTMLElement, names: () => Map<string, string>, signal: AbortSignal): Promise<void> {
  let list: RulEstimate[] | null;
  try {
    list = await api.fleetRul(undefined, signal);
  } catch {
    if (signal.aborted) return;
    replace(target, h('p', { class: 'muted rul-na', 'data-rul': 'error' }, 'Not available right now.'));
    return;
  }
  if (signal.aborted) return;
  replace(target, ...worstRulPanel(list, names()));
}

/** Fills `target` with the twin's estimate; anything but an answer reads "not available". */
export async function loadTwinRul(twin: string, target: HTMLElement, signal: AbortSignal): Promise<RulEstimate | null> {
  let r: RulEstimate | null = null;
  try {
    r = await api.rul(twin, signal);
  } catch {
    if (signal.aborted) return null;
    replace(target, h('p', { class: 'muted rul-na', 'data-rul': 'error' }, 'Not available right now.'));
    return null;
  }
  if (signal.aborted) return null;
  replace(target, ...rulBody(r));
  return r;
}

/** The fleet's panel: the twins with the least estimated life, shortest first. */
export function worstRulPanel(list: RulEstimate[] | null, names: Map<string, string> = new Map()): HTMLElement[] {
  if (list === null) return [h('p', { class: 'muted rul-na', 'data-rul': 'not_available' }, 'Not available: this server does not estimate remaining useful life.')];
  const worst = worstRul(list, WORST);
  const without = countUnestimated(list);
  const rest = without ? h('p', { class: 'muted small' }, `${without} twin${without === 1 ? ' has' : 's have'} no estimate (no trained model or too little history).`) : null;
  if (!worst.length) {
    const none = h('p', { class: 'muted', 'data-rul': 'none' }, list.length ? 'No twin has an estimate yet.' : 'No twin has a remaining-life model.');
    return rest ? [none, rest] : [none];
  }
  return [
    h(
      'ol',
      { class: 'worst-rul' },
      worst.map((r) =>
        h(
          'li',
          { 'data-twin': r.twin },
          link(`/twins/${seg(r.twin)}`, names.get(r.twin) || r.twin),
          ' ',
          h('strong', { class: 'num' }, formatRul(r) ?? ''),
          h('span', { class: 'muted' }, ` · ${r.model}${when(r.as_of) ? ` · as of ${when(r.as_of)}` : ''}`),
        ),
      ),
    ),
    ...(rest ? [rest] : []),
  ];
}
