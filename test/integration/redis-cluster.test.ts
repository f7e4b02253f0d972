/**
 * createRedis and the helpers that work on one Redis and on a Redis Cluster (src/redis/connection.ts), against a
 * real 3-master cluster with a replica each (test/helpers/cluster.ts) and a private redis-server.
 */
import { Queue, Worker } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { masterNodes, nodeAddress, scanAll, type RedisClient } from '../../src/redis/client.ts';
import { assertNoEviction, assertReachable, createRedis, RedisConfigError, RedisUnavailableError } from '../../src/redis/connection.ts';
import { freePort, startRedisServer, type LocalRedis } from '../../src/redis/local-server.ts';
import { redisTargetFromEnv, type ClusterRedisTarget } from '../../src/redis/target.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';

/** Keys that hash to many slots, so every master holds some. */
const KEYS = Array.from({ length: 60 }, (_, i) => `rc:key:${i}`);

let cluster: TestCluster;
let target: ClusterRedisTarget;
let client: Cluster;
const opened: RedisClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({ masters: 3, replicasPerMaster: 1 });
  target = redisTargetFromEnv({ RISKMON_REDIS_CLUSTER: cluster.seeds }) as ClusterRedisTarget;
  client = createRedis(target, { name: 'test-cluster' });
  opened.push(client);
});

afterAll(async () => {
  for (const c of opened) c.disconnect();
  await cluster?.stop();
});

async function onEveryMaster<T>(f: (node: Redis) => Promise<T>): Promise<T[]> {
  const nodes = cluster.nodes.filter((n) => n.role === 'master').map((n) => new Redis({ host: '127.0.0.1', port: n.port, lazyConnect: true }));
  try {
    return await Promise.all(nodes.map(f));
  } finally {
    for (const n of nodes) n.disconnect();
  }
}

describe('createRedis on a Redis Cluster', () => {
  it('returns an ioredis Cluster that reads and writes keys in every slot, on every master', async () => {
    expect(client).toBeInstanceOf(Cluster);
    await assertReachable(client, target);
    for (const key of KEYS) await client.set(key, `v-${key}`);
    expect(await Promise.all(KEYS.map((k) => client.get(k)))).toEqual(KEYS.map((k) => `v-${k}`));
    const owners = new Set(await Promise.all(KEYS.map((k) => cluster.masterOf(k))));
    expect(owners.size).toBe(3);
    // The keys are where the cluster says, not somewhere the client chose.
    const perMaster = await onEveryMaster(async (n) => (await n.call('DBSIZE')) as number);
    expect(perMaster.every((n) => n > 0)).toBe(true);
    expect(perMaster.reduce((a, b) => a + b, 0)).toBe(KEYS.length);
  });

  it('runs a Lua script over keys of one hash slot, and reports CROSSSLOT for keys of several', async () => {
    client.defineCommand('rcAddBoth', {
      numberOfKeys: 2,
      lua: "redis.call('INCRBY', KEYS[1], ARGV[1]); redis.call('INCRBY', KEYS[2], ARGV[1]); return redis.call('GET', KEYS[1]) + redis.call('GET', KEYS[2])",
    });
    const run = (a: string, b: string, n: number) => (client as unknown as { rcAddBoth(a: string, b: string, n: number): Promise<number> }).rcAddBoth(a, b, n);
    for (const tag of ['u1', 'u2', 'u3', 'u4', 'u5', 'u6']) {
      expect(await run(`rc:{${tag}}:a`, `rc:{${tag}}:b`, 3)).toBe(6);
      expect(await run(`rc:{${tag}}:a`, `rc:{${tag}}:b`, 2)).toBe(10);
    }
    expect(new Set(await Promise.all(['u1', 'u2', 'u3', 'u4', 'u5', 'u6'].map((t) => cluster.masterOf(`rc:{${t}}:a`)))).size).toBeGreaterThan(1);
    await expect(run('rc:cross:a', 'rc:cross:b', 1)).rejects.toThrow(/CROSSSLOT/);
  });

  it('masterNodes lists one connection per master; scanAll finds the keys of every master', async () => {
    await client.ping();
    const masters = masterNodes(client);
    expect(masters).toHaveLength(3);
    const masterPorts = cluster.nodes.filter((n) => n.role === 'master').map((n) => n.port);
    expect(masters.map((m) => m.options.port).sort()).toEqual([...masterPorts].sort());

    const found = new Set<string>();
    let batches = 0;
    for await (const batch of scanAll(client, 'rc:key:*', 10)) {
      batches++;
      for (const k of batch) found.add(k);
    }
    expect([...found].sort()).toEqual([...KEYS].sort());
    expect(batches).toBeGreaterThanOrEqual(3);
  });

  it('assertNoEviction passes on noeviction and names a master or a replica that would evict', async () => {
    await assertNoEviction(client, target);
    const master = cluster.nodes.find((n) => n.role === 'master')!;
    const replica = cluster.nodes.find((n) => n.role === 'replica')!;
    for (const node of [master, replica]) {
      const admin = new Redis({ host: '127.0.0.1', port: node.port });
      try {
        await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
        const refusal = assertNoEviction(client, target);
        await expect(refusal).rejects.toThrow(RedisConfigError);
        await expect(assertNoEviction(client, target)).rejects.toThrow(
          `Redis Cluster ${node.role} 127.0.0.1:${node.port} (cluster ${cluster.seeds}) has maxmemory-policy allkeys-lru: under memory pressure it would evict`,
        );
        await expect(assertNoEviction(client, target)).rejects.toThrow('CONFIG SET maxmemory-policy noeviction on every node');
      } finally {
        await admin.config('SET', 'maxmemory-policy', 'noeviction');
        admin.disconnect();
      }
    }
    await assertNoEviction(client, target);
  });

  it('keeps maxRetriesPerRequest null for workers, as BullMQ requires of a Cluster, and runs a queue on it', async () => {
    expect(client.options.redisOptions?.maxRetriesPerRequest).toBeNull();
    // BullMQ keys of one queue must share a slot: the prefix is a hash tag.
    const prefix = '{rc-bull}';
    const queue = new Queue('cluster-jobs', { connection: client, prefix });
    const done: number[] = [];
    const worker = new Worker('cluster-jobs', async (job) => void done.push(job.data.n as number), { connection: client, prefix });
    try {
      await Promise.all([1, 2, 3].map((n) => queue.add('n', { n })));
      const deadline = Date.now() + 30_000;
      while (done.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(done.sort()).toEqual([1, 2, 3]);
    } finally {
      await worker.close();
      await queue.close();
    }
  });

  it('fails fast with a message naming the cluster when no seed answers', async () => {
    const port = await freePort();
    const nowhere = redisTargetFromEnv({ RISKMON_REDIS_CLUSTER: `127.0.0.1:${port}` }) as ClusterRedisTarget;
    const failFast = createRedis(nowhere, { failFast: true, name: 'test-nowhere' });
    opened.push(failFast);
    expect(failFast.options.redisOptions?.maxRetriesPerRequest).toBe(1);
    const started = Date.now();
    await expect(assertReachable(failFast, nowhere, 10_000)).rejects.toThrow(RedisUnavailableError);
    await expect(assertReachable(failFast, nowhere, 10_000)).rejects.toThrow(
      `Redis Cluster is not reachable at cluster 127.0.0.1:${port} (`,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('the same helpers on one Redis', () => {
  let server: LocalRedis;
  let single: Redis;
  beforeAll(async () => {
    server = await startRedisServer();
    single = createRedis({ kind: 'single', url: server.url }, { name: 'test-single' });
  });
  afterAll(async () => {
    single?.disconnect();
    await server?.stop();
  });

  it('createRedis with a single target is the URL connection; masterNodes is the client, scanAll its keys', async () => {
    expect(single).toBeInstanceOf(Redis);
    expect(single.options.maxRetriesPerRequest).toBeNull();
    await assertReachable(single, { kind: 'single', url: server.url });
    for (const k of ['rs:a', 'rs:b', 'rs:c']) await single.set(k, '1');
    expect(masterNodes(single)).toEqual([single]);
    expect(nodeAddress(single)).toBe(`127.0.0.1:${server.port}`);
    const found: string[] = [];
    for await (const batch of scanAll(single, 'rs:*')) found.push(...batch);
    expect(found.sort()).toEqual(['rs:a', 'rs:b', 'rs:c']);
  });

  it('assertNoEviction keeps its message for one Redis', async () => {
    await single.config('SET', 'maxmemory-policy', 'volatile-lru');
    try {
      await expect(assertNoEviction(single, server.url)).rejects.toThrow(
        `Redis at ${server.url} has maxmemory-policy volatile-lru: under memory pressure it would evict queued events, decisions and day totals (events lost, money counted twice). Set maxmemory-policy noeviction (redis.conf, --maxmemory-policy noeviction, or CONFIG SET maxmemory-policy noeviction).`,
      );
    } finally {
      await single.config('SET', 'maxmemory-policy', 'noeviction');
    }
  });
});
