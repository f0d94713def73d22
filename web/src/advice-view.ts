// The pieces every maintenance-advice item is drawn with, on the advice page, an item's own
// page and a twin's page: state badge, due-by, the evidence per signal, the risk of waiting,
// similar past cases, the facts and history, and the Schedule and Mark done forms.

import {
  adviceStateText,
  buildDone,
  buildSchedule,
  caseRoute,
  defaultScheduleMs,
  formatConfidence,
  formatDirection,
  formatDueRelative,
  formatRelative,
  formatTimeToLimit,
  formatTrend,
  isActive,
  isOverdue,
  OUTCOME_LABEL,
  OUTCOME_SHORT,
  URGENCY_LABEL,
} from './advice';
import { errorText, formatDeviation, formatScore, KIND_LABEL } from './alarms';
import { api } from './api';
import { h, link, seg, whileBusy } from './dom';
import { formatTime, fromLocalInput, nsToMs, toLocalInput } from './format';
import type { AdviceItem, Outcome } from './types';

/** The unit of a signal of the item's model (`°C`), or '' when unknown. */
export type UnitOf = (signal: string) => string;

const noUnit: UnitOf = () => '';

/**
 * How an action's outcome comes back to its page (as for alarms): the item after the
 * action, or what went wrong in words, each with the `data-focus` key of the control that
 * had focus.
 */
export interface AdviceHooks {
  done(a: AdviceItem, focus?: string): void;
  failed(text: string, focus?: string): void;
}

/** The state in words, coloured by state (the word is the cue, not the colour). */
export function adviceStateBadge(a: AdviceItem, now = Date.now()): HTMLElement {
  return h('span', { class: `advice-state advice-state-${a.state}`, 'data-state': a.state }, adviceStateText(a, now));
}

/** Due-by: the time, and how far off it is (`in 3 d 4 h`, `overdue by 2 h`). */
export function dueBy(a: AdviceItem, now = Date.now()): HTMLElement {
  const ms = nsToMs(a.recommendation.due_by);
  const iso = new Date(ms).toISOString();
  return h(
    'span',
    { class: `due${isOverdue(a, now) ? ' overdue' : ''}` },
    h('time', { datetime: iso, title: iso }, formatTime(ms, now)),
    h('span', { class: 'due-rel' }, ` ${formatDueRelative(ms, now)}`),
  );
}

/** Confidence with what it is made of on hover. */
export function confidence(a: AdviceItem): HTMLElement {
  const r = a.recommendation;
  return h(
    'span',
    { class: 'confidence num', title: `signature match ${formatConfidence(r.match_score)}; its signals carry ${formatConfidence(r.coverage)} of the anomaly` },
    formatConfidence(r.confidence),
  );
}

/** The signals of the failure mode's signature and what each shows. */
export function evidenceTable(a: AdviceItem, unitOf: UnitOf = noUnit, now = Date.now()): HTMLElement {
  const ev = a.recommendation.evidence;
  if (!ev.length) return h('p', { class: 'muted' }, 'No signal evidence recorded.');
  return h(
    'table',
    { class: 'evidence', 'aria-label': `Evidence for ${a.recommendation.name} on ${a.twin}` },
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        h('th', { scope: 'col' }, 'Signal'),
        h('th', { scope: 'col', title: 'The direction the failure mode predicts, and what was seen' }, 'Direction'),
        h('th', { scope: 'col', class: 'num', title: 'How strongly the signal shows the predicted direction (weight of the signal in the signature on hover)' }, 'Support'),
        h('th', { scope: 'col' }, 'Observed (expected)'),
        h('th', { scope: 'col', class: 'num' }, 'Trend'),
        h('th', { scope: 'col' }, 'Time to limit'),
        h('th', { scope: 'col' }, 'Detector'),
      ),
    ),
    h(
      'tbody',
      null,
      [...ev]
        .sort((x, y) => y.strength * y.weight - x.strength * x.weight)
        .map((e) => {
          const unit = unitOf(e.signal);
          return h(
            'tr',
            { 'data-signal': e.signal, class: e.strength > 0 ? null : 'weak' },
            h('th', { scope: 'row' }, e.signal),
            h('td', null, formatDirection(e)),
            h('td', { class: 'num', title: `weight ${e.weight}` }, formatConfidence(e.strength)),
            h('td', null, typeof e.expected === 'number' && typeof e.observed === 'number' ? `${formatDeviation(e.expected, e.observed)}${unit ? ` ${unit}` : ''}` : '—'),
            h('td', { class: 'num', title: typeof e.trend_t === 'number' ? `t = ${e.trend_t.toFixed(1)} (slope over its standard error)` : null }, formatTrend(e.trend_per_hour, unit)),
            h('td', null, formatTimeToLimit(e.time_to_limit, now, unit)),
            h(
              'td',
              null,
              typeof e.detector_score === 'number' ? `${formatScore(e.detector_score)}${e.detector ? ` · ${KIND_LABEL[e.detector] ?? e.detector}` : ''}` : h('span', { class: 'muted' }, 'not flagged'),
            ),
          );
        }),
    ),
  );
}

/** What happens if nothing is done: the consequence, the first limit crossing, failure. */
export function riskPart(a: AdviceItem, now = Date.now()): HTMLElement {
  const r = a.recommendation.risk;
  const when = (ns: number | undefined) => (typeof ns === 'number' ? `${formatTime(nsToMs(ns), now)} (${formatRelative(nsToMs(ns), now)})` : null);
  const limit = when(r.limit_likely) ?? when(r.limit_earliest);
  const failure = when(r.failure_likely) ?? when(r.failure_earliest);
  return h(
    'div',
    { class: 'risk' },
    h('p', null, r.summary || r.consequence),
    h(
      'ul',
      { class: 'risk-facts' },
      r.consequence && r.summary ? h('li', null, h('strong', null, 'Consequence: '), r.consequence) : null,
      r.first_limit_signal && limit
        ? h('li', null, h('strong', null, `${r.first_limit_signal} `), `leaves its normal range likely ${limit}`, r.limit_earliest && r.limit_likely ? `, earliest ${when(r.limit_earliest)}` : '')
        : null,
      failure ? h('li', null, h('strong', null, 'Failure '), `expected ${failure}`, r.failure_earliest && r.failure_likely ? `, earliest ${when(r.failure_earliest)}` : '') : null,
    ),
  );
}

/** Labelled past cases like this one, linked when they have a page. */
export function similarCases(a: AdviceItem): HTMLElement {
  const cases = a.recommendation.similar_cases ?? [];
  if (!cases.length) return h('p', { class: 'muted' }, 'No similar confirmed cases on this model yet.');
  return h(
    'ul',
    { class: 'similar' },
    cases.map((c) => {
      const route = caseRoute(c.id);
      return h('li', { 'data-case': c.id }, route ? link(route, c.id) : c.id, ` ${c.failure_mode}`, h('span', { class: 'muted' }, ` · ${formatConfidence(c.similarity)} similar`));
    }),
  );
}

function kv(rows: [string, Node | string | null | undefined][]): HTMLElement {
  return h(
    'table',
    { class: 'kv' },
    h(
      'tbody',
      null,
      rows.filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => h('tr', null, h('th', { scope: 'row' }, k), h('td', null, v))),
    ),
  );
}

/** The item's facts: twin, mode, urgency, due-by, confidence, lifecycle. */
function facts(a: AdviceItem, now: number): HTMLElement {
  const r = a.recommendation;
  const s = a.scheduled;
  const d = a.done;
  return kv([
    ['Twin', link(`/twins/${seg(a.twin)}`, a.twin)],
    ['Failure mode', h('span', null, r.name, h('span', { class: 'muted' }, ` (${a.failure_mode})`))],
    ['Urgency', URGENCY_LABEL[r.urgency] ?? r.urgency],
    ['Due by', dueBy(a, now)],
    ['Confidence', confidence(a)],
    ['State', adviceStateBadge(a, now)],
    ['Opened', h('time', { datetime: a.opened_at }, formatTime(nsToMs(a.opened_ts), now))],
    ['Updated', h('time', { datetime: a.updated_at }, formatTime(nsToMs(a.updated_ts), now))],
    ['Scheduled', s ? `for ${formatTime(nsToMs(s.for_ts), now)} by ${s.by}${s.note ? ` · ${s.note}` : ''}` : null],
    ['Done', d ? `${OUTCOME_SHORT[d.outcome] ?? d.outcome} by ${d.by} at ${formatTime(nsToMs(d.at_ts), now)}${d.note ? ` · ${d.note}` : ''}` : null],
    ['Withdrawn', a.withdrawn_at ? formatTime(Date.parse(a.withdrawn_at), now) : null],
  ]);
}

/** Plans the work: when (required) and a note (who, parts...); Enter in a field submits. */
export function scheduleForm(a: AdviceItem, hooks: AdviceHooks, now = Date.now()): HTMLElement {
  const when = `schedule-for-${a.id}`;
  const note = `schedule-note-${a.id}`;
  const whenIn = h('input', { type: 'datetime-local', id: when, required: true, step: '60', value: toLocalInput(defaultScheduleMs(a, now)).slice(0, 16) });
  const noteIn = h('input', { type: 'text', id: note, autocomplete: 'off', maxlength: '4096', placeholder: 'who does it, parts, access…', value: a.scheduled?.note ?? '' });
  const form = h(
    'form',
    { class: 'advice-form schedule-form', 'aria-label': `Schedule advice ${a.id}` },
    h('h3', null, a.state === 'scheduled' ? 'Reschedule' : 'Schedule'),
    h('label', { for: when }, 'Planned for'),
    whenIn,
    h('label', { for: note }, 'Note (optional)'),
    noteIn,
    h('button', { type: 'submit', 'data-action': 'schedule', 'data-focus': `schedule:${a.id}` }, a.state === 'scheduled' ? 'Reschedule' : 'Schedule'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const req = buildSchedule(fromLocalInput(whenIn.value), noteIn.value);
    if (!req.ok) {
      hooks.failed(req.message, req.field === 'for' ? when : note);
      return;
    }
    void whileBusy(form, () => api.scheduleAdvice(a.id, req.body.for, req.body.note), hooks.done, (err, focus) => hooks.failed(errorText(err), focus));
  });
  return form;
}

/** Closes the item with what the maintenance found (a note is required for “other”). */
export function doneForm(a: AdviceItem, hooks: AdviceHooks): HTMLElement {
  const outcome = `done-outcome-${a.id}`;
  const note = `done-note-${a.id}`;
  const select = h(
    'select',
    { id: outcome, required: true },
    h('option', { value: '' }, 'Pick one…'),
    (Object.keys(OUTCOME_LABEL) as Outcome[]).map((o) => h('option', { value: o }, OUTCOME_LABEL[o])),
  );
  const noteIn = h('input', { type: 'text', id: note, autocomplete: 'off', maxlength: '4096', placeholder: 'what was found' });
  const form = h(
    'form',
    { class: 'advice-form done-form', 'aria-label': `Mark advice ${a.id} done` },
    h('h3', null, 'Mark done'),
    h('label', { for: outcome }, 'Outcome'),
    select,
    h('label', { for: note }, 'Note (required for other)'),
    noteIn,
    h('button', { type: 'submit', 'data-action': 'done', 'data-focus': `done:${a.id}` }, 'Mark done'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const req = buildDone(select.value, noteIn.value);
    if (!req.ok) {
      hooks.failed(req.message, req.field === 'outcome' ? outcome : note);
      return;
    }
    void whileBusy(form, () => api.adviceDone(a.id, req.body.outcome, req.body.note), hooks.done, (err, focus) => hooks.failed(errorText(err), focus));
  });
  return form;
}

/**
 * The whole item: summary and actions, the evidence per signal, the risk of waiting,
 * similar past cases, facts and history, and (with `hooks`, while the item is active) the
 * Schedule and Mark done forms.
 */
export function adviceDetail(a: AdviceItem, opts: { unitOf?: UnitOf; hooks?: AdviceHooks } = {}): HTMLElement {
  const now = Date.now();
  const r = a.recommendation;
  const history = h(
    'ol',
    { class: 'alarm-history' },
    a.history.map((t) =>
      h(
        'li',
        null,
        h('time', { datetime: t.at }, formatTime(Date.parse(t.at), now)),
        ' ',
        h('strong', null, t.what),
        t.by ? h('span', { class: 'muted' }, ` by ${t.by}`) : null,
        t.note ? ` — ${t.note}` : null,
      ),
    ),
  );
  return h(
    'div',
    { class: 'advice-detail', 'data-advice': a.id },
    h('p', { class: 'advice-summary' }, r.summary),
    r.actions.length > 1 ? h('div', null, h('h3', null, 'What to do'), h('ol', { class: 'advice-actions-list' }, r.actions.map((x) => h('li', null, x)))) : null,
    h('h3', null, 'Evidence per signal'),
    evidenceTable(a, opts.unitOf, now),
    h(
      'div',
      { class: 'advice-detail-grid' },
      h('div', null, h('h3', null, 'Risk of waiting'), riskPart(a, now), h('h3', null, 'Similar past cases'), similarCases(a)),
      h('div', null, h('h3', null, 'Facts'), facts(a, now)),
    ),
    opts.hooks && isActive(a) ? h('div', { class: 'advice-forms' }, scheduleForm(a, opts.hooks, now), doneForm(a, opts.hooks)) : null,
    h('h3', null, 'History'),
    history,
  );
}

/** A compact line of an item for lists elsewhere (the twin page): link, mode, action, due, confidence, state. */
export function adviceLine(a: AdviceItem, now = Date.now()): HTMLElement {
  return h(
    'p',
    { class: 'advice-line', 'data-advice': a.id },
    link(`/advice/${seg(a.id)}`, a.id),
    ' ',
    h('strong', null, a.recommendation.name),
    ` — ${a.recommendation.action} · due `,
    dueBy(a, now),
    ' · confidence ',
    confidence(a),
    ' · ',
    adviceStateBadge(a, now),
  );
}
