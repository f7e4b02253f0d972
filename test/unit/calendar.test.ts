import { describe, expect, it } from 'vitest';
import { ZoneCalendar } from '../../src/time/calendar.ts';

const shanghai = new ZoneCalendar('Asia/Shanghai');
const at = (iso: string) => Date.parse(iso);
const hm = (h: number, m = 0, s = 0) => h * 3600 + m * 60 + s;

describe('ZoneCalendar', () => {
  it('gives the Shanghai local date and time of an instant', () => {
    expect(shanghai.local(at('2026-03-10T15:59:59.999Z'))).toEqual({ date: '2026-03-10', time: '23:59:59', secondOfDay: hm(23, 59, 59) });
    expect(shanghai.local(at('2026-03-10T16:00:00.000Z'))).toEqual({ date: '2026-03-11', time: '00:00:00', secondOfDay: 0 });
  });

  it('splits days at Shanghai midnight, not UTC midnight', () => {
    // 00:00 UTC is 08:00 in Shanghai: same local day on both sides.
    expect(shanghai.local(at('2026-03-09T23:59:59Z')).date).toBe('2026-03-10');
    expect(shanghai.local(at('2026-03-10T00:00:00Z')).date).toBe('2026-03-10');
  });

  it('follows daylight saving time in zones that have it', () => {
    const ny = new ZoneCalendar('America/New_York');
    // 2026-03-08 02:00 EST → 03:00 EDT.
    expect(ny.local(at('2026-03-08T06:59:59Z')).time).toBe('01:59:59');
    expect(ny.local(at('2026-03-08T07:00:00Z')).time).toBe('03:00:00');
    expect(ny.local(at('2026-11-01T05:30:00Z')).time).toBe('01:30:00');
    expect(ny.local(at('2026-11-01T06:30:00Z')).time).toBe('01:30:00');
  });

  it('computes T+1 03:00 local settlement instants', () => {
    // Charged 2026-03-10 23:59 local → settles 2026-03-11 03:00 local.
    expect(shanghai.atLocalTimeDaysAfter(at('2026-03-10T15:59:00Z'), 1, hm(3))).toBe(at('2026-03-10T19:00:00Z'));
    // Charged 2026-03-11 00:00 local → next local date.
    expect(shanghai.atLocalTimeDaysAfter(at('2026-03-10T16:00:00Z'), 1, hm(3))).toBe(at('2026-03-11T19:00:00Z'));
    // Month and year ends.
    expect(shanghai.atLocalTimeDaysAfter(at('2026-12-31T12:00:00+08:00'), 1, hm(3))).toBe(at('2027-01-01T03:00:00+08:00'));
  });

  it('refuses a misspelled zone (luxon would not)', () => {
    expect(() => new ZoneCalendar('Asia/Shanghia')).toThrow(/IANA/);
  });

  it('gives 00:00 local of a date', () => {
    expect(shanghai.startOfDay('2026-04-01')).toBe(at('2026-03-31T16:00:00Z'));
    expect(() => shanghai.startOfDay('2026-02-30')).toThrow(/not a valid date/);
  });
});
