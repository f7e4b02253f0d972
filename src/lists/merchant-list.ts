/**
 * The merchant admission list (seed 002: 准入筛查，过滤黑名单商户): merchants whose charges are declined while an entry
 * covers the charge's occurredAt ([from, until)), so a replay decides exactly as the live service did. Every change
 * is recorded with who made it and when. The rules script reads the list in the call that decides
 * (merchant-blocklisted.lua); this module owns its format.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { auditText } from '../audit-text.ts';
import { parseInstant } from '../events/instant.ts';
import { id } from '../events/schema.ts';
import type { Keys } from '../redis/keys.ts';
import { defineScript, loadScript } from '../redis/scripts.ts';

export const changeMerchantListScript = loadScript(new URL('./changeMerchantList-2.lua', import.meta.url));

/** One entry as stored (and as the script reads it): instants as sent and in ms; a missing bound is open. */
export interface MerchantEntry {
  from?: string;
  fromMs?: number;
  until?: string;
  untilMs?: number;
  reason?: string;
  by: string;
  addedAt: string;
}

export interface MerchantListChange {
  /** When it was made (the history stream's id time). */
  at: string;
  by: string;
  action: 'add' | 'remove' | 'load';
  merchantId: string;
  /** The entry added (add, load). */
  entry?: MerchantEntry;
  /** How many entries it ended or dropped (remove). */
  ended?: number;
  /** Where a loaded list came from. */
  source?: string;
}

const instant = z.string().transform((s, ctx) => {
  const r = parseInstant(s);
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: r.reason });
    return z.NEVER;
  }
  return { text: s, ms: r.ms };
});

/** An event's merchant id, printable: listed ids are shown one entry per line. */
const merchantId = (what: string) => id(what).refine((s) => !/\p{Cc}/u.test(s), `${what} holds a control character`);

/** A list file, as `replay --lists` and `backtest --lists` take it. */
const listFileSchema = z.strictObject({
  merchants: z.array(
    z
      .strictObject({ id: merchantId('id'), from: instant.optional(), until: instant.optional(), reason: auditText('reason', 500).optional() })
      .refine((e) => !e.from || !e.until || e.from.ms < e.until.ms, { message: '"until" must be after "from"', path: ['until'] }),
  ),
});

export const MERCHANT_ID = merchantId('merchant id');
export const ACTOR = auditText('--by', 64);
export const REASON = auditText('--reason', 500);

export class MerchantListError extends Error {}

/** Most entries one merchant may have: the rules script decodes them on every call that meets the merchant. */
export const MAX_ENTRIES_PER_MERCHANT = 100;

export class MerchantList {
  private readonly change: ReturnType<typeof defineScript>;

  /**
   * `keepEndedMs`: how long an ended entry is kept (at least how far back an accepted charge may be dated:
   * events.maxAgeDays); older ones are dropped at the merchant's next change.
   */
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly keepEndedMs: number,
  ) {
    this.change = defineScript(redis, changeMerchantListScript);
  }

  /** Adds an entry: from `from` (default now) until `until` (default: until removed). */
  async add(merchantId: string, o: { reason: string; by: string; from?: string; until?: string }, nowMs = Date.now()): Promise<MerchantEntry> {
    const id = parse(MERCHANT_ID, merchantId);
    const by = parse(ACTOR, o.by);
    const reason = parse(REASON, o.reason);
    const from = o.from === undefined ? { text: new Date(nowMs).toISOString(), ms: nowMs } : parseBound('--from', o.from);
    const until = o.until === undefined ? undefined : parseBound('--until', o.until);
    if (until && until.ms <= from.ms) throw new MerchantListError(`--until (${until.text}) must be after --from (${from.text})`);
    const entry: MerchantEntry = { from: from.text, fromMs: from.ms, ...(until ? { until: until.text, untilMs: until.ms } : {}), reason, by, addedAt: new Date(nowMs).toISOString() };
    await this.apply(id, 'add', JSON.stringify(entry), nowMs, nowMs - this.keepEndedMs, { by, action: 'add', merchantId: id, entry });
    return entry;
  }

  /** Ends the merchant's entries in force now and drops those not started yet; an error when there are none. */
  async remove(merchantId: string, o: { by: string }, nowMs = Date.now()): Promise<number> {
    const id = parse(MERCHANT_ID, merchantId);
    const by = parse(ACTOR, o.by);
    const ended = await this.apply(id, 'end', '', nowMs, nowMs - this.keepEndedMs, { by, action: 'remove', merchantId: id });
    if (ended === 0) throw new MerchantListError(`merchant ${id} has no entry in force or to come: nothing to remove`);
    return ended;
  }

  /** Loads a list file's entries (a replay's fresh namespace starts from it). */
  async loadFile(path: string, by: string, nowMs = Date.now()): Promise<number> {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new MerchantListError(`list file ${path}: ${(e as Error).message}`);
    }
    const parsed = listFileSchema.safeParse(raw);
    if (!parsed.success) {
      throw new MerchantListError(`list file ${path}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
    }
    const addedAt = new Date(nowMs).toISOString();
    for (const m of parsed.data.merchants) {
      // In a file a missing "from" means since always, a missing "until" for ever.
      const entry: MerchantEntry = {
        ...(m.from ? { from: m.from.text, fromMs: m.from.ms } : {}),
        ...(m.until ? { until: m.until.text, untilMs: m.until.ms } : {}),
        ...(m.reason ? { reason: m.reason } : {}),
        by,
        addedAt,
      };
      // A file is a replay's list, read by event time: nothing in it is too old to keep.
      await this.apply(m.id, 'add', JSON.stringify(entry), nowMs, -Number.MAX_SAFE_INTEGER, { by, action: 'load', merchantId: m.id, entry, source: path });
    }
    return parsed.data.merchants.length;
  }

  /** Every merchant's entries, by merchant id in order. */
  async show(): Promise<Map<string, MerchantEntry[]>> {
    const all = await this.redis.hgetall(this.keys.merchantList);
    return new Map(
      Object.keys(all)
        .sort()
        .map((id) => [id, JSON.parse(all[id]!) as MerchantEntry[]]),
    );
  }

  /** The changes, oldest first. */
  async history(limit = 1_000): Promise<MerchantListChange[]> {
    const rows = await this.redis.xrange(this.keys.merchantListHistory, '-', '+', 'COUNT', limit);
    return rows.map(([id, fields]) => ({ at: new Date(Number(id.split('-')[0])).toISOString(), ...(JSON.parse(fields[1]!) as Omit<MerchantListChange, 'at'>) }));
  }

  private async apply(merchantId: string, op: 'add' | 'end', entry: string, nowMs: number, horizonMs: number, record: Omit<MerchantListChange, 'at'>): Promise<number> {
    const changed = (await this.change(
      this.redis,
      [this.keys.merchantList, this.keys.merchantListHistory],
      [merchantId, op, entry, nowMs, new Date(nowMs).toISOString(), horizonMs, MAX_ENTRIES_PER_MERCHANT, JSON.stringify(record)],
    )) as number;
    if (changed < 0) throw new MerchantListError(`merchant ${merchantId} has ${MAX_ENTRIES_PER_MERCHANT} entries already: remove it first (that ends them), or let some end`);
    return changed;
  }
}

function parse<T>(schema: z.ZodType<T>, value: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new MerchantListError(r.error.issues[0]!.message);
  return r.data;
}

function parseBound(option: string, value: string): { text: string; ms: number } {
  const r = parseInstant(value);
  if (!r.ok) throw new MerchantListError(`${option}: ${r.reason}`);
  return { text: value, ms: r.ms };
}

/** An entry's interval as people read it. */
export function describeEntry(e: MerchantEntry): string {
  return `from ${e.from ?? 'always'} until ${e.until ?? 'removed'}`;
}
