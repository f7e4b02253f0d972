/**
 * The lists a charge is declined by while one of their entries covers its occurredAt ([from, until)), so a replay
 * decides exactly as the live service did:
 * - merchants: the admission list (seed 002: 准入筛查，过滤黑名单商户), read by merchant_blocklisted;
 * - users: frozen accounts (账户冻结 / 异常账户), read by user_frozen;
 * - cards: blocklisted cards, read by card_blocklisted.
 * Every change is recorded with who made it and when. The rules script reads each list in the call that decides
 * (src/rules/<rule>.lua); this module owns their format, which is one format for the three kinds.
 *
 * Each list lives in the `{lists}` slot with its history, and every shard reads a copy in its own slot (a script
 * touches one slot). A change is made to the list, then copied to every shard before the command returns; copies
 * carry the change's version, so they converge whatever order they land in. `sync` copies whole lists again (the
 * workers run it at start, after a change interrupted between the two steps).
 *
 * A card is never stored, logged or printed in full: it is given as its number, tokenized at once with the
 * namespace's CardHasher (the token the producer puts on every charge), stored under that token, and shown as
 * its last four ("****1234") in entries, history records and errors.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { auditText } from '../audit-text.ts';
import { cardLast4, type CardHasher, maskCardNumbers, normalizeCard, passesLuhn } from '../events/card.ts';
import { parseInstant } from '../events/instant.ts';
import { id } from '../events/schema.ts';
import { SlotPipeline, type RedisClient } from '../redis/client.ts';
import type { Keys } from '../redis/keys.ts';
import { defineScript, loadScript } from '../redis/scripts.ts';

export const changeListScript = loadScript(new URL('./changeList-3.lua', import.meta.url));
const copyEntryScript = loadScript(new URL('./copyListEntry-2.lua', import.meta.url));

export type ListKind = 'merchant' | 'user' | 'card';
export const LIST_KINDS: readonly ListKind[] = ['merchant', 'user', 'card'];

/** One entry as stored (and as the script reads it): instants as sent and in ms; a missing bound is open. */
export interface ListEntry {
  from?: string;
  fromMs?: number;
  until?: string;
  untilMs?: number;
  reason?: string;
  by: string;
  addedAt: string;
  /** Cards only: how people see the card ("****1234"); the list's field is its token. */
  last4?: string;
}

export interface ListChange {
  /** When it was made (the history stream's id time). */
  at: string;
  by: string;
  action: 'add' | 'remove' | 'load';
  kind: ListKind;
  /** The listed id: the merchantId, the userId, or the card's token. */
  id: string;
  /** How people see it: the id, or a card's "****1234". */
  label: string;
  /** The entry added (add, load). */
  entry?: ListEntry;
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

/** An event's id, printable: listed ids are shown one entry per line. */
const printableId = (what: string) => id(what).refine((s) => !/\p{Cc}/u.test(s), `${what} holds a control character`);

export const MERCHANT_ID = printableId('merchant id');
export const USER_ID = printableId('user id');
export const ACTOR = auditText('--by', 64);
export const REASON = auditText('--reason', 500);

/** A refused list change; its message never holds a card number (masked to its last four, whatever the input). */
export class ListError extends Error {
  constructor(message: string) {
    super(maskCardNumbers(message));
  }
}

/**
 * The card a number names, as the producer normalises it (`normalizeCard`: full-width digits, spaces, dashes), or a
 * ListError that never repeats the input (it may be a card number with a typo).
 */
export function parseCardNumber(input: string): { digits: string; last4: string } {
  const card = normalizeCard(input);
  if (!/^[0-9]+$/.test(card)) {
    const digits = card.replace(/[^0-9]/g, '').length;
    throw new ListError(`a card is given as its number, digits only (spaces and dashes between them allowed): got ${digits} digit(s) and ${card.length - digits} other character(s)`);
  }
  if (card.length < 13 || card.length > 19) throw new ListError(`a card number has 13 to 19 digits: got ${card.length}`);
  const last4 = cardLast4(card);
  if (!passesLuhn(card)) throw new ListError(`card ${last4}: its check digit is wrong (Luhn): a typo?`);
  return { digits: card, last4 };
}

const entryFields = { from: instant.optional(), until: instant.optional(), reason: auditText('reason', 500).optional() };
const ordered = { message: '"until" must be after "from"', path: ['until'] };
type FileEntry = { from?: { text: string; ms: number }; until?: { text: string; ms: number }; reason?: string };
const isOrdered = (e: FileEntry) => !e.from || !e.until || e.from.ms < e.until.ms;
const cardNumber = z.string().superRefine((s, ctx) => {
  try {
    parseCardNumber(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

/** A list file, as `replay --lists` and `backtest --lists` take it; cards by number, tokenized on load. */
const listFileSchema = z.strictObject({
  merchants: z.array(z.strictObject({ id: printableId('id'), ...entryFields }).refine(isOrdered, ordered)).optional(),
  users: z.array(z.strictObject({ id: printableId('id'), ...entryFields }).refine(isOrdered, ordered)).optional(),
  cards: z.array(z.strictObject({ number: cardNumber, ...entryFields }).refine(isOrdered, ordered)).optional(),
});

/** Most entries one id may have: the rules script decodes them on every call that meets the id. */
export const MAX_ENTRIES_PER_ID = 100;

/** One list (one kind): its keys, and how what people give becomes the id stored and the label shown. */
export class EntryList {
  private readonly change: ReturnType<typeof defineScript>;
  private readonly copy;
  private readonly key: string;
  private readonly historyKey: string;
  private readonly versionsKey: string;

  /**
   * `keepEndedMs`: how long an ended entry is kept (at least how far back an accepted charge may be dated:
   * events.maxAgeDays); older ones are dropped at the id's next change. `cards`: the namespace's hasher (the card
   * list's ids are its tokens).
   */
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    readonly kind: ListKind,
    private readonly keepEndedMs: number,
    private readonly cards: CardHasher,
  ) {
    this.change = defineScript(redis, changeListScript);
    this.key = kind === 'merchant' ? keys.merchantList : kind === 'user' ? keys.userList : keys.cardList;
    this.historyKey = kind === 'merchant' ? keys.merchantListHistory : kind === 'user' ? keys.userListHistory : keys.cardListHistory;
    this.versionsKey = keys.listVersions(kind);
    this.copy = defineScript(redis, copyEntryScript);
  }

  /** The id stored (a card's token) and the label shown (a card's "****1234") for a merchant id, user id or card number. */
  identify(input: string): { id: string; label: string; last4?: string } {
    if (this.kind === 'card') {
      const { digits, last4 } = parseCardNumber(input);
      return { id: this.cards.token(digits), label: last4, last4 };
    }
    const id = parse(this.kind === 'merchant' ? MERCHANT_ID : USER_ID, input);
    return { id, label: id };
  }

  /** Adds an entry: from `from` (default now) until `until` (default: until removed). */
  async add(input: string, o: { reason: string; by: string; from?: string; until?: string }, nowMs = Date.now()): Promise<ListEntry> {
    const { id, label, last4 } = this.identify(input);
    const by = parse(ACTOR, o.by);
    const reason = parse(REASON, o.reason);
    const from = o.from === undefined ? { text: new Date(nowMs).toISOString(), ms: nowMs } : parseBound('--from', o.from);
    const until = o.until === undefined ? undefined : parseBound('--until', o.until);
    if (until && until.ms <= from.ms) throw new ListError(`--until (${until.text}) must be after --from (${from.text})`);
    const entry: ListEntry = {
      from: from.text,
      fromMs: from.ms,
      ...(until ? { until: until.text, untilMs: until.ms } : {}),
      reason,
      by,
      addedAt: new Date(nowMs).toISOString(),
      ...(last4 ? { last4 } : {}),
    };
    await this.apply(id, label, 'add', JSON.stringify(entry), nowMs, nowMs - this.keepEndedMs, { by, action: 'add', kind: this.kind, id, label, entry });
    return entry;
  }

  /** Ends the id's entries in force now and drops those not started yet; an error when there are none. */
  async remove(input: string, o: { by: string }, nowMs = Date.now()): Promise<number> {
    const { id, label } = this.identify(input);
    const by = parse(ACTOR, o.by);
    const ended = await this.apply(id, label, 'end', '', nowMs, nowMs - this.keepEndedMs, { by, action: 'remove', kind: this.kind, id, label });
    if (ended === 0) throw new ListError(`${this.kind} ${label} has no entry in force or to come: nothing to remove`);
    return ended;
  }

  /** Every listed id's entries, by id in order (a card's id is its token; its entries carry `last4`). */
  async show(): Promise<Map<string, ListEntry[]>> {
    const all = await this.redis.hgetall(this.key);
    return new Map(
      Object.keys(all)
        .sort()
        .map((id) => [id, JSON.parse(all[id]!) as ListEntry[]]),
    );
  }

  /** The changes, oldest first. */
  async history(limit = 1_000): Promise<ListChange[]> {
    return (await this.historyWithIds(limit)).map(([, c]) => c);
  }

  /** The changes with their stream ids (to merge the kinds' histories in order). */
  async historyWithIds(limit: number): Promise<[string, ListChange][]> {
    const rows = await this.redis.xrange(this.historyKey, '-', '+', 'COUNT', limit);
    return rows.map(([streamId, fields]) => {
      const stored = JSON.parse(fields[1]!) as Omit<ListChange, 'at' | 'kind' | 'id' | 'label'> & { kind?: ListKind; id?: string; label?: string; merchantId?: string };
      // Records written before users and cards were listed name only their merchant.
      const { merchantId, ...rest } = stored;
      const listed = rest.id ?? merchantId!;
      return [streamId, { at: new Date(Number(streamId.split('-')[0])).toISOString(), ...rest, kind: rest.kind ?? this.kind, id: listed, label: rest.label ?? listed }];
    });
  }

  /** Adds a list file's entry (`load`): nothing in a file is too old to keep, it is read by event time. */
  async load(input: string, e: FileEntry, by: string, source: string, nowMs: number): Promise<void> {
    const { id, label, last4 } = this.identify(input);
    // In a file a missing "from" means since always, a missing "until" for ever.
    const entry: ListEntry = {
      ...(e.from ? { from: e.from.text, fromMs: e.from.ms } : {}),
      ...(e.until ? { until: e.until.text, untilMs: e.until.ms } : {}),
      ...(e.reason ? { reason: e.reason } : {}),
      by,
      addedAt: new Date(nowMs).toISOString(),
      ...(last4 ? { last4 } : {}),
    };
    await this.apply(id, label, 'add', JSON.stringify(entry), nowMs, -Number.MAX_SAFE_INTEGER, { by, action: 'load', kind: this.kind, id, label, entry, source });
  }

  private async apply(id: string, label: string, op: 'add' | 'end', entry: string, nowMs: number, horizonMs: number, record: Omit<ListChange, 'at'>): Promise<number> {
    const [changed, version, value] = (await this.change(
      this.redis,
      [this.key, this.historyKey, this.versionsKey],
      [id, op, entry, nowMs, new Date(nowMs).toISOString(), horizonMs, MAX_ENTRIES_PER_ID, JSON.stringify(record)],
    )) as [number, string?, string?];
    if (changed < 0) throw new ListError(`${this.kind} ${label} has ${MAX_ENTRIES_PER_ID} entries already: remove it first (that ends them), or let some end`);
    if (changed > 0) await this.copyToShards([[id, value!, version!]]);
    return changed;
  }

  /** Writes [id, entries, version] into every shard's copy (an older version never overwrites a newer one). */
  private async copyToShards(items: readonly [string, string, string][]): Promise<number> {
    const pipeline = new SlotPipeline(this.redis);
    for (const shard of this.keys.shardIds) {
      const copyKey = this.keys.listCopy(shard, this.kind);
      const versionsKey = this.keys.listCopyVersions(shard, this.kind);
      pipeline.add(copyKey, (p) => {
        for (const item of items) this.copy(p, [copyKey, versionsKey], item);
      });
    }
    let copied = 0;
    for (const [err, reply] of await pipeline.exec()) {
      if (err) throw new ListError(`the ${this.kind} list changed, but a shard's copy did not take it (${err.message}): run \`npm run lists -- sync\``);
      copied += Number(reply);
    }
    return copied;
  }

  /**
   * Copies the whole list into every shard's copy: every id ever changed, with its version (an id with no entries
   * left is deleted from the copies). Returns how many copies changed (0 when all were equal).
   */
  async sync(): Promise<number> {
    const [versions, entries] = await Promise.all([this.redis.hgetall(this.versionsKey), this.redis.hgetall(this.key)]);
    const items = Object.entries(versions).map(([id, version]): [string, string, string] => [id, entries[id] ?? '', version]);
    let copied = 0;
    for (let i = 0; i < items.length; i += SYNC_BATCH) copied += await this.copyToShards(items.slice(i, i + SYNC_BATCH));
    return copied;
  }
}

/** Ids copied per shard and round trip by `sync`. */
const SYNC_BATCH = 500;

/** The three lists of a namespace, and what spans them: list files, the merged history. */
export class Lists {
  readonly merchants: EntryList;
  readonly users: EntryList;
  readonly cards: EntryList;

  constructor(redis: RedisClient, keys: Keys, keepEndedMs: number, cards: CardHasher) {
    this.merchants = new EntryList(redis, keys, 'merchant', keepEndedMs, cards);
    this.users = new EntryList(redis, keys, 'user', keepEndedMs, cards);
    this.cards = new EntryList(redis, keys, 'card', keepEndedMs, cards);
  }

  of(kind: ListKind): EntryList {
    return kind === 'merchant' ? this.merchants : kind === 'user' ? this.users : this.cards;
  }

  /**
   * Loads a list file's entries (a replay's fresh namespace starts from it): `{"merchants": [{"id", …}], "users":
   * [{"id", …}], "cards": [{"number", …}]}`, each part optional. Returns how many entries it loaded.
   */
  async loadFile(path: string, by: string, nowMs = Date.now()): Promise<number> {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      // V8 quotes the text around a syntax error, which may hold a card number: ListError masks it.
      throw new ListError(`list file ${path}: ${(e as Error).message}`);
    }
    const parsed = listFileSchema.safeParse(raw);
    if (!parsed.success) {
      throw new ListError(`list file ${path}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
    }
    const { merchants = [], users = [], cards = [] } = parsed.data;
    for (const m of merchants) await this.merchants.load(m.id, m, by, path, nowMs);
    for (const u of users) await this.users.load(u.id, u, by, path, nowMs);
    for (const c of cards) await this.cards.load(c.number, c, by, path, nowMs);
    return merchants.length + users.length + cards.length;
  }

  /** Copies every list into every shard's copy (see EntryList.sync); returns how many copies changed. */
  async sync(): Promise<number> {
    let copied = 0;
    for (const kind of LIST_KINDS) copied += await this.of(kind).sync();
    return copied;
  }

  /** Every kind's changes (or one kind's), oldest first. */
  async history(limit = 1_000, kinds: readonly ListKind[] = LIST_KINDS): Promise<ListChange[]> {
    const all = (await Promise.all(kinds.map((k) => this.of(k).historyWithIds(limit)))).flat();
    all.sort(([a], [b]) => compareStreamIds(a, b));
    return all.slice(0, limit).map(([, c]) => c);
  }
}

function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am - bm || as - bs;
}

function parse<T>(schema: z.ZodType<T>, value: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new ListError(r.error.issues[0]!.message);
  return r.data;
}

function parseBound(option: string, value: string): { text: string; ms: number } {
  const r = parseInstant(value);
  if (!r.ok) throw new ListError(`${option}: ${r.reason}`);
  return { text: value, ms: r.ms };
}

/** An entry's interval as people read it. */
export function describeEntry(e: ListEntry): string {
  return `from ${e.from ?? 'always'} until ${e.until ?? 'removed'}`;
}
