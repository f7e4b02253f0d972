import { Redis } from 'ioredis';
import { afterAll, describe, expect, test } from 'vitest';
import { DeadLetters } from '../../src/deadletter/dead-letters.ts';
import { Keys } from '../../src/redis/keys.ts';
import { dropNamespace, freshNamespace, redisUrl } from '../helpers/context.ts';
import { scanKeys } from '../chaos/harness.ts';
import { runTool } from '../helpers/cli.ts';

const redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
const namespaces: string[] = [];

afterAll(async () => {
  for (const ns of namespaces) await dropNamespace(redis, ns);
  redis.disconnect();
});

function store(maxLen: number) {
  const ns = freshNamespace('dl');
  namespaces.push(ns);
  const keys = new Keys(ns, 4);
  return { keys, deadLetters: new DeadLetters(redis, keys, maxLen) };
}

describe('dead-letter store: state bounded like the stream', () => {
  // Before: one marker key per source (deadletter:seen:<source>, 7-day TTL): 20,000 rejections left 20,002 keys.
  test('20,000 rejections with a cap of 100 leave two keys, 100 sources and about 100 entries', async () => {
    const { keys, deadLetters } = store(100);
    const t0 = Date.parse('2026-03-10T02:00:00Z');
    for (let i = 0; i < 20_000; i += 1_000) {
      const p = redis.pipeline();
      for (let j = i; j < i + 1_000; j++) deadLetters.record(p, { source: `queue:risk-0/${j}#0`, reason: 'amount must be a number of fen (integer)', raw: { amount: 'x' } }, t0 + j);
      const replies = (await p.exec())!;
      expect(replies.every(([err, r]) => err === null && r === 1)).toBe(true);
    }
    expect((await scanKeys(redis, `${keys.base}:*`)).sort()).toEqual([keys.deadLetter, deadLetters.sourcesKey]);
    expect(await redis.zcard(deadLetters.sourcesKey)).toBe(100);
    // MAXLEN ~ trims whole stream nodes (100 entries each by default): at least the cap, at most a node more.
    const length = await deadLetters.count();
    expect(length).toBeGreaterThanOrEqual(100);
    expect(length).toBeLessThanOrEqual(300);
    // The sources kept are the newest ones.
    expect(await redis.zrange(deadLetters.sourcesKey, 0, 0)).toEqual(['queue:risk-0/19900#0']);

    // A redelivered job rejects its events again: a recent source is not recorded twice.
    const newest = await deadLetters.list(1);
    expect(await deadLetters.recordNow({ source: 'queue:risk-0/19950#0', reason: 'again', raw: {} })).toBe(false);
    expect(await deadLetters.recordNow({ source: 'queue:risk-0/19999#0', reason: 'again', raw: {} })).toBe(false);
    expect(await deadLetters.list(1)).toEqual(newest);
    expect(await redis.zcard(deadLetters.sourcesKey)).toBe(100);
  }, 60_000);

  test('the redelivery check holds across interleaved new sources, and a new source is recorded once', async () => {
    const { deadLetters } = store(100);
    for (let i = 0; i < 150; i++) {
      expect(await deadLetters.recordNow({ source: `replay:x:${i}`, reason: 'r', raw: 'line' })).toBe(true);
      // The source before the last 100 has left the set; every one of the last 100 is still known.
      expect(await deadLetters.recordNow({ source: `replay:x:${Math.max(0, i - 99)}`, reason: 'r', raw: 'line' })).toBe(false);
    }
    expect(await redis.zcard(deadLetters.sourcesKey)).toBe(100);
  });

  test('list shows reasons and payloads masked', async () => {
    const { deadLetters } = store(100);
    await deadLetters.recordNow({ source: 's1', reason: 'bad card 6222 0212 3456 7890 128', raw: { cardId: { n: '6222021234567890128' } } });
    const [entry] = await deadLetters.list();
    expect(entry).toMatchObject({ source: 's1', reason: 'bad card [masked …0128]', raw: '{"cardId":{"n":"[masked …0128]"}}' });
  });

  test('npm run dead-letter -- list shows them, newest first, masked', async () => {
    const { keys, deadLetters } = store(100);
    let deep: unknown = '4111 1111 1111 1111';
    for (let i = 0; i < 6_000; i++) deep = [deep];
    await deadLetters.recordNow({ source: 'queue:risk-0/1#1', reason: 'not an object', raw: deep });
    await deadLetters.recordNow({ source: 'produce:r:2', reason: 'cardId 4111-1111-1111-1111 rejected', raw: '{"cardId":"4111111111111111","pad":"xx… (600000000 bytes)' });
    const { code, stdout, stderr } = await runTool('dead-letter', ['list', '--namespace', keys.namespace, '--json'], { REDIS_URL: redisUrl() });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const rows = stdout.trim().split('\n').map((l) => JSON.parse(l) as { source: string; reason: string; raw: string });
    expect(rows.map((r) => r.source)).toEqual(['produce:r:2', 'queue:risk-0/1#1']);
    expect(rows[0]).toMatchObject({ reason: 'cardId [masked …1111] rejected', raw: '{"cardId":"****1111","pad":"xx… (600000000 bytes)' });
    expect(rows[1]!.raw).toContain('"[nested too deep]"');
    // The card in any of its written forms (not merely "4111": an entry's id, a millisecond timestamp, may hold it).
    expect(stdout).not.toMatch(/4111[ -]?1111[ -]?1111[ -]?1111/);
  }, 60_000);
});
