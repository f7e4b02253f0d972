/**
 * A seeded synthetic charge feed for demos, the producer and benchmarks. It looks like traffic, not noise:
 * most users spend modestly during the day, some cards are hit in bursts, some large charges land at night,
 * and a few heavy spenders run into the daily cap. Same seed, same stream.
 */
import type { ChargeEvent } from './schema.ts';

export interface SyntheticOptions {
  seed?: number;
  users?: number;
  count: number;
  /** Event time of the first charge (ms). @defaultValue 2026-03-10T00:00:00+08:00 */
  startMs?: number;
  /** Simulated time the feed spans; covers two nights by default. @defaultValue 26 hours */
  spanMs?: number;
  /** eventId prefix, so several feeds can share a namespace. @defaultValue "syn" */
  prefix?: string;
}

/** mulberry32: tiny, fast, good enough for test data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 16-digit Luhn-valid card number (UnionPay-like BIN) for user/card, so card-scrubbing checks are honest. */
export function syntheticPan(user: number, card: number): string {
  const body = `622202${String(user * 7 + card).padStart(9, '0').slice(-9)}`;
  return body + luhnCheckDigit(body);
}

export function luhnCheckDigit(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

export function isLuhnValid(digits: string): boolean {
  return digits.length > 1 && luhnCheckDigit(digits.slice(0, -1)) === digits.slice(-1);
}

const pad = (n: number) => String(n).padStart(2, '0');

/** ISO instant with a +08:00 offset, as Chinese payment systems send them. */
export function isoShanghai(ms: number): string {
  const d = new Date(ms + 8 * 3_600_000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${String(d.getUTCMilliseconds()).padStart(3, '0')}+08:00`;
}

export function* syntheticCharges(options: SyntheticOptions): Generator<ChargeEvent> {
  const rand = prng(options.seed ?? 42);
  const users = options.users ?? 1_000;
  const stepMs = (options.spanMs ?? 26 * 3_600_000) / Math.max(1, options.count);
  const prefix = options.prefix ?? 'syn';
  let t = options.startMs ?? Date.parse('2026-03-10T00:00:00+08:00');
  const heavy = Math.max(1, Math.floor(users / 100));
  let burst: { user: number; card: number; left: number } | undefined;

  for (let i = 0; i < options.count; i++) {
    t += Math.floor(stepMs * (0.5 + rand()));
    let user: number;
    let card: number;
    let amount: number;
    if (burst && burst.left > 0) {
      // Repeated charges on one card within minutes: same_card_burst.
      ({ user, card } = burst);
      burst.left--;
      amount = 1_000 + Math.floor(rand() * 20_000);
    } else {
      const r = rand();
      user = r < 0.05 ? Math.floor(rand() * heavy) : Math.floor(rand() * users);
      card = rand() < 0.8 ? 0 : 1;
      if (r < 0.05) amount = 800_000 + Math.floor(rand() * 1_500_000); // heavy spenders: daily cap
      else if (r < 0.08) amount = 500_000 + Math.floor(rand() * 1_000_000); // large: declined at night
      else amount = 2_000 + Math.floor(Math.exp(rand() * 12)); // everyday spending: 20 CNY to ~1,600 CNY
      if (rand() < 0.02) burst = { user, card, left: 2 + Math.floor(rand() * 3) };
    }
    yield {
      type: 'charge',
      eventId: `${prefix}-${i}`,
      userId: `u-${user}`,
      merchantId: `m-${Math.floor(rand() * 200)}`,
      cardId: syntheticPan(user, card),
      amount: Math.min(amount, 100_000_000),
      currency: 'CNY',
      occurredAt: isoShanghai(t),
    };
  }
}
