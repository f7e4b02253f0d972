import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
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
    ['1970-01-01T00:00:00+08:00', /outside the accepted range/],
    ['1999-12-31T23:59:59.999Z', /outside the accepted range/],
    ['2000-01-01T07:59:59+08:00', /outside the accepted range/],
    ['2100-01-01T00:00:00Z', /outside the accepted range/],
    ['2100-01-01T08:00:00+08:00', /outside the accepted range/],
    ['9999-12-31T23:59:59Z', /outside the accepted range/],
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
    ['', /ISO-8601/],
  ])('rejects %j', (text, reason) => {
    const r = parseInstant(text);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).toMatch(reason);
  });

  it('accepts the first and last instants of the range', () => {
    expect(ms('2000-01-01T00:00:00Z')).toBe(Date.UTC(2000, 0, 1));
    expect(ms('2100-01-01T07:59:59.999+08:00')).toBe(Date.UTC(2100, 0, 1) - 1);
  });

  it('accepts a leap day', () => {
    expect(ms('2028-02-29T00:00:00+08:00')).toBe(Date.parse('2028-02-28T16:00:00Z'));
  });
});

/** The definition the hand-written parser follows: the regex and checks it replaced. */
const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d{2}):(\d{2}))$/;
function referenceParse(text: string): ReturnType<typeof parseInstant> {
  const m = ISO_INSTANT.exec(text);
  if (!m) return { ok: false, reason: 'expected an ISO-8601 instant with seconds and an offset, e.g. 2026-03-10T23:00:00.000+08:00' };
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12) return { ok: false, reason: `month ${month} does not exist` };
  if (day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return { ok: false, reason: `${m[1]}-${m[2]} has no day ${day}` };
  if (hour > 23 || minute > 59 || second > 59) return { ok: false, reason: 'time of day out of range' };
  let offsetMinutes = 0;
  if (!m[8]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 18 || om > 59) return { ok: false, reason: 'offset out of range (at most ±18:00)' };
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const millis = m[7] ? Math.floor(Number(m[7].padEnd(3, '0').slice(0, 3))) : 0;
  const ms = Date.UTC(year, month - 1, day, hour, minute, second, millis) - offsetMinutes * 60_000;
  if (year < 1000 || !(ms >= Date.UTC(2000, 0, 1) && ms < Date.UTC(2100, 0, 1))) {
    return { ok: false, reason: 'outside the accepted range [2000-01-01T00:00:00Z, 2100-01-01T00:00:00Z)' };
  }
  return { ok: true, ms };
}

describe('parseInstant against its definition', () => {
  it('accepts, rejects and reads exactly what the regex and range checks do', () => {
    const d = (min: number, max: number, width: number) => fc.integer({ min, max }).map((v) => String(v).padStart(width, '0'));
    const near = fc.tuple(
      d(1995, 2105, 4),
      d(0, 13, 2),
      d(0, 32, 2),
      d(0, 25, 2),
      d(0, 60, 2),
      d(0, 60, 2),
      fc.option(fc.stringMatching(/^\d{0,10}$/), { nil: undefined }),
      fc.oneof(fc.constant('Z'), fc.tuple(fc.constantFrom('+', '-'), d(0, 19, 2), d(0, 60, 2)).map(([s, h, m]) => `${s}${h}:${m}`), fc.constantFrom('', 'z', '+0800', '+08:00x')),
    ).map(([y, mo, da, h, mi, s, frac, off]) => `${y}-${mo}-${da}T${h}:${mi}:${s}${frac === undefined ? '' : `.${frac}`}${off}`);
    // Valid-looking strings with one character changed, and arbitrary strings.
    const mutated = fc.tuple(near, fc.nat(40), fc.constantFrom('0', '9', '-', ':', 'T', '.', 'Z', '+', 'x', '', '٣')).map(([t, at, c]) => t.slice(0, at) + c + t.slice(at + 1));
    fc.assert(
      fc.property(fc.oneof(near, mutated, fc.string({ maxLength: 40 })), (text) => {
        expect(parseInstant(text)).toEqual(referenceParse(text));
      }),
      { numRuns: 20_000 },
    );
  });
});
