/**
 * Calendar arithmetic in one explicit IANA zone. Rules need, per event, the local date and time of an instant;
 * luxon answers that correctly (DST included) but slowly, so the zone offset is cached per 15-minute slot of UTC
 * (zone transitions happen on quarter hours) and the rest is plain arithmetic.
 */
import { DateTime, IANAZone } from 'luxon';

const SLOT_MS = 15 * 60_000;
/** A day of 24 hours, in ms: for spans counted in whole days (retention, age), never for calendar days. */
export const DAY_MS = 86_400_000;

export interface LocalTime {
  /** Local calendar date, "YYYY-MM-DD". */
  date: string;
  /** Local wall-clock time, "HH:MM:SS". */
  time: string;
  /** Seconds since local midnight (0–86399). */
  secondOfDay: number;
}

export class ZoneCalendar {
  private readonly offsets = new Map<number, number>();
  private readonly settleTimes = new Map<string, number>();
  /** "YYYY-MM-DD" by local day number (days since the epoch, local wall clock): formatted once per day. */
  private readonly dates = new Map<number, string>();

  constructor(readonly zone: string) {
    if (!IANAZone.isValidZone(zone)) throw new Error(`not a valid IANA time zone: ${JSON.stringify(zone)}`);
  }

  /** Offset from UTC in ms at this instant. */
  offsetMs(ms: number): number {
    const slot = Math.floor(ms / SLOT_MS);
    let off = this.offsets.get(slot);
    if (off === undefined) {
      off = DateTime.fromMillis(slot * SLOT_MS, { zone: this.zone }).offset * 60_000;
      if (this.offsets.size > 100_000) this.offsets.clear();
      this.offsets.set(slot, off);
    }
    return off;
  }

  local(ms: number): LocalTime {
    const wall = ms + this.offsetMs(ms);
    // Runs several times per charge: the date string is cached per day, the time is plain arithmetic.
    const day = Math.floor(wall / DAY_MS);
    let date = this.dates.get(day);
    if (date === undefined) {
      date = new Date(day * DAY_MS).toISOString().slice(0, 10);
      if (this.dates.size > 100_000) this.dates.clear();
      this.dates.set(day, date);
    }
    const secondOfDay = Math.floor((wall - day * DAY_MS) / 1000);
    const h = Math.floor(secondOfDay / 3600);
    const m = Math.floor((secondOfDay % 3600) / 60);
    const s = secondOfDay % 60;
    return { date, time: `${h < 10 ? '0' : ''}${h}:${m < 10 ? '0' : ''}${m}:${s < 10 ? '0' : ''}${s}`, secondOfDay };
  }

  /** The instant at `secondOfDay` local time on the local date `days` after the date of `ms`. */
  atLocalTimeDaysAfter(ms: number, days: number, secondOfDay: number): number {
    const date = this.local(ms).date;
    const cacheKey = `${date}|${days}|${secondOfDay}`;
    let at = this.settleTimes.get(cacheKey);
    if (at === undefined) {
      at = DateTime.fromISO(date, { zone: this.zone })
        .plus({ days })
        .set({ hour: Math.floor(secondOfDay / 3600), minute: Math.floor((secondOfDay % 3600) / 60), second: secondOfDay % 60 })
        .toMillis();
      if (this.settleTimes.size > 10_000) this.settleTimes.clear();
      this.settleTimes.set(cacheKey, at);
    }
    return at;
  }

  /** 00:00 local on a "YYYY-MM-DD" date, as an instant. */
  startOfDay(date: string): number {
    const dt = DateTime.fromISO(date, { zone: this.zone });
    if (!dt.isValid) throw new Error(`not a valid date: ${JSON.stringify(date)}`);
    return dt.startOf('day').toMillis();
  }
}
