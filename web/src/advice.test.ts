import { describe, expect, it } from 'vitest';

import {
  ADVICE_VIEW_STATES,
  adviceStateText,
  buildDone,
  buildSchedule,
  caseRoute,
  defaultScheduleMs,
  formatConfidence,
  formatDirection,
  formatDueRelative,
  formatTimeToLimit,
  formatTrend,
  isOverdue,
  parseAdviceView,
  sortAdvice,
  upsertAdvice,
} from './advice';
import type { AdviceItem, SignalEvidence } from './types';

const MS = 1_000_000;
const H = 3_600_000;
const NOW = Date.UTC(2026, 11, 1, 12);

function item(over: Partial<AdviceItem> = {}, dueMs = NOW + 48 * H): AdviceItem {
  return {
    id: 'V-000001',
    twin: 'pump-1',
    model: 'pump',
    failure_mode: 'bearing_wear',
    state: 'open',
    recommendation: {
      failure_mode: 'bearing_wear',
      name: 'Bearing wear',
      action: 'Inspect and regrease the bearings',
      actions: ['Inspect and regrease the bearings', 'Replace the bearings'],
      urgency: 'high',
      due_by: dueMs * MS,
      due_in_h: 48,
      confidence: 0.724,
      match_score: 0.8,
      coverage: 0.9,
      evidence: [],
      risk: { consequence: 'seizure', summary: 'bearing_temp leaves its range in about 4 days' },
      summary: 'Bearing wear on pump-1',
    },
    opened_at: '2026-12-01T10:00:00Z',
    opened_ts: (NOW - 2 * H) * MS,
    updated_at: '2026-12-01T11:00:00Z',
    updated_ts: (NOW - H) * MS,
    history: [{ at: '2026-12-01T10:00:00Z', what: 'opened' }],
    ...over,
  };
}

const later = (a: AdviceItem, what: string, at: string, over: Partial<AdviceItem> = {}): AdviceItem => ({
  ...a,
  ...over,
  history: [...a.history, { at, what }],
});

describe('views and order', () => {
  it('reads views from the query', () => {
    expect(parseAdviceView(null)).toBe('active');
    expect(parseAdviceView('closed')).toBe('closed');
    expect(parseAdviceView('all')).toBe('all');
    expect(parseAdviceView('done')).toBe('active');
  });

  it('puts the soonest due first, closed items last, newest closed first', () => {
    const a = item({ id: 'V-000001' }, NOW + 10 * H);
    const b = item({ id: 'V-000002' }, NOW + 2 * H);
    const c = item({ id: 'V-000003' }, NOW + 2 * H);
    const d = later(item({ id: 'V-000004' }, NOW), 'done', '2026-12-01T11:30:00Z', { state: 'done' });
    const e = later(item({ id: 'V-000005' }, NOW), 'withdrawn', '2026-12-01T11:50:00Z', { state: 'withdrawn' });
    expect(sortAdvice([d, a, e, c, b]).map((x) => x.id)).toEqual(['V-000002', 'V-000003', 'V-000001', 'V-000005', 'V-000004']);
  });
});

describe('upsertAdvice', () => {
  const active = ADVICE_VIEW_STATES.active;
  const a = item();

  it('adds, replaces by id and drops an item that leaves the view', () => {
    const b = item({ id: 'V-000002' }, NOW + H);
    const list = upsertAdvice(upsertAdvice([], a, active), b, active);
    expect(list.map((x) => x.id)).toEqual(['V-000002', 'V-000001']);
    const scheduled = later(a, 'scheduled', '2026-12-01T12:00:00Z', { state: 'scheduled' });
    expect(upsertAdvice(list, scheduled, active).find((x) => x.id === a.id)?.state).toBe('scheduled');
    const done = later(scheduled, 'done', '2026-12-01T13:00:00Z', { state: 'done' });
    expect(upsertAdvice(list, done, active).map((x) => x.id)).toEqual(['V-000002']);
    expect(upsertAdvice([], done, ADVICE_VIEW_STATES.closed).map((x) => x.id)).toEqual(['V-000001']);
  });

  it('ignores an older version arriving after a newer one', () => {
    const scheduled = later(a, 'scheduled', '2026-12-01T12:00:00Z', { state: 'scheduled' });
    expect(upsertAdvice([scheduled], a, active)[0].state).toBe('scheduled');
    const done = later(scheduled, 'done', '2026-12-01T13:00:00Z', { state: 'done' });
    // A capped history ties in length; a closed item still never goes back to active.
    expect(upsertAdvice([done], { ...scheduled, history: done.history }, ADVICE_VIEW_STATES.all)[0].state).toBe('done');
  });
});

describe('words', () => {
  it('says how due an item is', () => {
    expect(formatDueRelative(NOW + 76 * H, NOW)).toBe('in 3 d 4 h');
    expect(formatDueRelative(NOW - 2 * H, NOW)).toBe('overdue by 2 h');
    expect(formatDueRelative(NOW + 10_000, NOW)).toBe('due now');
    expect(isOverdue(item({}, NOW - H), NOW)).toBe(true);
    expect(isOverdue(item({ state: 'done' }, NOW - H), NOW)).toBe(false);
  });

  it('writes confidence, state and direction', () => {
    expect(formatConfidence(0.724)).toBe('72 %');
    expect(formatConfidence(1.2)).toBe('100 %');
    expect(formatConfidence(Number.NaN)).toBe('—');
    expect(adviceStateText(item({ state: 'scheduled', scheduled: { for: '', for_ts: (NOW + 3 * H) * MS, by: 'admin', at: '' } }), NOW)).toBe('scheduled for 15:00:00');
    expect(adviceStateText(item({ state: 'done', done: { outcome: 'not_found', by: 'admin', at: '', at_ts: 0 } }), NOW)).toBe('done · nothing found');
    const e: SignalEvidence = { signal: 'bearing_temp', expected_direction: 'rising', strength: 0.8, weight: 1 };
    expect(formatDirection(e)).toBe('rising, not seen yet');
    expect(formatDirection({ ...e, observed_direction: 'rising' })).toBe('rising');
    expect(formatDirection({ ...e, observed_direction: 'falling' })).toBe('rising, seen falling');
  });

  it('writes trends with sign and unit', () => {
    expect(formatTrend(0.42, '°C')).toBe('+0.420 °C/h');
    expect(formatTrend(-1.25, 'bar')).toBe('−1.25 bar/h');
    expect(formatTrend(0)).toBe('0 /h');
    expect(formatTrend(undefined)).toBe('—');
  });

  it('says when a limit is crossed, or why not', () => {
    const threshold = { value: 85, upper: true };
    expect(formatTimeToLimit({ status: 'already_beyond', level: 90, threshold }, NOW, '°C')).toBe('beyond the limit now (> 85 °C)');
    expect(
      formatTimeToLimit({ status: 'predicted', threshold, earliest: (NOW + 8 * H) * MS, likely: (NOW + 12 * H) * MS, earliest_h: 8, likely_h: 12, trend_per_hour: 0.3 }, NOW, '°C'),
    ).toBe('likely in 12 h, earliest in 8 h (limit > 85 °C)');
    expect(formatTimeToLimit({ status: 'predicted', threshold: { value: 2, upper: false }, earliest: (NOW + 8 * H) * MS, likely: null, earliest_h: 8, trend_per_hour: -0.1 }, NOW)).toBe(
      'earliest in 8 h (limit < 2)',
    );
    expect(formatTimeToLimit({ status: 'not_predicted', threshold, why: { reason: 'no_trend_toward_limit' } }, NOW)).toBe('no trend toward the limit');
    expect(formatTimeToLimit({ status: 'not_predicted', threshold, why: { reason: 'cannot_forecast', detail: 'too few buckets' } }, NOW)).toBe('cannot forecast: too few buckets');
    expect(formatTimeToLimit(undefined, NOW)).toBe('—');
  });

  it('links past cases that have pages', () => {
    expect(caseRoute('V-000003')).toBe('/advice/V-000003');
    expect(caseRoute('A-000010')).toBe('/alarms/A-000010');
    expect(caseRoute('wo-17')).toBeNull();
  });
});

describe('requests', () => {
  it('builds the schedule request and refuses a missing time', () => {
    expect(buildSchedule(Date.UTC(2026, 11, 3, 8), '  J. Smith, parts ordered ')).toEqual({ ok: true, body: { for: '2026-12-03T08:00:00.000Z', note: 'J. Smith, parts ordered' } });
    expect(buildSchedule(Date.UTC(2026, 11, 3, 8), '')).toEqual({ ok: true, body: { for: '2026-12-03T08:00:00.000Z' } });
    expect(buildSchedule(null, 'x')).toMatchObject({ ok: false, field: 'for' });
    expect(buildSchedule(NOW, 'é'.repeat(2049))).toMatchObject({ ok: false, field: 'note' });
  });

  it('builds the done request; other needs a note', () => {
    expect(buildDone('confirmed', '')).toEqual({ ok: true, body: { outcome: 'confirmed' } });
    expect(buildDone('not_found', ' clean ')).toEqual({ ok: true, body: { outcome: 'not_found', note: 'clean' } });
    expect(buildDone('other', ' ')).toMatchObject({ ok: false, field: 'note' });
    expect(buildDone('other', 'coupling loose')).toEqual({ ok: true, body: { outcome: 'other', note: 'coupling loose' } });
    expect(buildDone('', '')).toMatchObject({ ok: false, field: 'outcome' });
  });

  it('starts the schedule at the due-by, or the next hour when that has passed', () => {
    expect(defaultScheduleMs(item({}, NOW + 5 * H + 90_500), NOW)).toBe(NOW + 5 * H + 60_000);
    expect(defaultScheduleMs(item({}, NOW - H), NOW + 60_000)).toBe(NOW + H);
    const s = item({ state: 'scheduled', scheduled: { for: '', for_ts: (NOW + 30 * H) * MS, by: 'a', at: '' } });
    expect(defaultScheduleMs(s, NOW)).toBe(NOW + 30 * H);
  });
});
