import { describe, expect, it } from 'vitest';

import type { InputEdit } from './whatif';
import {
  applySettings,
  causeWhere,
  buildOptimizeRequest,
  buildScenarioRequest,
  describeCrossing,
  editableSignals,
  fitVerdict,
  formatDelta,
  formatOffset,
  outputStepFor,
  pairSeries,
  roundForInput,
  yRange,
} from './whatif';
import type { SignalSpec, WhatIfAnswer } from './types';

const edit = (signal: string, current: number | null, value: number | null, more: Partial<InputEdit> = {}): InputEdit => ({
  signal,
  current,
  value,
  atMin: 10,
  kind: 'step',
  rampMin: 5,
  ...more,
});

describe('buildScenarioRequest', () => {
  it('sends only the inputs that change, in seconds', () => {
    const r = buildScenarioRequest({
      name: ' slower ',
      horizonMin: 120,
      edits: [edit('speed_cmd', 2400, 1800), edit('valve_opening', 80, 80), edit('ambient_temp', 21, null), edit('x', 1, 3, { kind: 'ramp', atMin: 0, rampMin: 2.5 })],
    });
    expect(r).toEqual({
      ok: true,
      request: {
        scenarios: [
          {
            name: 'slower',
            horizon_s: 7200,
            output_step_s: 30,
            changes: [
              { signal: 'speed_cmd', kind: 'step', at_s: 600, value: 1800 },
              { signal: 'x', kind: 'ramp', from_s: 0, to_s: 150, to_value: 3 },
            ],
          },
        ],
      },
    });
  });

  it('changes an input without a current value', () => {
    const r = buildScenarioRequest({ name: '', horizonMin: 60, edits: [edit('speed_cmd', null, 2000)] });
    expect(r.ok && r.request.scenarios?.[0]).toMatchObject({ name: 'scenario', changes: [{ signal: 'speed_cmd', value: 2000 }] });
  });

  it('reports every mistake at once', () => {
    const r = buildScenarioRequest({
      name: '',
      horizonMin: 30,
      edits: [edit('a', 1, 2, { atMin: 45 }), edit('b', 1, 2, { kind: 'ramp', rampMin: 0 }), edit('c', 1, Number.NaN), edit('d', 1, 2, { atMin: -1 })],
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => e.field)).toEqual(['a', 'b', 'c', 'd']);
    expect(r.errors[0].message).toMatch(/after the horizon/);
  });

  it('asks for a change and a sensible horizon', () => {
    const none = buildScenarioRequest({ name: '', horizonMin: 60, edits: [edit('a', 1, 1)] });
    expect(none).toEqual({ ok: false, errors: [{ field: 'inputs', message: 'Change at least one input from its current value.' }] });
    const far = buildScenarioRequest({ name: '', horizonMin: 50_000, edits: [edit('a', 1, 2)] });
    expect(!far.ok && far.errors[0].field).toBe('horizon');
    const zero = buildScenarioRequest({ name: '', horizonMin: 0, edits: [edit('a', 1, 2, { atMin: 0 })] });
    expect(!zero.ok && zero.errors.map((e) => e.field)).toEqual(['horizon']);
  });
});

describe('outputStepFor', () => {
  it('keeps trajectories under 400 points with round steps', () => {
    expect(outputStepFor(60)).toBe(1);
    expect(outputStepFor(3600)).toBe(10);
    expect(outputStepFor(7200)).toBe(30);
    expect(outputStepFor(86_400)).toBe(300);
  });
});

/** Baseline every 30 s from t=1000 s; scenario every 60 s from the same start. */
function answer(): WhatIfAnswer {
  const start = 1000e9;
  return {
    twin: 'p',
    start,
    model: { step_s: 30, history_from: 0, history_to: start, outputs: [], skipped: [] },
    baseline: {
      start,
      step_s: 30,
      outputs: [{ signal: 'flow', values: [10, 11, 12, 13, 14], lower: [], upper: [], crossing: { at_s: 90, side: 'above', limit: 12.5, value: 13 } }],
      inputs: [],
      extrapolated_inputs: [],
    },
    scenarios: [
      {
        name: 's',
        result: {
          start,
          step_s: 60,
          outputs: [
            { signal: 'flow', values: [10, 9, 8], lower: [9, 8, 7], upper: [11, 10, 9], crossing: null, band_crossing: { at_s: 120, side: 'below', limit: 7.5, value: 7 } },
            { signal: 'power', values: [1, 2, 3], lower: [0, 1, 2], upper: [2, 3, 4] },
          ],
          inputs: [],
          extrapolated_inputs: [],
        },
        comparison: { outputs: [] },
      },
    ],
  };
}

describe('pairSeries', () => {
  it('puts the baseline on the scenario time axis', () => {
    const [flow, power] = pairSeries(answer());
    expect(flow.xs).toEqual([1000, 1060, 1120]);
    expect(flow.baseline).toEqual([10, 12, 14]);
    expect(flow.scenario).toEqual([10, 9, 8]);
    expect(flow.lower).toEqual([9, 8, 7]);
    expect(flow.crossingAt).toBeNull();
    expect(flow.bandCrossingAt).toBe(1120);
    expect(flow.baselineCrossingAt).toBe(1090);
    // No baseline output of that name: gaps, not zeros.
    expect(power.baseline).toEqual([null, null, null]);
  });

  it('leaves gaps where the baseline has no point or ends', () => {
    const a = answer();
    a.baseline.step_s = 45;
    a.baseline.outputs[0].values = [10, 11];
    expect(pairSeries(a)[0].baseline).toEqual([10, null, null]);
    expect(pairSeries(a, 3)).toEqual([]);
  });
});

describe('wording', () => {
  it('signs deltas with a real minus', () => {
    expect(formatDelta(-12.345, 'm³/h')).toBe('−12.35 m³/h');
    expect(formatDelta(3, '%')).toBe('+3 %');
    expect(formatDelta(0)).toBe('0');
    expect(formatDelta(Number.NaN)).toBe('—');
  });

  it('says when, from the scenario start', () => {
    expect(formatOffset(0)).toBe('at start');
    expect(formatOffset(42)).toBe('after 42 s');
    expect(formatOffset(5400)).toBe('after 1 h 30 min');
    expect(describeCrossing({ at_s: 1380, side: 'above', limit: 95, value: 96.25 }, '°C')).toBe('above 95 °C (96.25) after 23 min');
    expect(describeCrossing(null)).toBe('none');
  });

  it('grades fit quality on both scales', () => {
    expect(fitVerdict({ nrmse_horizon: 0.03, nrmse_std_horizon: 0.2 })).toBe('good');
    expect(fitVerdict({ nrmse_horizon: 0.15, nrmse_std_horizon: 0.4 })).toBe('fair');
    expect(fitVerdict({ nrmse_horizon: 0.03, nrmse_std_horizon: 0.7 })).toBe('fair');
    // Small against the range, but no better than the mean.
    expect(fitVerdict({ nrmse_horizon: 0.05, nrmse_std_horizon: 1.02 })).toBe('poor');
    expect(fitVerdict({ nrmse_horizon: 0.4, nrmse_std_horizon: 0.3 })).toBe('poor');
    expect(fitVerdict({ nrmse_horizon: Number.NaN, nrmse_std_horizon: 0.1 })).toBe('poor');
  });
});

describe('optimize', () => {
  it('builds the request from the used inputs', () => {
    const r = buildOptimizeRequest({
      sense: 'minimize',
      output: 'power',
      horizonMin: 60,
      inputs: [
        { signal: 'speed_cmd', use: true, min: 1500, max: 3000 },
        { signal: 'valve_opening', use: false, min: 20, max: 100 },
      ],
    });
    expect(r).toEqual({
      ok: true,
      request: { horizon_s: 3600, objective: { sense: 'minimize', terms: [{ signal: 'power' }] }, inputs: [{ signal: 'speed_cmd', min: 1500, max: 3000 }] },
    });
    const bad = buildOptimizeRequest({ sense: 'maximize', output: '', horizonMin: 60, inputs: [{ signal: 'a', use: true, min: 5, max: 5 }] });
    expect(!bad.ok && bad.errors.map((e) => e.field)).toEqual(['objective', 'a']);
  });

  it('copies the best settings into the scenario form as steps from the start', () => {
    const edits = [edit('speed_cmd', 2400, null, { atMin: 10, kind: 'ramp' }), edit('valve_opening', 80, 70)];
    const out = applySettings(edits, { settings: [{ signal: 'speed_cmd', value: 1987.6543 }], objective: 1, baseline_objective: 2, feasible: true });
    expect(out[0]).toMatchObject({ value: 1988, atMin: 0, kind: 'step' });
    expect(out[1]).toBe(edits[1]);
    expect(roundForInput(0.0123456)).toBe(0.01235);
    expect(roundForInput(42.4242)).toBe(42.42);
  });

  it('offers numeric inputs, then disturbances', () => {
    const s = (name: string, role: SignalSpec['role'], kind: SignalSpec['kind'] = 'float'): SignalSpec => ({ name, role, kind, unit: '' });
    expect(editableSignals([s('flow', 'output'), s('ambient', 'disturbance'), s('mode', 'input', 'string'), s('speed', 'input')]).map((x) => x.name)).toEqual(['speed', 'ambient']);
  });
});

describe('causeWhere', () => {
  it('names another twin and its relation', () => {
    const c = { twin: 'pump-1', relation: '', signal: 'flow', onset: 0, kind: 'relation_break' as const, score: 1, evidence: '' };
    expect(causeWhere(c, 'pump-1')).toBe('flow');
    expect(causeWhere({ ...c, twin: 'tank-1', relation: 'feeds' }, 'pump-1')).toBe('tank-1 (feeds) · flow');
  });
});

describe('yRange', () => {
  it('fits the data and shows a limit only when it is near', () => {
    const [a, b] = yRange(80, 84, 40, 135);
    expect(a).toBeCloseTo(80 - 0.32);
    expect(b).toBeCloseTo(84 + 0.32);
    // 86 is within one span (4) of 84: in view.
    expect(yRange(80, 84, undefined, 86)[1]).toBeCloseTo(86 + 0.48);
    expect(yRange(80, 84, 78, 86)).toEqual([78 - 0.64, 86 + 0.64]);
    expect(yRange(5, 5)).toEqual([5 - 0.04, 5 + 0.04]);
    expect(yRange(Number.NaN, Number.NaN, 0, 10)).toEqual([0, 10]);
  });
});
