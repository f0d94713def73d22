// Fleet overview: the twin hierarchy with each twin's model, age of its latest reading and
// health colour (an open alarm's severity first), kept current by the live stream's readings
// and alarm changes; beside it the twins with the least remaining useful life.

import { twinAlarmAfter } from '../alarms';
import { api, mapLimit } from '../api';
import { h, healthBadge, link, notice, replace, seg } from '../dom';
import { formatAge } from '../format';
import { requestFrame, cancelFrame } from '../frames';
import { countHealths, HEALTH_LABEL, lastUpdate, twinHealth, worst, type HealthVerdict } from '../health';
import { applyEvent, fromState, type LatestMap } from '../latest';
import { LiveStream } from '../live';
import { markReady } from '../perf';
import { loadWorstRul } from '../rul-view';
import { buildTree, descendants, matching, visibleRows, type TreeNode } from '../tree';
import type { Alarm, AssetModel, Twin } from '../types';
import type { Page } from './page';

/** What the fleet table knows of one twin. */
export interface FleetEntry {
  twin: Twin;
  model?: AssetModel;
  /** Latest value per signal; null until the twin's state arrived. */
  latest: LatestMap | null;
  /** The twin's latest alarm from its state or the live stream (cleared ones do not colour). */
  alarm: Alarm | null;
  /** An alarm event arrived: it is newer than what the twin's state said. */
  alarmLive: boolean;
  verdict: HealthVerdict;
}

/** The worst-remaining-life panel is read again this often (estimates move slowly). */
const RUL_EVERY_MS = 5 * 60_000;

/**
 * Extra columns of the fleet table (the worst remaining useful life has its own panel): a column loads what it needs in `load` (once per page, refreshed
 * from the live stream if it has one) and draws one cell per twin. No column shows data that
 * the server does not have.
 */
export interface FleetColumn {
  header: string;
  load?(entries: Map<string, FleetEntry>, signal: AbortSignal): Promise<void>;
  cell(entry: FleetEntry): Node | string;
}

export const extraColumns: FleetColumn[] = [];

interface RowRefs {
  age: HTMLElement;
  health: HTMLElement;
  below: HTMLElement | null;
  node: TreeNode<Twin>;
}

export function fleetPage(): Page {
  const abort = new AbortController();
  const body = h('div', { class: 'fleet-body' }, h('p', { class: 'muted' }, 'Loading twins…'));
  const summary = h('p', { class: 'summary', 'aria-live': 'polite' });
  const filter = h('input', {
    type: 'search',
    id: 'fleet-filter',
    placeholder: 'name, id or model',
    'aria-label': 'Filter twins by name, id or model',
  });
  const rulBody = h('div', { class: 'rul-body', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));
  const rulPanel = h(
    'section',
    { class: 'card worst-rul-panel', id: 'worst-rul', 'aria-labelledby': 'worst-rul-h' },
    h('h2', { id: 'worst-rul-h' }, 'Worst remaining life'),
    rulBody,
  );
  const el = h(
    'section',
    { class: 'fleet' },
    h(
      'div',
      { class: 'page-head' },
      h('h1', { tabindex: '-1' }, 'Fleet'),
      summary,
      h('div', { class: 'toolbar' }, h('label', { for: 'fleet-filter' }, 'Filter'), filter),
    ),
    h('div', { class: 'fleet-layout' }, body, rulPanel),
  );

  const entries = new Map<string, FleetEntry>();
  const collapsed = new Set<string>();
  let forest: TreeNode<Twin>[] = [];
  let rows = new Map<string, RowRefs>();
  let stream: LiveStream | null = null;
  let tick: ReturnType<typeof setInterval> | null = null;
  const names = () => new Map([...entries.values()].map((e) => [e.twin.id, e.twin.name]));
  const loadRul = () => loadWorstRul(rulBody, names, abort.signal).then(() => markReady('fleet-rul'));
  void loadRul();
  const rulTick = setInterval(() => void loadRul(), RUL_EVERY_MS);

  const verdictOf = (e: FleetEntry, now: number): HealthVerdict =>
    e.latest === null ? { health: 'none', reasons: [] } : twinHealth(e.model, e.latest, now, e.alarm);

  /** Updates ages, health and the summary in place (keeps focus and scroll). */
  const refresh = (): void => {
    const now = Date.now();
    for (const e of entries.values()) e.verdict = verdictOf(e, now);
    for (const [id, r] of rows) {
      const e = entries.get(id);
      if (!e) continue;
      const last = e.latest ? lastUpdate(e.latest) : null;
      const hasSignals = (e.model?.signals.length ?? 0) > 0;
      r.age.textContent = !hasSignals ? '—' : e.latest === null ? '…' : last === null ? 'never' : formatAge(now - last);
      const v = e.verdict;
      const label = e.latest === null && hasSignals ? 'loading…' : HEALTH_LABEL[v.health];
      // Red and alarm colours say why (the first cause; all of them on hover).
      const why = v.health !== 'green' && v.health !== 'grey' && v.health !== 'none' ? v.reasons[0] : '';
      const key = `${v.health}|${label}|${why}`;
      if (r.health.dataset.key !== key) {
        r.health.dataset.key = key;
        replace(r.health, healthBadge(v.health, label), why ? h('span', { class: 'why' }, why) : null);
      }
      if (v.reasons.length) r.health.setAttribute('title', v.reasons.join('\n'));
      else r.health.removeAttribute('title');
      if (r.below) {
        const hs = descendants(r.node).map((d) => entries.get(d.item.id)?.verdict.health ?? 'none');
        const w = worst(hs);
        const text = countHealths(hs) || '—';
        if (r.below.textContent !== text) replace(r.below, healthBadge(w, text));
      }
    }
    const all = [...entries.values()].map((e) => e.verdict.health);
    const counts = countHealths(all);
    summary.textContent = `${entries.size} twins${counts ? ` · ${counts}` : ''}`;
  };

  const toggle = (id: string): void => {
    if (collapsed.has(id)) collapsed.delete(id);
    else collapsed.add(id);
    render(`toggle:${id}`);
  };

  /** Rebuilds the table (after loading, filtering, expanding); focus returns to the same control. */
  const render = (focusKey?: string): void => {
    const q = filter.value.trim().toLowerCase();
    const keep = q
      ? matching(forest, (t: Twin) =>
          [t.id, t.name, t.model, entries.get(t.id)?.model?.name ?? ''].some((s) => s.toLowerCase().includes(q)),
        )
      : null;
    const shown = keep ? forest.filter((n) => keep.has(n.item.id)) : forest;
    const expanded = (id: string) => (keep ? true : !collapsed.has(id));
    const visible = visibleRows(shown, expanded).filter((r) => !keep || keep.has(r.node.item.id));
    rows = new Map();
    const tbody = h('tbody');
    for (const { node, pos, size } of visible) {
      const t = node.item;
      const e = entries.get(t.id) as FleetEntry;
      const hasKids = node.children.length > 0;
      const open = expanded(t.id);
      const toggleBtn = hasKids
        ? h(
            'button',
            {
              type: 'button',
              class: 'toggle',
              'data-focus': `toggle:${t.id}`,
              'aria-label': `${open ? 'Collapse' : 'Expand'} ${t.name || t.id}`,
              'aria-expanded': String(open),
              onclick: () => toggle(t.id),
            },
            open ? '▾' : '▸',
          )
        : h('span', { class: 'toggle-space', 'aria-hidden': 'true' });
      const age = h('td', { class: 'age num' });
      const health = h('td', { class: 'health-cell' });
      const below = hasKids ? h('span', { class: 'below' }) : null;
      rows.set(t.id, { age, health, below, node });
      const nameCell = h(
        'td',
        { class: 'name' },
        toggleBtn,
        h('a', { href: `#/twins/${seg(t.id)}`, 'data-focus': `twin:${t.id}` }, t.name || t.id),
        t.name && t.name !== t.id ? h('span', { class: 'muted id' }, t.id) : null,
      );
      // Through the CSSOM: the page's CSP allows no inline style attributes.
      nameCell.style.setProperty('--depth', String(node.depth));
      tbody.append(
        h(
          'tr',
          {
            'data-twin': t.id,
            'aria-level': String(node.depth + 1),
            'aria-posinset': String(pos),
            'aria-setsize': String(size),
            'aria-expanded': hasKids ? String(open) : null,
          },
          nameCell,
          h('td', null, e.model ? link(`/models/${seg(e.model.id)}`, e.model.name) : h('span', { class: 'muted' }, t.model)),
          age,
          health,
          h('td', null, below),
          extraColumns.map((c) => h('td', null, c.cell(e))),
        ),
      );
    }
    const table = h(
      'table',
      { class: 'fleet-table', role: 'treegrid', 'aria-label': 'Twins by hierarchy' },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          h('th', { scope: 'col' }, 'Twin'),
          h('th', { scope: 'col' }, 'Model'),
          h('th', { scope: 'col', class: 'num' }, 'Last update'),
          h('th', { scope: 'col' }, 'Health'),
          h('th', { scope: 'col' }, 'Below'),
          extraColumns.map((c) => h('th', { scope: 'col' }, c.header)),
        ),
      ),
      tbody,
    );
    replace(
      body,
      visible.length ? table : notice('info', entries.size ? 'No twin matches the filter.' : 'No twins yet: create one with POST /api/v1/twins.'),
    );
    refresh();
    if (focusKey) (body.querySelector(`[data-focus="${CSS.escape(focusKey)}"]`) as HTMLElement | null)?.focus();
  };

  const frameRefresh = () => refresh();

  filter.addEventListener('input', () => render());

  (async () => {
    try {
      const [twins, models] = await Promise.all([api.twins(abort.signal), api.models(abort.signal)]);
      const byModel = new Map(models.map((m) => [m.id, m]));
      for (const t of twins) {
        entries.set(t.id, {
          twin: t,
          model: byModel.get(t.model),
          latest: null,
          alarm: null,
          alarmLive: false,
          verdict: { health: 'none', reasons: [] },
        });
      }
      forest = buildTree(twins);
      render();
      markReady('fleet');
      // Live first, then state: an event between the two is newer than the state and kept.
      stream = new LiveStream(
        { type: ['reading', 'alarm'] },
        {
          reading: (ev) => {
            const e = entries.get(ev.twin);
            if (!e) return;
            if (e.latest === null) e.latest = {};
            if (applyEvent(e.latest, ev).length) requestFrame(frameRefresh);
          },
          alarm: (ev) => {
            const e = entries.get(ev.twin);
            if (!e) return;
            e.alarm = twinAlarmAfter(e.alarm, ev.alarm);
            e.alarmLive = true;
            requestFrame(frameRefresh);
          },
        },
      );
      await Promise.all([
        mapLimit(twins, 6, async (t) => {
          const e = entries.get(t.id) as FleetEntry;
          try {
            const state = await api.twin(t.id, abort.signal);
            const fresh = fromState(state);
            for (const [name, l] of Object.entries(e.latest ?? {})) {
              if (l.ms !== null && (fresh[name]?.ms ?? -Infinity) < l.ms) fresh[name] = l;
            }
            e.latest = fresh;
            if (!e.alarmLive) e.alarm = state.alarm ?? null;
          } catch (err) {
            if (abort.signal.aborted) return;
            e.latest = {};
            e.verdict = { health: 'grey', reasons: [String(err)] };
          }
          requestFrame(frameRefresh);
        }),
        ...extraColumns.map((c) => c.load?.(entries, abort.signal)),
      ]);
      if (abort.signal.aborted) return;
      refresh();
      markReady('fleet-state');
      tick = setInterval(refresh, 1000);
    } catch (err) {
      if (abort.signal.aborted) return;
      replace(body, notice('error', `Could not load the fleet: ${err instanceof Error ? err.message : String(err)}`));
    }
  })();

  return {
    el,
    title: 'Fleet',
    dispose() {
      abort.abort();
      stream?.close();
      cancelFrame(frameRefresh);
      clearInterval(rulTick);
      if (tick) clearInterval(tick);
    },
  };
}

