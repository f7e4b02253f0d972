/**
 * The dead-letter store: every rejected event with its reason, where an operator can list it. Payloads are kept
 * truncated and with card numbers masked; a rejection is recorded once per source even when a job is redelivered.
 * Its state is bounded whatever the traffic: the stream is capped at `maxLen` entries, and the redelivery check
 * keeps the `maxLen` most recent sources in one sorted set (see addDeadLetter-2.lua).
 */

import { cardLast4, maskCardNumbers } from '../events/card.ts';
import type { Keys } from '../redis/keys.ts';
import { defineScript, loadScript, type ScriptTarget } from '../redis/scripts.ts';
import type { RedisClient } from '../redis/client.ts';

const addDeadLetterScript = loadScript(new URL('./addDeadLetter-2.lua', import.meta.url));
const MAX_RAW_CHARS = 2_048;
/**
 * Nesting kept in a stored payload; deeper values become a marker. Job payloads are untrusted JSON of any depth
 * (JSON.parse takes any; JSON.stringify and String() overflow the stack near a few thousand levels).
 */
export const MAX_RAW_DEPTH = 32;

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
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly maxLen: number,
  ) {
    this.add = defineScript(redis, addDeadLetterScript);
    this.sourcesKey = keys.deadLetterSources;
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

/**
 * Payload text for the store: card field reduced to its last four, digit runs masked, length bounded. Any value,
 * of any depth or size, costs at most about MAX_RAW_CHARS of output: nesting past MAX_RAW_DEPTH is cut, and the
 * walk stops once the text is long enough.
 */
export function safeRaw(raw: unknown): string {
  let text: string;
  let truncated = false;
  if (typeof raw === 'string') {
    text = raw;
  } else {
    let value = raw;
    if (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && typeof (raw as { cardId?: unknown }).cardId === 'string') {
      value = { ...(raw as object), cardId: cardLast4((raw as { cardId: string }).cardId) };
    }
    ({ text, truncated } = boundedJson(value, MAX_RAW_CHARS, MAX_RAW_DEPTH));
  }
  if (typeof raw === 'string' && raw.includes('"cardId"')) {
    // A line that did not parse may still carry a card: mask the value of a cardId field textually.
    text = text.replace(/("cardId"\s*:\s*")([^"]*)(")/g, (_m, a: string, card: string, b: string) => a + cardLast4(card) + b);
  }
  // Masked before it is cut: a card number across the cut is masked whole.
  text = maskCardNumbers(text);
  if (text.length > MAX_RAW_CHARS) return `${text.slice(0, MAX_RAW_CHARS)}… (${truncated ? 'truncated' : `${text.length} chars`})`;
  return truncated ? `${text}… (truncated)` : text;
}

/**
 * JSON text of `value` as JSON.stringify writes it, but walking at most `maxDepth` levels (deeper values become
 * "[nested too deep]") and stopping once the text is longer than `maxChars` (truncated: true). Never throws:
 * what JSON cannot say (undefined, functions, symbols) is left out or null as JSON.stringify does, a bigint is
 * written as a string, and a value the walk cannot read is written as "[unreadable]".
 */
export function boundedJson(value: unknown, maxChars: number, maxDepth: number): { text: string; truncated: boolean } {
  let out = '';
  let truncated = false;
  const full = () => {
    if (out.length > maxChars) truncated = true;
    return truncated;
  };
  const write = (v: unknown, depth: number, inArray: boolean): void => {
    if (v instanceof Date) v = Number.isFinite(v.getTime()) ? v.toISOString() : null;
    switch (typeof v) {
      case 'string':
        // Longer strings are cut here (the text is cut at maxChars anyway), so a huge one costs no more.
        out += JSON.stringify(v.length > maxChars ? v.slice(0, maxChars + 1) : v);
        return;
      case 'number':
        out += Number.isFinite(v) ? String(v) : 'null';
        return;
      case 'boolean':
        out += String(v);
        return;
      case 'bigint':
        out += JSON.stringify(String(v));
        return;
      case 'object':
        break;
      default:
        out += inArray ? 'null' : 'undefined';
        return;
    }
    if (v === null) {
      out += 'null';
      return;
    }
    if (depth >= maxDepth) {
      out += '"[nested too deep]"';
      return;
    }
    if (Array.isArray(v)) {
      out += '[';
      for (let i = 0; i < v.length; i++) {
        if (i > 0) out += ',';
        write(v[i], depth + 1, true);
        if (full()) return;
      }
      out += ']';
      return;
    }
    out += '{';
    let first = true;
    for (const key of Object.keys(v)) {
      const field = (v as Record<string, unknown>)[key];
      if (field === undefined || typeof field === 'function' || typeof field === 'symbol') continue;
      out += `${first ? '' : ','}${JSON.stringify(key)}:`;
      first = false;
      write(field, depth + 1, false);
      if (full()) return;
    }
    out += '}';
  };
  try {
    write(value, 0, false);
  } catch {
    // A getter or proxy that throws (not JSON.parse output, but the walk must never be the thing that fails).
    out += '"[unreadable]"';
  }
  return { text: out, truncated };
}
