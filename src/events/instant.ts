/**
 * Strict ISO-8601 instants: date, time with seconds, optional fraction, and a mandatory offset or Z.
 * Hand-rolled (not luxon) because it runs once per event on the hot path; every component is range-checked,
 * so "2026-02-30T10:00:00Z" or "…T24:00:00Z" is rejected rather than silently rolled over.
 */
export type InstantResult = { ok: true; ms: number } | { ok: false; reason: string };

const SHAPE = {
  ok: false,
  reason: 'expected an ISO-8601 instant with seconds and an offset, e.g. 2026-03-10T23:00:00.000+08:00',
} as const;

/**
 * Parses YYYY-MM-DDTHH:MM:SS[.fraction of 1–9 digits](Z|±HH:MM), the shape of
 * /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:Z|[+-]\d{2}:\d{2})$/ (a property test holds the
 * two equal), by character codes: it runs for every event, in the producer and again in the worker.
 */
export function parseInstant(text: string): InstantResult {
  const n = text.length;
  if (n < 20) return SHAPE;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hour = digits(text, 11, 2);
  const minute = digits(text, 14, 2);
  const second = digits(text, 17, 2);
  if (
    (year | month | day | hour | minute | second) < 0 ||
    text.charCodeAt(4) !== DASH ||
    text.charCodeAt(7) !== DASH ||
    text.charCodeAt(10) !== 84 /* T */ ||
    text.charCodeAt(13) !== COLON ||
    text.charCodeAt(16) !== COLON
  ) {
    return SHAPE;
  }
  let i = 19;
  let millis = 0;
  if (text.charCodeAt(i) === 46 /* . */) {
    const start = ++i;
    while (i < n && isDigit(text.charCodeAt(i))) i++;
    const length = i - start;
    if (length < 1 || length > 9) return SHAPE;
    for (let k = 0; k < 3; k++) millis = millis * 10 + (k < length ? text.charCodeAt(start + k) - 48 : 0);
  }
  let oh = 0;
  let om = 0;
  const sign = text.charCodeAt(i);
  if (sign === 90 /* Z */) {
    if (i + 1 !== n) return SHAPE;
  } else if ((sign === 43 /* + */ || sign === 45) /* - */ && i + 6 === n && text.charCodeAt(i + 3) === COLON) {
    oh = digits(text, i + 1, 2);
    om = digits(text, i + 4, 2);
    if ((oh | om) < 0) return SHAPE;
  } else {
    return SHAPE;
  }
  if (month < 1 || month > 12) return { ok: false, reason: `month ${month} does not exist` };
  if (day < 1 || day > daysInMonth(year, month)) return { ok: false, reason: `${text.slice(0, 7)} has no day ${day}` };
  if (hour > 23 || minute > 59 || second > 59) return { ok: false, reason: 'time of day out of range' };
  if (oh > 18 || om > 59) return { ok: false, reason: 'offset out of range (at most ±18:00)' };
  const offsetMinutes = (sign === 45 ? -1 : 1) * (oh * 60 + om);
  // Date.UTC maps years 0–99 to 1900–1999: years that far out are out of range anyway.
  const ms = year < 1999 || year > 2100 ? NaN : Date.UTC(year, month - 1, day, hour, minute, second, millis) - offsetMinutes * 60_000;
  if (!(ms >= MIN_INSTANT_MS && ms < END_INSTANT_MS)) return OUT_OF_RANGE;
  return { ok: true, ms };
}

/**
 * Every instant of an event lies in [2000-01-01, 2100-01-01) UTC: a charge dated 1970 or 9999 is an error, not a
 * payment, and settlement dates and base-36 times stay ordinary within it.
 */
export const MIN_INSTANT_MS = Date.UTC(2000, 0, 1);
export const END_INSTANT_MS = Date.UTC(2100, 0, 1);
const OUT_OF_RANGE = { ok: false, reason: 'outside the accepted range [2000-01-01T00:00:00Z, 2100-01-01T00:00:00Z)' } as const;

const DASH = 45;
const COLON = 58;

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

/** The decimal number of `length` ASCII digits at `at`, or -1. */
function digits(text: string, at: number, length: number): number {
  let value = 0;
  for (let k = at; k < at + length; k++) {
    const code = text.charCodeAt(k);
    if (!isDigit(code)) return -1;
    value = value * 10 + code - 48;
  }
  return value;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export function daysInMonth(year: number, month: number): number {
  if (month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) return 29;
  return DAYS_IN_MONTH[month - 1]!;
}
