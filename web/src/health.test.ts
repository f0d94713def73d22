import { describe, expect, it } from 'vitest';

import { countHealths, STALE_MS, twinHealth, worst } from './health';
import type { AssetModel } from './types';

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

describe('rollup', () => {
  it('takes the worst and counts', () => {
    expect(worst(['green', 'grey', 'none'])).toBe('grey');
    expect(worst(['green', 'red'])).toBe('red');
    expect(worst([])).toBe('none');
    expect(countHealths(['green', 'red', 'green', 'none'])).toBe('1 red, 2 green');
  });
});
