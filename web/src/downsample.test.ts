import { describe, expect, it } from 'vitest';

import { alignBuckets, bucketsTouched, chooseStep, MAX_BUCKETS, STEPS_MS } from './downsample';

const T = Date.UTC(2026, 0, 31, 12, 0, 0);

describe('chooseStep', () => {
  it('picks the smallest round step within the bucket budget', () => {
    expect(chooseStep(T, T + 60_000)).toBe(100); // 600 buckets of 100 ms
    expect(chooseStep(T, T + 15 * 60_000)).toBe(1_000); // 900 buckets
    expect(chooseStep(T, T + 3_600_000)).toBe(5_000); // 720 buckets
    expect(chooseStep(T, T + 24 * 3_600_000)).toBe(120_000); // 720 buckets
    expect(chooseStep(T, T + 7 * 86_400_000)).toBe(900_000); // 672 buckets
  });

  it('never exceeds the budget, counting partial buckets at both ends as the server does', () => {
    for (let span = 1_000; span < 400 * 86_400_000; span = Math.ceil(span * 1.37)) {
      const from = T + 123_456;
      const step = chooseStep(from, from + span);
      expect(bucketsTouched(from, from + span, step)).toBeLessThanOrEqual(MAX_BUCKETS);
      const i = STEPS_MS.indexOf(step);
      if (i > 0) expect(bucketsTouched(from, from + span, STEPS_MS[i - 1])).toBeGreaterThan(MAX_BUCKETS);
    }
  });

  it('goes to whole days for ranges of years', () => {
    const step = chooseStep(T, T + 10 * 365 * 86_400_000);
    expect(step % 86_400_000).toBe(0);
    expect(bucketsTouched(T, T + 10 * 365 * 86_400_000, step)).toBeLessThanOrEqual(MAX_BUCKETS);
  });

  it('counts touched buckets', () => {
    expect(bucketsTouched(0, 10_000, 1000)).toBe(10);
    expect(bucketsTouched(500, 10_500, 1000)).toBe(11);
    expect(bucketsTouched(5, 5, 1000)).toBe(0);
  });
});

describe('alignBuckets', () => {
  const ns = (s: number) => (T / 1000 + s) * 1e9;
  const b = (s: number, value: number) => ({ time: '', ts: ns(s), value, count: 1 });

  it('lines up the answers on bucket centres', () => {
    const a = alignBuckets([[b(0, 1), b(10, 2)], [b(0, 0.5), b(10, 1.5)]], 10_000);
    expect(a.xs).toEqual([T / 1000 + 5, T / 1000 + 15]);
    expect(a.series).toEqual([
      [1, 2],
      [0.5, 1.5],
    ]);
  });

  it('breaks the line at a gap of missing buckets', () => {
    const a = alignBuckets([[b(0, 1), b(40, 2)]], 10_000);
    expect(a.series[0]).toEqual([1, null, 2]);
    expect(a.xs.length).toBe(3);
  });

  it('fills null where one answer lacks a bucket', () => {
    const a = alignBuckets([[b(0, 1), b(10, 2)], [b(10, 7)]], 10_000);
    expect(a.series[1]).toEqual([null, 7]);
  });
});
