/**
 * Free text people write into audited records (who made a change, why): trimmed, bounded, and never a card number,
 * which would then be stored and printed with the record.
 */
import { z } from 'zod';
import { findCardNumber } from './events/card.ts';

export const auditText = (what: string, max: number) =>
  z
    .string()
    .trim()
    .min(1, `${what} is empty`)
    .max(max, `${what} is longer than ${max} characters`)
    .refine((s) => !CONTROL.test(s), `${what} holds a control character (a line break, a NUL…): records are printed one per line`)
    .refine((s) => !findCardNumber(s), `${what} holds a card number: write at most its last four digits`);

const CONTROL = /\p{Cc}/u;
