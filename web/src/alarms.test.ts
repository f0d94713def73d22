import { describe, expect, it } from 'vitest';

import { allowedActions, errorText, formatDeviation, parseView, twinAlarmAfter, upsertAlarm, VIEW_STATES } from './alarms';
import { ApiError } from './api';
import type { Alarm } from './types';

const S = 1_000_000_000;

function alarm(over: Partial<Alarm> = {}): Alarm {
  return {
    id: 'A-000001',
    twin: 'pump-1',
    model: 'pump',
    state: 'active',
    severity: 'major',
    condition: true,
    summary: 'bearing_temp above expected (level)',
    raised_at: '2026-01-31T12:00:00Z',
    raised_ts: 1_769_860_800 * S,
    last_ts: 1_769_860_810 * S,
    peak_score: 0.83,
    last_score: 0.7,
    occurrences: 1,
    signals: [],
    acknowledged: false,
    history: [{ at: '2026-01-31T12:00:00Z', what: 'raised' }],
    ...over,
  };
}

describe('allowedActions', () => {
  it('follows the alarm book: ack once, shelve open, unshelve shelved, clear open', () => {
    expect(allowedActions(alarm())).toEqual({ ack: true, shelve: true, unshelve: false, clear: true });
    expect(allowedActions(alarm({ state: 'acknowledged', acknowledged: true }))).toEqual({ ack: false, shelve: true, unshelve: false, clear: true });
    expect(allowedActions(alarm({ state: 'shelved' }))).toEqual({ ack: true, shelve: false, unshelve: true, clear: true });
    expect(allowedActions(alarm({ state: 'cleared' }))).toEqual({ ack: false, shelve: false, unshelve: false, clear: false });
  });
});

describe('upsertAlarm', () => {
  const open = VIEW_STATES.open;
  const a1 = alarm();
  const a2 = alarm({ id: 'A-000002', twin: 'pump-2', raised_ts: a1.raised_ts + 60 * S });

  it('adds newest first and replaces by id', () => {
    const list = upsertAlarm(upsertAlarm([], a1, open), a2, open);
    expect(list.map((a) => a.id)).toEqual(['A-000002', 'A-000001']);
    const acked = alarm({ state: 'acknowledged', acknowledged: true, history: [...a1.history, { at: '2026-01-31T12:01:00Z', what: 'acknowledged', by: 'admin' }] });
    const next = upsertAlarm(list, acked, open);
    expect(next.map((a) => [a.id, a.state])).toEqual([
      ['A-000002', 'active'],
      ['A-000001', 'acknowledged'],
    ]);
    expect(list[1].state).toBe('active');
  });

  it('drops an alarm whose state leaves the view, and takes it in the other view', () => {
    const cleared = alarm({ state: 'cleared', history: [...a1.history, { at: '2026-01-31T12:05:00Z', what: 'cleared', by: 'admin' }] });
    expect(upsertAlarm([a1, a2], cleared, open).map((a) => a.id)).toEqual(['A-000002']);
    expect(upsertAlarm([], cleared, VIEW_STATES.cleared).map((a) => a.id)).toEqual(['A-000001']);
    expect(upsertAlarm([], a1, VIEW_STATES.cleared)).toEqual([]);
  });

  it('ignores an older version arriving after a newer one', () => {
    const acked = alarm({ state: 'acknowledged', acknowledged: true, history: [...a1.history, { at: '2026-01-31T12:01:00Z', what: 'acknowledged' }] });
    const list = upsertAlarm([acked], a1, open);
    expect(list[0].state).toBe('acknowledged');
  });

  it('sorts equal raise times by id, newest id first', () => {
    const b = alarm({ id: 'A-000003' });
    expect(upsertAlarm([a1], b, open).map((a) => a.id)).toEqual(['A-000003', 'A-000001']);
  });
});

describe('twinAlarmAfter', () => {
  const a1 = alarm();
  it('keeps the open alarm when an old cleared one changes', () => {
    const old = alarm({ id: 'A-000000', state: 'cleared' });
    expect(twinAlarmAfter(a1, old)).toBe(a1);
    expect(twinAlarmAfter(null, old)).toBe(old);
  });
  it('takes a newer version or a new open alarm', () => {
    const cleared = alarm({ state: 'cleared', history: [...a1.history, { at: '2026-01-31T12:09:00Z', what: 'cleared' }] });
    expect(twinAlarmAfter(a1, cleared)).toBe(cleared);
    const a2 = alarm({ id: 'A-000002' });
    expect(twinAlarmAfter(cleared, a2)).toBe(a2);
    expect(twinAlarmAfter(cleared, a1)).toBe(cleared);
  });
});

describe('words', () => {
  it('reads views from the query', () => {
    expect(parseView(null)).toBe('open');
    expect(parseView('cleared')).toBe('cleared');
    expect(parseView('all')).toBe('all');
    expect(parseView('x')).toBe('open');
  });

  it('writes observed against expected', () => {
    expect(formatDeviation(60, 90)).toBe('90 (expected 60, +50 %)');
    expect(formatDeviation(60.1, 59.2)).toBe('59.20 (expected 60.10, −1.5 %)');
    expect(formatDeviation(0, 3)).toBe('3 (expected 0)');
    expect(formatDeviation(12, null)).toBe('no reading (expected 12)');
  });

  it('shows the server error with its field', () => {
    expect(errorText(new ApiError(400, 'a false alarm has no fault kind', 'fault_kind'))).toBe('a false alarm has no fault kind (field fault_kind)');
    expect(errorText(new ApiError(409, 'alarm A-1 is acknowledged: already acknowledged'))).toBe('Not possible now: alarm A-1 is acknowledged: already acknowledged');
    expect(errorText(new ApiError(400, "fault_kind: contains ' '", 'fault_kind'))).toBe("fault_kind: contains ' '");
    expect(errorText(new Error('boom'))).toBe('boom');
  });
});
