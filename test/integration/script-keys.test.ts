/**
 * The script-keys checker (test/helpers/script-keys.ts) on a private redis-server: first that it names exactly the
 * throwaway scripts that break the Cluster rules, then what it finds in a workload of the project's own scripts.
 */
import { testBatch } from '../helpers/batch.ts';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { startRedisServer, type LocalRedis } from '../../src/redis/local-server.ts';
import { defineScript, type ScriptFile } from '../../src/redis/scripts.ts';
import { replay } from '../../src/replay/replay.ts';
import { testContext } from '../helpers/context.ts';
import { calibrate, calibrationWorker } from '../helpers/quota.ts';
import { parseMonitorLine } from '../helpers/monitor-line.ts';
import { describeReport, projectScripts, watchScriptKeys, type Report } from '../helpers/script-keys.ts';

let server: LocalRedis;

beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

/** Runs `work` under the checker, and stops it whether or not `work` fails. */
async function watched(port: number, scripts: readonly ScriptFile[], work: () => Promise<void>): Promise<Report> {
  const watch = await watchScriptKeys(port, { scripts });
  try {
    await work();
  } catch (e) {
    await watch.stop().catch(() => undefined);
    throw e;
  }
  return watch.stop();
}

/** Names of the scripts with each kind of problem, sorted. */
const withProblem = (report: Report) => {
  const names = (f: (s: Report['scripts'][string]) => boolean) => Object.values(report.scripts).filter(f).map((s) => s.name).sort();
  return { undeclared: names((s) => s.undeclaredCalls > 0), crossSlot: names((s) => s.crossSlotCalls > 0), neverCalled: report.neverCalled };
};

/**
 * A proxy to Redis that moves, in MONITOR output, each EVAL/EVALSHA line after the lines of the commands its script
 * ran: what a server that fed MONITOR only after a command had run would print (Redis 7.0 and 6.2 print it before).
 */
async function evalAfterCommands(port: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const proxy = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => (s === client ? upstream : client).destroy());
    }
    let monitoring = false;
    client.on('data', (d) => {
      if (/^MONITOR\r\n/i.test(d.toString('latin1'))) monitoring = true;
      upstream.write(d);
    });
    let rest = '';
    let held: string | null = null;
    let lua: string[] = [];
    upstream.on('data', (chunk) => {
      if (!monitoring) return void client.write(chunk);
      const replies = (rest + chunk.toString('latin1')).split('\r\n');
      rest = replies.pop()!;
      const out: string[] = [];
      for (const reply of replies) {
        const line = reply.startsWith('+') && reply !== '+OK' ? parseMonitorLine(reply.slice(1)) : null;
        if (line?.source === 'lua' && held !== null) {
          lua.push(reply);
          continue;
        }
        if (held !== null) out.push(...lua.splice(0), held);
        held = null;
        if (line && /^eval(sha)?(_ro)?$/i.test(line.args[0]!.toString())) held = reply;
        else out.push(reply);
      }
      if (out.length) client.write(out.map((r) => `${r}\r\n`).join(''), 'latin1');
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    port: (proxy.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}

describe('the script-keys checker', () => {
  // A key of every awkward byte MONITOR escapes, in the hash tag {t}, as the clean script's KEYS share.
  const odd = Buffer.concat([Buffer.from('{t}odd " \\ '), Buffer.from([0, 10, 13, 9, 7, 8, 0x7f, 0xe4, 0xb8, 0xad, 0xff]), Buffer.from('" "end\\')]);
  const scripts = {
    // Reads a key made from KEYS[1] (the same slot, but no Cluster client can know it), and one through ZUNIONSTORE,
    // whose keys sit behind a count.
    undeclared: {
      name: 'touchesUndeclared',
      numberOfKeys: 2,
      lua: "redis.call('SET', KEYS[1], ARGV[1])\nredis.call('ZUNIONSTORE', KEYS[2], 2, KEYS[2], KEYS[1] .. ':zset')\nreturn redis.call('GET', KEYS[1] .. ':shadow')",
    },
    crossSlot: { name: 'crossSlot', numberOfKeys: 2, lua: "redis.call('HSET', KEYS[1], 'f', ARGV[1])\nreturn redis.call('LPUSH', KEYS[2], ARGV[1])" },
    // Touches only its KEYS, through key-by-count (ZUNIONSTORE), ranges (MSET, DEL) and none (TIME); pcall too.
    clean: {
      name: 'clean',
      numberOfKeys: null,
      lua: [
        "redis.call('TIME')",
        'for i = 1, #KEYS do redis.call("SET", KEYS[i], ARGV[i] or "") end',
        "if #KEYS >= 3 then redis.pcall('ZUNIONSTORE', KEYS[1], 2, KEYS[2], KEYS[3]) redis.call('MSET', KEYS[2], 'a', KEYS[3], 'b') end",
        "redis.call('DEL', unpack(KEYS))",
        'return #KEYS',
      ].join('\n'),
    },
    never: { name: 'neverCalled', numberOfKeys: 0, lua: 'return 1' },
  } satisfies Record<string, ScriptFile>;

  /** Calls of the throwaway scripts: plain, pipelined, in MULTI, from two connections; then again after SCRIPT FLUSH. */
  async function throwawayWorkload(): Promise<void> {
    const a = new Redis(server.url);
    const b = new Redis(server.url);
    try {
      const undeclared = defineScript(a, scripts.undeclared);
      const crossSlot = defineScript(a, scripts.crossSlot);
      const clean = defineScript(a, scripts.clean);
      defineScript(b, scripts.clean);
      const round = async () => {
        await undeclared(a, [odd, '{t}z'] as unknown as string[], ['v']);
        await crossSlot(a, ['{a}h', '{b}l'], ['v']);
        await clean(a, ['{u}1', '{u}2', '{u}3'], ['x', 'y', 'z']);
        const m = a.multi().set('{u}m', 'x');
        clean(m, ['{u}m1', '{u}m2'], []);
        expect(((await m.exec()) ?? []).filter(([err]) => err)).toEqual([]);
        // Pipelined, and from a second connection at the same time: their lines interleave only between scripts.
        const p = a.pipeline();
        undeclared(p, ['{t}p', '{t}q'], ['v']);
        crossSlot(p, ['{a}h', '{a}h2'], ['v']); // one slot: fine
        clean(p, [odd, '{t}b'] as unknown as string[], ['1', '2']);
        const q = b.pipeline();
        for (let i = 0; i < 20; i++) clean(q, [`{v}${i}`, `{v}${i}:x`, `{v}${i}:y`], []);
        const [pa, pb] = await Promise.all([p.exec(), q.exec()]);
        expect([...pa!, ...pb!].filter(([err]) => err)).toEqual([]);
        // Another script (as BullMQ's are) may touch what it likes: not ours, not checked.
        await a.eval("return redis.call('GET', 'anything')", 0);
      };
      await round();
      // ioredis sends EVALSHA; after a flush Redis refuses it (NOSCRIPT) and ioredis sends EVAL with the body.
      await a.script('FLUSH');
      await round();
    } finally {
      a.disconnect();
      b.disconnect();
    }
  }

  function expectThrowawayReport(report: Report): void {
    expect(report.anomalies).toEqual([]);
    expect(withProblem(report), describeReport(report)).toEqual({ undeclared: ['touchesUndeclared'], crossSlot: ['crossSlot'], neverCalled: ['neverCalled'] });
    const r = report.scripts;
    // Each call counted once: a refused EVALSHA is not a call.
    expect([r.touchesUndeclared!.calls, r.crossSlot!.calls, r.clean!.calls]).toEqual([4, 4, 2 * 23]);
    expect(r.touchesUndeclared!.refused + r.crossSlot!.refused + r.clean!.refused).toBeGreaterThan(0);
    expect(r.touchesUndeclared).toMatchObject({ commands: 4 * 3, undeclaredCalls: 4, undeclaredKeyCount: 4 });
    // Keys are read back byte for byte; one that is not UTF-8 is shown escaped as MONITOR prints it.
    const oddShown = '{t}odd \\" \\\\ \\x00\\n\\r\\t\\a\\b\\x7f\\xe4\\xb8\\xad\\xff\\" \\"end\\\\';
    expect(r.touchesUndeclared!.undeclaredKeys.sort()).toEqual([`${oddShown}:shadow`, `${oddShown}:zset`, '{t}p:shadow', '{t}p:zset'].sort());
    expect(r.touchesUndeclared!.undeclaredExample).toEqual({ key: `${oddShown}:zset`, command: ['ZUNIONSTORE', '{t}z', '2', '{t}z', `${oddShown}:zset`], keys: [oddShown, '{t}z'] });
    expect(r.crossSlot).toMatchObject({ commands: 4 * 2, crossSlotCalls: 2, crossSlotExample: [{ key: '{a}h', slot: 15495 }, { key: '{b}l', slot: 3300 }] });
    expect(r.clean).toMatchObject({ undeclaredCalls: 0, crossSlotCalls: 0, keyless: { time: 2 * 23 } });
    expect(report.others).toEqual([{ script: expect.stringContaining("return redis.call('GET', 'anything')"), calls: 2 }]);

    const message = describeReport(report);
    expect(message).toContain('touchesUndeclared');
    expect(message).toContain('slot 15495: {a}h\n    slot 3300: {b}l');
    expect(message).toContain('never called: neverCalled');
    expect(message).not.toMatch(/^clean/m);
  }

  it('names exactly the scripts that touch an undeclared key or spread their KEYS over slots: plain, pipelined, after SCRIPT FLUSH', async () => {
    const report = await watched(server.port, Object.values(scripts), throwawayWorkload);
    expectThrowawayReport(report);
    // As measured on Redis 7.0: EVAL/EVALSHA is printed before its script's commands.
    const redis = new Redis(server.url);
    const version = /redis_version:(\S+)/.exec(await redis.info('server'))![1]!;
    redis.disconnect();
    if (version.startsWith('7.0.')) expect(report.order).toBe('script-first');
  });

  it('finds the same when EVAL/EVALSHA is printed after its commands', async () => {
    const proxy = await evalAfterCommands(server.port);
    try {
      const report = await watched(proxy.port, Object.values(scripts), throwawayWorkload);
      expect(report.order).toBe('commands-first');
      expectThrowawayReport(report);
    } finally {
      await proxy.close();
    }
  });

  it('reads keys of any bytes back exactly: a clean script over random binary KEYS is clean', async () => {
    const redis = new Redis(server.url);
    let calls = 0;
    try {
      const clean = defineScript(redis, scripts.clean);
      const report = await watched(server.port, [scripts.clean], () =>
        fc.assert(
          fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 30 }), { minLength: 1, maxLength: 5 }), async (tails) => {
            const keys = tails.map((t) => Buffer.concat([Buffer.from('{bin}'), t]));
            await clean(redis, keys as unknown as string[], keys as unknown as string[]);
            calls++;
          }),
          { numRuns: 100 },
        ),
      );
      expect(report.anomalies).toEqual([]);
      expect(report.scripts.clean, describeReport(report)).toMatchObject({ calls, undeclaredCalls: 0, crossSlotCalls: 0 });
    } finally {
      redis.disconnect();
    }
  });
});

const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url).pathname;

/**
 * The project's scripts, each at least once, through its entry points: the two fixtures replayed (worker processes,
 * lists, refunds, repayments, dead letters), settlement released, calibration run and failed, lists changed, rules
 * published and rolled back, a reused eventId replayed. Nothing here knows a key.
 */
async function workload(url: string, contexts: Context[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'riskmon-script-keys-'));
  const context = () => {
    const c = testContext({}, url);
    contexts.push(c);
    return c;
  };
  try {
    const edges = context();
    await replay({ context: edges, inputPath: fixture('rule-edges.ndjson'), listsPath: fixture('rule-edges.lists.json'), outputPath: join(dir, 'edges.ndjson') });
    await edges.ledger.releaseDue(Date.parse('2026-03-11T03:00:00+08:00'));
    const now = Date.parse('2026-03-12T10:00:00+08:00');
    // The review queue: cases taken, cancelled and released; an approval refused (that release closed the case).
    const first = await edges.cases.next('analyst', now);
    const second = await edges.cases.next('analyst', now);
    if (!first || !second) throw new Error('the rule-edges fixture opens fewer than two review cases');
    await edges.cases.cancel(first.id, 'analyst', false, 'workload', now);
    await edges.cases.release(second.id, 'analyst', 'workload', now);
    await edges.cases.approve(second.id, 'supervisor', '', now).catch(() => undefined);
    // A complaint about the released case's charge: a new case under the complaint's id.
    await edges.processor.process(testBatch([{ type: 'complaint', eventId: 'workload-complaint', userId: second.userId, chargeId: second.chargeId, reason: 'workload', occurredAt: new Date(now).toISOString() }], { clockMs: now }), 'workload:complaint');
    if (!(await edges.cases.get('workload-complaint'))) throw new Error('the workload complaint opened no case');
    await edges.lists.merchants.add('m-workload', { reason: 'workload', by: 'ops' }, now);
    await edges.lists.merchants.remove('m-workload', { by: 'ops' }, now);
    await edges.lists.users.add('u-workload', { reason: 'workload', by: 'ops' }, now);
    await edges.lists.cards.add('6222020000000221', { reason: 'workload', by: 'ops' }, now);
    await edges.rulesPublisher.publish({ rules: { sameCardBurst: { minCount: 2 } } }, { by: 'ops' });
    await edges.rulesPublisher.approve(1, { by: 'ops-2' });
    await edges.rulesPublisher.publish({ rules: { sameCardBurst: { minCount: 3 } } }, { by: 'ops' });
    await edges.rulesPublisher.approve(2, { by: 'ops-2' });
    await edges.rulesPublisher.rollback(1, { by: 'ops' });

    // A reused eventId that moved the replay clock: claims made after it in other buckets are given back.
    const reused = join(dir, 'reused.ndjson');
    const line = (eventId: string, userId: string, occurredAt: string) =>
      JSON.stringify({ type: 'charge', eventId, userId, merchantId: 'm-1', cardId: '6222020000000001', amount: 100, occurredAt });
    writeFileSync(
      reused,
      [line('r-1', 'u-a', '2026-03-10T10:00:00+08:00'), line('r-1', 'u-a', '2026-03-20T10:00:00+08:00'), line('p-1', 'u-b', '2026-03-11T10:00:00+08:00'), line('p-1', 'u-c', '2026-03-20T10:00:00+08:00')].join('\n') + '\n',
    );
    await replay({ context: context(), inputPath: reused, outputPath: join(dir, 'reused-out.ndjson') });

    const quota = context();
    await replay({ context: quota, inputPath: fixture('quota-calibration.ndjson'), outputPath: join(dir, 'quota.ndjson') });
    const expected = JSON.parse(readFileSync(fixture('quota-calibration.expected.json'), 'utf8')) as { runs: { runId: string }[] };
    const worker = await calibrationWorker(quota);
    try {
      for (const { runId } of expected.runs) await calibrate(quota, runId);
    } finally {
      await worker.close();
    }
    // What the worker does when a chunk runs out of attempts.
    await quota.calibration.fail(expected.runs.at(-1)!.runId, 'workload: a chunk ran out of attempts');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('our scripts under a workload', () => {
  // On the layout before shard slots this failed for 12 scripts; the message lists each problem with an example.
  it('are each called, touch only their KEYS, and keep their KEYS in one slot', { timeout: 120_000 }, async () => {
    const ours = projectScripts();
    expect(ours.length).toBeGreaterThan(10);
    const contexts: Context[] = [];
    const report = await watched(server.port, ours, async () => {
      try {
        await workload(server.url, contexts);
      } finally {
        for (const c of contexts) await c.close();
      }
    });
    const message = `\n${describeReport(report)}\n`;
    expect(report.anomalies, message).toEqual([]);
    expect(report.others.filter((o) => !o.script.startsWith('bullmq ')), message).toEqual([]);
    expect(withProblem(report), message).toEqual({ undeclared: [], crossSlot: [], neverCalled: [] });
  });
});
