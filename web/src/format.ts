// How times, ages, durations and values are written on screen.

import type { Value, ValueKind } from './types';

const NS_PER_MS = 1_000_000;

/** Epoch nanoseconds (as the API sends them) to epoch milliseconds. */
export function nsToMs(ns: number): number {
  return ns / NS_PER_MS;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** `14:03:27` on the day of `now`, `2026-01-30 14:03:27` on another day (local time). */
export function formatTime(ms: number, now: number = Date.now()): string {
  const d = new Date(ms);
  const n = new Date(now);
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const sameDay =
    d.getFullYear() === n.getFullYear() && d.getMonth() === n.getMonth() && d.getDate() === n.getDate();
  return sameDay ? clock : `${formatDate(ms)} ${clock}`;
}

/** `2026-01-30` (local time). */
export function formatDate(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/**
 * Labels of a time axis (uPlot splits in epoch s, `incrS` the tick spacing): `14:05`, or
 * `14:05:30` under a minute per tick, with the date (`01-30`) on a second line at the first
 * tick of a day other than today's and wherever the day changes; `01-30` alone for day ticks.
 */
export function timeTicks(splits: number[], incrS: number, now: number = Date.now()): string[] {
  const today = formatDate(now);
  return splits.map((s, i) => {
    const ms = s * 1000;
    const day = formatDate(ms);
    if (incrS >= 86_400) return day.slice(5);
    const d = new Date(ms);
    const clock =
      incrS < 60
        ? `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
        : `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    const prev = i > 0 ? formatDate(splits[i - 1] * 1000) : null;
    const showDate = prev === null ? day !== today : prev !== day;
    return showDate ? `${clock}\n${day.slice(5)}` : clock;
  });
}

/** How long ago: `now`, `42 s`, `5 min`, `3 h 12 min`, `2 d 4 h`. Future times (clock skew) read `now`. */
export function formatAge(ageMs: number | null): string {
  if (ageMs === null || !Number.isFinite(ageMs)) return '—';
  const s = Math.floor(ageMs / 1000);
  if (s < 1) return 'now';
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** A duration as the history API's `step` reads it: `500ms`, `10s`, `5m`, `2h`, `7d`. */
export function formatStep(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'm'],
    [1000, 's'],
  ];
  for (const [size, unit] of units) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.round(ms)}ms`;
}

/** A span for people: `15 min`, `6 h`, `7 d`, `1 h 30 min`. */
export function formatSpan(ms: number): string {
  return formatAge(ms) === 'now' ? `${Math.round(ms)} ms` : formatAge(ms);
}

/**
 * A number with a precision that suits its size and stays stable while it changes a little:
 * `1234.5`, `71.24`, `0.0123`.
 */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x);
  const a = Math.abs(x);
  if (a >= 1e6 || a < 1e-4) return x.toExponential(3);
  if (a >= 100) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

export function formatValue(v: Value | null | undefined, kind?: ValueKind): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return kind === 'int' ? String(Math.round(v)) : formatNumber(v);
  return String(v);
}

/** The normal range of a signal: `10 – 85 °C`, `≥ 10 °C`, `≤ 85 °C`, or `—`. */
export function formatRange(min: number | undefined, max: number | undefined, unit = ''): string {
  const u = unit ? ` ${unit}` : '';
  if (min !== undefined && max !== undefined) return `${min} – ${max}${u}`;
  if (min !== undefined) return `≥ ${min}${u}`;
  if (max !== undefined) return `≤ ${max}${u}`;
  return '—';
}

/** Epoch ms to the value of an `<input type="datetime-local">` (local time, seconds). */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  return `${formatDate(ms)}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** The value of an `<input type="datetime-local">` to epoch ms; `null` when empty or invalid. */
export function fromLocalInput(value: string): number | null {
  if (!value) return null;
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? ms : null;
}
