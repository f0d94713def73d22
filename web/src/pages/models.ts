// Models browser: every asset model with its signals (unit, kind, normal range, role),
// properties, allowed relations, and the twins of that model.

import { api } from '../api';
import { h, link, notice, replace, seg } from '../dom';
import { formatRange } from '../format';
import { markReady } from '../perf';
import type { Route } from '../router';
import type { AssetModel, Twin } from '../types';
import type { Page } from './page';

function table(headers: string[], rows: (Node | string)[][]): HTMLElement {
  return h(
    'table',
    null,
    h('thead', null, h('tr', null, headers.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, rows.map((r) => h('tr', null, r.map((c, i) => (i === 0 ? h('th', { scope: 'row' }, c) : h('td', null, c)))))),
  );
}

function modelCard(m: AssetModel, twins: Twin[], headingLevel: 'h1' | 'h2'): HTMLElement {
  const mine = twins.filter((t) => t.model === m.id);
  const heading = h(headingLevel, { id: `model-${m.id}`, tabindex: headingLevel === 'h1' ? '-1' : null }, m.name, h('span', { class: 'muted id' }, `${m.id} · v${m.version}`));
  return h(
    'article',
    { class: 'card model', 'aria-labelledby': `model-${m.id}` },
    headingLevel === 'h2' ? h('h2', null, link(`/models/${seg(m.id)}`, m.name), h('span', { class: 'muted id' }, `${m.id} · v${m.version}`)) : heading,
    m.description ? h('p', null, m.description) : null,
    m.signals.length ? h('h3', null, `Signals (${m.signals.length})`) : h('p', { class: 'muted' }, 'No signals (a grouping model).'),
    m.signals.length
      ? table(
          ['Signal', 'Kind', 'Unit', 'Normal range', 'Role', 'Description'],
          m.signals.map((s) => [s.name, s.kind, s.unit || '', formatRange(s.min, s.max), s.role, s.description ?? '']),
        )
      : null,
    m.properties.length
      ? [
          h('h3', null, 'Properties'),
          table(
            ['Property', 'Kind', 'Unit', 'Required', 'Description'],
            m.properties.map((p) => [p.name, p.kind, p.unit ?? '', p.required ? 'yes' : 'no', p.description ?? '']),
          ),
        ]
      : null,
    m.relations.length
      ? [
          h('h3', null, 'Relations'),
          h(
            'ul',
            null,
            m.relations.map((r) =>
              h('li', null, h('code', null, r.kind), r.target_model ? [' to ', link(`/models/${seg(r.target_model)}`, r.target_model)] : ' to any twin', r.description ? ` — ${r.description}` : ''),
            ),
          ),
        ]
      : null,
    h('h3', null, `Twins (${mine.length})`),
    mine.length
      ? h('ul', { class: 'inline-list' }, mine.map((t) => h('li', null, link(`/twins/${seg(t.id)}`, t.name || t.id))))
      : h('p', { class: 'muted' }, 'None yet.'),
  );
}

export function modelsPage(route: Route): Page {
  const abort = new AbortController();
  const one = route.name === 'model' ? route.id : undefined;
  const el = h('section', { class: 'models' }, h('h1', { tabindex: '-1' }, one ?? 'Models'), h('p', { class: 'muted' }, 'Loading…'));
  const page: Page = { el, title: one ?? 'Models', dispose: () => abort.abort() };
  (async () => {
    try {
      const [models, twins] = await Promise.all([one ? api.model(one, abort.signal).then((m) => [m]) : api.models(abort.signal), api.twins(abort.signal)]);
      // Models with signals (the assets) first, then the grouping ones (sites, lines).
      models.sort((a, b) => Number(b.signals.length > 0) - Number(a.signals.length > 0) || a.name.localeCompare(b.name));
      if (one) {
        replace(el, h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, link('/models', 'Models'), ' › ', models[0].name), modelCard(models[0], twins, 'h1'));
      } else {
        replace(
          el,
          h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, 'Models'), h('p', { class: 'summary' }, `${models.length} models`)),
          models.length
            ? h(
                'section',
                { class: 'card', 'aria-label': 'All models' },
                table(
                  ['Model', 'Id', 'Signals', 'Twins'],
                  models.map((m) => [link(`/models/${seg(m.id)}`, m.name), m.id, String(m.signals.length), String(twins.filter((t) => t.model === m.id).length)]),
                ),
              )
            : null,
          models.length ? models.map((m) => modelCard(m, twins, 'h2')) : notice('info', 'No models yet: create one with POST /api/v1/models.'),
        );
      }
      markReady('models');
    } catch (err) {
      if (abort.signal.aborted) return;
      replace(el, h('h1', { tabindex: '-1' }, one ?? 'Models'), notice('error', err instanceof Error ? err.message : String(err)));
    }
  })();
  return page;
}
