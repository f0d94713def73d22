// Twin detail: its open alarm and what its anomaly detector says now, its remaining useful
// life, latest values against the normal ranges, its open and scheduled maintenance advice
// with the evidence, a live chart per numeric signal from the WebSocket, the history of one
// signal with zoom and the anomaly score below it, properties and relations, and a link to
// its what-if page.

import { ADVICE_VIEW_STATES, upsertAdvice } from '../advice';
import { adviceLine, evidenceTable } from '../advice-view';
import { api, mapLimit } from '../api';
import { alarmLine } from '../alarm-view';
import { formatDeviation, formatScore, KIND_LABEL, twinAlarmAfter } from '../alarms';
import { HistoryChart, LiveCharts, SCORE_THRESHOLD, ScoreChart, type LiveChartSpec } from '../charts';
import { h, healthBadge, link, notice, replace, seg } from '../dom';
import { alignBuckets, chooseStep } from '../downsample';
import { formatAge, formatRange, formatSpan, formatStep, formatTime, formatValue, fromLocalInput, nsToMs, toLocalInput } from '../format';
import { cancelFrame, requestFrame } from '../frames';
import { alarmReason, HEALTH_LABEL, rangeCheck, twinHealth } from '../health';
import { applyEvent, fromState, type LatestMap } from '../latest';
import { LiveStream } from '../live';
import { markReady } from '../perf';
import { loadTwinRul } from '../rul-view';
import type { Route } from '../router';
import { ancestors } from '../tree';
import { isNumericKind, type AdviceItem, type Alarm, type AssetModel, type SignalSpec, type Twin, type TwinHealth, type TwinState, type Value } from '../types';
import type { Page } from './page';

/** The derived history series of the twin's anomaly score (no model signal can take the name). */
const SCORE_SERIES = '.anomaly_score';

/** How much the live charts keep. */
const LIVE_WINDOW_MS = 10 * 60_000;

/** The detector's health and the open alarm are read again this often (alarm changes also arrive live). */
const HEALTH_EVERY_MS = 5000;

/** The latest-values table and chart captions change at most this often. */
const VALUES_EVERY_MS = 250;

const PRESETS: [string, number][] = [
  ['15 min', 15 * 60_000],
  ['1 h', 3_600_000],
  ['6 h', 6 * 3_600_000],
  ['24 h', 24 * 3_600_000],
  ['7 d', 7 * 24 * 3_600_000],
];

interface ValueRow {
  value: HTMLElement;
  time: HTMLElement;
  age: HTMLElement;
  row: HTMLElement;
}

function section(title: string, id: string, ...children: (Node | null)[]): HTMLElement {
  return h(
    'section',
    { class: 'card', id, 'aria-labelledby': `${id}-h` },
    h('h2', { id: `${id}-h` }, title),
    ...children,
  );
}

export function twinPage(route: Route): Page {
  const id = route.id as string;
  const abort = new AbortController();
  const el = h('section', { class: 'twin' }, h('h1', { tabindex: '-1' }, id), h('p', { class: 'muted' }, 'Loading…'));
  const disposers: (() => void)[] = [];
  const page: Page = {
    el,
    title: id,
    dispose() {
      abort.abort();
      for (const d of disposers.splice(0)) d();
    },
  };

  (async () => {
    let state: TwinState;
    let model: AssetModel;
    let twins: Twin[];
    try {
      state = await api.twin(id, abort.signal);
      [model, twins] = await Promise.all([api.model(state.model, abort.signal), api.twins(abort.signal)]);
    } catch (err) {
      if (abort.signal.aborted) return;
      replace(el, h('h1', { tabindex: '-1' }, id), notice('error', err instanceof Error ? err.message : String(err)));
      return;
    }
    if (abort.signal.aborted) return;
    build(state, model, twins);
  })();

  function build(state: TwinState, model: AssetModel, twins: Twin[]): void {
    const latest: LatestMap = fromState(state);
    const specs = new Map(model.signals.map((s) => [s.name, s]));
    const byId = new Map(twins.map((t) => [t.id, t]));
    const title = state.name || state.id;
    page.title = title;
    document.title = `${title} · doppel`;

    // ---- header ----
    const healthEl = h('span', { class: 'twin-health' });
    let alarm: Alarm | null = state.alarm ?? null;
    const alarmEl = h('div', { class: 'twin-alarm', 'aria-live': 'polite' });
    const detector = h('div', { class: 'detector-body' });
    const drawAlarm = (): void => {
      replace(alarmEl, alarm && alarm.state !== 'cleared' ? alarmLine(alarm) : null);
    };
    const drawDetector = (hl: TwinHealth | undefined): void => replace(detector, detectorView(hl));
    const crumbs = h(
      'nav',
      { class: 'crumbs', 'aria-label': 'Hierarchy' },
      link('/', 'Fleet'),
      ancestors(twins, state.id).map((a) => [' › ', link(`/twins/${seg(a.id)}`, a.name || a.id)]),
      ' › ',
      h('span', { 'aria-current': 'page' }, title),
    );
    // In-page jumps are buttons: the URL fragment holds the route.
    const jump = (target: string, label: string) =>
      h(
        'button',
        {
          type: 'button',
          class: 'link',
          onclick: () => {
            const heading = el.querySelector<HTMLElement>(`#${target} h2`);
            heading?.setAttribute('tabindex', '-1');
            heading?.scrollIntoView({ block: 'start' });
            heading?.focus({ preventScroll: true });
          },
        },
        label,
      );
    const header = h(
      'div',
      { class: 'page-head' },
      crumbs,
      h('h1', { tabindex: '-1' }, title, state.name && state.name !== state.id ? h('span', { class: 'muted id' }, state.id) : null),
      h(
        'p',
        { class: 'subtitle' },
        'Model ',
        link(`/models/${seg(model.id)}`, `${model.name} (v${model.version})`),
        ' · ',
        healthEl,
        ' · ',
        h('a', { href: `#/twins/${seg(state.id)}/whatif`, class: 'whatif-link' }, 'What-if'),
      ),
      alarmEl,
      h(
        'nav',
        { class: 'jumps', 'aria-label': 'Sections' },
        jump('values', 'Latest values'),
        jump('detector', 'Detector'),
        jump('advice', 'Advice'),
        jump('live', 'Live charts'),
        jump('history', 'History'),
        jump('relations', 'Relations'),
      ),
    );

    // ---- latest values ----
    const valueRows = new Map<string, ValueRow>();
    const tbody = h('tbody');
    for (const spec of model.signals) {
      const value = h('td', { class: 'value num' });
      const time = h('td', { class: 'num' });
      const age = h('td', { class: 'num' });
      const row = h(
        'tr',
        { 'data-signal': spec.name },
        h('th', { scope: 'row' }, spec.name, spec.description ? h('span', { class: 'muted desc' }, spec.description) : null),
        value,
        h('td', null, spec.unit || ''),
        h('td', { class: 'num' }, formatRange(spec.min, spec.max)),
        time,
        age,
      );
      valueRows.set(spec.name, { value, time, age, row });
      tbody.append(row);
    }
    const valuesTable = model.signals.length
      ? h(
          'table',
          { class: 'values' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              ['Signal', 'Value', 'Unit', 'Normal range', 'Time', 'Age'].map((c, i) =>
                h('th', { scope: 'col', class: i === 1 || i >= 3 ? 'num' : null }, c),
              ),
            ),
          ),
          tbody,
        )
      : notice('info', 'This model has no signals.');

    // Only text on screen is updated: with a hundred signals, changing offscreen rows and
    // captions would still cost style and layout work in every frame. What changed offscreen
    // stays marked and is written when it scrolls into view.
    const dirtyRows = new Set<string>(model.signals.map((s) => s.name));
    const dirtyCards = new Set<string>();
    const cardValues = new Map<string, HTMLElement>();
    const onScreen = new Set<Element>();
    const cardFigures = new Map<string, Element>();
    const seen = new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (e.isIntersecting) onScreen.add(e.target);
        else onScreen.delete(e.target);
      }
      scheduleValues();
    });
    disposers.push(() => seen.disconnect());
    for (const r of valueRows.values()) seen.observe(r.row);
    // Four updates a second read as live and leave the frames to the charts.
    let valuesAt = -Infinity;
    let valuesTimer: ReturnType<typeof setTimeout> | null = null;
    const scheduleValues = (): void => {
      if (valuesTimer) return;
      const wait = Math.max(0, valuesAt + VALUES_EVERY_MS - performance.now());
      valuesTimer = setTimeout(() => {
        valuesTimer = null;
        requestFrame(drawValues);
      }, wait);
    };
    disposers.push(() => {
      if (valuesTimer) clearTimeout(valuesTimer);
    });
    let healthKey = '';
    const drawValues = (): void => {
      valuesAt = performance.now();
      const now = Date.now();
      for (const name of dirtyRows) {
        const r = valueRows.get(name);
        if (!r) {
          dirtyRows.delete(name);
          continue;
        }
        if (!onScreen.has(r.row)) continue;
        dirtyRows.delete(name);
        const l = latest[name];
        const spec = specs.get(name);
        r.value.textContent = formatValue(l?.value, spec?.kind);
        r.time.textContent = l?.ms != null ? formatTime(l.ms, now) : '—';
        const where = rangeCheck(spec, l?.value ?? null);
        r.row.classList.toggle('out', where !== 'ok');
        r.value.title = where === 'ok' ? '' : `${where} the normal range`;
      }
      for (const name of dirtyCards) {
        const card = cardValues.get(name);
        const fig = cardFigures.get(name);
        if (!card || !fig) {
          dirtyCards.delete(name);
          continue;
        }
        if (!onScreen.has(fig)) continue;
        dirtyCards.delete(name);
        card.textContent = formatValue(latest[name]?.value, specs.get(name)?.kind);
      }
      for (const [name, r] of valueRows) {
        if (!onScreen.has(r.row)) continue;
        const l = latest[name];
        const age = l?.ms != null ? formatAge(now - l.ms) : '—';
        if (r.age.textContent !== age) r.age.textContent = age;
      }
      const v = twinHealth(model, latest, now, alarm);
      // The open alarm has its own line below the subtitle.
      const reasons = alarm ? v.reasons.filter((r) => r !== alarmReason(alarm as Alarm)) : v.reasons;
      const key = `${v.health}|${reasons.join('; ')}`;
      if (key !== healthKey) {
        healthKey = key;
        replace(healthEl, healthBadge(v.health, HEALTH_LABEL[v.health]), reasons.length ? h('span', { class: 'muted' }, ` ${reasons.join('; ')}`) : null);
      }
    };

    // ---- live charts ----
    const numeric = model.signals.filter((s) => isNumericKind(s.kind));
    const liveGrid = h('div', { class: 'live-grid' });
    const liveNote = h('p', { class: 'muted' });
    const live = h(
      'section',
      { class: 'card', id: 'live', 'aria-labelledby': 'live-h' },
      h('h2', { id: 'live-h' }, 'Live ', h('span', { class: 'muted' }, `last ${formatSpan(LIVE_WINDOW_MS)}`)),
      numeric.length ? liveGrid : notice('info', 'No numeric signals to chart.'),
      liveNote,
    );

    // ---- history ----
    // History opens on what most needs a look: a signal out of its range, else the first
    // output (inputs such as setpoints are often flat).
    const charted = model.signals.filter((s) => s.kind !== 'string');
    const first =
      charted.find((s) => rangeCheck(s, latest[s.name]?.value ?? null) !== 'ok') ??
      charted.find((s) => s.role === 'output' && isNumericKind(s.kind)) ??
      charted[0];
    const history = historySection(state.id, charted, first, abort.signal);
    disposers.push(history.dispose);

    // ---- maintenance advice and remaining useful life ----
    const unitOf = (sig: string) => specs.get(sig)?.unit ?? '';
    const adviceBody = h('div', { class: 'advice-body', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading advice…'));
    const adviceCard = section('Maintenance advice', 'advice', adviceBody, h('p', { class: 'small' }, link('/advice', 'All maintenance advice')));
    // null until the list arrives; live events before it are kept and merged.
    let advice: AdviceItem[] | null = null;
    let earlyAdvice: AdviceItem[] = [];
    const drawAdvice = (): void => {
      if (advice === null) return;
      if (!advice.length) {
        replace(adviceBody, h('p', { class: 'muted', 'data-advice': 'none' }, 'No open or scheduled advice for this twin.'));
        return;
      }
      const now = Date.now();
      replace(
        adviceBody,
        advice.map((a) =>
          h(
            'article',
            { class: 'twin-advice', 'data-advice': a.id },
            adviceLine(a, now),
            h('p', { class: 'muted small' }, a.recommendation.risk.summary || a.recommendation.summary),
            evidenceTable(a, unitOf, now),
          ),
        ),
      );
    };
    const loadAdvice = async (): Promise<void> => {
      try {
        const list = await api.advice(ADVICE_VIEW_STATES.active, { twin: state.id, signal: abort.signal });
        let next: AdviceItem[] = [];
        for (const a of [...list, ...earlyAdvice]) next = upsertAdvice(next, a, ADVICE_VIEW_STATES.active);
        advice = next;
        earlyAdvice = [];
        drawAdvice();
        markReady('twin-advice');
      } catch (err) {
        if (abort.signal.aborted) return;
        replace(adviceBody, notice('error', `Could not load the advice: ${err instanceof Error ? err.message : String(err)}`));
      }
    };
    const rulBody = h('div', { class: 'rul-body', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));
    const rulCard = section('Remaining useful life', 'rul', rulBody);

    // ---- properties and relations ----
    const props = propertiesSection(model, state.properties);
    const rels = relationsSection(state, twins, byId);

    replace(
      el,
      header,
      h(
        'div',
        { class: 'twin-top' },
        section('Latest values', 'values', valuesTable),
        h('div', { class: 'side' }, section('Detector', 'detector', detector), rulCard, props, rels),
      ),
      adviceCard,
      live,
      history.el,
    );
    // Charts size themselves from their container, so they are made once it is in the page.
    const charts = new LiveCharts(
      numeric.map((s): LiveChartSpec => ({ name: s.name, unit: s.unit, min: s.min, max: s.max })),
      (spec) => {
        const value = h('span', { class: 'card-value num' });
        cardValues.set(spec.name, value);
        dirtyCards.add(spec.name);
        const plot = h('div', { class: 'plot', role: 'img', 'aria-label': `${spec.name}, last 10 minutes` });
        const figure = liveGrid.appendChild(
          h(
            'figure',
            { class: 'live-chart', 'data-signal': spec.name },
            h(
              'figcaption',
              null,
              h('span', { class: 'sig' }, spec.name),
              value,
              h('span', { class: 'muted' }, spec.unit),
              spec.min !== undefined || spec.max !== undefined ? h('span', { class: 'muted range' }, `normal ${formatRange(spec.min, spec.max)}`) : null,
            ),
            plot,
          ),
        );
        cardFigures.set(spec.name, figure);
        seen.observe(figure);
        return plot;
      },
      LIVE_WINDOW_MS,
    );
    disposers.push(() => charts.dispose());
    drawValues();
    drawAlarm();
    drawDetector(state.health);
    markReady('twin');
    void loadAdvice();
    void loadTwinRul(state.id, rulBody, abort.signal).then(() => markReady('twin-rul'));
    // Estimates move slowly: read again every few minutes.
    const rulTick = setInterval(() => void loadTwinRul(state.id, rulBody, abort.signal), 5 * 60_000);
    disposers.push(() => clearInterval(rulTick));
    // Due-by reads relative to now.
    const adviceTick = setInterval(drawAdvice, 60_000);
    disposers.push(() => clearInterval(adviceTick));

    // The detector's score changes with every reading; reading it a few times a minute is
    // enough for the card, and also catches an alarm change missed while reconnecting.
    const healthTick = setInterval(() => {
      api.twin(state.id, abort.signal).then(
        (s) => {
          alarm = s.alarm ?? null;
          drawAlarm();
          drawDetector(s.health);
          requestFrame(drawValues);
        },
        () => {},
      );
    }, HEALTH_EVERY_MS);
    disposers.push(() => clearInterval(healthTick));

    const stream = new LiveStream({ twin: [state.id], type: ['reading', 'alarm', 'advice'] }, {
      alarm: (ev) => {
        alarm = twinAlarmAfter(alarm, ev.alarm);
        drawAlarm();
        requestFrame(drawValues);
      },
      advice: (ev) => {
        if (advice === null) {
          earlyAdvice.push(ev.advice);
          return;
        }
        advice = upsertAdvice(advice, ev.advice, ADVICE_VIEW_STATES.active);
        drawAdvice();
      },
      reconnect: () => void loadAdvice(),
      reading: (ev) => {
        const changed = applyEvent(latest, ev);
        for (const n of changed) {
          dirtyRows.add(n);
          if (cardValues.has(n)) dirtyCards.add(n);
        }
        if (changed.length) scheduleValues();
        if (ev.late) return;
        const ms = nsToMs(ev.ts);
        for (const [name, v] of Object.entries(ev.values)) {
          if (typeof v === 'number') charts.push(name, ms, v);
        }
      },
    });
    disposers.push(() => stream.close());
    disposers.push(() => cancelFrame(drawValues));
    const tick = setInterval(() => requestFrame(drawValues), 1000);
    disposers.push(() => clearInterval(tick));

    // The live window starts with the last 10 minutes from history (live points already
    // received stay; older ones go in front).
    const to = Date.now();
    void mapLimit(numeric, 4, async (s) => {
      try {
        const ans = await api.history(state.id, s.name, { fromMs: to - LIVE_WINDOW_MS, toMs: to + 1, limit: 20_000 }, abort.signal);
        const pts = (ans.points ?? []).filter((p) => typeof p.value === 'number');
        charts.seed(
          s.name,
          pts.map((p) => nsToMs(p.ts)),
          pts.map((p) => p.value as number),
        );
      } catch {
        // The live stream still fills the chart.
      }
    }).then(() => {
      if (!abort.signal.aborted) liveNote.textContent = numeric.length ? `${numeric.length} signals, updated as readings arrive.` : '';
    });
  }

  return page;
}

/** The detector's view of the twin: score against the threshold, state, sensitivity, top signals. */
function detectorView(hl: TwinHealth | undefined): (HTMLElement | null)[] {
  if (!hl) return [h('p', { class: 'muted' }, 'No score yet: the detector scores numeric readings.')];
  const status = hl.learning ? 'learning what normal looks like' : hl.anomalous ? 'anomalous' : 'normal';
  return [
    h(
      'p',
      { class: 'score-line' },
      h('label', { for: 'detector-score' }, 'Score '),
      h('meter', { id: 'detector-score', min: '0', max: '1', low: '0.5', high: '0.8', optimum: '0', value: String(Math.min(1, Math.max(0, hl.score))) }),
      h('strong', { class: 'num', 'data-score': String(hl.score) }, ` ${formatScore(hl.score)}`),
      h('span', { class: 'muted' }, ' (alarm at 0.50)'),
    ),
    h(
      'table',
      { class: 'kv' },
      h(
        'tbody',
        null,
        h('tr', null, h('th', { scope: 'row' }, 'State'), h('td', { class: `detector-state detector-${hl.learning ? 'learning' : hl.anomalous ? 'anomalous' : 'normal'}` }, status)),
        h(
          'tr',
          null,
          h('th', { scope: 'row', title: '1 at start; above 1 after false alarms (less sensitive)' }, 'Sensitivity'),
          h('td', null, `× ${hl.sensitivity.toFixed(2)}`),
        ),
        hl.scored_at ? h('tr', null, h('th', { scope: 'row' }, 'Scored'), h('td', null, formatTime(Date.parse(hl.scored_at)))) : null,
      ),
    ),
    hl.contributions.length
      ? h(
          'ul',
          { class: 'contributions', 'aria-label': 'Top contributing signals' },
          hl.contributions.map((c) =>
            h(
              'li',
              null,
              h('strong', null, c.signal),
              ` ${KIND_LABEL[c.kind] ?? c.kind} · ${formatScore(c.score)}`,
              h('span', { class: 'muted' }, ` · ${formatDeviation(c.expected, c.observed)}`),
            ),
          ),
        )
      : null,
  ];
}

function propertiesSection(model: AssetModel, values: Record<string, Value>): HTMLElement {
  const names = [...new Set([...model.properties.map((p) => p.name), ...Object.keys(values)])];
  if (!names.length) return section('Properties', 'properties', h('p', { class: 'muted' }, 'None.'));
  const spec = new Map(model.properties.map((p) => [p.name, p]));
  return section(
    'Properties',
    'properties',
    h(
      'table',
      { class: 'kv' },
      h(
        'tbody',
        null,
        names.map((n) => {
          const p = spec.get(n);
          const v = values[n];
          return h(
            'tr',
            null,
            h('th', { scope: 'row', title: p?.description || null }, n),
            h('td', null, v === undefined ? h('span', { class: 'muted' }, p?.required ? 'missing' : '—') : `${formatValue(v)}${p?.unit ? ` ${p.unit}` : ''}`),
          );
        }),
      ),
    ),
  );
}

function relationsSection(state: TwinState, twins: Twin[], byId: Map<string, Twin>): HTMLElement {
  const name = (tid: string) => byId.get(tid)?.name || tid;
  const twinLink = (tid: string) => (byId.has(tid) ? link(`/twins/${seg(tid)}`, name(tid)) : h('span', null, tid));
  const incoming = twins.flatMap((t) => t.relations.filter((r) => r.target === state.id).map((r) => ({ from: t.id, kind: r.kind })));
  const children = twins.filter((t) => t.parent === state.id);
  const items: HTMLElement[] = [];
  if (state.parent) items.push(h('li', null, h('span', { class: 'rel' }, 'part of'), twinLink(state.parent)));
  for (const r of state.relations) items.push(h('li', null, h('span', { class: 'rel' }, r.kind), twinLink(r.target)));
  for (const r of incoming) items.push(h('li', null, twinLink(r.from), h('span', { class: 'rel rel-in' }, `${r.kind} this`)));
  for (const c of children) items.push(h('li', null, h('span', { class: 'rel' }, 'contains'), twinLink(c.id)));
  return section('Relations', 'relations', items.length ? h('ul', { class: 'relations' }, items) : h('p', { class: 'muted' }, 'None.'));
}

/** The history of one signal: range presets, custom range, drag to zoom, back and zoom out. */
function historySection(
  twin: string,
  signals: SignalSpec[],
  initial: SignalSpec | undefined,
  pageSignal: AbortSignal,
): { el: HTMLElement; dispose: () => void } {
  if (!signals.length) {
    return { el: section('History', 'history', notice('info', 'No numeric or boolean signals.')), dispose() {} };
  }
  let signal = initial ?? signals[0];
  let range: [number, number] = [Date.now() - 3_600_000, Date.now()];
  const back: [number, number][] = [];
  let inflight: AbortController | null = null;
  let chart: HistoryChart | null = null;
  let scoreChart: ScoreChart | null = null;

  const select = h(
    'select',
    { id: 'history-signal' },
    signals.map((s) => h('option', { value: s.name, selected: s.name === signal.name }, s.name)),
  );
  const presetButtons = PRESETS.map(([label, ms]) =>
    h('button', { type: 'button', 'aria-pressed': 'false', onclick: () => go([Date.now() - ms, Date.now()], true) }, label),
  );
  const fromIn = h('input', { type: 'datetime-local', id: 'history-from', step: '1' });
  const toIn = h('input', { type: 'datetime-local', id: 'history-to', step: '1' });
  const backBtn = h('button', { type: 'button', disabled: true, onclick: () => { const r = back.pop(); if (r) go(r, false); } }, 'Back');
  const status = h('p', { class: 'muted history-status', 'aria-live': 'polite' });
  const plot = h('div', { class: 'plot history-plot', role: 'img', 'aria-label': 'History chart; drag across it to zoom in' });
  const scoreNote = h('span', { class: 'muted' });
  const scorePlot = h('div', { class: 'plot score-plot', role: 'img', 'aria-label': 'Anomaly score of the twin over the same range; 0.5 is the alarm threshold' });
  const form = h(
    'form',
    { class: 'range-form' },
    h('label', { for: 'history-from' }, 'From'),
    fromIn,
    h('label', { for: 'history-to' }, 'To'),
    toIn,
    h('button', { type: 'submit' }, 'Show'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const f = fromLocalInput(fromIn.value);
    const t = fromLocalInput(toIn.value);
    if (f === null || t === null || t <= f) {
      status.textContent = 'Pick a start before the end.';
      return;
    }
    go([f, t], true);
  });
  const zoom = (factor: number) => {
    const [f, t] = range;
    const mid = (f + t) / 2;
    const half = ((t - f) * factor) / 2;
    go([mid - half, mid + half], true);
  };
  const el = section(
    'History',
    'history',
    h(
      'div',
      { class: 'toolbar' },
      h('label', { for: 'history-signal' }, 'Signal'),
      select,
      h('div', { class: 'group', role: 'group', 'aria-label': 'Last' }, h('span', { class: 'muted' }, 'Last'), presetButtons),
      h(
        'div',
        { class: 'group', role: 'group', 'aria-label': 'Zoom' },
        h('button', { type: 'button', onclick: () => zoom(0.5), 'aria-label': 'Zoom in' }, 'Zoom in'),
        h('button', { type: 'button', onclick: () => zoom(2), 'aria-label': 'Zoom out' }, 'Zoom out'),
        backBtn,
      ),
    ),
    form,
    plot,
    status,
    h('h3', { class: 'score-head' }, 'Anomaly score ', scoreNote),
    scorePlot,
  );
  select.addEventListener('change', () => {
    signal = signals.find((s) => s.name === select.value) ?? signals[0];
    remake();
    go(range, false);
  });

  const remake = () => {
    chart?.dispose();
    chart = new HistoryChart(plot, { name: signal.name, unit: signal.unit, min: signal.min, max: signal.max }, (f, t) => go([f, t], true));
  };

  async function go(r: [number, number], remember: boolean): Promise<void> {
    if (remember) back.push(range);
    backBtn.disabled = back.length === 0;
    range = [Math.floor(r[0]), Math.ceil(r[1])];
    fromIn.value = toLocalInput(range[0]);
    toIn.value = toLocalInput(range[1]);
    const span = range[1] - range[0];
    for (const [i, b] of presetButtons.entries()) {
      b.setAttribute('aria-pressed', String(Math.abs(span - PRESETS[i][1]) < 1000 && Date.now() - range[1] < 5000));
    }
    const stepMs = chooseStep(range[0], range[1]);
    const step = formatStep(stepMs);
    inflight?.abort();
    const ctl = new AbortController();
    inflight = ctl;
    const stop = () => ctl.abort();
    pageSignal.addEventListener('abort', stop);
    status.dataset.state = 'loading';
    status.textContent = `Loading ${signal.name} in ${step} buckets…`;
    try {
      const q = { fromMs: range[0], toMs: range[1], step };
      // The twin's anomaly score is a derived series beside the signals; a twin without one
      // (no numeric readings scored yet) still shows its signal.
      const score = api.history(twin, SCORE_SERIES, { ...q, agg: 'max' }, ctl.signal).catch(() => null);
      const [mean, min, max] = await Promise.all(
        (['mean', 'min', 'max'] as const).map((agg) => api.history(twin, signal.name, { ...q, agg }, ctl.signal)),
      );
      const a = alignBuckets([mean.buckets ?? [], min.buckets ?? [], max.buckets ?? []], stepMs);
      chart?.setData({ xs: a.xs, mean: a.series[0], min: a.series[1], max: a.series[2], from: range[0] / 1000, to: range[1] / 1000 });
      const sc = await score;
      if (ctl.signal.aborted) return;
      const sa = alignBuckets([sc?.buckets ?? []], stepMs);
      scoreChart?.setData(sa.xs, sa.series[0], range[0] / 1000, range[1] / 1000);
      const above = (sc?.buckets ?? []).filter((b) => b.value >= SCORE_THRESHOLD).length;
      scoreNote.textContent = !sc?.buckets?.length
        ? 'no scores in this range'
        : `highest per ${step} bucket; ${above ? `${above} bucket${above === 1 ? '' : 's'} at or above` : 'none above'} the 0.5 threshold`;
      const n = mean.buckets?.length ?? 0;
      status.textContent = n
        ? `${signal.name}: mean of ${step} buckets (${n} with data) with the min–max band, ${formatTime(range[0])} to ${formatTime(range[1])}. Drag across the chart to zoom in.`
        : `No readings of ${signal.name} in this range.`;
      status.dataset.state = 'ready';
      markReady('history');
    } catch (err) {
      if (ctl.signal.aborted) return;
      status.dataset.state = 'error';
      status.textContent = `Could not load history: ${err instanceof Error ? err.message : String(err)}`;
    } finally {
      pageSignal.removeEventListener('abort', stop);
    }
  }

  // The chart needs its container in the document to measure its width.
  requestAnimationFrame(() => {
    if (pageSignal.aborted) return;
    remake();
    scoreChart = new ScoreChart(scorePlot);
    void go(range, false);
  });
  return {
    el,
    dispose() {
      inflight?.abort();
      chart?.dispose();
      scoreChart?.dispose();
    },
  };
}
