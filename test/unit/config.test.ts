import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cardSecretWeakness,
  ConfigError,
  DEVELOPMENT_CARD_SECRET,
  estimatedBits,
  loadSettings,
  PUBLISHED_CARD_SECRETS,
  type LoadOptions,
} from '../../src/config.ts';
import { ROOT } from '../helpers/deploy.ts';

const PG = 'postgres://riskmon@db.internal:5432/riskmon';

/** "abbabaab…": two letters, equally often, never periodic. */
const thueMorse = (n: number) => Array.from({ length: n }, (_, i) => (i.toString(2).split('1').length % 2 ? 'a' : 'b')).join('');

/** What `openssl rand -base64 32` gives: 44 characters. */
const strongSecret = () => randomBytes(32).toString('base64');

/** The ConfigError message of a refused load; fails when the load succeeds or throws something else. */
function refusal(options: LoadOptions): string {
  try {
    loadSettings(options);
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error(`not refused: ${JSON.stringify(options)}`);
}

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
    const secret = strongSecret();
    const ok = loadSettings({ env: { RISKMON_ENV: 'production', RISKMON_CARD_SECRET: secret, DATABASE_URL: PG } });
    expect(ok.cardSecret).toBe(secret);
  });

  it('requires a PostgreSQL server for the archive in production, and a postgres:// DATABASE_URL anywhere', () => {
    const secret = strongSecret();
    expect(() => loadSettings({ env: { RISKMON_ENV: 'production', RISKMON_CARD_SECRET: secret } })).toThrow(/production requires DATABASE_URL/);
    expect(loadSettings({ env: { RISKMON_ENV: 'production', RISKMON_CARD_SECRET: secret }, overrides: { archive: { enabled: false } } }).databaseUrl).toBeUndefined();
    expect(loadSettings({ env: {} }).databaseUrl).toBeUndefined();
    expect(loadSettings({ env: { DATABASE_URL: PG } }).databaseUrl).toBe(PG);
    expect(() => loadSettings({ env: { DATABASE_URL: 'mysql://db/x' } })).toThrow(/DATABASE_URL must be a postgres:\/\//);
  });

  it('reads the namespace and Redis URL from the environment', () => {
    const s = loadSettings({ env: { RISKMON_NAMESPACE: 'blue', REDIS_URL: 'redis://10.0.0.1:6380' } });
    expect(s.config.namespace).toBe('blue');
    expect(s.redisUrl).toBe('redis://10.0.0.1:6380');
  });
});

// Issue 11, finding 9: configuration that cannot work is refused at start (fails on main before c161832).
describe('cross-field checks', () => {
  const load = (overrides: unknown) => loadSettings({ env: {}, overrides });

  it('refuses a decision retention no longer than the acceptance window (maxAgeDays + maxFutureSkewSeconds)', () => {
    expect(refusal({ env: {}, overrides: { events: { maxAgeDays: 7 }, retention: { decisionDays: 7 } } })).toMatch(
      /retention\.decisionDays: must be more than events\.maxAgeDays \(7\) plus events\.maxFutureSkewSeconds/,
    );
    // Equal is not enough: with no skew the window is exactly maxAgeDays.
    expect(refusal({ env: {}, overrides: { events: { maxAgeDays: 10, maxFutureSkewSeconds: 0 }, retention: { decisionDays: 10 } } })).toMatch(
      /retention\.decisionDays: must be more than events\.maxAgeDays \(10\)/,
    );
    // The default retention (35 days) against a maxAgeDays raised to it.
    expect(refusal({ env: {}, overrides: { events: { maxAgeDays: 35 } } })).toMatch(/retention\.decisionDays: must be more than events\.maxAgeDays \(35\)/);
    expect(load({ events: { maxAgeDays: 10, maxFutureSkewSeconds: 3_600 }, retention: { decisionDays: 11 } }).config.retention.decisionDays).toBe(11);
    expect(load({ events: { maxAgeDays: 34 } }).config.events.maxAgeDays).toBe(34);
  });

  it('refuses a decision retention shorter than settlement.delayDays + 1 + holdHours + a day', () => {
    // delayDays 1, holdHours 48: paid at most 2 days + 48 h + the skew after the decision, plus a day → 6 days.
    expect(refusal({ env: {}, overrides: { events: { maxAgeDays: 1 }, retention: { decisionDays: 5 } } })).toMatch(
      /retention\.decisionDays: must be at least 6 days: a decision must outlive its settlement \(settlement\.delayDays 1 \+ 1, holdHours 48/,
    );
    expect(load({ events: { maxAgeDays: 1 }, retention: { decisionDays: 6 } }).config.retention.decisionDays).toBe(6);
    // A ten-day hold: 2 + 10 + 1 days and the skew → 14.
    expect(refusal({ env: {}, overrides: { settlement: { holdHours: 240 } , retention: { decisionDays: 13 } } })).toMatch(
      /retention\.decisionDays: must be at least 14 days: .*holdHours 240/,
    );
    expect(load({ settlement: { holdHours: 240 }, retention: { decisionDays: 14 } }).config.settlement.holdHours).toBe(240);
    // The default retention (35 days) against T+30 and a 72 h hold: 31 + 3 + 1 days and the skew → 36.
    expect(refusal({ env: {}, overrides: { settlement: { delayDays: 30, holdHours: 72 } } })).toMatch(/retention\.decisionDays: must be at least 36 days: .*delayDays 30/);
    expect(load({ settlement: { delayDays: 30, holdHours: 48 } }).config.settlement.delayDays).toBe(30);
  });

  it('refuses a night window whose from equals its to, at any time of day', () => {
    for (const t of ['00:00', '01:00', '23:00', '23:59']) {
      expect(refusal({ env: {}, overrides: { rules: { nightLargeAmount: { from: t, to: t } } } })).toMatch(
        /rules\.nightLargeAmount\.to: must differ from "from"/,
      );
    }
    expect(load({ rules: { nightLargeAmount: { from: '23:00', to: '23:01' } } }).config.rules.nightLargeAmount.to).toBe(23 * 3600 + 60);
    expect(load({ rules: { nightLargeAmount: { from: '00:00', to: '23:59' } } }).config.rules.nightLargeAmount.from).toBe(0);
  });

  it('reports every broken check of a file at once, with the file name', () => {
    const path = file('{"events":{"maxAgeDays":40},"rules":{"nightLargeAmount":{"from":"02:00","to":"02:00"}}}');
    const message = refusal({ configFile: path, env: {} });
    expect(message).toContain(`invalid configuration (${path})`);
    expect(message).toMatch(/retention\.decisionDays: must be more than/);
    expect(message).toMatch(/rules\.nightLargeAmount\.to: must differ/);
  });
});

// Issue 11, finding 10: production accepted a card secret of 16 × "a", the one docker-compose.yml published, and
// NODE_ENV=production with RISKMON_ENV=development ran as development. Each case below loaded on main before the fix.
describe('production card secret', () => {
  const production = (secret: string) => refusal({ env: { RISKMON_ENV: 'production', RISKMON_CARD_SECRET: secret } });

  it.each([
    ['16 × "a"', 'a'.repeat(16), /is 16 characters long, fewer than 32/],
    ['31 random characters', randomBytes(24).toString('base64').slice(0, 31), /is 31 characters long, fewer than 32/],
    ['64 × "a"', 'a'.repeat(64), /has about 0 bits of entropy \(by its character frequencies\), fewer than 128/],
    ['a two-letter alphabet (Thue–Morse: not periodic)', thueMorse(64), /has about 64 bits of entropy/],
    ['"ab" repeated', 'ab'.repeat(32), /has about 64 bits of entropy/],
    ['16 hex digits twice', '0123456789abcdef'.repeat(2), /repeats a shorter string/],
    ['a lowercase phrase', 'correct horse battery staple xyz', /has about 118 bits of entropy/],
    ['the development default', DEVELOPMENT_CARD_SECRET, /is the development default/],
    ['the development default with a suffix', `${DEVELOPMENT_CARD_SECRET}-2`, /is a published value/],
    ['the value docker-compose.yml published', 'riskmon-compose-demo-secret-change-me', /is a published value/],
  ])('refuses %s, naming the setting and what to do, without printing it', (_, secret, reason) => {
    const message = production(secret);
    expect(message).toMatch(reason);
    expect(message).toMatch(/^RISKMON_CARD_SECRET .*generate one with `openssl rand -base64 32`/);
    expect(message).not.toContain(secret);
  });

  it('accepts what `openssl rand -base64 32` and `openssl rand -hex 32` give, every time', () => {
    for (let i = 0; i < 200; i++) {
      expect(cardSecretWeakness(randomBytes(32).toString('base64'))).toBeUndefined();
      expect(cardSecretWeakness(randomBytes(32).toString('hex'))).toBeUndefined();
    }
  });

  it('estimates bits from character frequencies', () => {
    expect(estimatedBits('a'.repeat(100))).toBe(0);
    expect(estimatedBits('ab'.repeat(16))).toBe(32);
    expect(estimatedBits('0123456789abcdef')).toBe(64);
  });

  it('leaves development alone: short test secrets still load there', () => {
    expect(loadSettings({ env: { RISKMON_CARD_SECRET: 'a'.repeat(16) } }).cardSecret).toBe('a'.repeat(16));
  });

  /** Every value this repository gives a card secret: compose fallbacks, .env lines, quoted literals on lines about secrets. */
  function publishedCandidates(): { where: string; value: string }[] {
    const files = [
      'README.md',
      'docker-compose.yml',
      'Dockerfile',
      '.env.example',
      ...['docs', 'test', 'scripts', 'src', 'workers', 'deploy'].flatMap((dir) =>
        (readdirSync(join(ROOT, dir), { recursive: true }) as string[]).map((f) => join(dir, f)).filter((f) => /\.(md|ts|ya?ml|json)$/.test(f)),
      ),
    ];
    const out: { where: string; value: string }[] = [];
    for (const f of files) {
      const lines = readFileSync(join(ROOT, f), 'utf8').split('\n');
      lines.forEach((line, i) => {
        const where = `${relative(ROOT, join(ROOT, f))}:${i + 1}`;
        for (const m of line.matchAll(/:-([^}\s]+)\}/g)) out.push({ where, value: m[1]! });
        for (const m of line.matchAll(/RISKMON_CARD_SECRET=(\S+)/g)) out.push({ where, value: m[1]! });
        if (!/secret/i.test(line)) return;
        for (const m of line.matchAll(/(['"`])([\x21-\x7e]{16,}?)\1/g)) if (!m[2]!.includes('${')) out.push({ where, value: m[2]! });
      });
    }
    return out;
  }

  it('refuses every card secret value written in the repository, docs, compose file or Dockerfile', () => {
    const candidates = publishedCandidates();
    // The scan finds what it must: the old compose fallback is gone from the file but listed, the test and bench ones are in the code.
    const values = new Set(candidates.map((c) => c.value));
    for (const known of [DEVELOPMENT_CARD_SECRET, 'chaos-card-secret-0123456789abcdef', 'riskmon-benchmark-card-secret-0123456789']) expect(values).toContain(known);
    const accepted = candidates.filter((c) => cardSecretWeakness(c.value) === undefined);
    expect(accepted, 'add these to PUBLISHED_CARD_SECRETS in src/config.ts').toEqual([]);
    for (const p of PUBLISHED_CARD_SECRETS) expect(production(p)).toMatch(/is (a published value|the development default)/);
  });
});

describe('production environment', () => {
  const secret = strongSecret();

  it.each([
    [{ NODE_ENV: 'production', RISKMON_ENV: 'development' }, /^NODE_ENV=production but RISKMON_ENV=development: riskmon would run with development settings\. Set RISKMON_ENV=production/],
    [{ NODE_ENV: 'production', RISKMON_ENV: 'test' }, /^NODE_ENV=production but RISKMON_ENV=test:/],
  ])('refuses %o instead of running as development', (env, message) => {
    expect(refusal({ env: { ...env, RISKMON_CARD_SECRET: secret } })).toMatch(message);
  });

  it('refuses NODE_ENV=production under an embedding override, and a file saying production overridden by RISKMON_ENV', () => {
    expect(refusal({ env: { NODE_ENV: 'production', RISKMON_CARD_SECRET: secret }, overrides: { environment: 'development' } })).toMatch(
      /^NODE_ENV=production but environment "development"/,
    );
    const path = file('{"environment":"production"}');
    expect(refusal({ configFile: path, env: { RISKMON_ENV: 'development', RISKMON_CARD_SECRET: secret } })).toBe(
      `RISKMON_ENV=development but the configuration file (${path}) says environment "production": remove one of them (riskmon does not guess which one you meant)`,
    );
  });

  it('runs production when the two agree, and development without NODE_ENV=production', () => {
    expect(loadSettings({ env: { NODE_ENV: 'production', RISKMON_ENV: 'production', RISKMON_CARD_SECRET: secret, DATABASE_URL: PG } }).config.environment).toBe('production');
    expect(loadSettings({ env: { NODE_ENV: 'production', RISKMON_CARD_SECRET: secret, DATABASE_URL: PG } }).config.environment).toBe('production');
    expect(loadSettings({ env: { NODE_ENV: 'development', RISKMON_ENV: 'development' } }).config.environment).toBe('development');
    expect(loadSettings({ env: { NODE_ENV: 'test' } }).config.environment).toBe('development');
  });
});
