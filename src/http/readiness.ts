/**
 * Readiness: the process can do its work only while Redis answers and its workers run. Each check reports
 * "ok" or the reason it failed, so a 503 says what is wrong.
 */
import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RedisClient } from '../redis/client.ts';

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, string>;
}

export interface ReadinessSources {
  redis: RedisClient;
  workers: Worker[];
  /** Why the process is not ready whatever the checks say ("starting", "shutting down"), if so. */
  phase: () => string | undefined;
  /** Longest wait for PING, ms. @defaultValue 1000 */
  timeoutMs?: number;
}

export async function checkReadiness(sources: ReadinessSources): Promise<ReadinessReport> {
  const checks: Record<string, string> = {};
  const phase = sources.phase();
  if (phase) checks.process = phase;
  checks.redis = await pingWithin(sources.redis, sources.timeoutMs ?? 1_000);
  const stopped = sources.workers.filter((w) => !w.isRunning() || w.closing).map((w) => w.name);
  checks.workers =
    sources.workers.length === 0
      ? 'no workers in this process'
      : stopped.length === 0
        ? 'ok'
        : `${stopped.length} of ${sources.workers.length} workers not running (${stopped.slice(0, 5).join(', ')}${stopped.length > 5 ? ', …' : ''})`;
  return { ready: Object.values(checks).every((v) => v === 'ok'), checks };
}

async function pingWithin(redis: RedisClient, timeoutMs: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`Redis did not answer PING within ${timeoutMs} ms (status ${redis.status})`), timeoutMs);
  });
  try {
    return await Promise.race([
      redis.ping().then(
        () => 'ok',
        (e: Error) => `Redis PING failed: ${e.message}`,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
