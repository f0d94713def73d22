import { describe, expect, it } from 'vitest';

import { alarmHealth, countHealths, STALE_MS, twinHealth, worst } from './health';
import type { Alarm, AssetModel } from './types';

const pump: AssetModel = {
  id: 'pump',
  name: 'Pump',
  version: 1,
  description: '',
  signals: [
    { name: 'bearing_temp', unit: '°C', kind: 'float', min: 10, max: 85, role: 'output' },
    { name: 'running', unit: '', kind: 'bool', role: 'output' },
  ],
  properties: [],
  relations: [],
};
const NOW = Date.UTC(2026, 0, 31, 12);

describe('twinHealth', () => {
  it('is red when a signal is out of its normal range, with the reason', () => {
    const v = twinHealth(pump, { bearing_temp: { value: 91.5, ms: NOW } }, NOW);
    expect(v.health).toBe('red');
    expect(v.reasons).toEqual(['bearing_temp 91.50 °C above max 85']);
    expect(twinHealth(pump, { bearing_temp: { value: 5, ms: NOW } }, NOW).health).toBe('red');
  });

  it('is grey when stale or never reported, green otherwise', () => {
    expect(twinHealth(pump, { bearing_temp: { value: 50, ms: NOW - STALE_MS - 1 } }, NOW).health).toBe('grey');
    expect(twinHealth(pump, {}, NOW)).toEqual({ health: 'grey', reasons: ['no readings yet'] });
    expect(twinHealth(pump, { bearing_temp: { value: 50, ms: NOW - 1000 }, running: { value: true, ms: NOW } }, NOW).health).toBe('green');
  });

  it('stays red when the out-of-range value is stale', () => {
    expect(twinHealth(pump, { bearing_temp: { value: 99, ms: NOW - 10 * STALE_MS } }, NOW).health).toBe('red');
  });

  it('has none for models without signals', () => {
    expect(twinHealth({ ...pump, signals: [] }, {}, NOW).health).toBe('none');
    expect(twinHealth(undefined, {}, NOW).health).toBe('none');
  });
});

function alarm(over: Partial<Alarm>): Alarm {
  return {
    id: 'A-000007',
    twin: 'pump-1',
    model: 'pump',
    state: 'active',
    severity: 'warning',
    condition: true,
    summary: 'bearing_temp above expected (level)',
    raised_at: '2026-01-31T12:00:00Z',
    raised_ts: NOW * 1e6,
    last_ts: NOW * 1e6,
    peak_score: 0.6,
    last_score: 0.6,
    occurrences: 1,
    signals: [],
    acknowledged: false,
    history: [],
    ...over,
  };
}

describe('twinHealth with an alarm', () => {
  const fine = { bearing_temp: { value: 50, ms: NOW } };

  it('takes an open alarm\'s severity, and says why first', () => {
    const v = twinHealth(pump, fine, NOW, alarm({ severity: 'major' }));
    expect(v.health).toBe('major');
    expect(v.reasons).toEqual(['major alarm A-000007: bearing_temp above expected (level)']);
    expect(twinHealth(pump, fine, NOW, alarm({ severity: 'critical', state: 'acknowledged', acknowledged: true })).health).toBe('critical');
  });

  it('ranks a warning below out of range, major and critical above', () => {
    const out = { bearing_temp: { value: 99, ms: NOW } };
    expect(twinHealth(pump, out, NOW, alarm({ severity: 'warning' })).health).toBe('red');
    expect(twinHealth(pump, out, NOW, alarm({ severity: 'major' })).health).toBe('major');
    const stale = { bearing_temp: { value: 50, ms: NOW - 2 * STALE_MS } };
    expect(twinHealth(pump, stale, NOW, alarm({ severity: 'warning' })).health).toBe('warning');
  });

  it('is not coloured by a shelved or cleared alarm; a shelved one is still named', () => {
    const shelved = twinHealth(pump, fine, NOW, alarm({ severity: 'critical', state: 'shelved' }));
    expect(shelved.health).toBe('green');
    expect(shelved.reasons[0]).toContain('(shelved)');
    expect(twinHealth(pump, fine, NOW, alarm({ state: 'cleared' }))).toEqual({ health: 'green', reasons: [] });
    expect(alarmHealth(null)).toBe('none');
  });
});

describe('rollup', () => {
  it('takes the worst and counts', () => {
    expect(worst(['green', 'grey', 'none'])).toBe('grey');
    expect(worst(['green', 'red'])).toBe('red');
    expect(worst([])).toBe('none');
    expect(countHealths(['green', 'red', 'green', 'none'])).toBe('1 red, 2 green');
  });

  it('puts alarm severities in order around out of range', () => {
    expect(worst(['red', 'warning', 'green'])).toBe('red');
    expect(worst(['red', 'major'])).toBe('major');
    expect(worst(['major', 'critical', 'grey'])).toBe('critical');
    expect(worst(['warning', 'grey'])).toBe('warning');
    expect(countHealths(['green', 'warning', 'critical', 'red', 'critical'])).toBe('2 critical, 1 red, 1 warning, 1 green');
  });
});
