/**
 * A service process closes within its grace period whatever Redis is doing. BullMQ's graceful Worker.close() waits
 * for the worker's blocking connection to end, which an ioredis client between two reconnect attempts never does:
 * close() used to hang forever while Redis was away, and right after an empty Redis came back on the same port
 * (the flake of "reports not ready ... while Redis is away" in http.test.ts).
 */
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Worker } from 'bullmq';
import { createLogger } from '../../src/logger.ts';
import { startRedisServer, type LocalRedis } from '../../src/redis/local-server.ts';
import type { Service, ShutdownReport } from '../../src/service.ts';
import { startTestService } from '../helpers/service.ts';

const ALL = ['risk', 'settlement', 'calibration'] as const;

function capture() {
  const lines: { level: number; msg: string; queue?: string }[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (s: string) => void lines.push(JSON.parse(s)) } });
  return { logger, lines };
}

type BlockingClient = { status: string; once(event: string, listener: (...args: unknown[]) => void): unknown };

function blockingClient(worker: Worker): Promise<BlockingClient> {
  return worker.getBackend().blockingConnection!.client as Promise<BlockingClient>;
}

async function blockingStatuses(service: Service): Promise<string[]> {
  return Promise.all(service.workers.map(async (w) => (await blockingClient(w)).status));
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** service.close(), or a failure naming the state it hung in if it has not finished within `boundMs`. */
async function closeWithin(service: Service, boundMs: number): Promise<ShutdownReport> {
  const before = await blockingStatuses(service);
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`service.close() did not finish within ${boundMs} ms (blocking connections when it started: ${before.join(', ')})`)),
      boundMs,
    );
  });
  try {
    return await Promise.race([service.close(), hung]);
  } finally {
    clearTimeout(timer);
  }
}

describe('service shutdown', () => {
  let redis: LocalRedis | undefined;
  afterEach(async () => {
    await redis?.stop();
    if (redis) rmSync(redis.dir, { recursive: true, force: true });
    redis = undefined;
  });

  it('ends within its grace period while Redis is away, logging each worker it stopped without waiting', async () => {
    const graceMs = 3_000;
    redis = await startRedisServer();
    const { logger, lines } = capture();
    const service = await startTestService({ redisUrl: redis.url, components: [...ALL], overrides: { pipeline: { shutdownGraceMs: graceMs } }, logger });
    const queues = service.workers.map((w) => w.name);
    await redis.stop();
    // Every blocking connection between two reconnect attempts: the state in which close() used to wait forever.
    await until(async () => (await blockingStatuses(service)).every((s) => s === 'reconnecting'), 'the blocking connections to wait for Redis');

    const report = await closeWithin(service, graceMs + 5_000);

    expect(report.clean).toBe(false);
    expect(report.abandoned).toEqual(expect.arrayContaining(queues));
    expect(report.abandoned.filter((a) => !queues.includes(a))).toEqual(report.abandoned.includes('Redis connections') ? ['Redis connections'] : []);
    const stopped = lines.filter((l) => l.level >= 50 && l.msg.startsWith('Redis did not come back before the shutdown deadline')).map((l) => l.queue);
    expect(stopped.sort()).toEqual([...queues].sort());
  });

  it('closes cleanly right after an empty Redis comes back on the same port', async () => {
    redis = await startRedisServer();
    const { logger, lines } = capture();
    const service = await startTestService({ redisUrl: redis.url, components: [...ALL], logger });
    const { port, dir } = redis;
    const graceMs = service.context.settings.config.pipeline.shutdownGraceMs;
    const first = await blockingClient(service.workers[0]!);
    await redis.stop({ keepDir: true });
    // Back while the blocking connections are still waiting out a retry delay of most of a second.
    await new Promise<void>((resolve) => {
      const next = (delay: unknown) => ((delay as number) >= 800 ? resolve() : first.once('reconnecting', next));
      first.once('reconnecting', next);
    });
    redis = await startRedisServer({ port, dir });

    const report = await closeWithin(service, graceMs + 5_000);

    expect(report).toEqual({ clean: true, abandoned: [] });
    expect(lines.filter((l) => l.msg.includes('shutdown deadline'))).toEqual([]);
  });
});
