// What-if for one twin: how well its identified dynamics predict each output (and a button to
// fit them), a form to change its inputs and run a scenario, the scenario against the baseline
// per output (band, normal range, predicted crossings) with a comparison table, and an
// optimizer whose best settings can be copied into the form.

import { api, ApiError } from '../api';
import { ScenarioChart } from '../charts';
import { h, link, notice, replace, seg } from '../dom';
import { formatNumber, formatRange, formatTime, formatValue, nsToMs } from '../format';
import { fromState } from '../latest';
import { markReady } from '../perf';
import type { Route } from '../router';
import type { AssetModel, Dynamics, OptimizeAnswer, SignalSpec, WhatIfAnswer } from '../types';
import {
  applySettings,
  buildOptimizeRequest,
  buildScenarioRequest,
  describeCrossing,
  editableSignals,
  fitVerdict,
  formatDelta,
  formatOffset,
  formatShare,
  pairSeries,
  roundForInput,
  type FieldError,
  type InputEdit,
} from '../whatif';
import type { Page } from './page';

const DEFAULT_HORIZON_MIN = 120;
const DEFAULT_AT_MIN = 10;
const DEFAULT_RAMP_MIN = 15;

function card(title: string, id: string, ...children: (Node | null)[]): HTMLElement {
  return h('section', { class: 'card', id, 'aria-labelledby': `${id}-h` }, h('h2', { id: `${id}-h` }, title), ...children);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function errorList(errors: FieldError[]): HTMLElement {
  return h('ul', { class: 'notice notice-error form-errors', role: 'alert' }, errors.map((e) => h('li', null, e.message)));
}

/** A number field's value, `null` when blank. */
function numberOf(input: HTMLInputElement): number | null {
  const t = input.value.trim();
  return t === '' ? null : Number(t);
}

export function whatIfPage(route: Route): Page {
  const id = route.id as string;
  const abort = new AbortController();
  const el = h('section', { class: 'whatif' }, h('h1', { tabindex: '-1' }, `What-if · ${id}`), h('p', { class: 'muted' }, 'Loading…'));
  const disposers: (() => void)[] = [];
  const page: Page = {
    el,
    title: `What-if · ${id}`,
    dispose() {
      abort.abort();
      for (const d of disposers.splice(0)) d();
    },
  };

  (async () => {
    try {
      const state = await api.twin(id, abort.signal);
      const model = await api.model(state.model, abort.signal);
      if (abort.signal.aborted) return;
      build(state.name || state.id, model, fromState(state));
    } catch (err) {
      if (abort.signal.aborted) return;
      replace(el, h('h1', { tabindex: '-1' }, `What-if · ${id}`), notice('error', message(err)));
    }
  })();

  function build(title: string, model: AssetModel, latest: ReturnType<typeof fromState>): void {
    page.title = `What-if · ${title}`;
    document.title = `${page.title} · doppel`;
    const specs = new Map(model.signals.map((s) => [s.name, s]));
    const unitOf = (signal: string) => specs.get(signal)?.unit ?? '';
    const editable = editableSignals(model.signals);
    const outputs = model.signals.filter((s) => s.role === 'output' && (s.kind === 'float' || s.kind === 'int'));

    // ---- model quality ----
    const modelBody = h('div', { class: 'whatif-model-body', 'aria-live': 'polite' });
    const fitButton = h('button', { type: 'button', id: 'whatif-fit' }, 'Fit the model');
    const fitStatus = h('p', { class: 'muted', 'aria-live': 'polite' });
    const showModel = (d: Dynamics | null, why?: string): void => {
      fitButton.textContent = d ? 'Fit again' : 'Fit the model';
      if (!d) {
        replace(modelBody, why ? notice('info', why) : h('p', { class: 'muted' }, 'No model yet.'));
        return;
      }
      replace(
        modelBody,
        h(
          'p',
          { class: 'muted' },
          `Fitted on the history window ${formatTime(nsToMs(d.history_from))} – ${formatTime(nsToMs(d.history_to))}, one step every ${formatNumber(d.step_s)} s. `,
          'Errors are of free runs over held-out history, as a share of each output’s range; “vs. the mean” below 1 means the model beats predicting the average.',
        ),
        d.outputs.length
          ? h(
              'table',
              { class: 'whatif-fit' },
              h(
                'thead',
                null,
                h(
                  'tr',
                  null,
                  h('th', { scope: 'col' }, 'Output'),
                  h('th', { scope: 'col', class: 'num' }, 'One step ahead'),
                  h('th', { scope: 'col', class: 'num' }, 'At the horizon'),
                  h('th', { scope: 'col', class: 'num', title: 'Error at the horizon over the standard deviation: 1 is no better than the mean' }, 'vs. the mean'),
                  h('th', { scope: 'col' }, 'Fit'),
                ),
              ),
              h(
                'tbody',
                null,
                d.outputs.map((o) => {
                  const verdict = fitVerdict(o);
                  return h(
                    'tr',
                    { 'data-signal': o.signal },
                    h('th', { scope: 'row' }, o.signal),
                    h('td', { class: 'num' }, formatShare(o.nrmse_one_step)),
                    h('td', { class: 'num' }, `${formatShare(o.nrmse_horizon)} `, h('span', { class: 'muted' }, `(${formatOffset(o.horizon_s).replace('after ', '')})`)),
                    h('td', { class: 'num' }, formatNumber(o.nrmse_std_horizon)),
                    h('td', null, h('span', { class: `fit fit-${verdict}` }, verdict)),
                  );
                }),
              ),
            )
          : notice('info', 'No output could be modelled.'),
        d.skipped.length
          ? h('ul', { class: 'muted skipped', 'aria-label': 'Signals left out' }, d.skipped.map((s) => h('li', null, h('strong', null, s.signal), ` left out: ${s.reason}`)))
          : null,
      );
    };
    fitButton.addEventListener('click', async () => {
      fitButton.disabled = true;
      fitStatus.textContent = 'Fitting the dynamics to the history…';
      try {
        showModel(await api.fitDynamics(id, abort.signal));
        fitStatus.textContent = 'Fitted.';
      } catch (err) {
        if (abort.signal.aborted) return;
        fitStatus.textContent = '';
        replace(modelBody, notice('error', `Cannot fit yet: ${message(err)}`));
      } finally {
        fitButton.disabled = false;
      }
    });
    api.dynamics(id, abort.signal).then(
      (d) => showModel(d),
      (err) => {
        if (abort.signal.aborted) return;
        if (err instanceof ApiError && err.status === 404) showModel(null, 'No model yet: fit one from the history, or run a scenario (it fits one first).');
        else replace(modelBody, notice('error', message(err)));
      },
    );

    // ---- scenario form ----
    let edits: InputEdit[] = editable.map((s) => {
      const v = latest[s.name]?.value;
      // Rounded as the field shows it, so an untouched field is no change.
      const current = typeof v === 'number' ? roundForInput(v) : null;
      return { signal: s.name, current, value: current, atMin: DEFAULT_AT_MIN, kind: 'step', rampMin: DEFAULT_RAMP_MIN };
    });
    const nameIn = h('input', { id: 'whatif-name', type: 'text', value: 'scenario', autocomplete: 'off' });
    const horizonIn = h('input', { id: 'whatif-horizon', type: 'number', min: '1', step: '1', value: String(DEFAULT_HORIZON_MIN), class: 'num' });
    const rows = new Map<string, { value: HTMLInputElement; at: HTMLInputElement; kind: HTMLSelectElement; ramp: HTMLInputElement; row: HTMLElement }>();
    const inputsBody = h('tbody');
    for (const e of edits) {
      const spec = specs.get(e.signal) as SignalSpec;
      const key = seg(e.signal);
      const value = h('input', { id: `whatif-value-${key}`, type: 'number', step: 'any', class: 'num', 'aria-describedby': `whatif-now-${key}` });
      const at = h('input', { id: `whatif-at-${key}`, type: 'number', min: '0', step: 'any', class: 'num', 'aria-label': `${e.signal}: starts after (minutes)` });
      const kind = h('select', { id: `whatif-kind-${key}`, 'aria-label': `${e.signal}: shape` }, h('option', { value: 'step' }, 'step'), h('option', { value: 'ramp' }, 'ramp'));
      const ramp = h('input', { id: `whatif-ramp-${key}`, type: 'number', min: '0', step: 'any', class: 'num', 'aria-label': `${e.signal}: ramp duration (minutes)` });
      kind.addEventListener('change', () => (ramp.disabled = kind.value !== 'ramp'));
      const row = h(
        'tr',
        { 'data-signal': e.signal },
        h('th', { scope: 'row' }, h('label', { for: `whatif-value-${key}` }, e.signal), spec.role === 'disturbance' ? h('span', { class: 'muted desc' }, 'disturbance') : null),
        h('td', { class: 'num', id: `whatif-now-${key}` }, formatValue(e.current)),
        h('td', { class: 'nowrap' }, value, ' ', h('span', { class: 'muted' }, spec.unit)),
        h('td', null, at),
        h('td', null, kind),
        h('td', null, ramp),
        h('td', { class: 'muted num nowrap' }, formatRange(spec.min, spec.max, spec.unit)),
      );
      rows.set(e.signal, { value, at, kind, ramp, row });
      inputsBody.append(row);
    }
    const fillForm = (): void => {
      for (const e of edits) {
        const r = rows.get(e.signal);
        if (!r) continue;
        r.value.value = e.value === null ? '' : String(e.value);
        r.at.value = String(e.atMin);
        r.kind.value = e.kind;
        r.ramp.value = String(e.rampMin);
        r.ramp.disabled = e.kind !== 'ramp';
      }
    };
    const readForm = (): void => {
      edits = edits.map((e) => {
        const r = rows.get(e.signal);
        if (!r) return e;
        return { ...e, value: numberOf(r.value), atMin: numberOf(r.at) ?? 0, kind: r.kind.value === 'ramp' ? 'ramp' : 'step', rampMin: numberOf(r.ramp) ?? 0 };
      });
    };
    fillForm();
    const formErrors = h('div');
    const runButton = h('button', { type: 'submit', id: 'whatif-run', class: 'primary' }, 'Run');
    const form = h(
      'form',
      { class: 'whatif-form', 'aria-describedby': 'whatif-form-help' },
      h('p', { class: 'muted', id: 'whatif-form-help' }, 'Times are minutes after the twin’s last reading. Inputs left at their current value keep it (or follow the baseline).'),
      h('div', { class: 'toolbar' }, h('label', { for: 'whatif-name' }, 'Name'), nameIn, h('label', { for: 'whatif-horizon' }, 'Horizon (minutes)'), horizonIn),
      editable.length
        ? h(
            'table',
            { class: 'whatif-inputs' },
            h(
              'thead',
              null,
              h(
                'tr',
                null,
                ['Input', 'Current', 'New value', 'Starts after (min)', 'Shape', 'Ramp (min)', 'Normal range'].map((c) => h('th', { scope: 'col' }, c)),
              ),
            ),
            inputsBody,
          )
        : notice('info', 'This model declares no numeric inputs or disturbances to change.'),
      formErrors,
      h('div', { class: 'toolbar' }, runButton),
    );

    // ---- results ----
    const resultStatus = h('p', { class: 'muted', 'aria-live': 'polite', id: 'whatif-status' }, 'Run a scenario to compare it with the baseline (the twin left as it is).');
    const resultBody = h('div', { class: 'whatif-results-body' });
    let charts: ScenarioChart[] = [];
    const clearCharts = () => {
      for (const c of charts) c.dispose();
      charts = [];
    };
    disposers.push(clearCharts);
    let running: AbortController | null = null;
    disposers.push(() => running?.abort());

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      readForm();
      const built = buildScenarioRequest({ name: nameIn.value, horizonMin: Number(horizonIn.value), edits });
      for (const r of rows.values()) r.row.classList.remove('invalid');
      if (!built.ok) {
        replace(formErrors, errorList(built.errors));
        for (const e of built.errors) rows.get(e.field)?.row.classList.add('invalid');
        return;
      }
      replace(formErrors);
      running?.abort();
      const ctl = new AbortController();
      running = ctl;
      runButton.disabled = true;
      resultStatus.dataset.state = 'loading';
      resultStatus.textContent = 'Running the scenario and the baseline…';
      try {
        const answer = await api.scenarios(id, built.request, ctl.signal);
        if (ctl.signal.aborted) return;
        showModel(answer.model);
        showResults(answer);
        resultStatus.dataset.state = 'ready';
        markReady('whatif');
      } catch (err) {
        if (ctl.signal.aborted) return;
        resultStatus.dataset.state = 'error';
        resultStatus.textContent = '';
        clearCharts();
        replace(resultBody, notice('error', `The scenario could not run: ${message(err)}`));
      } finally {
        runButton.disabled = false;
      }
    });

    const showResults = (answer: WhatIfAnswer): void => {
      clearCharts();
      const s = answer.scenarios[0];
      if (!s) {
        replace(resultBody, notice('info', 'The server returned no scenario.'));
        return;
      }
      const name = s.name ?? 'scenario';
      const paired = pairSeries(answer);
      const extrapolated = s.result.extrapolated_inputs;
      resultStatus.textContent = `“${name}” from ${formatTime(nsToMs(answer.start))}, ${paired.length} output${paired.length === 1 ? '' : 's'}, compared with the baseline.`;
      const rowsOut = s.comparison.outputs.map((c) => {
        const unit = unitOf(c.signal);
        const crossing = c.scenario_crossing ?? null;
        return h(
          'tr',
          { 'data-signal': c.signal, class: crossing ? 'crosses' : null },
          h('th', { scope: 'row' }, c.signal),
          h('td', { class: 'num' }, formatValue(c.baseline_mean)),
          h('td', { class: 'num' }, formatValue(c.scenario_mean)),
          h('td', { class: 'num mean-delta', 'data-value': String(c.mean_delta) }, formatDelta(c.mean_delta, unit)),
          h('td', { class: 'num' }, formatDelta(c.final_delta, unit)),
          h('td', { class: 'num max-delta', 'data-value': String(c.max_abs_delta) }, formatDelta(c.max_abs_delta, unit).replace(/^\+/, '')),
          h('td', { class: 'num' }, formatOffset(c.max_abs_delta_at_s)),
          h('td', { class: crossing ? 'crossing' : 'muted' }, describeCrossing(crossing, unit)),
          h('td', { class: c.baseline_crossing ? 'crossing-baseline' : 'muted' }, describeCrossing(c.baseline_crossing ?? null, unit)),
        );
      });
      const table = h(
        'table',
        { class: 'whatif-summary' },
        h('caption', { class: 'visually-hidden' }, `${name} against the baseline`),
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ['Output', 'Baseline mean', 'Scenario mean', 'Mean Δ', 'Final Δ', 'Largest |Δ|', 'When', 'Leaves range (scenario)', 'Leaves range (baseline)'].map((c, i) =>
              h('th', { scope: 'col', class: i >= 1 && i <= 6 ? 'num' : null }, c),
            ),
          ),
        ),
        h('tbody', null, rowsOut),
      );
      const grid = h('div', { class: 'whatif-grid' });
      replace(
        resultBody,
        table,
        extrapolated.length
          ? notice('info', `Driven outside the range seen in the history, where the model knows least (its answer there is cautious): ${extrapolated.join(', ')}.`)
          : null,
        h('p', { class: 'muted legend-note' }, 'Blue: scenario with its uncertainty band (dashed edges); grey dashed: baseline; green: normal range; red marks: predicted range crossings.'),
        grid,
      );
      // Charts measure their container, so they are made once it is in the page.
      for (const p of paired) {
        const spec = specs.get(p.signal);
        const unit = spec?.unit ?? '';
        const crossings = [
          p.crossingAt !== null ? { at: p.crossingAt, label: 'scenario leaves range', color: '#dc2626' } : null,
          p.bandCrossingAt !== null && p.bandCrossingAt !== p.crossingAt ? { at: p.bandCrossingAt, label: 'band leaves range', color: '#f97316' } : null,
          p.baselineCrossingAt !== null ? { at: p.baselineCrossingAt, label: 'baseline leaves range', color: '#6b7280' } : null,
        ].filter((c): c is { at: number; label: string; color: string } => c !== null);
        const cmp = s.comparison.outputs.find((c) => c.signal === p.signal);
        const plot = h('div', {
          class: 'plot',
          role: 'img',
          'aria-label': `${p.signal}: scenario against baseline${cmp ? `, mean change ${formatDelta(cmp.mean_delta, unit)}` : ''}${crossings.length ? `; ${crossings.map((c) => c.label).join(', ')}` : ''}`,
        });
        grid.append(
          h(
            'figure',
            { class: 'whatif-chart', 'data-signal': p.signal, 'data-crossings': String(crossings.length) },
            h(
              'figcaption',
              null,
              h('span', { class: 'sig' }, p.signal),
              cmp ? h('span', { class: 'num' }, `mean ${formatDelta(cmp.mean_delta, unit)}`) : null,
              spec && (spec.min !== undefined || spec.max !== undefined) ? h('span', { class: 'muted range' }, `normal ${formatRange(spec.min, spec.max, unit)}`) : null,
              crossings.length ? h('span', { class: 'crossing' }, crossings.map((c) => c.label).join(' · ')) : null,
            ),
            plot,
          ),
        );
        charts.push(new ScenarioChart(plot, { name: p.signal, unit, min: spec?.min, max: spec?.max, crossings }, p));
      }
    };

    // ---- optimizer ----
    const settable = editable.filter((s) => s.role === 'input');
    const senseIn = h('select', { id: 'opt-sense' }, h('option', { value: 'minimize' }, 'Minimize'), h('option', { value: 'maximize' }, 'Maximize'));
    const outputIn = h('select', { id: 'opt-output', 'aria-label': 'Output to optimize' }, outputs.map((s) => h('option', { value: s.name }, s.name)));
    const optHorizon = h('input', { id: 'opt-horizon', type: 'number', min: '1', step: '1', value: '60', class: 'num' });
    const optRows = settable.map((s) => {
      const key = seg(s.name);
      const use = h('input', { type: 'checkbox', id: `opt-use-${key}`, checked: true });
      const min = h('input', { type: 'number', step: 'any', class: 'num', id: `opt-min-${key}`, value: s.min === undefined ? '' : String(s.min), 'aria-label': `${s.name}: lowest allowed` });
      const max = h('input', { type: 'number', step: 'any', class: 'num', id: `opt-max-${key}`, value: s.max === undefined ? '' : String(s.max), 'aria-label': `${s.name}: highest allowed` });
      return { signal: s.name, use, min, max, row: h('tr', null, h('td', null, use, ' ', h('label', { for: `opt-use-${key}` }, s.name)), h('td', null, min), h('td', null, max), h('td', { class: 'muted' }, s.unit)) };
    });
    const optErrors = h('div');
    const optResult = h('div', { 'aria-live': 'polite' });
    const optButton = h('button', { type: 'submit', id: 'opt-run' }, 'Find the best settings');
    const optForm = h(
      'form',
      { class: 'whatif-optimize' },
      h('div', { class: 'toolbar' }, h('label', { for: 'opt-sense' }, 'Objective'), senseIn, outputIn, h('label', { for: 'opt-horizon' }, 'over (minutes)'), optHorizon),
      h(
        'table',
        { class: 'opt-inputs' },
        h('thead', null, h('tr', null, ['Move', 'Lowest', 'Highest', 'Unit'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, optRows.map((r) => r.row)),
      ),
      optErrors,
      h('div', { class: 'toolbar' }, optButton),
      optResult,
    );
    optForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const built = buildOptimizeRequest({
        sense: senseIn.value === 'maximize' ? 'maximize' : 'minimize',
        output: outputIn.value,
        horizonMin: Number(optHorizon.value),
        inputs: optRows.map((r) => ({ signal: r.signal, use: r.use.checked, min: numberOf(r.min) ?? Number.NaN, max: numberOf(r.max) ?? Number.NaN })),
      });
      if (!built.ok) {
        replace(optErrors, errorList(built.errors));
        return;
      }
      replace(optErrors);
      optButton.disabled = true;
      replace(optResult, h('p', { class: 'muted' }, 'Searching the allowed inputs…'));
      try {
        showOptimum(await api.optimize(id, built.request, abort.signal), built.request.objective.terms[0].signal, built.request.objective.sense);
      } catch (err) {
        if (abort.signal.aborted) return;
        replace(optResult, notice('error', `The optimizer could not run: ${message(err)}`));
      } finally {
        optButton.disabled = false;
      }
    });
    const showOptimum = (a: OptimizeAnswer, output: string, sense: string): void => {
      const unit = unitOf(output);
      const use = h(
        'button',
        {
          type: 'button',
          id: 'opt-apply',
          onclick: () => {
            readForm();
            edits = applySettings(edits, a);
            fillForm();
            nameIn.value = `${sense} ${output}`;
            const first = rows.get(a.settings[0]?.signal ?? '')?.value;
            first?.scrollIntoView({ block: 'center' });
            first?.focus();
          },
        },
        'Use these settings in the scenario',
      );
      replace(
        optResult,
        a.feasible ? null : notice('error', `No allowed setting keeps every constraint${a.violations?.length ? `: ${a.violations.join('; ')}` : ''}.`),
        h(
          'table',
          { class: 'kv opt-settings' },
          h(
            'tbody',
            null,
            a.settings.map((s) => h('tr', { 'data-signal': s.signal }, h('th', { scope: 'row' }, s.signal), h('td', { class: 'num' }, `${formatValue(roundForInput(s.value))} ${unitOf(s.signal)}`))),
            h('tr', null, h('th', { scope: 'row' }, `Mean ${output}`), h('td', { class: 'num' }, `${formatValue(a.objective)} ${unit}`, h('span', { class: 'muted' }, ` (baseline ${formatValue(a.baseline_objective)}, ${formatDelta(a.objective - a.baseline_objective, unit)})`))),
          ),
        ),
        a.settings.length ? use : null,
      );
    };

    replace(
      el,
      h(
        'div',
        { class: 'page-head' },
        h('nav', { class: 'crumbs', 'aria-label': 'Back' }, link('/', 'Fleet'), ' › ', link(`/twins/${seg(id)}`, title), ' › ', h('span', { 'aria-current': 'page' }, 'What-if')),
        h('h1', { tabindex: '-1' }, `What-if · ${title}`),
        h('p', { class: 'subtitle' }, 'Model ', link(`/models/${seg(model.id)}`, model.name), ' · change inputs and see what the learned dynamics predict.'),
      ),
      card('Learned dynamics', 'whatif-model', modelBody, h('div', { class: 'toolbar' }, fitButton), fitStatus),
      h('div', { class: 'whatif-top' }, card('Scenario', 'whatif-scenario', form), card('Optimize', 'whatif-optimize', settable.length && outputs.length ? optForm : notice('info', 'No inputs and outputs to optimize.'))),
      card('Scenario against baseline', 'whatif-results', resultStatus, resultBody),
    );
    markReady('whatif-form');
  }

  return page;
}
