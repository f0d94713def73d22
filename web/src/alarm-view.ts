// The pieces every alarm is drawn with, on the alarms page, an alarm's own page and a twin's
// page: severity badge, the operator's action buttons, and the detail (explanation per
// signal, facts, history, feedback form) and the Troubleshoot part of an alarm's page.

import { allowedActions, errorText, formatDeviation, formatScore, KIND_LABEL, SEVERITY_LABEL, STATE_LABEL } from './alarms';
import { api } from './api';
import { h, link, notice, replace, seg, whileBusy } from './dom';
import { formatNumber, formatTime, nsToMs } from './format';
import type { Alarm, Severity, Verdict } from './types';
import { CAUSE_KIND_LABEL, causeWhere } from './whatif';

/** The severity as a coloured word (colour is never the only cue). */
export function severityBadge(s: Severity): HTMLElement {
  return h('span', { class: `sev sev-${s}` }, h('span', { class: 'dot', 'aria-hidden': 'true' }), SEVERITY_LABEL[s]);
}

/** The state in words, with until when a shelved alarm stays hidden. */
export function stateText(a: Alarm, now = Date.now()): string {
  let s = STATE_LABEL[a.state];
  if (a.state === 'shelved' && a.shelved_until_ts) s += ` until ${formatTime(nsToMs(a.shelved_until_ts), now)}`;
  if (a.state !== 'cleared' && !a.condition) s += ' · condition gone';
  return s;
}

/**
 * How an action's outcome comes back to its page, with the `data-focus` key of the control
 * that had focus when the action started (its button is disabled meanwhile, which takes
 * focus away), so the page can put focus back after redrawing.
 */
export interface ActionHooks {
  /** The server's answer: the alarm after the action. */
  done(a: Alarm, focus?: string): void;
  /** What went wrong, in words (the server's `error` and `field`). */
  failed(text: string, focus?: string): void;
}

type ActionName = 'ack' | 'shelve' | 'unshelve' | 'clear';

const ACTIONS: { name: ActionName; label: string; run: (id: string) => Promise<Alarm> }[] = [
  { name: 'ack', label: 'Acknowledge', run: (id) => api.acknowledge(id) },
  { name: 'shelve', label: 'Shelve 1 h', run: (id) => api.shelve(id, '1h') },
  { name: 'unshelve', label: 'Unshelve', run: (id) => api.unshelve(id) },
  { name: 'clear', label: 'Clear', run: (id) => api.clear(id) },
];

/** Runs one request for an alarm with every button of `group` disabled meanwhile. */
function busy(group: HTMLElement, hooks: ActionHooks, f: () => Promise<Alarm>): Promise<void> {
  return whileBusy(group, f, hooks.done, (err, focus) => hooks.failed(errorText(err), focus));
}

/**
 * Acknowledge, Shelve 1 h, Unshelve, Clear: the ones the alarm's state allows are enabled
 * (Unshelve is shown only for a shelved alarm). `data-focus` keys let a page put focus
 * back on the same button after redrawing.
 */
export function actionButtons(a: Alarm, hooks: ActionHooks): HTMLElement {
  const allowed = allowedActions(a);
  const group = h('div', { class: 'alarm-actions', role: 'group', 'aria-label': `Actions on alarm ${a.id}` });
  for (const act of ACTIONS) {
    if (act.name === 'unshelve' && !allowed.unshelve) continue;
    if (act.name === 'shelve' && allowed.unshelve) continue;
    group.append(
      h(
        'button',
        {
          type: 'button',
          'data-action': act.name,
          'data-focus': `${act.name}:${a.id}`,
          disabled: !allowed[act.name],
          'aria-label': `${act.label} alarm ${a.id}`,
          onclick: () => void busy(group, hooks, () => act.run(a.id)),
        },
        act.label,
      ),
    );
  }
  return group;
}

function kv(rows: [string, Node | string | null][]): HTMLElement {
  return h(
    'table',
    { class: 'kv' },
    h(
      'tbody',
      null,
      rows.filter(([, v]) => v !== null).map(([k, v]) => h('tr', null, h('th', { scope: 'row' }, k), h('td', null, v))),
    ),
  );
}

/** The feedback already given, and a form for a verdict with an optional fault kind. */
function feedbackPart(a: Alarm, hooks: ActionHooks): HTMLElement {
  const fid = `fault-${a.id}`;
  const input = h('input', {
    type: 'text',
    id: fid,
    placeholder: 'e.g. bearing_wear',
    autocomplete: 'off',
    value: a.feedback?.fault_kind ?? '',
  });
  const form = h('form', { class: 'feedback-form', 'aria-label': `Feedback on alarm ${a.id}` });
  const send = (verdict: Verdict) => {
    const kind = input.value.trim();
    void busy(form, hooks, () => api.feedback(a.id, verdict, verdict === 'confirmed' && kind ? kind : undefined));
  };
  form.append(
    h('label', { for: fid }, 'Fault kind (for a confirmed alarm)'),
    input,
    h('button', { type: 'button', 'data-action': 'false_alarm', 'data-focus': `false_alarm:${a.id}`, onclick: () => send('false_alarm') }, 'False alarm'),
    h('button', { type: 'submit', 'data-action': 'confirmed', 'data-focus': `confirmed:${a.id}` }, 'Confirmed'),
  );
  // Enter in the fault kind field confirms.
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    send('confirmed');
  });
  const f = a.feedback;
  return h(
    'div',
    { class: 'alarm-feedback' },
    h('h3', null, 'Feedback'),
    f
      ? h(
          'p',
          { class: 'feedback-given' },
          f.verdict === 'false_alarm' ? 'False alarm' : `Confirmed${f.fault_kind ? `: ${f.fault_kind}` : ''}`,
          h('span', { class: 'muted' }, ` · by ${f.by} at ${formatTime(Date.parse(f.at))}${f.note ? ` · ${f.note}` : ''}`),
        )
      : h('p', { class: 'muted' }, 'None yet. A false alarm makes this twin’s detector less sensitive; a confirmed one is kept as a label.'),
    form,
  );
}

/** Why the alarm was raised (per signal), its facts, its history and its feedback. */
export function alarmDetail(a: Alarm, hooks: ActionHooks): HTMLElement {
  const now = Date.now();
  const explanation = a.signals.length
    ? h(
        'table',
        { class: 'explain' },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            h('th', { scope: 'col' }, 'Signal'),
            h('th', { scope: 'col' }, 'What'),
            h('th', { scope: 'col', class: 'num' }, 'Score'),
            h('th', { scope: 'col' }, 'Observed'),
            h('th', { scope: 'col' }, 'Since'),
          ),
        ),
        h(
          'tbody',
          null,
          a.signals.map((s) =>
            h(
              'tr',
              { 'data-signal': s.signal },
              h('th', { scope: 'row' }, s.signal),
              h('td', null, KIND_LABEL[s.kind] ?? s.kind, h('span', { class: 'muted' }, ` (${s.kind})`)),
              h('td', { class: 'num' }, formatScore(s.score)),
              h('td', null, formatDeviation(s.expected, s.observed)),
              h('td', { title: s.since }, formatTime(nsToMs(s.since_ts), now)),
            ),
          ),
        ),
      )
    : h('p', { class: 'muted' }, 'No signal explanation recorded.');
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
        t.by ? h('span', { class: 'muted' }, ` by ${t.by}`) : h('span', { class: 'muted' }, ' by the detector'),
        t.note ? ` — ${t.note}` : null,
      ),
    ),
  );
  return h(
    'div',
    { class: 'alarm-detail' },
    h(
      'div',
      { class: 'alarm-detail-grid' },
      h(
        'div',
        null,
        h('h3', null, 'Explanation'),
        explanation,
        h('p', { class: 'muted small' }, 'Scores run 0 to 1; 0.5 is the alarm threshold. Expected is what the twin’s learned behaviour predicted.'),
      ),
      h(
        'div',
        null,
        h('h3', null, 'Facts'),
        kv([
          ['Twin', link(`/twins/${seg(a.twin)}`, a.twin)],
          ['State', stateText(a, now)],
          ['Raised', h('time', { datetime: a.raised_at }, formatTime(nsToMs(a.raised_ts), now))],
          ['Last seen', formatTime(nsToMs(a.last_ts), now)],
          ['Cleared', a.cleared_at ? formatTime(Date.parse(a.cleared_at), now) : null],
          ['Peak score', formatScore(a.peak_score)],
          ['Last score', formatScore(a.last_score)],
          ['Occurrences', String(a.occurrences)],
        ]),
      ),
    ),
    h('h3', null, 'History'),
    history,
    feedbackPart(a, hooks),
  );
}

/** A one-line link to an alarm: badge, id, summary (twin page, fleet). */
export function alarmLine(a: Alarm): HTMLElement {
  return h(
    'p',
    { class: 'alarm-line', 'data-alarm': a.id },
    severityBadge(a.severity),
    ' ',
    link(`/alarms/${seg(a.id)}`, a.id),
    ` ${a.summary} `,
    h('span', { class: 'muted' }, `· ${stateText(a)} · raised ${formatTime(nsToMs(a.raised_ts))}`),
  );
}

/** An error notice for an alarm action. */
export function actionError(text: string): HTMLElement {
  return notice('error', text);
}

/**
 * The Troubleshoot part of an alarm's page: on request, the ranked candidate causes of what
 * happened around the alarm (this twin's signals and those of related twins) with their
 * evidence. It asks only when pressed: ranking reads the history of every related twin.
 */
export function troubleshootPart(alarmId: string, signal: AbortSignal): HTMLElement {
  const body = h('div', { class: 'troubleshoot-body', 'aria-live': 'polite' });
  const button = h('button', { type: 'button', id: 'troubleshoot-run' }, 'Find likely causes');
  button.addEventListener('click', async () => {
    button.disabled = true;
    replace(body, h('p', { class: 'muted' }, 'Ranking candidate causes…'));
    try {
      const t = await api.troubleshootAlarm(alarmId, signal);
      button.textContent = 'Look again';
      const now = Date.now();
      replace(
        body,
        h('p', { class: 'muted' }, `From ${formatTime(nsToMs(t.from), now)} to ${formatTime(nsToMs(t.to), now)}, most likely first.`),
        t.causes.length
          ? h(
              'ol',
              { class: 'causes' },
              t.causes.map((c) =>
                h(
                  'li',
                  { 'data-signal': c.signal, 'data-twin': c.twin, 'data-kind': c.kind },
                  h('strong', null, causeWhere(c, t.twin)),
                  ` ${CAUSE_KIND_LABEL[c.kind] ?? c.kind}`,
                  h('span', { class: 'muted' }, ` · score ${formatNumber(c.score)} · from ${formatTime(nsToMs(c.onset), now)}`),
                  h('p', { class: 'evidence' }, c.evidence),
                ),
              ),
            )
          : h('p', { class: 'muted' }, 'Nothing stands out in this window.'),
      );
    } catch (err) {
      if (signal.aborted) return;
      replace(body, notice('error', `No answer yet: ${err instanceof Error ? err.message : String(err)}`));
    } finally {
      button.disabled = false;
    }
  });
  return h(
    'section',
    { class: 'card troubleshoot', id: 'troubleshoot', 'aria-labelledby': 'troubleshoot-h' },
    h('h2', { id: 'troubleshoot-h' }, 'Troubleshoot'),
    h('p', { class: 'muted' }, 'What changed around this alarm, on this twin and the twins related to it.'),
    button,
    body,
  );
}
