/**
 * Item 6, start-up guards, end to end through the process entry point (workers/risk-worker.ts): the service refuses
 * to start, exits with code 1 and says why, when Redis may evict keys, when the configuration is invalid, when
 * production would run with a weak or published secret or without a dashboard login, when NODE_ENV=production meets
 * RISKMON_ENV=development, or (in any mode) when a dashboard without login would listen on all interfaces (issue 11,
 * finding 10). Nothing is written to Redis before it refuses, and no secret appears in its output.
 */
import { randomBytes } from 'node:crypto';
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
  /** Whether the card secret or dashboard password given appeared anywhere in the output (logs included). */
  secretPrinted: boolean;
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
    secretPrinted: [env.RISKMON_CARD_SECRET, env.RISKMON_DASHBOARD_PASSWORD].some((s) => s !== undefined && p.lines.some((l) => l.includes(s))),
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
  const openDashboard = writeConfigFile({ http: { dashboard: { auth: 'disabled', readOnly: false } } });
  const strong = randomBytes(32).toString('base64');
  const archive = 'postgres://riskmon@127.0.0.1:1/unused';
  const production = { REDIS_URL: good.url, RISKMON_ENV: 'production', RISKMON_CARD_SECRET: strong, DATABASE_URL: archive };
  try {
    return [
      await refuse('Redis maxmemory-policy allkeys-lru', evictingClient, { REDIS_URL: evicting.url }),
      await refuse('invalid configuration file', goodClient, { REDIS_URL: good.url, RISKMON_CONFIG: badConfig.path }),
      await refuse('configuration file that is not JSON', goodClient, { REDIS_URL: good.url, RISKMON_CONFIG: notJson.path }),
      await refuse('unknown environment', goodClient, { REDIS_URL: good.url, RISKMON_ENV: 'staging' }),
      await refuse('production without a card secret', goodClient, { REDIS_URL: good.url, RISKMON_ENV: 'production', RISKMON_CARD_SECRET: undefined }),
      await refuse('production with the development card secret', goodClient, { REDIS_URL: good.url, RISKMON_ENV: 'production', RISKMON_CARD_SECRET: DEVELOPMENT_CARD_SECRET }),
      await refuse('production with a card secret of one repeated character', goodClient, { ...production, RISKMON_CARD_SECRET: 'a'.repeat(40) }),
      await refuse('production with the card secret docker-compose.yml published', goodClient, { ...production, RISKMON_CARD_SECRET: 'riskmon-compose-demo-secret-change-me' }),
      await refuse('production with a weak dashboard password', goodClient, { ...production, RISKMON_DASHBOARD_USER: 'ops', RISKMON_DASHBOARD_PASSWORD: '12345678' }),
      await refuse('production without a dashboard login', goodClient, production),
      await refuse('production without DATABASE_URL', goodClient, { ...production, DATABASE_URL: undefined }),
      await refuse('NODE_ENV=production with RISKMON_ENV=development', goodClient, { ...production, NODE_ENV: 'production', RISKMON_ENV: 'development' }),
      await refuse('dashboard without login on 0.0.0.0 in development', goodClient, { REDIS_URL: good.url, RISKMON_CONFIG: openDashboard.path, RISKMON_HTTP_HOST: '0.0.0.0' }),
    ];
  } finally {
    evictingClient.disconnect();
    goodClient.disconnect();
    await evicting.stop();
    await good.stop();
    badConfig.remove();
    notJson.remove();
    openDashboard.remove();
  }
}
