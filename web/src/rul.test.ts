import { describe, expect, it } from 'vitest';

import { routeShape } from './api';
import { countUnestimated, formatLife, formatRul, rulUnavailable, worstRul } from './rul';
import type { RulEstimate } from './types';

function est(twin: string, rul_h: number, over: Partial<RulEstimate> = {}): RulEstimate {
  return { twin, model: 'pump', status: 'estimated', rul_h, lower_h: rul_h * 0.6, upper_h: rul_h * 1.5, as_of: '2026-12-01T03:00:00Z', trained_on: 6, capped: false, ...over };
}

describe('formatLife', () => {
  it('reads hours below two days, days from there on', () => {
    expect(formatLife(7.46)).toBe('7.5 h');
    expect(formatLife(36.4)).toBe('36 h');
    expect(formatLife(47.9)).toBe('48 h');
    expect(formatLife(48)).toBe('2.0 days');
    expect(formatLife(76.8)).toBe('3.2 days');
    expect(formatLife(Number.NaN)).toBe('—');
  });
});

describe('formatRul', () => {
  it('gives the estimate with its interval in the same unit', () => {
    expect(formatRul(est('p', 76.8, { lower_h: 45.6, upper_h: 120 }))).toBe('3.2 days (1.9–5.0)');
    expect(formatRul(est('p', 36, { lower_h: 20.2, upper_h: 61 }))).toBe('36 h (20–61)');
    expect(formatRul(est('p', 5, { lower_h: 2.5, upper_h: 9 }))).toBe('5.0 h (2.5–9.0)');
    expect(formatRul(est('p', 36, { lower_h: undefined }))).toBe('36 h');
  });

  it('says "at least" when the model saturates at its cap', () => {
    expect(formatRul(est('p', 125, { capped: true }))).toBe('at least 5.2 days');
  });

  it('has nothing to say without an estimate', () => {
    const r: RulEstimate = { twin: 'p', model: 'pump', status: 'untrained', reason: 'no run-to-failure histories of pump' };
    expect(formatRul(r)).toBeNull();
    expect(rulUnavailable(r)).toBe('no run-to-failure histories of pump');
    expect(rulUnavailable({ twin: 'p', model: 'pump', status: 'no_history' })).toBe('not enough history of this twin yet');
    expect(rulUnavailable(est('p', 10))).toBe('');
  });
});

describe('worstRul', () => {
  it('lists the shortest estimated lives first and leaves out the rest', () => {
    const list: RulEstimate[] = [
      est('pump-3', 200),
      { twin: 'pump-9', model: 'pump', status: 'untrained', reason: 'x' },
      est('pump-1', 50),
      est('pump-2', 50, { lower_h: 10 }),
      est('pump-4', 400),
      { twin: 'pump-5', model: 'pump', status: 'estimated' },
    ];
    expect(worstRul(list, 3).map((r) => r.twin)).toEqual(['pump-2', 'pump-1', 'pump-3']);
    expect(worstRul(list, 10)).toHaveLength(4);
    expect(worstRul(list, 0)).toEqual([]);
    expect(countUnestimated(list)).toBe(2);
  });
});

describe('routeShape', () => {
  it('unnames path parameters', () => {
    expect(routeShape('/api/v1/twins/{id}/rul')).toBe('/api/v1/twins/{}/rul');
    expect(routeShape('/api/v1/twins/{twin}/rul')).toBe('/api/v1/twins/{}/rul');
    expect(routeShape('/api/v1/rul')).toBe('/api/v1/rul');
  });
});
