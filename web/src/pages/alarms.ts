// Alarms: the list (open ones by default, or the cleared ones, newest first) with each
// alarm's actions and an expandable detail, kept current by the live stream's alarm events;
// and one alarm's own page (`#/alarms/{id}`) with its Troubleshoot part.

import {
  actionError,
  actionButtons,
  alarmDetail,
  severityBadge,
  stateText,
  troubleshootPart,
  type ActionHooks,
} from '../alarm-view';
import { errorText, parseView, upsertAlarm, VIEW_LABEL, VIEW_STATES, type AlarmView } from '../alarms';
import { api } from '../api';
import { focusKey, h, link, notice, refocus, replace, restoreTyped, seg, typedValues } from '../dom';
import { formatAge, formatTime, nsToMs } from '../format';
import { LiveStream } from '../live';
import { markReady } from '../perf';
import type { Route } from '../router';
import type { Alarm } from '../types';
import type { Page } from './page';

export function alarmsPage(route: Route): Page {
  const view: AlarmView = parseView(route.query.get('view'));
  const states = VIEW_STATES[view];
  const abort = new AbortController();
  let alarms: Alarm[] = [];
  const expanded = new Set<string>();
  const errors = new Map<string, string>();
  let stream: LiveStream | null = null;

  const summary = h('p', { class: 'summary', 'aria-live': 'polite' });
  const announce = h('p', { class: 'visually-hidden', 'aria-live': 'assertive' });
  const body = h('div', { class: 'alarms-body' }, h('p', { class: 'muted' }, 'Loading alarms…'));
  const views = h(
    'nav',
    { class: 'group views', 'aria-label': 'Which alarms' },
    (Object.keys(VIEW_STATES) as AlarmView[]).map((v) =>
      h('a', { href: `#/alarms${v === 'open' ? '' : `?view=${v}`}`, class: 'view', 'aria-current': v === view ? 'page' : null }, VIEW_LABEL[v]),
    ),
  );
  const el = h(
    'section',
    { class: 'alarms' },
    h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, 'Alarms'), summary, h('div', { class: 'toolbar' }, views)),
    announce,
    body,
  );

  const hooksFor = (a: Alarm): ActionHooks => ({
    done: (next, focus) => {
      errors.delete(a.id);
      update(next, true, focus);
    },
    failed: (text, focus) => {
      errors.set(a.id, text);
      render(focus ?? focusKey(el));
    },
  });

  /** A newer version of an alarm (an action's answer or a live event). */
  const update = (a: Alarm, mine: boolean, focus?: string): void => {
    const had = alarms.some((x) => x.id === a.id);
    alarms = upsertAlarm(alarms, a, states);
    const has = alarms.some((x) => x.id === a.id);
    if (had && !has) announce.textContent = `Alarm ${a.id} is now ${a.state} and left this list.`;
    else if (mine) announce.textContent = `Alarm ${a.id} is ${a.state}.`;
    render(focus ?? focusKey(el));
  };

  const render = (key?: string): void => {
    const typed = typedValues(el);
    draw(key);
    restoreTyped(el, typed);
  };

  const draw = (key?: string): void => {
    const now = Date.now();
    const counts = new Map<string, number>();
    for (const a of alarms) counts.set(a.state, (counts.get(a.state) ?? 0) + 1);
    const noun = `${view === 'all' ? '' : `${VIEW_LABEL[view].toLowerCase()} `}alarm${alarms.length === 1 ? '' : 's'}`;
    const byState = view === 'cleared' ? '' : [...counts].map(([st, n]) => `${n} ${st}`).join(', ');
    summary.textContent = byState ? `${alarms.length} ${noun} · ${byState}` : `${alarms.length} ${noun}`;
    if (!alarms.length) {
      replace(body, notice('info', view === 'cleared' ? 'No cleared alarms.' : 'No open alarms.'));
      if (key) (el.querySelector('h1') as HTMLElement).focus();
      return;
    }
    const tbody = h('tbody');
    for (const a of alarms) {
      const open = expanded.has(a.id);
      const detailId = `alarm-detail-${a.id}`;
      const err = errors.get(a.id);
      tbody.append(
        h(
          'tr',
          { 'data-alarm': a.id, 'data-state': a.state, class: `sev-row sev-row-${a.severity}` },
          h('td', null, severityBadge(a.severity)),
          h(
            'td',
            { class: 'alarm-id' },
            h(
              'button',
              {
                type: 'button',
                class: 'toggle',
                'data-focus': `details:${a.id}`,
                'aria-expanded': String(open),
                'aria-controls': detailId,
                'aria-label': `${open ? 'Hide' : 'Show'} details of alarm ${a.id}`,
                onclick: () => {
                  if (expanded.has(a.id)) expanded.delete(a.id);
                  else expanded.add(a.id);
                  render(`details:${a.id}`);
                },
              },
              open ? '▾' : '▸',
            ),
            link(`/alarms/${seg(a.id)}`, a.id),
          ),
          h('td', null, link(`/twins/${seg(a.twin)}`, a.twin)),
          h('td', { class: 'alarm-summary' }, a.summary),
          h('td', { class: 'num', title: a.raised_at }, formatTime(nsToMs(a.raised_ts), now), h('span', { class: 'muted age' }, ` ${formatAge(now - nsToMs(a.raised_ts))} ago`)),
          h('td', { class: 'alarm-state' }, stateText(a, now)),
          h('td', null, actionButtons(a, hooksFor(a)), err ? actionError(err) : null),
        ),
      );
      if (open) {
        tbody.append(h('tr', { class: 'detail-row', id: detailId }, h('td', { colspan: '7' }, alarmDetail(a, hooksFor(a)))));
      }
    }
    replace(
      body,
      h(
        'table',
        { class: 'alarms-table', 'aria-label': `${VIEW_LABEL[view]} alarms, newest first` },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ['Severity', 'Alarm', 'Twin', 'Summary', 'Raised', 'State', 'Actions'].map((c) => h('th', { scope: 'col', class: c === 'Raised' ? 'num' : null }, c)),
          ),
        ),
        tbody,
      ),
    );
    const alarmId = key?.split(':').slice(1).join(':');
    refocus(el, key, () =>
      alarmId ? el.querySelector<HTMLElement>(`[data-focus="${CSS.escape(`details:${alarmId}`)}"]`) ?? (el.querySelector('h1') as HTMLElement) : null,
    );
  };

  const load = async (): Promise<void> => {
    try {
      alarms = (await api.alarms(states, abort.signal)).sort((a, b) => b.raised_ts - a.raised_ts);
      render();
      markReady('alarms');
    } catch (err) {
      if (abort.signal.aborted) return;
      replace(body, notice('error', `Could not load the alarms: ${errorText(err)}`));
    }
  };

  // Live first, then the list: a change between the two is applied to whichever comes later
  // by the version check in upsertAlarm.
  stream = new LiveStream({ type: ['alarm'] }, { alarm: (ev) => update(ev.alarm, false), reconnect: () => void load() });
  void load();
  // Ages and "shelved until" read right without events.
  const tick = setInterval(() => {
    if (!el.contains(document.activeElement) || document.activeElement === el.querySelector('h1')) render();
  }, 30_000);

  return {
    el,
    title: 'Alarms',
    dispose() {
      abort.abort();
      stream?.close();
      clearInterval(tick);
    },
  };
}

/** One alarm's page: its actions and its whole detail, kept current by the live stream. */
export function alarmPage(route: Route): Page {
  const id = route.id as string;
  const abort = new AbortController();
  const el = h('section', { class: 'alarm' }, h('h1', { tabindex: '-1' }, `Alarm ${id}`), h('p', { class: 'muted' }, 'Loading…'));
  // Kept across redraws of the alarm, so its answer stays while the alarm changes.
  const troubleshoot = troubleshootPart(id, abort.signal);
  let current: Alarm | null = null;
  let error = '';
  const announce = h('p', { class: 'visually-hidden', 'aria-live': 'assertive' });

  const hooks: ActionHooks = {
    done: (a, focus) => {
      error = '';
      announce.textContent = `Alarm ${a.id} is ${a.state}.`;
      show(a, focus ?? focusKey(el));
    },
    failed: (text, focus) => {
      error = text;
      if (current) show(current, focus ?? focusKey(el));
    },
  };

  const show = (a: Alarm, key?: string): void => {
    current = a;
    const typed = typedValues(el);
    replace(
      el,
      h(
        'div',
        { class: 'page-head' },
        h('nav', { class: 'crumbs', 'aria-label': 'Back' }, link('/alarms', 'Alarms'), ' › ', h('span', { 'aria-current': 'page' }, a.id)),
        h('h1', { tabindex: '-1' }, `Alarm ${a.id} `, severityBadge(a.severity)),
        h('p', { class: 'subtitle' }, a.summary, ' · twin ', link(`/twins/${seg(a.twin)}`, a.twin), ' · ', h('span', { class: 'alarm-state', 'data-state': a.state }, stateText(a))),
        actionButtons(a, hooks),
        error ? actionError(error) : null,
      ),
      announce,
      h('div', { class: 'card', 'data-alarm': a.id }, alarmDetail(a, hooks)),
      troubleshoot,
    );
    restoreTyped(el, typed);
    refocus(el, key, () => el.querySelector('h1'));
  };

  const load = async (): Promise<void> => {
    try {
      show(await api.alarm(id, abort.signal));
      markReady('alarm');
    } catch (err) {
      if (abort.signal.aborted) return;
      replace(el, h('h1', { tabindex: '-1' }, `Alarm ${id}`), notice('error', errorText(err)), h('p', null, link('/alarms', 'All alarms')));
    }
  };
  const stream = new LiveStream(
    { type: ['alarm'] },
    {
      alarm: (ev) => {
        if (ev.alarm.id !== id || !current) return;
        const next = upsertAlarm([current], ev.alarm, [ev.alarm.state])[0];
        if (next !== current) show(next, focusKey(el));
      },
      reconnect: () => void load(),
    },
  );
  void load();
  return {
    el,
    title: `Alarm ${id}`,
    dispose() {
      abort.abort();
      stream.close();
    },
  };
}
