/** Field types the configuration schema and the rule modules share. */
import { z } from 'zod';

/** "HH:MM" local wall-clock time, turned into seconds after midnight. */
export const clockTime = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a time of day as "HH:MM" (00:00–23:59)')
  .transform((s) => Number(s.slice(0, 2)) * 3600 + Number(s.slice(3, 5)) * 60);

/** An amount in fen (integer, positive). */
export const fen = z.number().int().positive();

/** "HH:MM" of a second of the day (the inverse of clockTime). */
export function clockText(secondOfDay: number): string {
  const h = Math.floor(secondOfDay / 3600);
  const m = Math.floor((secondOfDay % 3600) / 60);
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`;
}

/** Fen as CNY text with two decimals ("1234.50"), from integers (no float rounding), as reasons write it. */
export function cny(fenAmount: number): string {
  const whole = Math.trunc(fenAmount / 100);
  const cents = Math.abs(fenAmount % 100);
  return `${fenAmount < 0 && whole === 0 ? '-' : ''}${whole}.${String(cents).padStart(2, '0')}`;
}
