/** The HTTP side of a real service process against real Redis: health, readiness, metrics and the queue dashboard. */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadSettings } from '../../src/config.ts';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { silentLogger } from '../../src/logger.ts';
import { EventProducer } from '../../src/pipeline/producer.ts';
import { startRedisServer } from '../../src/redis/local-server.ts';
import { riskQueueName } from '../../src/redis/keys.ts';
import { startService } from '../../src/service.ts';
import { freshNamespace, redisUrl } from '../helpers/context.ts';
import { basic, startTestService, stopTestService, TEST_LOGIN } from '../helpers/service.ts';
import { decisionStreamLength } from '../helpers/shards.ts';

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A GET from a chosen loopback source address (Linux routes all of 127.0.0.0/8 to lo), as another client would. */
function getFrom(from: string, url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress: from, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of one sample in Prometheus text, or undefined. */
async function sample(url: string, series: string): Promise<number | undefined> {
  const line = (await (await fetch(`${url}/metrics`)).text()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('service HTTP server', () => {
  let service: Awaited<ReturnType<typeof startTestService>>;
  let url: string;
  const auth = { authorization: basic(TEST_LOGIN) };

  beforeAll(async () => {
    service = await startTestService();
    url = service.http.url;
    // Real traffic, so the dashboard has finished jobs whose payloads carry card numbers.
    const { context } = service;
    const producer = await context.openProducer({ clock: 'replay' });
    for (const e of syntheticCharges({ count: 200, users: 20, seed: 7, prefix: context.keys.namespace })) producer.send(e);
    await producer.close();
    await until(async () => (await decisionStreamLength(context.redis, context.keys)) === 200, '200 decisions');
  });
  afterAll(async () => {
    if (service) await stopTestService(service);
  });

  it('answers /healthz and /readyz', async () => {
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { redis: 'ok', workers: 'ok' } });
  });

  it('serves Prometheus text with the pipeline, scrape-time and default process metrics', async () => {
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    const decided = ['approve', 'review', 'decline'].reduce((s, o) => s + (value(`riskmon_decisions_total{outcome="${o}"}`) ?? 0), 0);
    expect(decided).toBe(200);
    expect(value('riskmon_events_consumed_total{type="charge",result="accepted"}')).toBe(200);
    expect(value('riskmon_decision_latency_seconds_count')).toBe(200);
    const { context } = service;
    expect(value(`riskmon_build_info{version="0.1.0",config_version="${context.settings.configVersion}"}`)).toBe(1);
    for (let shard = 0; shard < context.settings.config.pipeline.shards; shard++) {
      expect(value(`riskmon_queue_jobs{queue="${riskQueueName(shard)}",state="waiting"}`)).toBe(0);
      expect(value(`riskmon_queue_oldest_waiting_age_seconds{queue="${riskQueueName(shard)}"}`)).toBe(0);
    }
    const completed = Array.from({ length: 8 }, (_, s) => value(`riskmon_queue_jobs{queue="risk-${s}",state="completed"}`) ?? 0).reduce((a, b) => a + b);
    expect(completed).toBeGreaterThan(0);
    expect(value('riskmon_queue_jobs{queue="settlement",state="failed"}')).toBe(0);
    expect(value('riskmon_redis_memory_used_bytes')).toBeGreaterThan(0);
    expect(value('riskmon_redis_memory_max_bytes')).toBeGreaterThanOrEqual(0);
    const stats = await context.ledger.stats();
    expect(value('riskmon_settlements_held')).toBe(stats.heldCount);
    expect(value('riskmon_settlements_held_fen')).toBe(stats.heldAmount);
    expect(value('riskmon_calibration_accounts_total{change="up"}')).toBe(0);
    expect(value('riskmon_process_resident_memory_bytes')).toBeGreaterThan(0);
    // Bounded labels only: no user, card or event id ever appears in the metrics.
    const samples = text.split('\n').filter((l) => !l.startsWith('#'));
    // Names and labels only: a sample's value may contain any digits.
    const series = samples.map((l) => l.slice(0, l.lastIndexOf(' ')));
    expect(series.filter((l) => /u-\d|6222\d{6}|syn-|test-[0-9a-f]{10}/.test(l))).toEqual([]);
    const labelNames = new Set(samples.flatMap((l) => [...l.matchAll(/[{,]([a-z_]+)="/g)].map((m) => m[1])));
    expect([...labelNames].filter((n) => /user|card|event_?id|merchant/i.test(n!))).toEqual([]);
  });

  it('asks for a login on /admin/queues and refuses a wrong one', async () => {
    const none = await fetch(`${url}/admin/queues`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Basic realm="riskmon queue dashboard"');
    expect(await none.text()).toBe('Unauthorized');
    expect((await fetch(`${url}/admin/queues/api/queues`)).status).toBe(401);
    const wrong = await fetch(`${url}/admin/queues`, { headers: { authorization: basic({ user: 'ops', password: 'wrong-password' }) } });
    expect(wrong.status).toBe(401);
    const page = await fetch(`${url}/admin/queues`, { headers: auth });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>');
  });

  it('lists every queue of the namespace, read-only, with card numbers masked in job payloads', async () => {
    const res = await fetch(`${url}/admin/queues/api/queues?activeQueue=risk-0&status=completed&page=1`, { headers: auth });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { queues: { name: string; readOnlyMode: boolean; jobs: { data: { events: { cardId?: string; cardLast4?: string }[] } }[] }[] };
    const shards = service.context.settings.config.pipeline.shards;
    expect(body.queues.map((q) => q.name).sort()).toEqual([...Array.from({ length: shards }, (_, s) => `risk-${s}`), 'settlement', 'calibration'].sort());
    expect(body.queues.every((q) => q.readOnlyMode)).toBe(true);
    const jobs = body.queues.flatMap((q) => q.jobs);
    // The producer queues the card as hash + last four; the dashboard would mask a raw cardId too.
    const cards = jobs.flatMap((j) => j.data?.events ?? []).map((e) => e.cardId ?? e.cardLast4);
    expect(cards.length).toBeGreaterThan(0);
    for (const card of cards) expect(card).toMatch(/^\*{4}\d{4}$/);
    expect(JSON.stringify(body)).not.toMatch(/6222\d{8,}/);

    // Read-only: pausing a queue is refused and the queue keeps running.
    const pause = await fetch(`${url}/admin/queues/api/queues/risk-0/pause`, { method: 'PUT', headers: auth });
    expect(pause.status).toBeGreaterThanOrEqual(400);
    const queue = service.context;
    expect(await queue.redis.hget(`${queue.keys.queuePrefix('risk-0')}:risk-0:meta`, 'paused')).toBeNull();
  });
});

// Issue 11, finding 10: 5,776 wrong logins went through in 2 s; on main every request below is answered 401.
describe('dashboard login throttling', () => {
  const wrong = { authorization: basic({ user: 'ops', password: 'not-the-password' }) };
  const right = { authorization: basic(TEST_LOGIN) };

  it('answers 429 with Retry-After after too many wrong logins from one address, lets another address in, and forgets after the window', async () => {
    const service = await startTestService({ components: ['settlement'], overrides: { http: { dashboard: { loginThrottle: { maxFailures: 5, windowSeconds: 2, globalMaxFailures: 1_000 } } } } });
    try {
      const page = `${service.http.url}/admin/queues`;
      const statuses: number[] = [];
      let retryAfter: string | string[] | undefined;
      for (let i = 0; i < 20; i++) {
        const res = await getFrom('127.0.0.1', page, wrong);
        statuses.push(res.status);
        if (res.status === 429) retryAfter = res.headers['retry-after'];
      }
      expect(statuses).toEqual([...Array(5).fill(401), ...Array(15).fill(429)]);
      expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(retryAfter)).toBeLessThanOrEqual(2);
      // While refused, even the right password is not checked (a 429 says nothing about the password).
      const blockedRight = await getFrom('127.0.0.1', page, right);
      expect(blockedRight.status).toBe(429);
      expect(blockedRight.body).toMatch(/^Too many failed logins: try again in [12] s\./);
      // Another address is not held up by the guesser, and keeps its own count.
      expect((await getFrom('127.0.0.2', page, right)).status).toBe(200);
      expect((await getFrom('127.0.0.2', page, wrong)).status).toBe(401);
      // Metrics and health are never throttled.
      expect((await getFrom('127.0.0.1', `${service.http.url}/healthz`)).status).toBe(200);
      expect(await sample(service.http.url, 'riskmon_http_login_failures_total')).toBe(6);
      expect(await sample(service.http.url, 'riskmon_http_login_throttled_total')).toBe(16);

      await until(async () => (await getFrom('127.0.0.1', page, right)).status === 200, 'the window to pass', 5_000);
      // A fresh window: wrong logins are answered 401 again, up to the limit.
      expect((await getFrom('127.0.0.1', page, wrong)).status).toBe(401);
    } finally {
      await stopTestService(service);
    }
  });

  it('slows a guesser spread over many addresses with the global ceiling, then lets logins in again', async () => {
    const service = await startTestService({ components: ['settlement'], overrides: { http: { dashboard: { loginThrottle: { maxFailures: 5, windowSeconds: 2, globalMaxFailures: 8 } } } } });
    try {
      const page = `${service.http.url}/admin/queues`;
      const statuses: number[] = [];
      for (const from of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) for (let i = 0; i < 2; i++) statuses.push((await getFrom(from, page, wrong)).status);
      expect(statuses).toEqual(Array(8).fill(401));
      // No address reached its own limit, but together they reached the ceiling: everyone waits.
      expect((await getFrom('127.0.0.6', page, wrong)).status).toBe(429);
      expect((await getFrom('127.0.0.7', page, right)).status).toBe(429);
      await until(async () => (await getFrom('127.0.0.7', page, right)).status === 200, 'the global window to pass', 5_000);
    } finally {
      await stopTestService(service);
    }
  });

  it('with the default settings, lets 10 of 200 concurrent wrong logins from one address be checked', async () => {
    const service = await startTestService({ components: ['settlement'] });
    try {
      const page = `${service.http.url}/admin/queues`;
      const results = await Promise.all(Array.from({ length: 200 }, () => getFrom('127.0.0.1', page, wrong)));
      const counts = results.reduce<Record<number, number>>((acc, r) => ((acc[r.status] = (acc[r.status] ?? 0) + 1), acc), {});
      expect(counts).toEqual({ 401: 10, 429: 190 });
      expect(Number(results.find((r) => r.status === 429)!.headers['retry-after'])).toBeGreaterThan(290);
      expect((await getFrom('127.0.0.2', page, right)).status).toBe(200);
    } finally {
      await stopTestService(service);
    }
  });
});

describe('service HTTP server configuration', () => {
  it('opens the dashboard without a login only when auth is explicitly disabled', async () => {
    const service = await startTestService({ login: null, overrides: { http: { dashboard: { auth: 'disabled', readOnly: false } } } });
    try {
      const res = await fetch(`${service.http.url}/admin/queues/api/queues`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { queues: { readOnlyMode: boolean }[] };
      expect(body.queues.every((q) => !q.readOnlyMode)).toBe(true);
    } finally {
      await stopTestService(service);
    }
  });

  it('keeps the dashboard closed, saying why, when basic auth has no credentials in development', async () => {
    const service = await startTestService({ login: null, components: ['settlement'] });
    try {
      const res = await fetch(`${service.http.url}/admin/queues`);
      expect(res.status).toBe(503);
      expect(await res.text()).toContain('set RISKMON_DASHBOARD_USER and RISKMON_DASHBOARD_PASSWORD');
      expect((await fetch(`${service.http.url}/metrics`)).status).toBe(200);
    } finally {
      await stopTestService(service);
    }
  });

  /** Keys of a namespace: none may exist after a start-up that failed on its HTTP side (not even its layout). */
  async function keysOf(namespace: string): Promise<string[]> {
    const redis = new Redis(redisUrl());
    try {
      return await redis.keys(`rm:${namespace}:*`);
    } finally {
      redis.disconnect();
    }
  }

  it('refuses to start in production without dashboard credentials, before any worker starts', async () => {
    const namespace = freshNamespace();
    const settings = loadSettings({
      namespace,
      overrides: { http: { port: 0 } },
      env: {
        RISKMON_ENV: 'production',
        RISKMON_CARD_SECRET: randomBytes(32).toString('base64'),
        DATABASE_URL: 'postgres://riskmon@127.0.0.1:1/unused',
      },
    });
    const starting = startService({ components: ['settlement'], settings, logger: silentLogger, redisUrl: redisUrl(), http: true });
    await expect(starting).rejects.toThrow(ConfigError);
    await expect(starting).rejects.toThrow('the queue dashboard needs a login in production: set RISKMON_DASHBOARD_USER and RISKMON_DASHBOARD_PASSWORD');
    expect(await keysOf(namespace)).toEqual([]);
  });

  it('refuses to serve a dashboard without login on a non-loopback address, also when the settings are built by hand', async () => {
    const settings = loadSettings({ namespace: freshNamespace(), overrides: { http: { port: 0, dashboard: { auth: 'disabled' } } }, env: {} });
    const exposed = { ...settings, config: { ...settings.config, http: { ...settings.config.http, host: '0.0.0.0' } } };
    await expect(startService({ components: ['settlement'], settings: exposed, logger: silentLogger, redisUrl: redisUrl(), http: true })).rejects.toThrow(
      'http.dashboard.auth "disabled" needs a loopback http.host (127.0.0.1, ::1, localhost), not "0.0.0.0"',
    );
    expect(await keysOf(exposed.config.namespace)).toEqual([]);
  });

  it('says which port is taken when it cannot listen', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const namespace = freshNamespace();
    const settings = loadSettings({ namespace, overrides: { http: { port } }, env: {} });
    try {
      await expect(startService({ components: ['risk', 'settlement'], settings, logger: silentLogger, redisUrl: redisUrl(), http: true })).rejects.toThrow(
        `cannot serve HTTP on 127.0.0.1:${port}: the port is in use`,
      );
      expect(await keysOf(namespace)).toEqual([]);
    } finally {
      blocker.close();
    }
  });

  it('reports not ready when a worker of the process has stopped', async () => {
    const service = await startTestService({ components: ['settlement'] });
    try {
      expect((await fetch(`${service.http.url}/readyz`)).status).toBe(200);
      await service.workers[0]!.close();
      const res = await fetch(`${service.http.url}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: 'not ready', reason: 'workers: 1 of 1 workers not running (settlement)' });
    } finally {
      await stopTestService(service);
    }
  });

  it('reports not ready, with the reason, while Redis is away, and ready again when it is back', async () => {
    let redis = await startRedisServer();
    const service = await startTestService({ redisUrl: redis.url, components: ['settlement'] });
    const { port, dir } = redis;
    try {
      const url = service.http.url;
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      await redis.stop({ keepDir: true });
      const down = await fetch(`${url}/readyz`);
      expect(down.status).toBe(503);
      const body = (await down.json()) as { status: string; reason: string };
      expect(body.status).toBe('not ready');
      expect(body.reason).toMatch(/^redis: Redis (did not answer PING|PING failed)/);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      // Metrics still answer; the Redis-backed gauges are left out and the failure is counted.
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(/^riskmon_scrape_errors_total [1-9]/m);
      expect(metrics).not.toMatch(/^riskmon_queue_jobs\{/m);
      expect(metrics).toMatch(/^riskmon_process_resident_memory_bytes [1-9]/m);
      redis = await startRedisServer({ port, dir });
      await until(async () => (await fetch(`${url}/readyz`)).status === 200, 'ready after Redis is back');
    } finally {
      // Bring Redis back first if an assertion failed with it away: the workers then close gracefully instead of
      // being stopped at the shutdown deadline.
      if (redis.process.exitCode !== null || redis.process.signalCode !== null) redis = await startRedisServer({ port, dir });
      await service.close();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
