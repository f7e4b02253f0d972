/**
 * The event contract (v1): the trust boundary. Everything past `parseEvent` may assume a well-formed event.
 * Unknown extra fields are dropped; unknown types are rejected.
 */
import { z } from 'zod';
import { parseInstant } from './instant.ts';

export const MAX_AMOUNT_FEN = 100_000_000;

const LONE_SURROGATE = /\p{Surrogate}/u;

const id = (what: string) =>
  z
    .string({ error: (iss) => (iss.input === undefined ? `${what} is missing` : `${what} must be a string`) })
    .min(1, `${what} must not be empty`)
    .max(128, `${what} is longer than 128 characters`)
    // Redis stores UTF-8: a lone surrogate becomes U+FFFD, so two different ids would share one key.
    .refine((s) => !LONE_SURROGATE.test(s), `${what} is not valid Unicode (lone surrogate)`);

/** An instant string; the parsed epoch-ms sits beside it as `<field>Ms` after validation. */
const instant = (what: string) =>
  z
    .string({ error: (iss) => (iss.input === undefined ? `${what} is missing` : `${what} must be an ISO-8601 string`) })
    .superRefine((s, ctx) => {
    const r = parseInstant(s);
    if (!r.ok) ctx.addIssue({ code: 'custom', message: `${what} ${JSON.stringify(s.slice(0, 40))}: ${r.reason}` });
  });

export const amountFen = (what = 'amount') =>
  z
    .number({
      error: (iss) => (iss.input === undefined ? `${what} is missing` : `${what} must be a number of fen (integer)`),
    })
    .int(`${what} must be a whole number of fen`)
    .min(1, `${what} must be at least 1 fen`)
    .max(MAX_AMOUNT_FEN, `${what} must be at most ${MAX_AMOUNT_FEN} fen (1,000,000 CNY)`);

export const chargeSchema = z.object({
  type: z.literal('charge'),
  eventId: id('eventId'),
  userId: id('userId'),
  merchantId: id('merchantId'),
  cardId: id('cardId'),
  amount: amountFen(),
  currency: z.literal('CNY', { error: 'currency must be "CNY"' }).optional(),
  occurredAt: instant('occurredAt'),
});

export type ChargeEvent = z.output<typeof chargeSchema>;

/**
 * Every event type the service knows, by `type`. Other modules (quota) register theirs here,
 * so routing and validation stay one table.
 */
export const eventSchemas = {
  charge: chargeSchema,
} as const satisfies Record<string, z.ZodType<{ type: string; eventId: string; userId: string; occurredAt: string }>>;

export type EventType = keyof typeof eventSchemas;
export type RiskEvent = z.output<(typeof eventSchemas)[EventType]>;

export type ParseResult = { ok: true; event: RiskEvent; occurredAtMs: number } | { ok: false; reason: string };

export function parseEvent(value: unknown): ParseResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: `event must be a JSON object, got ${describe(value)}` };
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string' || !Object.hasOwn(eventSchemas, type)) {
    return {
      ok: false,
      reason:
        type === undefined
          ? 'type is missing'
          : typeof type !== 'string'
            ? `type must be a string, got ${describe(type)}`
            : `unknown event type ${JSON.stringify(type.slice(0, 40))} (known: ${Object.keys(eventSchemas).join(', ')})`,
    };
  }
  const parsed = eventSchemas[type as EventType].safeParse(value);
  if (!parsed.success) {
    return { ok: false, reason: parsed.error.issues.map(formatIssue).join('; ') };
  }
  const at = parseInstant(parsed.data.occurredAt);
  return at.ok ? { ok: true, event: parsed.data, occurredAtMs: at.ms } : { ok: false, reason: at.reason };
}

/** One NDJSON line → event or reason. Never throws. */
export function parseEventLine(line: string, maxBytes: number): ParseResult {
  if (Buffer.byteLength(line, 'utf8') > maxBytes) return { ok: false, reason: `line longer than ${maxBytes} bytes` };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    return { ok: false, reason: `not valid JSON: ${(e as Error).message}` };
  }
  return parseEvent(value);
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.join('.');
  return issue.message.startsWith(path) || path === '' ? issue.message : `${path}: ${issue.message}`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
