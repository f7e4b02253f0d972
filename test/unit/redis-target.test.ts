/** Where Redis is: REDIS_URL or RISKMON_REDIS_CLUSTER, parsed with messages that name the entry and hide passwords. */
import { describe, expect, it } from 'vitest';
import { describeTarget, parseClusterSeeds, redactUrl, redisTargetFromEnv, RedisTargetError } from '../../src/redis/target.ts';

/** The RedisTargetError message for an environment; fails when it parses or throws something else. */
function refusal(env: NodeJS.ProcessEnv): string {
  try {
    redisTargetFromEnv(env);
  } catch (e) {
    if (e instanceof RedisTargetError) return e.message;
    throw e;
  }
  throw new Error(`not refused: ${JSON.stringify(env)}`);
}

describe('redisTargetFromEnv', () => {
  it('keeps REDIS_URL as today: the URL as given, unset or empty meaning "resolve one" (undefined)', () => {
    expect(redisTargetFromEnv({ REDIS_URL: 'redis://:pw@10.0.0.5:6380/2' })).toEqual({ kind: 'single', url: 'redis://:pw@10.0.0.5:6380/2' });
    expect(redisTargetFromEnv({})).toBeUndefined();
    expect(redisTargetFromEnv({ REDIS_URL: '' })).toBeUndefined();
    expect(redisTargetFromEnv({ RISKMON_REDIS_CLUSTER: '', REDIS_URL: 'redis://h:1' })).toEqual({ kind: 'single', url: 'redis://h:1' });
  });

  it('reads host:port seeds, spaces around commas allowed', () => {
    expect(redisTargetFromEnv({ RISKMON_REDIS_CLUSTER: '10.0.0.1:7000, 10.0.0.2:7001 ,redis-2.internal:7002' })).toEqual({
      kind: 'cluster',
      seeds: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: 'redis-2.internal', port: 7002 },
      ],
    });
    expect(parseClusterSeeds('[::1]:7000,[fd00::2]:7001').seeds).toEqual([
      { host: '::1', port: 7000 },
      { host: 'fd00::2', port: 7001 },
    ]);
  });

  it('takes credentials and TLS from URL entries, for every node; bare entries take them too', () => {
    expect(parseClusterSeeds('rediss://app:s%40cret@h1:7000,h2:7001,rediss://h3')).toEqual({
      kind: 'cluster',
      seeds: [
        { host: 'h1', port: 7000 },
        { host: 'h2', port: 7001 },
        { host: 'h3', port: 6379 },
      ],
      username: 'app',
      password: 's@cret',
      tls: true,
    });
    expect(parseClusterSeeds('redis://:pw@h1:7000/,redis://:pw@h2:7001/0')).toEqual({
      kind: 'cluster',
      seeds: [
        { host: 'h1', port: 7000 },
        { host: 'h2', port: 7001 },
      ],
      password: 'pw',
    });
  });

  it.each([
    [{ RISKMON_REDIS_CLUSTER: 'h1:7000', REDIS_URL: 'redis://h:6379' }, 'RISKMON_REDIS_CLUSTER (a Redis Cluster) and REDIS_URL (one Redis) are both set: unset one of them'],
    [{ RISKMON_REDIS_CLUSTER: 'h1:7000,,h3:7002' }, 'RISKMON_REDIS_CLUSTER: entry 2 of 3 is empty (expected host:port, or a redis:// or rediss:// URL, separated by commas)'],
    [{ RISKMON_REDIS_CLUSTER: 'h1:7000,' }, 'RISKMON_REDIS_CLUSTER: entry 2 of 2 is empty'],
    [{ RISKMON_REDIS_CLUSTER: 'h1' }, 'RISKMON_REDIS_CLUSTER: the entry ("h1"): no port (expected host:port, e.g. h1:7000)'],
    [{ RISKMON_REDIS_CLUSTER: 'h1:' }, 'the entry ("h1:"): no port'],
    [{ RISKMON_REDIS_CLUSTER: 'h1:7000,h2:70000' }, 'RISKMON_REDIS_CLUSTER: entry 2 of 2 ("h2:70000"): port "70000" is not a number 1–65535'],
    [{ RISKMON_REDIS_CLUSTER: 'h1:0' }, 'port "0" is not a number 1–65535'],
    [{ RISKMON_REDIS_CLUSTER: 'h1:7000x' }, 'port "7000x" is not a number 1–65535'],
    [{ RISKMON_REDIS_CLUSTER: 'redis://h1:99999' }, 'port "99999" is not a number 1–65535'],
    [{ RISKMON_REDIS_CLUSTER: ':7000' }, 'the entry (":7000"): no host'],
    [{ RISKMON_REDIS_CLUSTER: 'h 1:7000' }, '"h 1" is not a host name or IP address'],
    [{ RISKMON_REDIS_CLUSTER: '::1:7000' }, 'an IPv6 address goes in brackets ([::1]:7000)'],
    [{ RISKMON_REDIS_CLUSTER: '[nope]:7000' }, '"[nope]" is not an IPv6 address'],
    [{ RISKMON_REDIS_CLUSTER: 'h1:7000,h1:7000' }, 'entry 2 of 2 ("h1:7000") repeats entry 1'],
    [{ RISKMON_REDIS_CLUSTER: 'http://h1:7000' }, 'unsupported scheme http:// (expected host:port, or a redis:// or rediss:// URL)'],
    [{ RISKMON_REDIS_CLUSTER: 'redis://h1:7000/2' }, 'database 2: a Redis Cluster has only database 0 (remove the path)'],
    [{ RISKMON_REDIS_CLUSTER: 'rediss://h1:7000?tls=1' }, 'query parameters and fragments are not supported'],
    [{ RISKMON_REDIS_CLUSTER: 'rediss://h1:7000,redis://h2:7001' }, 'RISKMON_REDIS_CLUSTER mixes rediss:// (TLS) and redis:// entries: a cluster is reached with TLS on every node or on none'],
    [{ RISKMON_REDIS_CLUSTER: 'redis://a:one@h1:7000,h2:7001,redis://a:two@h3:7002' }, 'RISKMON_REDIS_CLUSTER: entries 1 and 3 give different credentials'],
    [{ RISKMON_REDIS_CLUSTER: 'redis://a:pw@h1:7000,redis://b:pw@h2:7001' }, 'entries 1 and 2 give different credentials'],
    [{ RISKMON_REDIS_CLUSTER: 'redis://app@h1:7000' }, 'gives a user name but no password (write redis://user:password@host:port, or leave the credentials out)'],
    [{ RISKMON_REDIS_CLUSTER: 'user:pw@h1:7000' }, 'credentials and paths need a URL (redis://user:password@host:port); a bare entry is host:port'],
    [{ RISKMON_REDIS_CLUSTER: 'redis://a:%zz@h1:7000' }, 'the credentials are not valid URL encoding'],
  ])('refuses %o', (env, message) => {
    expect(() => redisTargetFromEnv(env)).toThrow(RedisTargetError);
    expect(refusal(env)).toContain(message);
  });

  it('never puts a password in a message', () => {
    for (const value of ['redis://app:hunter2@h1:99999', 'hunter2@h1:7000', 'redis://hunter2@h1:7000', 'redis://app:hunter2@h1:7000/3', 'redis://a:hunter2@h1:1,redis://a:hunter3@h2:1']) {
      const message = refusal({ RISKMON_REDIS_CLUSTER: value });
      expect(message).not.toContain('hunter');
    }
    expect(refusal({ RISKMON_REDIS_CLUSTER: 'redis://app:hunter2@h1:99999' })).toContain('("redis://app:***@h1:99999")');
  });
});

describe('describeTarget', () => {
  it('writes a single Redis as its URL without the password, as redactUrl always has', () => {
    expect(describeTarget({ kind: 'single', url: 'redis://:pa55word@h:6379/1' })).toBe('redis://:***@h:6379/1');
    expect(describeTarget('redis://u:pa55word@h:6379')).toBe(redactUrl('redis://u:pa55word@h:6379'));
    expect(describeTarget('not a url')).toBe('(unparseable REDIS_URL)');
  });

  it('writes a cluster as its seeds, the password replaced', () => {
    expect(describeTarget(parseClusterSeeds('10.0.0.1:7000,[::1]:7001'))).toBe('cluster 10.0.0.1:7000,[::1]:7001');
    expect(describeTarget(parseClusterSeeds('rediss://app:pa55word@h1:7000,h2:7001'))).toBe('cluster rediss://app:***@h1:7000,h2:7001');
    expect(describeTarget(parseClusterSeeds('redis://:pa55word@h1:7000'))).toBe('cluster redis://:***@h1:7000');
  });
});

// Found before stopping: a card number typed as a seed host was printed in full in the "not reachable" message.
describe('card numbers in RISKMON_REDIS_CLUSTER', () => {
  it('are masked in descriptions and in refusals', () => {
    const target = redisTargetFromEnv({ RISKMON_REDIS_CLUSTER: 'redis://u:pw@h:1,4111111111111111:2' })!;
    expect(describeTarget(target)).not.toContain('4111111111111111');
    expect(describeTarget(target)).toContain('1111');
    let message = '';
    try {
      redisTargetFromEnv({ RISKMON_REDIS_CLUSTER: '4111111111111111' });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/RISKMON_REDIS_CLUSTER/);
    expect(message).not.toContain('4111111111111111');
  });
});
