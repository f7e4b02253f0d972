/**
 * The dead-letter store: every rejected event with its reason, where an operator can list it. Payloads are kept
 * truncated and with card numbers masked; a rejection is recorded once per source even when a job is redelivered.
 * Its state is bounded whatever the traffic: the stream is capped at `maxLen` entries, and the redelivery check
 * keeps the `maxLen` most recent sources in one sorted set (see addDeadLetter-2.lua).
 */
import type { Redis } from 'ioredis';
import { cardLast4, maskCardNumbers } from '../events/card.ts';
import type { Keys } from '../redis/keys.ts';
import { defineScript, loadScript, type ScriptTarget } from '../redis/scripts.ts';

const addDeadLetterScript = loadScript(new URL('./addDeadLetter-2.lua', import.meta.url));
const MAX_RAW_CHARS = 2_048;

export interface DeadLetter {
  id: string;
  source: string;
  reason: string;
  raw: string;
  at: string;
}

export interface Rejection {
  /** Unique per input position, so a retry of the same input is recognised. */
  source: string;
  reason: string;
  /** The payload as received: a string line or a parsed value. */
  raw: unknown;
}

export class DeadLetters {
  private readonly add: ReturnType<typeof defineScript>;

  /** Sorted set of the most recent sources (score: recorded-at ms), for the redelivery check. */
  readonly sourcesKey: string;

  /** @param maxLen cap on the stream and on the sources kept for the redelivery check */
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly maxLen: number,
  ) {
    this.add = defineScript(redis, addDeadLetterScript);
    this.sourcesKey = `${keys.deadLetter}:seen`;
  }

  /** Queues the record on a pipeline (or sends it); resolves to 1 if new, 0 if already recorded. */
  record(target: ScriptTarget, rejection: Rejection, now = Date.now()): unknown {
    return this.add(
      target,
      [this.keys.deadLetter, this.sourcesKey],
      [rejection.source, maskCardNumbers(rejection.reason), safeRaw(rejection.raw), new Date(now).toISOString(), this.maxLen, now, this.maxLen],
    );
  }

  async recordNow(rejection: Rejection): Promise<boolean> {
    return (await this.record(this.redis, rejection)) === 1;
  }

  /** Newest first. */
  async list(count = 100): Promise<DeadLetter[]> {
    const rows = await this.redis.xrevrange(this.keys.deadLetter, '+', '-', 'COUNT', count);
    return rows.map(([id, fields]) => {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
      return { id, source: f.source ?? '', reason: f.reason ?? '', raw: f.raw ?? '', at: f.at ?? '' };
    });
  }

  count(): Promise<number> {
    return this.redis.xlen(this.keys.deadLetter);
  }
}

/** Payload text for the store: card field reduced to its last four, digit runs masked, length bounded. */
export function safeRaw(raw: unknown): string {
  let text: string;
  if (typeof raw === 'string') {
    text = raw;
  } else {
    let value = raw;
    if (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && typeof (raw as { cardId?: unknown }).cardId === 'string') {
      value = { ...(raw as object), cardId: cardLast4((raw as { cardId: string }).cardId) };
    }
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  if (typeof raw === 'string' && raw.includes('"cardId"')) {
    // A line that did not parse may still carry a card: mask the value of a cardId field textually.
    text = text.replace(/("cardId"\s*:\s*")([^"]*)(")/g, (_m, a: string, card: string, b: string) => a + cardLast4(card) + b);
  }
  text = maskCardNumbers(text);
  return text.length > MAX_RAW_CHARS ? `${text.slice(0, MAX_RAW_CHARS)}… (${text.length} chars)` : text;
}
