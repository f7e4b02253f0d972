import { describe, expect, it } from 'vitest';
import { parseInstant } from '../../src/events/instant.ts';

const ms = (s: string) => {
  const r = parseInstant(s);
  if (!r.ok) throw new Error(r.reason);
  return r.ms;
};

describe('parseInstant', () => {
  it('reads offsets and Z as the same instant', () => {
    expect(ms('2026-03-10T23:00:00.000+08:00')).toBe(Date.parse('2026-03-10T15:00:00.000Z'));
    expect(ms('2026-03-10T15:00:00Z')).toBe(Date.parse('2026-03-10T15:00:00.000Z'));
    expect(ms('2026-03-10T10:30:00-05:30')).toBe(Date.parse('2026-03-10T16:00:00.000Z'));
  });

  it('keeps milliseconds and truncates finer fractions', () => {
    expect(ms('2026-03-10T22:59:59.999+08:00')).toBe(Date.parse('2026-03-10T14:59:59.999Z'));
    expect(ms('2026-03-10T22:59:59.9999999+08:00')).toBe(Date.parse('2026-03-10T14:59:59.999Z'));
    expect(ms('2026-03-10T22:59:59.5+08:00')).toBe(Date.parse('2026-03-10T14:59:59.500Z'));
  });

  it.each([
    ['2026-03-10T10:00:00', /offset/],
    ['2026-03-10 10:00:00+08:00', /ISO-8601/],
    ['2026-03-10T10:00+08:00', /seconds/],
    ['2026-02-30T10:00:00+08:00', /no day 30/],
    ['2026-02-29T10:00:00+08:00', /no day 29/],
    ['2026-13-01T10:00:00Z', /month 13/],
    ['2026-03-10T24:00:00Z', /out of range/],
    ['2026-03-10T23:60:00Z', /out of range/],
    ['2026-03-10T23:59:60Z', /out of range/],
    ['2026-03-10T10:00:00+19:00', /offset out of range/],
    ['1969-12-31T23:59:59Z', /1970/],
    ['', /ISO-8601/],
  ])('rejects %j', (text, reason) => {
    const r = parseInstant(text);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).toMatch(reason);
  });

  it('accepts a leap day', () => {
    expect(ms('2028-02-29T00:00:00+08:00')).toBe(Date.parse('2028-02-28T16:00:00Z'));
  });
});
