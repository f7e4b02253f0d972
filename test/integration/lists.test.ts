/**
 * The lists (src/lists/lists.ts): merchants (merchant_blocklisted), users (user_frozen), cards (card_blocklisted),
 * kept with `npm run lists`, every change audited, and read by the rules script in the call that decides, by the
 * charge's occurredAt. A card is never stored or shown in full.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import type { ChargeEvent } from '../../src/events/schema.ts';
import { ListError, MAX_ENTRIES_PER_ID } from '../../src/lists/lists.ts';
import { decideBatch, testCharge } from '../helpers/charges.ts';
import { runTool, readNdjson } from '../helpers/cli.ts';
import { addTestUsers, createTestDatabase, skipWithoutPostgres, type TestDatabase } from '../helpers/postgres.ts';
import { dropContext, redisUrl, testContext } from '../helpers/context.ts';
import { namespaceDump } from '../helpers/namespace-dump.ts';

let ctx: Context;

let users = 0;
const charge = (over: Partial<ChargeEvent> = {}) => testCharge({ userId: `u-${++users}`, merchantId: 'm-13', ...over });

const decide = (events: ChargeEvent[]) => decideBatch(ctx, events, Date.parse('2026-03-10T16:00:00+08:00'));

beforeEach(() => {
  ctx = testContext();
});
afterEach(async () => {
  await dropContext(ctx);
});

describe('merchant_blocklisted', () => {
  it('declines a charge whose occurredAt an entry covers, [from, until), and says why', async () => {
    await ctx.lists.merchants.add('m-13', { reason: 'card testing reported by the acquirer', by: 'alice', from: '2026-03-10T12:00:00+08:00', until: '2026-03-10T14:00:00+08:00' });
    const [before, atFrom, inside, atUntil, other] = await decide([
      charge({ occurredAt: '2026-03-10T11:59:59.999+08:00' }),
      charge({ occurredAt: '2026-03-10T12:00:00+08:00' }),
      charge({ occurredAt: '2026-03-10T13:00:00+08:00' }),
      charge({ occurredAt: '2026-03-10T14:00:00+08:00' }),
      charge({ merchantId: 'm-1', occurredAt: '2026-03-10T13:00:00+08:00' }),
    ]);
    expect([before, atFrom, inside, atUntil, other].map((d) => d!.outcome)).toEqual(['approve', 'decline', 'decline', 'approve', 'approve']);
    expect(atFrom!.rules).toEqual(['merchant_blocklisted']);
    expect(atFrom!.reasons).toEqual(['merchant m-13 is on the admission list from 2026-03-10T12:00:00+08:00 until 2026-03-10T14:00:00+08:00: card testing reported by the acquirer']);
    expect(atFrom!.settleAt).toBeNull();
    // A declined charge adds nothing to the day total.
    expect(await ctx.redis.hget(ctx.keys.ruleState(atFrom!.userId), '2026-03-10')).toBeNull();
  });

  it('sees a change at once (no cache): a removal ends the entry now, a charge dated before it is still declined', async () => {
    const now = Date.parse('2026-03-10T15:00:00+08:00');
    await ctx.lists.merchants.add('m-13', { reason: 'fraud', by: 'alice', from: '2026-03-10T00:00:00+08:00' }, now);
    const [listed] = await decide([charge({ occurredAt: '2026-03-10T14:00:00+08:00' })]);
    expect(listed!.outcome).toBe('decline');
    expect(await ctx.lists.merchants.remove('m-13', { by: 'bob' }, now)).toBe(1);
    const [beforeRemoval, afterRemoval] = await decide([charge({ occurredAt: '2026-03-10T14:30:00+08:00' }), charge({ occurredAt: '2026-03-10T15:00:00+08:00' })]);
    expect(beforeRemoval!.outcome).toBe('decline');
    expect(afterRemoval!.outcome).toBe('approve');
    await expect(ctx.lists.merchants.remove('m-13', { by: 'bob' }, now)).rejects.toThrow(/no entry in force or to come/);
    const history = await ctx.lists.merchants.history();
    expect(history.map((c) => [c.action, c.by, c.id, c.ended])).toEqual([
      ['add', 'alice', 'm-13', undefined],
      ['remove', 'bob', 'm-13', 1],
    ]);
  });

  it('refuses an entry that ends before it starts, a bad instant, an empty reason or actor, and changes nothing', async () => {
    await expect(ctx.lists.merchants.add('m-13', { reason: 'x', by: 'a', from: '2026-03-10T12:00:00+08:00', until: '2026-03-10T12:00:00+08:00' })).rejects.toThrow(/--until .* must be after --from/);
    await expect(ctx.lists.merchants.add('m-13', { reason: 'x', by: 'a', from: '2026-03-10 12:00' })).rejects.toThrow(ListError);
    await expect(ctx.lists.merchants.add('m-13', { reason: ' ', by: 'a' })).rejects.toThrow(/--reason is empty/);
    await expect(ctx.lists.merchants.add('m-13', { reason: 'x', by: '' })).rejects.toThrow(/--by is empty/);
    // No card number is ever stored: not as a merchant id, not in a reason or a name.
    await expect(ctx.lists.merchants.add('6222021234567890128', { reason: 'x', by: 'a' })).rejects.toThrow(/merchant id holds a card number/);
    await expect(ctx.lists.merchants.add('m-13', { reason: 'customer card 6222 0212 3456 7890 128 reported', by: 'a' })).rejects.toThrow(/--reason holds a card number/);
    expect((await ctx.lists.merchants.show()).size).toBe(0);
    expect(await ctx.lists.merchants.history()).toEqual([]);
  });
});

describe('user_frozen', () => {
  it('declines the frozen user from `from` until `until` by event time, and allows it before and after', async () => {
    await ctx.lists.users.add('u-frozen', { reason: '异常账户: identity under review', by: 'alice', from: '2026-03-10T12:00:00+08:00', until: '2026-03-10T14:00:00+08:00' });
    const [backdated, atFrom, inside, atUntil, other] = await decide([
      charge({ userId: 'u-frozen', occurredAt: '2026-03-10T11:59:59.999+08:00' }),
      charge({ userId: 'u-frozen', occurredAt: '2026-03-10T12:00:00+08:00' }),
      charge({ userId: 'u-frozen', occurredAt: '2026-03-10T13:00:00+08:00' }),
      charge({ userId: 'u-frozen', occurredAt: '2026-03-10T14:00:00+08:00' }),
      charge({ occurredAt: '2026-03-10T13:00:00+08:00' }),
    ].map((e) => ({ ...e, merchantId: 'm-1' })));
    expect([backdated, atFrom, inside, atUntil, other].map((d) => d!.outcome)).toEqual(['approve', 'decline', 'decline', 'approve', 'approve']);
    expect(atFrom!.rules).toEqual(['user_frozen']);
    expect(atFrom!.reasons).toEqual(['user u-frozen is frozen from 2026-03-10T12:00:00+08:00 until 2026-03-10T14:00:00+08:00: 异常账户: identity under review']);
    expect(atFrom!.settleAt).toBeNull();
  });

  it('adds, shows, removes (ending the entry now) and records every change with who made it', async () => {
    const now = Date.parse('2026-03-10T15:00:00+08:00');
    await ctx.lists.users.add('u-7', { reason: 'fraud ring', by: 'alice', from: '2026-03-10T00:00:00+08:00' }, now);
    expect([...(await ctx.lists.users.show()).keys()]).toEqual(['u-7']);
    // The other lists are apart.
    expect((await ctx.lists.merchants.show()).size).toBe(0);
    expect(await ctx.lists.users.remove('u-7', { by: 'bob' }, now)).toBe(1);
    const [before, after] = await decide([
      charge({ userId: 'u-7', merchantId: 'm-1', occurredAt: '2026-03-10T14:59:00+08:00' }),
      charge({ userId: 'u-7', merchantId: 'm-1', occurredAt: '2026-03-10T15:00:00+08:00' }),
    ]);
    expect([before!.outcome, after!.outcome]).toEqual(['decline', 'approve']);
    await expect(ctx.lists.users.remove('u-7', { by: 'bob' }, now)).rejects.toThrow('user u-7 has no entry in force or to come: nothing to remove');
    expect((await ctx.lists.history()).map((c) => [c.kind, c.action, c.by, c.id, c.label, c.ended])).toEqual([
      ['user', 'add', 'alice', 'u-7', 'u-7', undefined],
      ['user', 'remove', 'bob', 'u-7', 'u-7', 1],
    ]);
    await expect(ctx.lists.users.add('6222021234567890128', { reason: 'x', by: 'a' })).rejects.toThrow(/user id holds a card number/);
  });
});

describe('card_blocklisted', () => {
  // Luhn-valid, and written in other ways the producer reads as the same card.
  const CARD = '6222020000000205';

  it('declines the card for every user, however it is written, by event time, naming it by its last four', async () => {
    await ctx.lists.cards.add('6222 0200 0000 0205', { reason: 'reported stolen', by: 'alice', from: '2026-03-10T12:00:00+08:00' });
    const [backdated, first, second, spaced, fullWidth, otherCard] = await decide([
      charge({ cardId: CARD, occurredAt: '2026-03-10T11:00:00+08:00' }),
      charge({ cardId: CARD, occurredAt: '2026-03-10T12:00:00+08:00' }),
      charge({ cardId: CARD, occurredAt: '2026-03-10T13:00:00+08:00' }),
      charge({ cardId: '6222-0200-0000-0205', occurredAt: '2026-03-10T13:00:00+08:00' }),
      charge({ cardId: [...CARD].map((d) => String.fromCharCode(0xff10 + Number(d))).join(''), occurredAt: '2026-03-10T13:00:00+08:00' }),
      charge({ occurredAt: '2026-03-10T13:00:00+08:00' }),
    ].map((e) => ({ ...e, merchantId: 'm-1' })));
    expect([backdated, first, second, spaced, fullWidth, otherCard].map((d) => d!.outcome)).toEqual(['approve', 'decline', 'decline', 'decline', 'decline', 'approve']);
    // Different users each time.
    expect(new Set([first, second, spaced, fullWidth].map((d) => d!.userId)).size).toBe(4);
    expect(first!.rules).toEqual(['card_blocklisted']);
    expect(first!.reasons).toEqual(['card ****0205 is on the card blocklist from 2026-03-10T12:00:00+08:00 until removed: reported stolen']);
    expect(JSON.stringify([first, second, spaced, fullWidth])).not.toContain(CARD.slice(0, 12));
  });

  it('stores the token and last four only: no card number anywhere in the namespace, in show, history or errors', async () => {
    const now = Date.parse('2026-03-10T15:00:00+08:00');
    const entry = await ctx.lists.cards.add(CARD, { reason: 'chargeback fraud', by: 'alice', from: '2026-03-10T00:00:00+08:00' }, now);
    expect(entry.last4).toBe('****0205');
    const shown = await ctx.lists.cards.show();
    expect([...shown.keys()]).toEqual([ctx.cards.token(CARD)]);
    await decide([charge({ cardId: CARD, merchantId: 'm-1', occurredAt: '2026-03-10T14:00:00+08:00' })]);
    expect(await ctx.lists.cards.remove('6222 0200 0000 0205', { by: 'bob' }, now)).toBe(1);
    await expect(ctx.lists.cards.remove(CARD, { by: 'bob' }, now)).rejects.toThrow('card ****0205 has no entry in force or to come: nothing to remove');
    const history = await ctx.lists.history();
    expect(history.map((c) => [c.kind, c.action, c.id, c.label])).toEqual([
      ['card', 'add', ctx.cards.token(CARD), '****0205'],
      ['card', 'remove', ctx.cards.token(CARD), '****0205'],
    ]);

    const dump = await namespaceDump(ctx.redis, ctx.keys);
    expect(dump.keys).toContain(ctx.keys.cardList);
    expect(dump.keys).toContain(ctx.keys.cardListHistory);
    expect(dump.text).toContain(ctx.cards.token(CARD));
    // Not the number, nor any twelve of its digits in a row.
    for (let i = 0; i + 12 <= CARD.length; i++) expect(dump.text, CARD.slice(i, i + 12)).not.toContain(CARD.slice(i, i + 12));
    const printed = JSON.stringify([...shown]) + JSON.stringify(history);
    for (let i = 0; i + 12 <= CARD.length; i++) expect(printed).not.toContain(CARD.slice(i, i + 12));
  });

  it('refuses what is no card number with a clear reason that never repeats it', async () => {
    const refused = async (input: string, reason: RegExp) => {
      const error = await ctx.lists.cards.add(input, { reason: 'x', by: 'a' }).then(() => undefined, (e: Error) => e);
      expect(error, input).toBeInstanceOf(ListError);
      expect(error!.message).toMatch(reason);
      expect(error!.message).not.toMatch(/\d{5}/);
    };
    await refused('6222020000000206', /card \*\*\*\*0206: its check digit is wrong \(Luhn\)/);
    await refused('622202000000', /a card number has 13 to 19 digits: got 12/);
    await refused('62220200000002050000', /a card number has 13 to 19 digits: got 20/);
    await refused('6222O20000000205', /digits only .*: got 15 digit\(s\) and 1 other character\(s\)/);
    await refused('card-c1', /digits only/);
    expect((await ctx.lists.cards.show()).size).toBe(0);
    expect(await ctx.lists.history()).toEqual([]);
  });
});

describe('list files', () => {
  it('loads merchants, users and cards (cards by number, tokenized with the namespace hasher), by event time', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'riskmon-lists-'));
    try {
      const path = join(dir, 'lists.json');
      writeFileSync(path, JSON.stringify({ users: [{ id: 'u-f', until: '2026-03-10T12:00:00+08:00' }], cards: [{ number: '6222 0200 0000 0213', from: '2026-03-10T12:00:00+08:00', reason: 'stolen' }] }));
      expect(await ctx.lists.loadFile(path, 'test')).toBe(2);
      const [frozen, thawed, cardBefore, cardAfter] = await decide([
        charge({ userId: 'u-f', merchantId: 'm-1', occurredAt: '2026-03-10T11:00:00+08:00' }),
        charge({ userId: 'u-f', merchantId: 'm-1', occurredAt: '2026-03-10T12:00:00+08:00' }),
        charge({ merchantId: 'm-1', cardId: '6222020000000213', occurredAt: '2026-03-10T11:00:00+08:00' }),
        charge({ merchantId: 'm-1', cardId: '6222020000000213', occurredAt: '2026-03-10T12:00:00+08:00' }),
      ]);
      expect([frozen, thawed, cardBefore, cardAfter].map((d) => d!.rules)).toEqual([['user_frozen'], [], [], ['card_blocklisted']]);
      expect((await ctx.lists.history()).map((c) => [c.kind, c.action, c.label, c.source])).toEqual([
        ['user', 'load', 'u-f', path],
        ['card', 'load', '****0213', path],
      ]);

      // A bad card in a file: the file is refused, naming the entry, never the number.
      writeFileSync(path, JSON.stringify({ cards: [{ number: '6222020000000214' }] }));
      await expect(ctx.lists.loadFile(path, 'test')).rejects.toThrow(/cards\.0\.number: card \*\*\*\*0214: its check digit is wrong/);
      await expect(ctx.lists.loadFile(path, 'test')).rejects.not.toThrow(/622202/);
      // Even a syntax error, which V8 reports with the text around it.
      writeFileSync(path, '{"cards": [{"number": "6222020000000213" x}]}');
      await expect(ctx.lists.loadFile(path, 'test')).rejects.not.toThrow(/622202/);
      await expect(ctx.lists.loadFile(path, 'test')).rejects.toThrow(ListError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the list stays small', () => {
  it('drops entries ended longer ago than a charge may be dated, and caps entries per merchant', async () => {
    const day = 86_400_000;
    const t0 = Date.parse('2026-03-01T00:00:00+08:00');
    await ctx.lists.merchants.add('m-13', { reason: 'old', by: 'a', from: new Date(t0).toISOString(), until: new Date(t0 + day).toISOString() }, t0);
    await ctx.lists.merchants.add('m-13', { reason: 'recent', by: 'a', from: new Date(t0 + 5 * day).toISOString() }, t0 + 5 * day);
    expect((await ctx.lists.merchants.show()).get('m-13')!.map((e) => e.reason)).toEqual(['old', 'recent']);
    // Nine days after the old one ended (maxAgeDays 7, and a day): the next change drops it.
    await ctx.lists.merchants.add('m-13', { reason: 'newer', by: 'a' }, t0 + 10 * day);
    expect((await ctx.lists.merchants.show()).get('m-13')!.map((e) => e.reason)).toEqual(['recent', 'newer']);

    for (let i = 2; i < MAX_ENTRIES_PER_ID; i++) await ctx.lists.merchants.add('m-14', { reason: `r${i}`, by: 'a' }, t0);
    await ctx.lists.merchants.add('m-14', { reason: 'last', by: 'a' }, t0);
    await ctx.lists.merchants.add('m-14', { reason: 'last', by: 'a' }, t0);
    await expect(ctx.lists.merchants.add('m-14', { reason: 'one too many', by: 'a' }, t0)).rejects.toThrow(`merchant m-14 has ${MAX_ENTRIES_PER_ID} entries already`);
    expect((await ctx.lists.merchants.show()).get('m-14')).toHaveLength(MAX_ENTRIES_PER_ID);
  });

  it('refuses control characters in ids and texts (records are printed one per line)', async () => {
    await expect(ctx.lists.merchants.add('m-13\nm-666 from always', { reason: 'x', by: 'a' })).rejects.toThrow(/merchant id holds a control character/);
    await expect(ctx.lists.merchants.add('m-13', { reason: 'x\u0000y', by: 'a' })).rejects.toThrow(/--reason holds a control character/);
  });
});

describe.skipIf(skipWithoutPostgres())('npm run lists', () => {
  // Changes need an admin's token (src/api/operator.ts): alice, bob, carol and a are admins; ana an analyst.
  let database: TestDatabase;
  const tokens: Record<string, string> = {};
  beforeAll(async () => {
    database = await createTestDatabase();
    Object.assign(tokens, await addTestUsers(database.url, { alice: 'admin', bob: 'admin', carol: 'admin', a: 'admin', ana: 'analyst' }));
  });
  afterAll(async () => database?.drop());
  const env = (who?: string) => ({ REDIS_URL: redisUrl(), RISKMON_NAMESPACE: ctx.keys.namespace, DATABASE_URL: database.url, ...(who ? { RISKMON_TOKEN: tokens[who]! } : {}) });

  it('adds, shows, removes and lists the history from the command line', async () => {
    const add = await runTool('lists', ['add', 'merchant', 'm-13', '--reason', 'licence suspended', '--from', '2026-03-10T00:00:00+08:00'], env('alice'));
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(add.stdout).toContain('merchant m-13 listed from 2026-03-10T00:00:00+08:00 until removed: licence suspended');
    const shown = JSON.parse((await runTool('lists', ['show', '--json'], env())).stdout) as { merchants: Record<string, { reason: string; by: string }[]> };
    expect(shown.merchants['m-13']).toMatchObject([{ reason: 'licence suspended', by: 'alice' }]);
    const [listed] = await decide([charge({ occurredAt: '2026-03-10T09:00:00+08:00' })]);
    expect(listed!.outcome).toBe('decline');

    const removed = await runTool('lists', ['remove', 'merchant', 'm-13'], env('bob'));
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain('1 entry ended now');
    const history = readNdjson<{ action: string; by: string }>((await runTool('lists', ['history', '--json'], env())).stdout);
    expect(history.map((h) => `${h.action}:${h.by}`)).toEqual(['add:alice', 'remove:bob']);
    expect((await runTool('lists', ['history'], env())).stdout).toMatch(/bob {2}merchant m-13 ended 1 entry/);
  }, 60_000);

  it("refuses a change without an admin's token, with --by, or with a bad instant, with the reason", async () => {
    const noToken = await runTool('lists', ['add', 'merchant', 'm-13', '--reason', 'x'], env());
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain("lists add needs an admin's API token in RISKMON_TOKEN");
    const analyst = await runTool('lists', ['add', 'merchant', 'm-13', '--reason', 'x'], env('ana'));
    expect(analyst.code).toBe(1);
    expect(analyst.stderr).toContain('lists add needs the admin role; ana is analyst');
    const by = await runTool('lists', ['add', 'merchant', 'm-13', '--reason', 'x', '--by', 'alice'], env('alice'));
    expect(by.code).toBe(2);
    expect(by.stderr).toContain('--by is gone');
    const badFrom = await runTool('lists', ['add', 'merchant', 'm-13', '--reason', 'x', '--from', 'tomorrow'], env('a'));
    expect(badFrom.code).toBe(2);
    expect(badFrom.stderr).toMatch(/--from: /);
    const nothing = await runTool('lists', ['remove', 'merchant', 'm-13'], env('a'));
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain('nothing to remove');
    expect((await ctx.lists.merchants.history()).length).toBe(0);
  }, 60_000);

  it('freezes a user and blocklists a card from the command line, printing the card as its last four only', async () => {
    const card = '6222020000000205';
    const user = await runTool('lists', ['add', 'user', 'u-9', '--reason', '异常账户', '--from', '2026-03-10T00:00:00+08:00', '--until', '2026-03-10T12:00:00+08:00'], env('alice'));
    expect(user.stderr).toBe('');
    expect(user.stdout).toContain('user u-9 listed from 2026-03-10T00:00:00+08:00 until 2026-03-10T12:00:00+08:00: 异常账户');
    const added = await runTool('lists', ['add', 'card', '6222 0200 0000 0205', '--reason', 'reported stolen', '--from', '2026-03-10T00:00:00+08:00'], env('bob'));
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toBe('card ****0205 listed from 2026-03-10T00:00:00+08:00 until removed: reported stolen\n');
    // The CLI's token is the one the charges carry.
    const [frozen, blocked, thawed] = await decide([
      charge({ userId: 'u-9', merchantId: 'm-1', cardId: '6222020000000213', occurredAt: '2026-03-10T09:00:00+08:00' }),
      charge({ merchantId: 'm-1', cardId: card, occurredAt: '2026-03-10T09:00:00+08:00' }),
      charge({ userId: 'u-9', merchantId: 'm-1', cardId: '6222020000000213', occurredAt: '2026-03-10T12:00:00+08:00' }),
    ]);
    expect([frozen, blocked, thawed].map((d) => d!.rules)).toEqual([['user_frozen'], ['card_blocklisted'], []]);

    const shownText = (await runTool('lists', ['show'], env())).stdout;
    expect(shownText).toContain('0 merchant(s), 1 user(s), 1 card(s) listed');
    expect(shownText).toMatch(/^card \*\*\*\*0205 {2}from 2026-03-10T00:00:00\+08:00 until removed {2}by bob at .*: reported stolen$/m);
    const shown = JSON.parse((await runTool('lists', ['show', 'card', '--json'], env())).stdout) as Record<string, Record<string, { last4: string }[]>>;
    expect(Object.keys(shown)).toEqual(['cards']);
    expect(shown.cards![ctx.cards.token(card)]).toMatchObject([{ last4: '****0205', by: 'bob' }]);
    // "-": the number from stdin, out of the process list.
    const removed = await runTool('lists', ['remove', 'card', '-'], env('carol'), 60_000, '6222-0200-0000-0205\n');
    expect(removed.stdout).toBe('card ****0205: 1 entry ended now\n');
    const historyText = (await runTool('lists', ['history'], env())).stdout;
    expect(historyText).toMatch(/alice {2}user u-9 added from/);
    expect(historyText).toMatch(/bob {2}card \*\*\*\*0205 added from 2026-03-10T00:00:00\+08:00 until removed: reported stolen/);
    expect(historyText).toMatch(/carol {2}card \*\*\*\*0205 ended 1 entry/);
    const historyJson = readNdjson<{ kind: string; label: string }>((await runTool('lists', ['history', 'card', '--json'], env())).stdout);
    expect(historyJson.map((c) => `${c.kind}:${c.label}`)).toEqual(['card:****0205', 'card:****0205']);
    for (const out of [added.stdout, shownText, JSON.stringify(shown), removed.stdout, historyText, JSON.stringify(historyJson)]) expect(out).not.toContain(card.slice(0, 12));
  }, 60_000);

  it('refuses a bad card number with exit code 2, without printing it', async () => {
    const bad = await runTool('lists', ['add', 'card', '6222020000000206', '--reason', 'x'], env('a'));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('card ****0206: its check digit is wrong (Luhn)');
    expect(bad.stderr).not.toContain('622202');
    const noKind = await runTool('lists', ['add', 'cards', '6222020000000205', '--reason', 'x'], env('a'));
    expect(noKind.code).toBe(2);
    expect(noKind.stderr).toContain('expected a list: merchant, user or card');
    const stray = await runTool('lists', ['show', 'card', '6222020000000205'], env());
    expect(stray.code).toBe(2);
    expect(stray.stderr + noKind.stderr).not.toContain('622202');
    expect(await ctx.lists.history()).toEqual([]);
  }, 60_000);
});
