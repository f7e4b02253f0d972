/**
 * The JSON API under /api, on the service's HTTP server (seed 002, 访问控制: only risk supervisors and above query
 * the full data). `Authorization: Bearer <token>` (npm run users):
 *   GET /api/decisions/:eventId  analyst and above: one decision, the card as its last four digits
 *   GET /api/decisions?userId=&merchantId=&from=&to=&outcome=&limit=&cursor=  supervisor and above: the full query
 *   GET /api/audit?user=&from=&to=&limit=&cursor=  supervisor and above: who asked what, when, with how many rows
 *   The review queue (src/cases/), analyst and above unless said:
 *   GET /api/cases?status=open|locked|pending_approval|closed&limit=   the cases, by deadline (closed: last first)
 *   POST /api/cases/next            takes (locks) the open case with the earliest deadline; 204 when none is open
 *   GET /api/cases/:id              the case, its decision, the user's and the card's recent history, its actions
 *   POST /api/cases/:id/release {"note"}    POST /api/cases/:id/cancel {"reason"}
 *   POST /api/cases/:id/approve {"note"}    supervisor and above, not the releaser: a release above four eyes
 *   GET /api/case-actions?actor=&limit=     supervisor and above: every case action, newest first (archived)
 *   GET /api/me                     who the token belongs to: name and role
 * 401 without a token or with a wrong or revoked one (wrong tokens throttled per client: 429), 403 below the
 * route's role (or approving one's own release), 404 for an unknown eventId or case, 409 for a case another analyst
 * holds or already closed, 400 for a bad filter or body, 429 past http.api.requestsPerMinute, 503 while
 * the archive is not open. Every request is audited in PostgreSQL before its answer leaves, refused ones too; one
 * that cannot be audited gets 503 and no data.
 */
import { Hono, type Context } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { z } from 'zod';
import type { ArchiveDb } from '../archive/database.ts';
import { ArchivedDecisions, last4, type ArchivedDecision } from '../archive/archived-decisions.ts';
import type { RiskmonConfig } from '../config.ts';
import { parseDecision } from '../decisions/decision.ts';
import { parseInstant } from '../events/instant.ts';
import { maskCardNumbers } from '../events/card.ts';
import { clientKey, LoginThrottle } from '../http/login-throttle.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { SlotPipeline, type RedisClient } from '../redis/client.ts';
import type { Keys } from '../redis/keys.ts';
import { AuditLog } from './audit.ts';
import { ArchivedCases, type CaseActionEntry } from '../cases/archived-cases.ts';
import { caseView, CASE_STATUSES, type CaseRecord } from '../cases/case.ts';
import { CaseError, type CaseQueue } from '../cases/case-queue.ts';
import { ApiUsers, atLeast, type Role } from './users.ts';

export interface ApiOptions {
  /** The archive, once it is open (the service opens it in the background). */
  archive: () => ArchiveDb | undefined;
  /** Decisions not archived yet are read from Redis. */
  redis: RedisClient;
  keys: Keys;
  /** The review queue (cases in Redis until archived). */
  cases: CaseQueue;
  http: RiskmonConfig['http'];
  metrics: Metrics;
  logger: Logger;
  now?: () => number;
}

type Env = { Bindings: HttpBindings };

interface Caller {
  name: string;
  role: Role;
}

class HttpError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 429 | 503,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const instant = z.string().transform((text, ctx) => {
  const t = parseInstant(text);
  if (!t.ok) {
    ctx.addIssue({ code: 'custom', message: t.reason });
    return z.NEVER;
  }
  return new Date(t.ms);
});
const id = z.string().min(1).max(256);
/** A person's note or reason: kept for years, so never a card number (masked), at most 2000 characters. */
const text = (what: string) => z.string({ error: `${what} must be a string` }).max(2_000, `${what} is longer than 2000 characters`).transform((t) => maskCardNumbers(t));

function cursorOf<T>(schema: z.ZodType<T>) {
  return z.string().transform((text, ctx) => {
    try {
      return schema.parse(JSON.parse(Buffer.from(text, 'base64url').toString('utf8')));
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not a cursor this API gave out' });
      return z.NEVER;
    }
  });
}
/** Filters the audit records: the ones the routes know, card numbers masked, each cut short; other keys by name only. */
const AUDITED = new Set(['eventId', 'userId', 'merchantId', 'from', 'to', 'outcome', 'limit', 'user', 'id', 'status', 'actor']);
function auditedFilters(given: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(given)) {
    if (AUDITED.has(key)) out[key] = auditText(String(value)).slice(0, 256);
    else if (key !== 'cursor' && unknown.length < 10) unknown.push(auditText(key).slice(0, 64));
  }
  if (unknown.length > 0) out.unknown = unknown;
  return out;
}

/** Text the audit (jsonb) can hold: card numbers masked, U+0000 (which PostgreSQL refuses) as U+FFFD. */
function auditText(text: string): string {
  return maskCardNumbers(text).replaceAll('\u0000', '\uFFFD');
}

const encodeCursor = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

export function createApi(options: ApiOptions): Hono<Env> {
  const app = new Hono<Env>();
  const now = options.now ?? Date.now;
  const { loginThrottle } = options.http.dashboard;
  const badTokens = new LoginThrottle({ maxFailures: loginThrottle.maxFailures, windowMs: loginThrottle.windowSeconds * 1_000, globalMaxFailures: loginThrottle.globalMaxFailures, now });
  const perUser = new Map<string, { since: number; count: number }>();
  const limit = z.coerce.number().int().min(1).max(options.http.api.maxPageSize).default(100);

  /** Runs a route: authenticates, authorises, answers, and audits whatever happened. */
  const handle = (route: string, role: Role, answer: (c: Context<Env>, db: ArchiveDb, caller: Caller, filters: Record<string, unknown>) => Promise<{ body: unknown; rows: number; status?: 200 | 204 }>) =>
    async (c: Context<Env>) => {
      const client = clientKey(c.env?.incoming?.socket?.remoteAddress);
      const filters = auditedFilters({ ...c.req.param(), ...c.req.query() });
      let caller: Caller | undefined;
      let status = 200;
      let rows = 0;
      let body: unknown;
      let headers: Record<string, string> = {};
      const db = options.archive();
      try {
        if (!db) throw new HttpError(503, 'the archive is not open yet (or not in this process): try again shortly');
        caller = await authenticate(c, db, client);
        if (!atLeast(caller.role, role)) throw new HttpError(403, `${route} needs the ${role} role or above; ${caller.name} is ${caller.role}`);
        throttleUser(caller.name);
        const out = await answer(c, db, caller, filters);
        ({ body, rows } = out);
        status = out.status ?? 200;
      } catch (caught) {
        let e = caught;
        if (e instanceof CaseError) e = new HttpError(e.status, e.message);
        if (!(e instanceof HttpError)) {
          options.logger.error({ err: (e as Error).message, route }, 'api: request failed');
          status = 503;
          body = { error: 'the archive did not answer; try again' };
        } else {
          status = e.status;
          body = { error: e.message };
          headers = e.headers;
        }
        rows = 0;
      }
      if (db) {
        try {
          await new AuditLog(db, options.keys.namespace).record({ user: caller?.name ?? null, role: caller?.role ?? null, client, method: c.req.method, route, filters, rows, status }, now());
        } catch (e) {
          options.logger.error({ err: (e as Error).message, route }, 'api: the request could not be audited; no data is returned');
          return c.json({ error: 'the request could not be audited; no data is returned' }, 503);
        }
      }
      if (status === 204) return c.body(null, 204);
      return c.json(body as object, status as 200, headers);
    };

  async function authenticate(c: Context<Env>, db: ArchiveDb, client: string): Promise<Caller> {
    const waitMs = badTokens.retryAfterMs(client);
    if (waitMs > 0) {
      const seconds = String(Math.max(1, Math.ceil(waitMs / 1_000)));
      throw new HttpError(429, `too many requests without a valid token: try again in ${seconds} s`, { 'Retry-After': seconds });
    }
    const m = /^Bearer +(\S+) *$/i.exec(c.req.header('authorization') ?? '');
    if (!m) {
      // Counted as a failure too: requests without any token must not be a free flood of audit rows.
      badTokens.failed(client);
      throw new HttpError(401, 'send Authorization: Bearer <token> (npm run users -- add gives one)', { 'WWW-Authenticate': 'Bearer realm="riskmon"' });
    }
    const user = await new ApiUsers(db).authenticate(m[1]!);
    if (!user) {
      options.metrics.loginFailures.inc();
      badTokens.failed(client);
      throw new HttpError(401, 'unknown or revoked token', { 'WWW-Authenticate': 'Bearer realm="riskmon", error="invalid_token"' });
    }
    badTokens.succeeded(client);
    return user;
  }

  function throttleUser(name: string): void {
    const t = now();
    let w = perUser.get(name);
    if (!w || t - w.since >= 60_000) perUser.set(name, (w = { since: t, count: 0 }));
    if (++w.count > options.http.api.requestsPerMinute) {
      const seconds = String(Math.max(1, Math.ceil((w.since + 60_000 - t) / 1_000)));
      throw new HttpError(429, `more than ${options.http.api.requestsPerMinute} requests in a minute: try again in ${seconds} s`, { 'Retry-After': seconds });
    }
  }

  function parse<T>(schema: z.ZodType<T>, value: unknown, what: 'query' | 'body' = 'query'): T {
    const r = schema.safeParse(value);
    if (!r.success) throw new HttpError(400, r.error.issues.map((i) => `${i.path.join('.') || what}: ${i.message}`).join('; '));
    return r.data;
  }

  app.get(
    '/decisions/:eventId',
    handle('/api/decisions/:eventId', 'analyst', async (c, db) => {
      const eventId = parse(id, c.req.param('eventId'));
      const decision = (await new ArchivedDecisions(db, options.keys.namespace).byId(eventId)) ?? (await fromRedis(eventId));
      if (!decision) throw new HttpError(404, `no decision for eventId ${JSON.stringify(maskCardNumbers(eventId))}`);
      return { body: decision, rows: 1 };
    }),
  );

  const decisionQuery = z.strictObject({
    userId: id.optional(),
    merchantId: id.optional(),
    from: instant.optional(),
    to: instant.optional(),
    outcome: z.enum(['approve', 'review', 'decline']).optional(),
    limit,
    cursor: cursorOf(z.object({ occurredAt: z.string().refine((t) => Number.isFinite(Date.parse(t))), eventId: z.string() })).optional(),
  });
  app.get(
    '/decisions',
    handle('/api/decisions', 'supervisor', async (c, db) => {
      const q = parse(decisionQuery, c.req.query());
      const page = await new ArchivedDecisions(db, options.keys.namespace).query({ ...q, after: q.cursor });
      return { body: { decisions: page.decisions, nextCursor: page.next ? encodeCursor(page.next) : null }, rows: page.decisions.length };
    }),
  );

  const auditQuery = z.strictObject({
    user: z.string().min(1).max(64).optional(),
    from: instant.optional(),
    to: instant.optional(),
    limit,
    cursor: cursorOf(z.object({ at: z.string().refine((t) => Number.isFinite(Date.parse(t))), id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) })).optional(),
  });
  app.get(
    '/audit',
    handle('/api/audit', 'supervisor', async (c, db) => {
      const q = parse(auditQuery, c.req.query());
      const page = await new AuditLog(db, options.keys.namespace).query({ ...q, before: q.cursor && { at: new Date(q.cursor.at), id: q.cursor.id } });
      return { body: { entries: page.entries, nextCursor: page.next ? encodeCursor({ at: page.next.at.toISOString(), id: page.next.id }) : null }, rows: page.entries.length };
    }),
  );

  app.get(
    '/me',
    handle('/api/me', 'analyst', async (_c, _db, caller) => ({ body: { name: caller.name, role: caller.role }, rows: 1 })),
  );

  // --- The review queue ---

  const caseList = z.strictObject({ status: z.enum(CASE_STATUSES).default('open'), limit });
  app.get(
    '/cases',
    handle('/api/cases', 'analyst', async (c, db) => {
      const q = parse(caseList, c.req.query());
      const t = now();
      const cases = q.status === 'closed' ? await new ArchivedCases(db, options.keys.namespace).closed(q.limit) : await options.cases.list(q.status, t, q.limit);
      return { body: { cases: cases.map((x) => caseView(x, t)) }, rows: cases.length };
    }),
  );

  app.post(
    '/cases/next',
    handle('/api/cases/next', 'analyst', async (_c, _db, caller) => {
      const t = now();
      const taken = await options.cases.next(caller.name, t);
      if (!taken) return { body: null, rows: 0, status: 204 };
      return { body: caseView(taken, t), rows: 1 };
    }),
  );

  app.get(
    '/cases/:id',
    handle('/api/cases/:id', 'analyst', async (c, db) => {
      const caseId = parse(id, c.req.param('id'));
      const archived = new ArchivedCases(db, options.keys.namespace);
      const record = (await options.cases.get(caseId)) ?? (await archived.byId(caseId));
      if (!record) throw new HttpError(404, `no case ${JSON.stringify(maskCardNumbers(caseId))}`);
      const decisions = new ArchivedDecisions(db, options.keys.namespace);
      const decision = (await decisions.byId(record.chargeId)) ?? (await fromRedis(record.chargeId)) ?? null;
      // The user's charges of the 30 days up to this one; the card's are those of them on the same card (the
      // archive keeps a card's last four digits only, so a card is followed within its user).
      const history = await decisions.recentOfUser(record.userId, new Date(decision?.occurredAt ?? record.openedAtMs), 30, 50);
      const others = history.filter((d) => d.eventId !== record.chargeId);
      const actions: CaseActionEntry[] = await archived.actions(caseId, record.openedAtMs);
      return {
        body: {
          case: caseView(record, now()),
          decision,
          history: { user: others.slice(0, 20), card: decision ? others.filter((d) => d.cardLast4 === decision.cardLast4).slice(0, 20) : [] },
          actions,
        },
        rows: 1,
      };
    }),
  );

  const actionQuery = z.strictObject({ actor: z.string().min(1).max(64).optional(), limit });
  app.get(
    '/case-actions',
    handle('/api/case-actions', 'supervisor', async (c, db) => {
      const q = parse(actionQuery, c.req.query());
      const actions = await new ArchivedCases(db, options.keys.namespace).trail(q.limit, q.actor);
      return { body: { actions }, rows: actions.length };
    }),
  );

  const noteBody = z.strictObject({ note: text('note').optional() });
  const reasonBody = z.strictObject({ reason: text('reason').refine((r) => r.trim() !== '', 'reason must not be empty') });
  app.post(
    '/cases/:id/release',
    handle('/api/cases/:id/release', 'analyst', async (c, _db, caller) => {
      const caseId = parse(id, c.req.param('id'));
      const { note } = parse(noteBody, await jsonBody(c), 'body');
      const t = now();
      return { body: caseView(counted(await options.cases.release(caseId, caller.name, note ?? '', t)), t), rows: 1 };
    }),
  );
  app.post(
    '/cases/:id/cancel',
    handle('/api/cases/:id/cancel', 'analyst', async (c, _db, caller) => {
      const caseId = parse(id, c.req.param('id'));
      const { reason } = parse(reasonBody, await jsonBody(c), 'body');
      const t = now();
      return { body: caseView(counted(await options.cases.cancel(caseId, caller.name, atLeast(caller.role, 'supervisor'), reason, t)), t), rows: 1 };
    }),
  );
  app.post(
    '/cases/:id/approve',
    handle('/api/cases/:id/approve', 'supervisor', async (c, _db, caller) => {
      const caseId = parse(id, c.req.param('id'));
      const { note } = parse(noteBody, await jsonBody(c), 'body');
      const t = now();
      return { body: caseView(counted(await options.cases.approve(caseId, caller.name, note ?? '', t)), t), rows: 1 };
    }),
  );

  app.all('*', (c) => c.json({ error: `no route ${c.req.method} ${c.req.path}` }, 404));

  /** A case a person just acted on, counted when that closed it (riskmon_case_decisions_total). */
  function counted(record: CaseRecord): CaseRecord {
    if (record.outcome && record.closedAtMs !== undefined) options.metrics.caseClosed(record.outcome, Math.max(0, (record.closedAtMs - record.openedAtMs) / 1_000));
    return record;
  }

  /** The JSON body of a POST ({} when empty); 400 when it is not a JSON object. */
  async function jsonBody(c: Context<Env>): Promise<unknown> {
    const raw = await c.req.text();
    if (raw.trim() === '') return {};
    if (raw.length > 10_000) throw new HttpError(400, 'body: longer than 10000 characters');
    try {
      return JSON.parse(raw);
    } catch {
      throw new HttpError(400, 'body: not valid JSON');
    }
  }

  /** A decision still only in Redis (decided moments ago, not yet archived): its shard is unknown, so every one is asked. */
  async function fromRedis(eventId: string): Promise<ArchivedDecision | undefined> {
    const { keys, redis } = options;
    const pipeline = new SlotPipeline(redis);
    for (const shard of keys.shardIds) pipeline.add(keys.decision(shard, eventId), (p) => p.get(keys.decision(shard, eventId)));
    const found = (await pipeline.exec()).map(([, v]) => v).find((v) => typeof v === 'string') as string | undefined;
    if (!found) return undefined;
    const d = parseDecision(found);
    return {
      eventId: d.eventId,
      userId: d.userId,
      merchantId: d.merchantId,
      amountFen: d.amount,
      cardLast4: last4(d.card),
      occurredAt: new Date(d.occurredAt).toISOString(),
      outcome: d.outcome,
      decidedAt: d.decidedAt,
      settleAt: d.settleAt,
      settledAt: null,
      settlementDate: null,
      rules: d.rules,
      reasons: d.reasons,
      observed: d.observed,
      configVersion: d.configVersion,
    };
  }

  return app;
}
