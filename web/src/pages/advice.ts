// Maintenance advice: the list (open and scheduled by default, soonest due first; done and
// withdrawn on request) with each item's evidence, risk and forms in an expandable row, kept
// current by the live stream's advice events; and one item's own page (`#/advice/{id}`).

import { ADVICE_VIEW_LABEL, ADVICE_VIEW_STATES, isOverdue, parseAdviceView, upsertAdvice, type AdviceView } from '../advice';
import { adviceDetail, adviceStateBadge, confidence, dueBy, type AdviceHooks, type UnitOf } from '../advice-view';
import { errorText } from '../alarms';
import { api } from '../api';
import { focusKey, h, link, notice, refocus, replace, restoreTyped, seg, typedValues } from '../dom';
import { LiveStream } from '../live';
import { markReady } from '../perf';
import type { Route } from '../router';
import type { AdviceItem, AssetModel } from '../types';
import type { Page } from './page';

/** Signal units by model, for trends and values in the evidence (empty until the models load). */
function unitsOf(models: AssetModel[]): (model: string) => UnitOf {
  const units = new Map(models.map((m) => [m.id, new Map(m.signals.map((s) => [s.name, s.unit]))]));
  return (model) => (signal) => units.get(model)?.get(signal) ?? '';
}

export function advicePage(route: Route): Page {
  const view: AdviceView = parseAdviceView(route.query.get('view'));
  const states = ADVICE_VIEW_STATES[view];
  const abort = new AbortController();
  let items: AdviceItem[] = [];
  let unitFor: (model: string) => UnitOf = () => () => '';
  const expanded = new Set<string>();
  const errors = new Map<string, string>();

  const summary = h('p', { class: 'summary', 'aria-live': 'polite' });
  const announce = h('p', { class: 'visually-hidden', 'aria-live': 'assertive' });
  const body = h('div', { class: 'advice-body' }, h('p', { class: 'muted' }, 'Loading advice…'));
  const views = h(
    'nav',
    { class: 'group views', 'aria-label': 'Which advice' },
    (Object.keys(ADVICE_VIEW_STATES) as AdviceView[]).map((v) =>
      h('a', { href: `#/advice${v === 'active' ? '' : `?view=${v}`}`, class: 'view', 'aria-current': v === view ? 'page' : null }, ADVICE_VIEW_LABEL[v]),
    ),
  );
  const el = h(
    'section',
    { class: 'advice' },
    h(
      'div',
      { class: 'page-head' },
      h('h1', { tabindex: '-1' }, 'Maintenance advice'),
      summary,
      h('div', { class: 'toolbar' }, views),
    ),
    announce,
    body,
  );

  const hooksFor = (a: AdviceItem): AdviceHooks => ({
    done: (next, focus) => {
      errors.delete(a.id);
      update(next, true, focus);
    },
    failed: (text, focus) => {
      errors.set(a.id, text);
      render(focus ?? focusKey(el));
    },
  });

  /** A newer version of an item (an action's answer or a live event). */
  const update = (a: AdviceItem, mine: boolean, focus?: string): void => {
    const had = items.some((x) => x.id === a.id);
    items = upsertAdvice(items, a, states);
    const has = items.some((x) => x.id === a.id);
    if (had && !has) announce.textContent = `Advice ${a.id} is now ${a.state} and left this list.`;
    else if (!had && has && !mine) announce.textContent = `New advice ${a.id}: ${a.recommendation.name} on ${a.twin}.`;
    else if (mine) announce.textContent = `Advice ${a.id} is ${a.state}.`;
    // What the operator typed in this item's forms goes when the action went through.
    render(focus ?? focusKey(el), mine ? a.id : undefined);
  };

  const render = (key?: string, forget?: string): void => {
    const typed = typedValues(el);
    if (forget) for (const id of [...typed.keys()]) if (id.endsWith(`-${forget}`)) typed.delete(id);
    draw(key);
    restoreTyped(el, typed);
  };

  const draw = (key?: string): void => {
    const now = Date.now();
    const counts = new Map<string, number>();
    for (const a of items) counts.set(a.state, (counts.get(a.state) ?? 0) + 1);
    const overdue = items.filter((a) => isOverdue(a, now)).length;
    const byState = [...counts].map(([st, n]) => `${n} ${st}`).join(', ');
    summary.textContent = `${items.length} item${items.length === 1 ? '' : 's'}${byState ? ` · ${byState}` : ''}${overdue ? ` · ${overdue} overdue` : ''}`;
    if (!items.length) {
      replace(
        body,
        notice('info', view === 'closed' ? 'No done or withdrawn advice.' : view === 'all' ? 'No maintenance advice yet.' : 'No open or scheduled advice.'),
        h(
          'p',
          { class: 'muted' },
          'Advice appears when a twin whose model has failure modes shows one developing: a persistent trend or a predicted limit crossing on the mode’s signals while the detector sees the twin off normal.',
        ),
      );
      if (key) (el.querySelector('h1') as HTMLElement).focus();
      return;
    }
    const tbody = h('tbody');
    for (const a of items) {
      const open = expanded.has(a.id);
      const detailId = `advice-detail-${a.id}`;
      const err = errors.get(a.id);
      tbody.append(
        h(
          'tr',
          { 'data-advice': a.id, 'data-state': a.state, class: `urgency-row urgency-${a.recommendation.urgency}` },
          h(
            'td',
            { class: 'advice-id' },
            h(
              'button',
              {
                type: 'button',
                class: 'toggle',
                'data-focus': `details:${a.id}`,
                'aria-expanded': String(open),
                'aria-controls': detailId,
                'aria-label': `${open ? 'Hide' : 'Show'} evidence of advice ${a.id}`,
                onclick: () => {
                  if (expanded.has(a.id)) expanded.delete(a.id);
                  else expanded.add(a.id);
                  render(`details:${a.id}`);
                },
              },
              open ? '▾' : '▸',
            ),
            link(`/advice/${seg(a.id)}`, a.id),
          ),
          h('td', null, link(`/twins/${seg(a.twin)}`, a.twin)),
          h('td', { class: 'advice-mode' }, a.recommendation.name),
          h('td', { class: 'advice-action' }, a.recommendation.action),
          h('td', { class: 'advice-due' }, dueBy(a, now)),
          h('td', { class: 'num' }, confidence(a)),
          h('td', null, adviceStateBadge(a, now), err ? notice('error', err) : null),
        ),
      );
      if (open) {
        tbody.append(
          h('tr', { class: 'detail-row', id: detailId }, h('td', { colspan: '7' }, adviceDetail(a, { unitOf: unitFor(a.model), hooks: hooksFor(a) }))),
        );
      }
    }
    replace(
      body,
      h(
        'table',
        { class: 'advice-table', 'aria-label': `${ADVICE_VIEW_LABEL[view]} advice, soonest due first` },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ['Advice', 'Twin', 'Failure mode', 'Action', 'Due by', 'Confidence', 'State'].map((c) => h('th', { scope: 'col', class: c === 'Confidence' ? 'num' : null }, c)),
          ),
        ),
        tbody,
      ),
    );
    const adviceId = key?.split(':').slice(1).join(':');
    refocus(el, key, () =>
      adviceId ? el.querySelector<HTMLElement>(`[data-focus="${CSS.escape(`details:${adviceId}`)}"]`) ?? (el.querySelector('h1') as HTMLElement) : null,
    );
  };

  const load = async (): Promise<void> => {
    try {
      const [list, models] = await Promise.all([api.advice(states, { signal: abort.signal }), api.models(abort.signal).catch(() => [] as AssetModel[])]);
      unitFor = unitsOf(models);
      items = [];
      for (const a of list) items = upsertAdvice(items, a, states);
      render();
      markReady('advice');
    } catch (err) {
      if (abort.signal.aborted) return;
      replace(body, notice('error', `Could not load the advice: ${errorText(err)}`));
    }
  };

  // Live first, then the list: a change between the two is applied to whichever comes later
  // by the version check in upsertAdvice.
  const stream = new LiveStream({ type: ['advice'] }, { advice: (ev) => update(ev.advice, false), reconnect: () => void load() });
  void load();
  // Due-by reads relative to now; redraw now and then unless the user is in a form.
  const tick = setInterval(() => {
    if (!el.contains(document.activeElement) || document.activeElement === el.querySelector('h1')) render();
  }, 30_000);

  return {
    el,
    title: 'Advice',
    dispose() {
      abort.abort();
      stream.close();
      clearInterval(tick);
    },
  };
}

/** One item's page: its whole detail and forms, kept current by the live stream. */
export function adviceItemPage(route: Route): Page {
  const id = route.id as string;
  const abort = new AbortController();
  const el = h('section', { class: 'advice-item' }, h('h1', { tabindex: '-1' }, `Advice ${id}`), h('p', { class: 'muted' }, 'Loading…'));
  let current: AdviceItem | null = null;
  let unitOf: UnitOf = () => '';
  let error = '';
  const announce = h('p', { class: 'visually-hidden', 'aria-live': 'assertive' });

  const hooks: AdviceHooks = {
    done: (a, focus) => {
      error = '';
      announce.textContent = `Advice ${a.id} is ${a.state}.`;
      show(a, focus ?? focusKey(el), true);
    },
    failed: (text, focus) => {
      error = text;
      if (current) show(current, focus ?? focusKey(el));
    },
  };

  const show = (a: AdviceItem, key?: string, forget = false): void => {
    current = a;
    const typed = forget ? new Map<string, string>() : typedValues(el);
    replace(
      el,
      h(
        'div',
        { class: 'page-head' },
        h('nav', { class: 'crumbs', 'aria-label': 'Back' }, link('/advice', 'Advice'), ' › ', h('span', { 'aria-current': 'page' }, a.id)),
        h('h1', { tabindex: '-1' }, `${a.recommendation.name} on ${a.twin}`),
        h(
          'p',
          { class: 'subtitle' },
          `${a.id} · `,
          a.recommendation.action,
          ' · due ',
          dueBy(a),
          ' · confidence ',
          confidence(a),
          ' · ',
          adviceStateBadge(a),
          ' · twin ',
          link(`/twins/${seg(a.twin)}`, a.twin),
        ),
        error ? notice('error', error) : null,
      ),
      announce,
      h('div', { class: 'card' }, adviceDetail(a, { unitOf, hooks })),
    );
    restoreTyped(el, typed);
    refocus(el, key, () => el.querySelector('h1'));
  };

  const load = async (): Promise<void> => {
    try {
      const a = await api.adviceItem(id, abort.signal);
      const model = await api.model(a.model, abort.signal).catch(() => null);
      if (model) {
        const units = new Map(model.signals.map((s) => [s.name, s.unit]));
        unitOf = (s) => units.get(s) ?? '';
      }
      show(a);
      markReady('advice-item');
    } catch (err) {
      if (abort.signal.aborted) return;
      replace(el, h('h1', { tabindex: '-1' }, `Advice ${id}`), notice('error', errorText(err)), h('p', null, link('/advice', 'All advice')));
    }
  };
  const stream = new LiveStream(
    { type: ['advice'] },
    {
      advice: (ev) => {
        if (ev.advice.id !== id || !current) return;
        const next = upsertAdvice([current], ev.advice, [ev.advice.state])[0];
        if (next !== current) show(next, focusKey(el));
      },
      reconnect: () => void load(),
    },
  );
  void load();
  return {
    el,
    title: `Advice ${id}`,
    dispose() {
      abort.abort();
      stream.close();
    },
  };
}
