import { expect, test } from 'vitest';
import { loadSettings } from '../../src/config.ts';
import { silentLogger } from '../../src/logger.ts';
import { RedisConfigError } from '../../src/redis/connection.ts';
import { startRedisServer } from '../../src/redis/local-server.ts';
import { startService } from '../../src/service.ts';
import { freshNamespace } from '../helpers/context.ts';
import { startupGuardScenario } from './startup-guards.ts';

test('startService refuses a Redis whose maxmemory-policy may evict keys', async () => {
  const redis = await startRedisServer({ args: ['--maxmemory-policy', 'volatile-lru'] });
  try {
    const settings = loadSettings({ namespace: freshNamespace(), env: {} });
    const starting = startService({ components: ['risk', 'settlement'], settings, logger: silentLogger, redisUrl: redis.url });
    await expect(starting).rejects.toThrow(RedisConfigError);
    await expect(starting).rejects.toThrow(/maxmemory-policy volatile-lru: .* Set maxmemory-policy noeviction/);
  } finally {
    await redis.stop();
  }
});

// Item 6 end to end through workers/risk-worker.ts; of the last six cases (issue 11,
// finding 10) all but "production without a dashboard login" started on main.
test('the service process refuses to start, exit code 1 and a clear message, writing nothing', async () => {
  const cases = await startupGuardScenario();
  const expected: Record<string, RegExp> = {
    'Redis maxmemory-policy allkeys-lru': /^riskmon: Redis at redis:\/\/127\.0\.0\.1:\d+ has maxmemory-policy allkeys-lru: .*noeviction/,
    'invalid configuration file': /^riskmon: invalid configuration \(.*config\.json\):\n {2}timezone: not a valid IANA time zone.*\n {2}rules\.userDailyCap\.capFen: /,
    'configuration file that is not JSON': /^riskmon: configuration file .*config\.json is not valid JSON/,
    'unknown environment': /^riskmon: invalid configuration:\n {2}environment: /,
    'production without a card secret': /^riskmon: RISKMON_CARD_SECRET is not set: production refuses the development card-hashing secret/,
    'production with the development card secret': /^riskmon: RISKMON_CARD_SECRET is the development default: production refuses/,
    'production with a card secret of one repeated character': /^riskmon: RISKMON_CARD_SECRET has about 0 bits of entropy .*: production refuses it \(generate one with `openssl rand -base64 32`\)/,
    'production with the card secret docker-compose.yml published': /^riskmon: RISKMON_CARD_SECRET is a published value/,
    'production with a weak dashboard password': /^riskmon: RISKMON_DASHBOARD_PASSWORD is 8 characters long, fewer than 12: production refuses it/,
    'production without a dashboard login': /^riskmon: the queue dashboard needs a login in production: set RISKMON_DASHBOARD_USER and RISKMON_DASHBOARD_PASSWORD/,
    'production without DATABASE_URL': /^riskmon: production requires DATABASE_URL \(a PostgreSQL server\)/,
    'NODE_ENV=production with RISKMON_ENV=development': /^riskmon: NODE_ENV=production but RISKMON_ENV=development: riskmon would run with development settings/,
    'dashboard without login on 0.0.0.0 in development': /^riskmon: http\.dashboard\.auth "disabled" with http\.host "0\.0\.0\.0": the dashboard would be open without a login/,
  };
  expect(cases.map((c) => c.name)).toEqual(Object.keys(expected));
  for (const c of cases) {
    expect(c.exitCode, c.name).toBe(1);
    expect(c.message, c.name).toMatch(expected[c.name]!);
    expect(c.keysWritten, c.name).toBe(0);
    expect(c.secretPrinted, c.name).toBe(false);
  }
}, 120_000);
