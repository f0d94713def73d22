import { describe, expect, it } from 'vitest';

import { timeTicks, formatAge, formatNumber, formatRange, formatStep, formatTime, formatValue, fromLocalInput, toLocalInput } from './format';

const T = Date.UTC(2026, 0, 31, 12, 0, 0);

describe('formatTime', () => {
  it('shows the clock on the same day and the date on another', () => {
    expect(formatTime(T + 3_723_000, T)).toBe('13:02:03');
    expect(formatTime(T - 86_400_000, T)).toBe('2026-01-30 12:00:00');
  });
});

describe('formatAge', () => {
  it('picks the unit by size', () => {
    expect(formatAge(null)).toBe('—');
    expect(formatAge(400)).toBe('now');
    expect(formatAge(-5000)).toBe('now');
    expect(formatAge(42_000)).toBe('42 s');
    expect(formatAge(5 * 60_000 + 59_000)).toBe('5 min');
    expect(formatAge(3 * 3_600_000)).toBe('3 h');
    expect(formatAge(3 * 3_600_000 + 12 * 60_000)).toBe('3 h 12 min');
    expect(formatAge(2 * 86_400_000 + 4 * 3_600_000)).toBe('2 d 4 h');
  });
});

describe('formatStep', () => {
  it('writes what the history API parses', () => {
    expect(formatStep(100)).toBe('100ms');
    expect(formatStep(1000)).toBe('1s');
    expect(formatStep(15_000)).toBe('15s');
    expect(formatStep(120_000)).toBe('2m');
    expect(formatStep(3_600_000)).toBe('1h');
    expect(formatStep(90_000)).toBe('90s');
    expect(formatStep(7 * 86_400_000)).toBe('7d');
  });
});

describe('values', () => {
  it('keeps a stable precision per magnitude', () => {
    expect(formatNumber(71.2)).toBe('71.20');
    expect(formatNumber(1234.56)).toBe('1234.6');
    expect(formatNumber(0.012345)).toBe('0.0123');
    expect(formatNumber(42)).toBe('42');
    expect(formatNumber(2.5e7 + 0.5)).toBe('2.500e+7');
    expect(formatNumber(25_000_000)).toBe('25000000');
    expect(formatValue(true)).toBe('true');
    expect(formatValue(null)).toBe('—');
    expect(formatValue(3, 'int')).toBe('3');
  });
  it('writes normal ranges', () => {
    expect(formatRange(10, 85, '°C')).toBe('10 – 85 °C');
    expect(formatRange(10, undefined)).toBe('≥ 10');
    expect(formatRange(undefined, 85, 'bar')).toBe('≤ 85 bar');
    expect(formatRange(undefined, undefined)).toBe('—');
  });
});

describe('datetime-local', () => {
  it('round-trips to the second', () => {
    expect(toLocalInput(T)).toBe('2026-01-31T12:00:00');
    expect(fromLocalInput(toLocalInput(T + 5000))).toBe(T + 5000);
    expect(fromLocalInput('')).toBeNull();
    expect(fromLocalInput('garbage')).toBeNull();
  });
});

describe('timeTicks', () => {
  const s = T / 1000;
  it('writes clock times, seconds only for fine ticks', () => {
    expect(timeTicks([s, s + 300], 300, T)).toEqual(['12:00', '12:05']);
    expect(timeTicks([s, s + 15], 15, T)).toEqual(['12:00:00', '12:00:15']);
  });
  it('adds the date where the day changes or is not today', () => {
    expect(timeTicks([s + 11 * 3600, s + 12 * 3600], 3600, T)).toEqual(['23:00', '00:00\n02-01']);
    expect(timeTicks([s - 86_400], 3600, T)).toEqual(['12:00\n01-30']);
    expect(timeTicks([s, s + 86_400], 86_400, T)).toEqual(['01-31', '02-01']);
  });
});
