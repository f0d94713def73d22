import { describe, expect, it } from 'vitest';

import { RingSeries } from './ring';

const xs = (r: RingSeries) => Array.from(r.view()[0]);

describe('RingSeries', () => {
  it('grows, then drops the oldest, always giving one contiguous window', () => {
    const r = new RingSeries(4, 8);
    for (let i = 0; i < 20; i++) expect(r.push(i, i * 10)).toBe(true);
    expect(r.capacity).toBe(8);
    expect(xs(r)).toEqual([12, 13, 14, 15, 16, 17, 18, 19]);
    expect(Array.from(r.view()[1])).toEqual([120, 130, 140, 150, 160, 170, 180, 190]);
  });

  it('refuses points older than the newest', () => {
    const r = new RingSeries(4, 8);
    r.push(5, 1);
    expect(r.push(4, 1)).toBe(false);
    expect(r.push(5, 2)).toBe(true);
    expect(r.length).toBe(2);
  });

  it('trims by time', () => {
    const r = new RingSeries(4, 8);
    for (let i = 0; i < 7; i++) r.push(i, i);
    r.trimBefore(4.5);
    expect(xs(r)).toEqual([5, 6]);
    r.push(7, 7);
    expect(xs(r)).toEqual([5, 6, 7]);
  });

  it('puts older history in front of live points', () => {
    const r = new RingSeries(2, 16);
    r.push(10, 100);
    r.push(11, 110);
    r.prepend([7, 8, 9, 10, 11], [70, 80, 90, 0, 0]);
    expect(xs(r)).toEqual([7, 8, 9, 10, 11]);
    expect(Array.from(r.view()[1])).toEqual([70, 80, 90, 100, 110]);
    r.push(12, 120);
    expect(xs(r)).toEqual([7, 8, 9, 10, 11, 12]);
  });

  it('keeps the newest when history overflows the maximum', () => {
    const r = new RingSeries(2, 4);
    r.push(10, 10);
    r.prepend([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]);
    expect(xs(r)).toEqual([3, 4, 5, 10]);
  });
});
