import { describe, expect, it } from 'vitest';

import { parseRoute, safeNext } from './router';
import { backoffMs, streamUrl } from './live';

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

  it('backs off up to 8 s', () => {
    expect([0, 1, 2, 3, 4, 10].map(backoffMs)).toEqual([500, 1000, 2000, 4000, 8000, 8000]);
  });
});
