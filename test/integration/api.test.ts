/**
 * The /api access matrix on a real service (risk workers, archiver, HTTP) over a fresh PostgreSQL database: each
 * route × no token, a wrong token, a revoked token, each role; 404, 400, pagination, the card as its last four
 * digits, every request (refused ones too) in the audit trail, and 429 for wrong tokens and for too many requests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArchiveDb, type ArchiveDb } from '../../src/archive/database.ts';
import { archiveBacklog } from '../../src/archive/archiver.ts';
import { ApiUsers } from '../../src/api/users.ts';
import type { Service } from '../../src/service.ts';
import { startTestService, stopTestService } from '../helpers/service.ts';
import { testCharge } from '../helpers/charges.ts';
import { createTestDatabase, skipWithoutPostgres, type TestDatabase } from '../helpers/postgres.ts';

describe.skipIf(skipWithoutPostgres())('/api', () => {
  let database: TestDatabase;
  let db: ArchiveDb;
  let service: Service & { http: NonNullable<Service['http']> };
  const tokens: Record<string, string> = {};
  let eventIds: string[] = [];
  let userId = '';

  const get = (path: string, token?: string) => fetch(`${service.http.url}${path}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });

  beforeAll(async () => {
    database = await createTestDatabase();
    service = await startTestService({
      components: ['risk', 'settlement', 'archive'],
      env: { DATABASE_URL: database.url },
      overrides: { http: { api: { requestsPerMinute: 60, maxPageSize: 50 }, dashboard: { loginThrottle: { maxFailures: 20, windowSeconds: 60, globalMaxFailures: 100 } } } },
    });
    const { context } = service;
    for (let i = 0; i < 100 && !service.archive; i++) await new Promise((r) => setTimeout(r, 100));
    db = await openArchiveDb({ databaseUrl: database.url, dataDir: '' });
    const users = new ApiUsers(db);
    for (const [name, role] of [['ana', 'analyst'], ['sup', 'supervisor'], ['adm', 'admin'], ['old', 'supervisor']] as const) tokens[name] = (await users.add(name, role)).token;
    await users.revoke('old');

    const ns = context.keys.namespace;
    userId = `${ns}-u1`;
    const clock = Date.now();
    const producer = await context.openProducer({ clock: () => clock });
    const charges = Array.from({ length: 12 }, (_, i) =>
      testCharge({ eventId: `${ns}-e${i}`, userId: i < 8 ? userId : `${ns}-u2`, merchantId: 'm-api', cardId: '6222021234567890128', amount: 1000 + i, occurredAt: new Date(clock - (20 - i) * 60_000).toISOString() }),
    );
    for (const c of charges) producer.send(c);
    await producer.flush();
    await producer.close();
    eventIds = charges.map((c) => c.eventId);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const n = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fenfu.transactions WHERE namespace = $1`, [ns])).rows[0]!.n;
      if (n === 12 && (await archiveBacklog(context.redis, context.keys)).every((b) => b.entries === 0)) break;
      if (Date.now() > deadline) throw new Error(`archive did not catch up: ${n} of 12`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 60_000);
  afterAll(async () => {
    if (service) await stopTestService(service);
    await db?.close();
    await database?.drop();
  });

  it('answers each route by role: 401 without, with a wrong or a revoked token; 403 below the role', async () => {
    const routes = [`/api/decisions/${eventIds[0]}`, `/api/decisions?userId=${userId}`, '/api/audit'];
    const expected: Record<string, number[]> = {
      none: [401, 401, 401],
      wrong: [401, 401, 401],
      revoked: [401, 401, 401],
      ana: [200, 403, 403],
      sup: [200, 200, 200],
      adm: [200, 200, 200],
    };
    const tokenOf: Record<string, string | undefined> = { none: undefined, wrong: `rmk_${'x'.repeat(43)}`, revoked: tokens.old, ana: tokens.ana, sup: tokens.sup, adm: tokens.adm };
    const got: Record<string, number[]> = {};
    for (const who of Object.keys(expected)) got[who] = await Promise.all(routes.map(async (r) => (await get(r, tokenOf[who])).status));
    expect(got).toEqual(expected);
    const refused = await get(routes[1]!, tokens.ana);
    expect((await refused.json()).error).toMatch(/needs the supervisor role or above; ana is analyst/);
    expect((await get(routes[0]!)).headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('shows one decision with the card as its last four digits, 404 for an unknown eventId', async () => {
    const r = await get(`/api/decisions/${eventIds[3]}`, tokens.ana);
    const text = await r.text();
    const d = JSON.parse(text);
    expect(d).toMatchObject({ eventId: eventIds[3], userId, merchantId: 'm-api', amountFen: 1003, cardLast4: '0128' });
    expect(d.reasons).toEqual(expect.any(Array));
    expect(d).not.toHaveProperty('card');
    expect(text).not.toMatch(/622202|\d{13,19}/); // neither the card number nor any part of its first digits
    const missing = await get('/api/decisions/nope-404', tokens.ana);
    expect(missing.status).toBe(404);
    expect((await missing.json()).error).toBe('no decision for eventId "nope-404"');
  });

  it('queries the full data page by page, filtered, and rejects a bad filter with 400', async () => {
    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const r = await get(`/api/decisions?merchantId=m-api&limit=5${cursor ? `&cursor=${cursor}` : ''}`, tokens.sup);
      expect(r.status).toBe(200);
      const body = (await r.json()) as { decisions: { eventId: string }[]; nextCursor: string | null };
      pages.push(body.decisions.map((d) => d.eventId));
      cursor = body.nextCursor;
    } while (cursor);
    expect(pages.map((p) => p.length)).toEqual([5, 5, 2]);
    expect(pages.flat()).toEqual(eventIds); // oldest first: the charges were made a minute apart, in order
    const byUser = (await (await get(`/api/decisions?userId=${userId}&outcome=approve`, tokens.sup)).json()) as { decisions: { userId: string; outcome: string }[] };
    expect(byUser.decisions.length).toBeGreaterThan(0);
    expect(byUser.decisions.every((d) => d.userId === userId && d.outcome === 'approve')).toBe(true);
    const from = new Date(Date.now() - 10 * 60_000).toISOString();
    const recent = (await (await get(`/api/decisions?merchantId=m-api&from=${encodeURIComponent(from)}`, tokens.sup)).json()) as { decisions: unknown[] };
    expect(recent.decisions.length).toBeLessThan(12);
    // A cursor of the right shape holding a time that is none (a hostile client's): 400, not a database error.
    const forged = Buffer.from(JSON.stringify({ occurredAt: 'not a time', eventId: 'x' })).toString('base64url');
    for (const bad of ['from=yesterday', 'limit=0', 'limit=51', 'limit=1e3', 'outcome=maybe', 'colour=red', 'cursor=nonsense', `cursor=${forged}`, `userId=${'u'.repeat(300)}`]) {
      const r = await get(`/api/decisions?${bad}`, tokens.sup);
      expect(r.status, bad).toBe(400);
    }
  });

  it('audits every request, refused ones too, for supervisors to read', async () => {
    await get(`/api/decisions?userId=${userId}`, tokens.ana); // 403
    await get('/api/audit'); // 401
    const r = await get('/api/audit?limit=50', tokens.sup);
    const { entries } = (await r.json()) as { entries: { user: string | null; route: string; status: number; rows: number; filters: Record<string, unknown> }[] };
    expect(entries.find((e) => e.user === 'ana' && e.status === 403 && e.route === '/api/decisions')).toMatchObject({ rows: 0, filters: { userId } });
    expect(entries.find((e) => e.user === null && e.status === 401 && e.route === '/api/audit')).toBeDefined();
    expect(entries.find((e) => e.user === 'sup' && e.status === 200 && e.route === '/api/decisions' && e.rows === 5)).toBeDefined();
    expect(entries.find((e) => e.user === 'ana' && e.route === '/api/decisions/:eventId' && e.status === 404)).toMatchObject({ filters: { eventId: 'nope-404' } });
    const onlyAna = (await (await get('/api/audit?user=ana', tokens.adm)).json()) as { entries: { user: string }[] };
    expect(onlyAna.entries.length).toBeGreaterThan(0);
    expect(onlyAna.entries.every((e) => e.user === 'ana')).toBe(true);
    // A card number sent where none belongs is neither answered nor kept: masked in the 404, by name in the audit.
    const pan = '4111111111111111';
    const byPan = await get(`/api/decisions/${pan}`, tokens.ana);
    expect(byPan.status).toBe(404);
    expect(await byPan.text()).not.toContain(pan);
    expect((await get(`/api/decisions?userId=${userId}&${pan}=1&card=${pan}`, tokens.sup)).status).toBe(400);
    const audit = await db.query<{ filters: unknown }>(`SELECT filters FROM riskmon.audit`);
    expect(JSON.stringify(audit.rows)).not.toContain(pan);
    expect(audit.rows.map((r) => r.filters)).toContainEqual(expect.objectContaining({ unknown: ['[masked …1111]', 'card'] }));
    const stored = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM riskmon.audit`)).rows[0]!.n;
    expect(stored).toBeGreaterThanOrEqual(entries.length);
  });

  it('throttles a user past requestsPerMinute, and a client sending wrong tokens, with 429', async () => {
    let status = 0;
    for (let i = 0; i < 70 && status !== 429; i++) status = (await get(`/api/decisions/${eventIds[0]}`, tokens.adm)).status;
    expect(status).toBe(429);
    const statuses: number[] = [];
    for (let i = 0; i < 25; i++) statuses.push((await get('/api/audit', `rmk_${String(i).padStart(43, 'y')}`)).status);
    expect(statuses).toContain(429);
    const limited = await get('/api/audit', tokens.sup); // the client is throttled now, whatever token it sends
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
