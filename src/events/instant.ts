/**
 * Strict ISO-8601 instants: date, time with seconds, optional fraction, and a mandatory offset or Z.
 * Hand-rolled (not luxon) because it runs once per event on the hot path; every component is range-checked,
 * so "2026-02-30T10:00:00Z" or "…T24:00:00Z" is rejected rather than silently rolled over.
 */
const ISO_INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d{2}):(\d{2}))$/;

export type InstantResult = { ok: true; ms: number } | { ok: false; reason: string };

export function parseInstant(text: string): InstantResult {
  const m = ISO_INSTANT.exec(text);
  if (!m) {
    return {
      ok: false,
      reason: 'expected an ISO-8601 instant with seconds and an offset, e.g. 2026-03-10T23:00:00.000+08:00',
    };
  }
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const fraction = m[7] ?? '';
  if (month < 1 || month > 12) return { ok: false, reason: `month ${month} does not exist` };
  if (day < 1 || day > daysInMonth(year, month)) return { ok: false, reason: `${m[1]}-${m[2]} has no day ${day}` };
  if (hour > 23 || minute > 59 || second > 59) return { ok: false, reason: 'time of day out of range' };
  let offsetMinutes = 0;
  if (!m[8]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 18 || om > 59) return { ok: false, reason: 'offset out of range (at most ±18:00)' };
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const millis = fraction === '' ? 0 : Math.floor(Number(fraction.padEnd(3, '0').slice(0, 3)));
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  // Date.UTC maps years 0–99 to 1900–1999; instants before 1970 are not payments anyway.
  if (year < 1970) return { ok: false, reason: 'year before 1970' };
  return { ok: true, ms: utc - offsetMinutes * 60_000 };
}

export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}
