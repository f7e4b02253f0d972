import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEVELOPMENT_CARD_SECRET, loadSettings } from '../../src/config.ts';

const file = (content: string) => {
  const path = join(mkdtempSync(join(tmpdir(), 'riskmon-cfg-')), 'c.json');
  writeFileSync(path, content);
  return path;
};

describe('configuration', () => {
  it('loads the defaults with the numbers of the issue', () => {
    const { config, configVersion } = loadSettings({ env: {} });
    expect(config.timezone).toBe('Asia/Shanghai');
    expect(config.rules.sameCardBurst).toMatchObject({ windowSeconds: 600, minCount: 3 });
    expect(config.rules.nightLargeAmount).toEqual({ from: 23 * 3600, to: 2 * 3600, minAmountFen: 500_000 });
    expect(config.rules.userDailyCap.capFen).toBe(5_000_000);
    expect(config.settlement).toMatchObject({ settleTime: 3 * 3600, delayDays: 1, holdHours: 48 });
    expect(configVersion).toMatch(/^cfg-[0-9a-f]{10}$/);
  });

  it('merges a file over the defaults and changes the version only for rule-relevant settings', () => {
    const base = loadSettings({ env: {} });
    const capped = loadSettings({ configFile: file('{"rules":{"userDailyCap":{"capFen":100}}}'), env: {} });
    expect(capped.config.rules.userDailyCap.capFen).toBe(100);
    expect(capped.config.rules.sameCardBurst.minCount).toBe(3);
    expect(capped.configVersion).not.toBe(base.configVersion);
    expect(loadSettings({ namespace: 'other', env: {} }).configVersion).toBe(base.configVersion);
  });

  it.each([
    ['{"timezone":"Asia/Shanghia"}', 'timezone: not a valid IANA time zone'],
    ['{"rules":{"userDailyCap":{"capFen":-1}}}', 'rules.userDailyCap.capFen'],
    ['{"rules":{"userDailyCap":{"capFen":1.5}}}', 'rules.userDailyCap.capFen'],
    ['{"rules":{"nightLargeAmount":{"from":"25:00"}}}', 'rules.nightLargeAmount.from: expected a time of day'],
    ['{"rules":{"sameCardBurst":{"windowSecs":600}}}', 'rules.sameCardBurst'],
    ['{"namespace":"has space"}', 'namespace'],
    ['{"pipeline":{"shards":0}}', 'pipeline.shards'],
  ])('refuses %s with the path and reason', (content, message) => {
    expect(() => loadSettings({ configFile: file(content), env: {} })).toThrow(message);
  });

  it('refuses unreadable and malformed files clearly', () => {
    expect(() => loadSettings({ configFile: '/nonexistent/riskmon.json', env: {} })).toThrow(/cannot read configuration file/);
    expect(() => loadSettings({ configFile: file('{oops'), env: {} })).toThrow(/is not valid JSON/);
  });

  it('ignores __proto__ in a config file', () => {
    const s = loadSettings({ configFile: file('{"__proto__":{"polluted":true}}'), env: {} });
    expect((s.config as unknown as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses the development card secret in production', () => {
    expect(() => loadSettings({ env: { RISKMON_ENV: 'production' } })).toThrow(ConfigError);
    expect(() => loadSettings({ env: { NODE_ENV: 'production' } })).toThrow(/RISKMON_CARD_SECRET/);
    const ok = loadSettings({ env: { RISKMON_ENV: 'production', RISKMON_CARD_SECRET: 'a-long-random-production-secret' } });
    expect(ok.cardSecret).not.toBe(DEVELOPMENT_CARD_SECRET);
  });

  it('reads the namespace and Redis URL from the environment', () => {
    const s = loadSettings({ env: { RISKMON_NAMESPACE: 'blue', REDIS_URL: 'redis://10.0.0.1:6380' } });
    expect(s.config.namespace).toBe('blue');
    expect(s.redisUrl).toBe('redis://10.0.0.1:6380');
  });
});
