import { describe, expect, it } from 'vitest';

import { parseRoute, safeNext } from './router';
import { backoffMs, parseMessage, streamUrl } from './live';

describe('parseRoute', () => {
  it('reads the hash routes', () => {
    expect(parseRoute('').name).toBe('fleet');
    expect(parseRoute('#/').name).toBe('fleet');
    expect(parseRoute('#/twins/pump%201')).toMatchObject({ name: 'twin', id: 'pump 1' });
    expect(parseRoute('#/models')).toMatchObject({ name: 'models' });
    expect(parseRoute('#/models/pump')).toMatchObject({ name: 'model', id: 'pump' });
    const r = parseRoute('#/signin?next=%2Ftwins%2Fa');
    expect(r.name).toBe('signin');
    expect(r.query.get('next')).toBe('/twins/a');
    expect(parseRoute('#/nope/x/y').name).toBe('notfound');
    expect(parseRoute('#/alarms')).toMatchObject({ name: 'alarms' });
    expect(parseRoute('#/alarms?view=cleared').query.get('view')).toBe('cleared');
    expect(parseRoute('#/alarms/A-000001')).toMatchObject({ name: 'alarm', id: 'A-000001' });
    expect(parseRoute('#/constructor/x').name).toBe('notfound');
    expect(parseRoute('#/twins/pump%201/whatif')).toMatchObject({ name: 'whatif', id: 'pump 1' });
    expect(parseRoute('#/advice')).toMatchObject({ name: 'advice' });
    expect(parseRoute('#/advice?view=closed').query.get('view')).toBe('closed');
    expect(parseRoute('#/advice/V-000001')).toMatchObject({ name: 'adviceItem', id: 'V-000001' });
    expect(parseRoute('#/advice/V-000001/x').name).toBe('notfound');
    expect(parseRoute('#/twins/pump-1/nope').name).toBe('notfound');
    expect(parseRoute('#/models/pump/whatif').name).toBe('notfound');
  });

  it('returns only to dashboard routes after sign-in', () => {
    expect(safeNext('/twins/a')).toBe('/twins/a');
    expect(safeNext('//evil.example')).toBe('/');
    expect(safeNext('https://evil.example')).toBe('/');
    expect(safeNext(null)).toBe('/');
    expect(safeNext('/signin')).toBe('/');
  });
});

describe('live stream', () => {
  it('puts the filter and token in the query', () => {
    expect(streamUrl({ protocol: 'http:', host: '127.0.0.1:8080' }, { twin: ['a', 'b'] }, 'dpl_x_y')).toBe(
      'ws://127.0.0.1:8080/api/v1/stream?twin=a%2Cb&type=reading&access_token=dpl_x_y',
    );
    expect(streamUrl({ protocol: 'https:', host: 'h' }, {}, null)).toBe('wss://h/api/v1/stream?type=reading');
  });

  it('asks for the event types a page wants, readings by default', () => {
    expect(streamUrl({ protocol: 'http:', host: 'h' }, { type: ['alarm'] }, null)).toBe('ws://h/api/v1/stream?type=alarm');
    expect(streamUrl({ protocol: 'http:', host: 'h' }, { twin: ['a'], type: ['reading', 'alarm'] }, null)).toBe(
      'ws://h/api/v1/stream?twin=a&type=reading%2Calarm',
    );
  });

  it('tells readings, alarm changes and lagged notices apart', () => {
    const reading = { type: 'reading', twin: 'a', model: 'm', time: '', ts: 1, values: { x: 1 }, late: false };
    expect(parseMessage(JSON.stringify(reading))).toEqual({ kind: 'reading', event: reading });
    const { type: _, ...untyped } = reading;
    expect(parseMessage(JSON.stringify(untyped)).kind).toBe('reading');
    const alarm = { type: 'alarm', twin: 'a', model: 'm', time: '', ts: 1, change: 'raised', alarm: { id: 'A-1' } };
    expect(parseMessage(JSON.stringify(alarm))).toEqual({ kind: 'alarm', event: alarm });
    const advice = { type: 'advice', twin: 'a', model: 'm', time: '', ts: 1, change: 'opened', advice: { id: 'V-000001' } };
    expect(parseMessage(JSON.stringify(advice))).toEqual({ kind: 'advice', event: advice });
    expect(parseMessage('{"type":"advice"}').kind).toBe('other');
    expect(parseMessage('{"type":"lagged","skipped":3}')).toEqual({ kind: 'lagged', skipped: 3 });
    expect(parseMessage('{"type":"alarm"}').kind).toBe('other');
    expect(parseMessage('{"type":"future"}').kind).toBe('other');
    expect(parseMessage('not json').kind).toBe('other');
    expect(parseMessage('null').kind).toBe('other');
  });

  it('backs off up to 8 s', () => {
    expect([0, 1, 2, 3, 4, 10].map(backoffMs)).toEqual([500, 1000, 2000, 4000, 8000, 8000]);
  });
});
