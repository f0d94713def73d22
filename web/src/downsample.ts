// Choosing the bucket width of a history query, and lining up the mean, min and max answers
// for one chart.

import type { Bucket } from './types';

/** Bucket widths the dashboard asks for, in ms: round numbers people read on an axis. */
export const STEPS_MS: readonly number[] = [
  100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000,
  900_000, 1_800_000, 3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
  172_800_000, 604_800_000,
];

/** At most this many buckets per query: about one per pixel column of a wide chart. */
export const MAX_BUCKETS = 1000;

const DAY_MS = 86_400_000;

/**
 * How many epoch-aligned buckets of `stepMs` the range `[fromMs, toMs)` touches, counted as
 * the server counts them (crates/doppel-store/src/query.rs `check_downsample`).
 */
export function bucketsTouched(fromMs: number, toMs: number, stepMs: number): number {
  if (toMs <= fromMs) return 0;
  return Math.floor((toMs - 1) / stepMs) - Math.floor(fromMs / stepMs) + 1;
}

/** The smallest round step that keeps the range within `maxBuckets` buckets. */
export function chooseStep(fromMs: number, toMs: number, maxBuckets = MAX_BUCKETS): number {
  for (const step of STEPS_MS) {
    if (bucketsTouched(fromMs, toMs, step) <= maxBuckets) return step;
  }
  // Longer than years: whole days.
  let days = Math.ceil((toMs - fromMs) / DAY_MS / maxBuckets);
  while (bucketsTouched(fromMs, toMs, days * DAY_MS) > maxBuckets) days++;
  return days * DAY_MS;
}

/** Columns for uPlot: x in seconds, then one array per answer, `null` where it has no bucket. */
export interface AlignedBuckets {
  xs: number[];
  series: (number | null)[][];
}

/**
 * Lines up answers of the same step (mean, min, max) on bucket centres. A bucket missing from
 * every answer between two present ones becomes a `null` row so the line breaks at the gap
 * instead of bridging it.
 */
export function alignBuckets(answers: Bucket[][], stepMs: number): AlignedBuckets {
  const stepNs = stepMs * 1e6;
  const starts = new Set<number>();
  for (const a of answers) for (const b of a) starts.add(b.ts);
  const sorted = [...starts].sort((a, b) => a - b);
  const rows: number[] = [];
  for (let i = 0; i < sorted.length; i++) {
    if (i > 0 && sorted[i] - sorted[i - 1] > stepNs * 1.5) rows.push(sorted[i - 1] + stepNs);
    rows.push(sorted[i]);
  }
  const index = new Map(rows.map((ts, i) => [ts, i]));
  const series = answers.map((a) => {
    const col: (number | null)[] = new Array(rows.length).fill(null);
    for (const b of a) col[index.get(b.ts) as number] = b.value;
    return col;
  });
  const xs = rows.map((ts) => (ts + stepNs / 2) / 1e9);
  return { xs, series };
}
