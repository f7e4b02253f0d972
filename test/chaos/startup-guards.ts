/**
 * Item 6, start-up guards, end to end through the process entry point (workers/risk-worker.ts): the service refuses
 * to start, exits with code 1 and says why, when Redis may evict keys, when the configuration is invalid, or when
 * production would run with the development card secret. Nothing is written to Redis before it refuses.
 */
import { writeFileSync } from 'node:fs';
import { DEVELOPMENT_CARD_SECRET } from '../../src/config.ts';
import { startRedisServer } from '../../src/redis/local-server.ts';
import { Redis } from 'ioredis';
import { freshNamespace } from '../helpers/context.ts';
import { startServiceProcess, writeConfigFile } from './harness.ts';

export interface GuardCase {
  name: string;
  exitCode: number | null;
  /** What the process wrote to stderr (not its JSON log). */
  message: string;
  ms: number;
  /** Keys in the private Redis after the refusal. */
  keysWritten: number;
}

async function refuse(name: string, redis: Redis, env: Record<string, string | undefined>): Promise<GuardCase> {
  const before = await redis.dbsize();
  const t0 = performance.now();
  const p = startServiceProcess('risk-worker', { RISKMON_NAMESPACE: freshNamespace('guard'), ...env });
  const killer = setTimeout(() => p.kill('SIGKILL'), 30_000);
  const { code } = await p.exited;
  clearTimeout(killer);
  return {
    name,
    exitCode: code,
    message: p.lines.filter((l) => !l.startsWith('{') && l.trim() !== '').join('\n'),
    ms: Math.round(performance.now() - t0),
    keysWritten: (await redis.dbsize()) - before,
  };
}

export async function startupGuardScenario(): Promise<GuardCase[]> {
  const evicting = await startRedisServer({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'] });
  const good = await startRedisServer();
  const evictingClient = new Redis(evicting.url);
  const goodClient = new Redis(good.url);
  const badConfig = writeConfigFile({ timezone: 'Mars/Olympus', rules: { userDailyCap: { capFen: -5 } } });
  const notJson = writeConfigFile({});
  writeFileSync(notJson.path, '{ "rules": ');
  try {
    return [
      await refuse('Redis maxmemory-policy allkeys-lru', evictingClient, { REDIS_URL: evicting.url }),
      await refuse('invalid configuration file', goodClient, { REDIS_URL: good.url, RISKMON_CONFIG: badConfig.path }),
      await refuse('configuration file that is not JSON', goodClient, { REDIS_URL: good.url, RISKMON_CONFIG: notJson.path }),
      await refuse('unknown environment', goodClient, { REDIS_URL: good.url, RISKMON_ENV: 'staging' }),
      await refuse('production without a card secret', goodClient, { REDIS_URL: good.url, RISKMON_ENV: 'production', RISKMON_CARD_SECRET: undefined }),
      await refuse('production with the development card secret', goodClient, { REDIS_URL: good.url, RISKMON_ENV: 'production', RISKMON_CARD_SECRET: DEVELOPMENT_CARD_SECRET }),
    ];
  } finally {
    evictingClient.disconnect();
    goodClient.disconnect();
    await evicting.stop();
    await good.stop();
    badConfig.remove();
    notJson.remove();
  }
}
