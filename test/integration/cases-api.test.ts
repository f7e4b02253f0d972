/**
 * The review queue's API on a real service (risk workers, settlement, archiver, HTTP) over a fresh PostgreSQL
 * database: the access matrix of every case route, taking, releasing, cancelling, four eyes, 409/404/400/204, the
 * case page's decision, history and audit trail, and every request in the API audit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArchiveDb, type ArchiveDb } from '../../src/archive/database.ts';
import { ApiUsers } from '../../src/api/users.ts';
import type { CaseView } from '../../src/cases/case.ts';
import type { Service } from '../../src/service.ts';
import { archiveCaughtUp, startTestService, stopTestService } from '../helpers/service.ts';
import { testCharge } from '../helpers/charges.ts';
import { createTestDatabase, skipWithoutPostgres, type TestDatabase } from '../helpers/postgres.ts';

describe.skipIf(skipWithoutPostgres())('/api/cases', () => {
  let database: TestDatabase;
  let db: ArchiveDb;
  let service: Service & { http: NonNullable<Service['http']> };
  const tokens: Record<string, string> = {};
  /** The review cases opened, by the user whose burst opened it. */
  const caseOf: Record<string, string> = {};
  let ns = '';

  const call = (method: 'GET' | 'POST', path: string, token?: string, body?: unknown) =>
    fetch(`${service.http.url}${path}`, {
      method,
      headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
  const caseUrl = (id: string, action = '') => `/api/cases/${encodeURIComponent(id)}${action ? `/${action}` : ''}`;

  beforeAll(async () => {
    database = await createTestDatabase();
    service = await startTestService({
      components: ['risk', 'settlement', 'archive'],
      env: { DATABASE_URL: database.url },
      overrides: { cases: { fourEyesAboveFen: 50_000 }, http: { api: { requestsPerMinute: 1_000, maxPageSize: 50 } } },
    });
    for (let i = 0; i < 100 && !service.archive; i++) await new Promise((r) => setTimeout(r, 100));
    db = await openArchiveDb({ databaseUrl: database.url, dataDir: '' });
    const users = new ApiUsers(db);
    for (const [name, role] of [['ana', 'analyst'], ['ben', 'analyst'], ['sup', 'supervisor'], ['sue', 'supervisor'], ['adm', 'admin'], ['old', 'analyst']] as const) tokens[name] = (await users.add(name, role)).token;
    await users.revoke('old');

    const { context } = service;
    ns = context.keys.namespace;
    const clock = Date.now();
    const producer = await context.openProducer({ clock: () => clock });
    // Each user: three charges on one card within ten minutes, the third held for review (same_card_burst). The
    // small ones a day earlier: their cases' deadlines come first (the next analyst takes them).
    for (const [user, amount, daysAgo] of [['a', 1_000, 1], ['b', 2_000, 1], ['c', 3_000, 1], ['big', 60_000, 0], ['big2', 70_000, 0]] as const) {
      const userId = `${ns}-${user}`;
      for (let i = 0; i < 3; i++) {
        const at = clock - daysAgo * 86_400_000 - (30 - i) * 60_000;
        producer.send(testCharge({ eventId: `${ns}-${user}-${i}`, userId, merchantId: 'm-cases', cardId: '6222021234567890128', amount: i < 2 ? 100 : amount, occurredAt: new Date(at).toISOString() }));
      }
      caseOf[user] = `${ns}-${user}-2`;
    }
    await producer.flush();
    await producer.close();
    const deadline = Date.now() + 20_000;
    while ((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fenfu.cases WHERE namespace = $1`, [ns])).rows[0]!.n < 5) {
      if (Date.now() > deadline) throw new Error('the cases were not archived');
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 60_000);
  afterAll(async () => {
    if (service) await stopTestService(service);
    await db?.close();
    await database?.drop();
  });

  it('answers each route by role: 401 without a valid token, 403 below the route\'s role', async () => {
    const unknown = `${ns}-no-such-case`;
    const routes: { method: 'GET' | 'POST'; path: string; body?: unknown; role: 'analyst' | 'supervisor'; allowed: number }[] = [
      { method: 'GET', path: '/api/cases?status=open', role: 'analyst', allowed: 200 },
      { method: 'GET', path: '/api/cases?status=closed', role: 'analyst', allowed: 200 },
      { method: 'GET', path: caseUrl(unknown), role: 'analyst', allowed: 404 },
      { method: 'POST', path: caseUrl(unknown, 'release'), body: { note: 'x' }, role: 'analyst', allowed: 404 },
      { method: 'POST', path: caseUrl(unknown, 'cancel'), body: { reason: 'x' }, role: 'analyst', allowed: 404 },
      { method: 'POST', path: caseUrl(unknown, 'approve'), body: {}, role: 'supervisor', allowed: 404 },
      { method: 'GET', path: '/api/case-actions?limit=5', role: 'supervisor', allowed: 200 },
      { method: 'GET', path: '/api/me', role: 'analyst', allowed: 200 },
    ];
    for (const r of routes) {
      const seen: Record<string, number> = {};
      for (const who of ['none', 'wrong', 'old', 'ana', 'sup', 'adm']) {
        const token = who === 'none' ? undefined : who === 'wrong' ? `rmk_${'x'.repeat(43)}` : tokens[who];
        seen[who] = (await call(r.method, r.path, token, r.body)).status;
      }
      const needsSupervisor = r.role === 'supervisor';
      expect(seen, `${r.method} ${r.path}`).toEqual({ none: 401, wrong: 401, old: 401, ana: needsSupervisor ? 403 : r.allowed, sup: r.allowed, adm: r.allowed });
    }
    expect(await (await call('GET', '/api/me', tokens.sup)).json()).toEqual({ name: 'sup', role: 'supervisor' });
    // Found by hostile input: a NUL in a path made the request unauditable (PostgreSQL's jsonb refuses U+0000): 503.
    expect((await call('GET', '/api/cases/%00', tokens.ana)).status).toBe(404);
    const array = await call('POST', caseUrl(unknown, 'release'), tokens.ana, '[]');
    expect(((await array.json()) as { error: string }).error).toMatch(/^body: /);
    // /next changes state: its matrix without a case being taken by the refused callers.
    for (const who of ['none', 'old']) expect((await call('POST', '/api/cases/next', who === 'none' ? undefined : tokens[who])).status).toBe(401);
  });

  it('two analysts take different cases; one cannot act on the other\'s; release and cancel close them', async () => {
    const first = (await (await call('POST', '/api/cases/next', tokens.ana)).json()) as CaseView;
    const second = (await (await call('POST', '/api/cases/next', tokens.ben)).json()) as CaseView;
    expect(first).toMatchObject({ status: 'locked', lockedBy: 'ana' });
    expect(second).toMatchObject({ status: 'locked', lockedBy: 'ben' });
    expect(second.id).not.toBe(first.id);
    const listed = (await (await call('GET', '/api/cases?status=locked', tokens.sup)).json()) as { cases: CaseView[] };
    expect(listed.cases.map((c) => c.id).sort()).toEqual([first.id, second.id].sort());

    const stolen = await call('POST', caseUrl(first.id, 'release'), tokens.ben, { note: 'mine now' });
    expect(stolen.status).toBe(409);
    expect(((await stolen.json()) as { error: string }).error).toMatch(/held by ana/);
    expect((await call('POST', caseUrl(second.id, 'cancel'), tokens.ana, { reason: 'fraud' })).status).toBe(409);

    expect((await call('POST', caseUrl(second.id, 'cancel'), tokens.ben, { reason: '  ' })).status).toBe(400);
    expect((await call('POST', caseUrl(second.id, 'cancel'), tokens.ben, 'not json')).status).toBe(400);
    expect((await call('POST', caseUrl(second.id, 'cancel'), tokens.ben, { reason: 'x', extra: 1 })).status).toBe(400);

    const released = await call('POST', caseUrl(first.id, 'release'), tokens.ana, { note: 'known customer, card 6222021234567890128' });
    expect(released.status).toBe(200);
    expect(await released.json()).toMatchObject({ status: 'closed', outcome: 'released', closedBy: 'ana' });
    expect((await call('POST', caseUrl(first.id, 'release'), tokens.ana, {})).status).toBe(409);
    const cancelled = await call('POST', caseUrl(second.id, 'cancel'), tokens.ben, { reason: 'stolen card' });
    expect(await cancelled.json()).toMatchObject({ status: 'closed', outcome: 'cancelled', cancelledFen: expect.any(Number) });

    // The case page: its decision and reasons, the user's (and card's) recent charges, the trail with the notes.
    await archiveCaughtUp(service);
    const page = (await (await call('GET', caseUrl(first.id), tokens.ana)).json()) as {
      case: CaseView;
      decision: { eventId: string; reasons: string[]; outcome: string };
      history: { user: { eventId: string }[]; card: { eventId: string }[] };
      actions: { action: string; actor: string; note: string }[];
    };
    expect(page.case).toMatchObject({ id: first.id, outcome: 'released' });
    expect(page.decision).toMatchObject({ eventId: first.chargeId, outcome: 'review' });
    expect(page.decision.reasons[0]).toMatch(/card/);
    expect(page.history.user).toHaveLength(2);
    expect(page.history.card).toHaveLength(2);
    expect(page.actions.map((a) => [a.action, a.actor])).toEqual([
      ['opened', 'system'],
      ['taken', 'ana'],
      ['released', 'ana'],
    ]);
    // Notes are kept for years: never a card number.
    expect(page.actions[2]!.note).toBe('known customer, card [masked …0128]');
    const closed = (await (await call('GET', '/api/cases?status=closed', tokens.ana)).json()) as { cases: CaseView[] };
    expect(closed.cases.map((c) => c.id).sort()).toEqual([first.id, second.id].sort());
    // Archived and closed: gone from Redis, still answered from PostgreSQL.
    expect(await service.context.cases.get(first.id)).toBeUndefined();
  });

  it('four eyes: a release above the amount waits for a supervisor; the releaser cannot approve it', async () => {
    const asked = await call('POST', caseUrl(caseOf.big!, 'release'), tokens.ana, { note: 'looks fine' });
    expect(await asked.json()).toMatchObject({ status: 'pending_approval', releasedBy: 'ana' });
    const waiting = (await (await call('GET', '/api/cases?status=pending_approval', tokens.ana)).json()) as { cases: CaseView[] };
    expect(waiting.cases.map((c) => c.id)).toEqual([caseOf.big]);
    expect((await call('POST', caseUrl(caseOf.big!, 'approve'), tokens.ana, {})).status).toBe(403);
    expect((await call('POST', caseUrl(caseOf.big!, 'release'), tokens.ben, {})).status).toBe(409);
    expect(await (await call('POST', caseUrl(caseOf.big!, 'approve'), tokens.sup, { note: 'ok' })).json()).toMatchObject({ status: 'closed', outcome: 'released', approvedBy: 'sup' });

    expect((await call('POST', caseUrl(caseOf.big2!, 'release'), tokens.sup, {})).status).toBe(200);
    const own = await call('POST', caseUrl(caseOf.big2!, 'approve'), tokens.sup, {});
    expect(own.status).toBe(403);
    expect(((await own.json()) as { error: string }).error).toMatch(/another supervisor/);
    expect((await call('POST', caseUrl(caseOf.big2!, 'approve'), tokens.adm, {})).status).toBe(200);
  });

  it('a complaint through the pipeline freezes the charge\'s case and marks the charge disputed in the archive', async () => {
    // The small case the analysts above left open (which two they took depends on the shards' order).
    const open = (await service.context.cases.list('open', Date.now(), 10)).find((k) => [caseOf.a, caseOf.b, caseOf.c].includes(k.id))!;
    const producer = await service.context.openProducer();
    producer.send({ type: 'complaint', eventId: `${ns}-complaint-1`, userId: open.userId, chargeId: open.chargeId, reason: 'customer says it was not them', occurredAt: new Date().toISOString() });
    await producer.flush();
    await producer.close();
    const deadline = Date.now() + 20_000;
    for (;;) {
      const disputes = await db.query<{ event_id: string; opened_by: string; reason: string }>(`SELECT event_id, opened_by, reason FROM fenfu.disputes WHERE namespace = $1`, [ns]);
      if (disputes.rows.length > 0) {
        expect(disputes.rows).toEqual([{ event_id: open.chargeId, opened_by: `complaint ${ns}-complaint-1`, reason: 'customer says it was not them' }]);
        break;
      }
      if (Date.now() > deadline) throw new Error('no dispute was archived');
      await new Promise((r) => setTimeout(r, 100));
    }
    const page = (await (await call('GET', caseUrl(open.id), tokens.ana)).json()) as { case: CaseView; actions: { action: string }[] };
    expect(page.case).toMatchObject({ frozen: true, complaint: { eventId: `${ns}-complaint-1` } });
    expect(page.actions.map((a) => a.action)).toEqual(['opened', 'complaint']);
  });

  it('204 from next when no case is open; every case request is in the audit trail', async () => {
    for (;;) {
      const r = await call('POST', '/api/cases/next', tokens.ben);
      if (r.status === 204) break;
      expect(r.status).toBe(200);
    }
    expect((await call('POST', '/api/cases/next', tokens.ana)).status).toBe(204);
    const audited = await db.query<{ user_name: string | null; route: string; status: number }>(`SELECT user_name, route, status FROM riskmon.audit WHERE namespace = $1 AND route LIKE '/api/cases%'`, [ns]);
    const seen = new Set(audited.rows.map((r) => `${r.user_name} ${r.route} ${r.status}`));
    for (const expected of ['ana /api/cases/:id/release 200', 'ben /api/cases/:id/release 409', 'sup /api/cases/:id/approve 403', 'ana /api/cases/:id/approve 403', 'null /api/cases/next 401', 'ana /api/cases/next 204']) {
      expect(seen, expected).toContain(expected);
    }
  });
});
