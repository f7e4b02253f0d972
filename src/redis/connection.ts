/**
 * ioredis connections, to one Redis or to a Redis Cluster (src/redis/target.ts says which). Workers use
 * `maxRetriesPerRequest: null` (BullMQ requires it): while Redis is away, commands wait for the reconnect instead of
 * failing, so workers pause and resume by themselves. Command-line tools fail fast instead.
 *
 * On a cluster the same holds node by node: BullMQ reads `maxRetriesPerRequest` from the Cluster's `redisOptions`
 * (and refuses a blocking connection without null there), and while a master is failed over, commands to its slots
 * are retried until its replica has taken over (see {@link WORKER_CLUSTER}).
 */
import { maskCardNumbers } from '../events/card.ts';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from '../logger.ts';
import { describeTarget, type ClusterRedisTarget, type RedisTarget, type SingleRedisTarget } from './target.ts';
import { isCluster, masterNodes, nodeAddress, type RedisClient } from './client.ts';

export { describeTarget, redactUrl, redisTargetFromEnv, RedisTargetError, type ClusterSeed, type RedisTarget } from './target.ts';

/** A connection to one Redis or to a Redis Cluster. */

export interface ConnectOptions {
  /** Fail commands quickly when Redis is unreachable (CLIs, producers). @defaultValue false */
  failFast?: boolean;
  name?: string;
  /** Logs the first error of an outage and the reconnect; without it connection errors reach callers only. */
  logger?: Logger;
}

/**
 * Worker cluster: never give up reconnecting, and retry a command whose node went away (or that the cluster refuses
 * while it is down) every 500 ms for up to 64 tries, about 30 s: a master's failover takes about twice
 * cluster-node-timeout (15 s by default) plus the replica election.
 */
const WORKER_CLUSTER: ClusterOptions = {
  clusterRetryStrategy: (times) => Math.min(100 * times, 2_000),
  retryDelayOnFailover: 500,
  retryDelayOnClusterDown: 500,
  retryDelayOnTryAgain: 500,
  maxRedirections: 64,
};

/** CLI cluster: as the single-server CLI connection, give up after a few seconds. */
const FAIL_FAST_CLUSTER: ClusterOptions = {
  clusterRetryStrategy: (times) => (times > 3 ? null : 200 * times),
  retryDelayOnFailover: 200,
  retryDelayOnClusterDown: 200,
  retryDelayOnTryAgain: 200,
  maxRedirections: 16,
};

const FAIL_FAST_REDIS = {
  maxRetriesPerRequest: 1,
  connectTimeout: 3_000,
  // A frozen or black-holed server accepts connections but never answers.
  commandTimeout: 5_000,
} satisfies RedisOptions;

export function createRedis(target: ClusterRedisTarget, options?: ConnectOptions): Cluster;
export function createRedis(target: SingleRedisTarget, options?: ConnectOptions): Redis;
export function createRedis(target: RedisTarget, options?: ConnectOptions): RedisClient;
export function createRedis(url: string, options?: ConnectOptions): Redis;
/** Either: the settings' resolved Redis (src/redis/local-server.ts resolveRedis). */
export function createRedis(target: string | RedisTarget, options?: ConnectOptions): RedisClient;
export function createRedis(target: string | RedisTarget, options: ConnectOptions = {}): RedisClient {
  if (typeof target !== 'string' && target.kind === 'cluster') return createCluster(target, options);
  const url = typeof target === 'string' ? target : target.url;
  const base: RedisOptions = {
    connectionName: options.name,
    lazyConnect: false,
  };
  const redis = options.failFast
    ? new Redis(url, {
        ...base,
        ...FAIL_FAST_REDIS,
        enableOfflineQueue: true,
        retryStrategy: (times) => (times > 3 ? null : 200 * times),
      })
    : new Redis(url, {
        ...base,
        maxRetriesPerRequest: null,
        retryStrategy: (times) => Math.min(100 * times, 2_000),
      });
  // Without a listener ioredis prints every reconnect attempt to stderr; log once per outage instead.
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    options.logger?.warn({ connection: options.name, err: err.message, url: describeTarget(url) }, 'Redis connection lost; reconnecting');
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    options.logger?.info({ connection: options.name }, 'Redis connection restored');
  });
  return redis;
}

function createCluster(target: ClusterRedisTarget, options: ConnectOptions): Cluster {
  const cluster = new Cluster(
    target.seeds.map((s) => ({ host: s.host, port: s.port })),
    {
      ...(options.failFast ? FAIL_FAST_CLUSTER : WORKER_CLUSTER),
      // Ready only once CLUSTER INFO says the cluster serves (ioredis reconnects while it says fail).
      enableReadyCheck: true,
      lazyConnect: false,
      // CLUSTER SLOTS on a busy node: the 1 s default fails on a loaded machine and every refresh starts over.
      slotsRefreshTimeout: 3_000,
      // ioredis resolves seed host names to addresses, and TLS would then check the certificate against an address;
      // keep the names (ioredis's advice for ElastiCache and other TLS clusters).
      ...(target.tls ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) } : {}),
      redisOptions: {
        connectionName: options.name,
        username: target.username,
        password: target.password,
        tls: target.tls ? {} : undefined,
        ...(options.failFast ? FAIL_FAST_REDIS : { maxRetriesPerRequest: null }),
      },
    },
  );
  // One line per outage, as for a single Redis. An outage on a cluster is one node that does not answer (node error)
  // or the whole cluster that cannot be reached (error); it is over when every master answers again, which after a
  // failover happens without the client reconnecting as a whole, so the slot refreshes (every 5 s) are checked too.
  let down = false;
  let checking = false;
  const lost = (err: Error, node?: string) => {
    if (down) return;
    down = true;
    options.logger?.warn(
      { connection: options.name, err: err.message, node, target: describeTarget(target) },
      node ? 'Redis Cluster node unreachable; waiting for it or its failover' : 'Redis Cluster unreachable; reconnecting',
    );
  };
  const restored = () => {
    if (!down) return;
    down = false;
    options.logger?.info({ connection: options.name }, 'Redis Cluster connection restored');
  };
  cluster.on('error', (err: Error) => lost(err));
  cluster.on('node error', (err: Error, node: string) => lost(err, node));
  cluster.on('ready', restored);
  cluster.on('refresh', () => {
    if (!down || checking || cluster.status !== 'ready') return;
    checking = true;
    clusterServes(cluster, 2_000)
      .then((ok) => ok && restored())
      .finally(() => (checking = false));
  });
  return cluster;
}

/**
 * Whether every slot has a master, per the client's slot table, and each of those masters answers PING within
 * `timeoutMs`. The table, not the connection pool: a dead master leaves the pool but keeps its slots until its
 * replica takes them over.
 */
async function clusterServes(cluster: Cluster, timeoutMs: number): Promise<boolean> {
  const owners = new Set<string>();
  for (let slot = 0; slot < 16_384; slot++) {
    const owner = cluster.slots[slot]?.[0];
    if (owner === undefined) return false;
    owners.add(owner);
  }
  const pool = new Map(cluster.nodes('all').map((node) => [nodeAddress(node), node]));
  try {
    await Promise.all(
      [...owners].map((owner) => {
        const node = pool.get(owner);
        if (!node) throw new Error(`${owner} is not connected`);
        return withTimeout(node.ping(), timeoutMs);
      }),
    );
    return true;
  } catch {
    return false;
  }
}

export class RedisUnavailableError extends Error {
  override name = 'RedisUnavailableError';
}

/**
 * Resolves when Redis answers PING, or throws a message an operator can act on. On a cluster: once the cluster is
 * ready, every master must answer, so a start-up does not go ahead while part of the slots are unserved.
 */
export async function assertReachable(redis: RedisClient, target: string | RedisTarget, timeoutMs = 3_000): Promise<void> {
  const timer = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref(),
  );
  // The connection's own errors say why a PING gets no answer (refused, a TLS certificate not trusted, …). Masked:
  // a host typed by mistake may be a card number, and the message names it.
  let lastError: Error | undefined;
  const onError = (e: Error) => (lastError = new Error(maskCardNumbers(e.message)));
  redis.on('error', onError);
  const why = (e: unknown) => `${(e as Error).message}${lastError && lastError.message !== (e as Error).message ? `; the connection failed with: ${lastError.message}` : ''}`;
  const untrusted = () => (lastError && /certificate|self.signed/i.test(lastError.message) ? ` The server's TLS certificate is not trusted: give its CA in NODE_EXTRA_CA_CERTS.` : '');
  try {
    if (!isCluster(redis)) {
      try {
        await Promise.race([redis.ping(), timer]);
      } catch (e) {
        throw new RedisUnavailableError(
          `Redis is not reachable at ${describeTarget(target)} (${why(e)}).${untrusted() || ' Start it (redis-server, or docker run -d -p 127.0.0.1:6379:6379 redis:7.4-alpine) or set REDIS_URL.'}`,
        );
      }
      return;
    }
    try {
      await Promise.race([redis.ping(), timer]);
    } catch (e) {
      throw new RedisUnavailableError(
        `Redis Cluster is not reachable at ${describeTarget(target)} (${why(e)}).${untrusted() || ' Start it, or set RISKMON_REDIS_CLUSTER to some of its nodes (host:port,host:port).'}`,
      );
    }
  } finally {
    redis.off('error', onError);
  }
  await Promise.all(
    masterNodes(redis).map(async (node) => {
      try {
        await Promise.race([node.ping(), timer]);
      } catch (e) {
        throw new RedisUnavailableError(
          `Redis Cluster master ${nodeAddress(node)} does not answer (${(e as Error).message}; ${describeTarget(target)}): its slots are not served. ` +
            'Wait for its replica to take over (CLUSTER INFO says cluster_state:ok), or start it again.',
        );
      }
    }),
  );
  // A master marked failed drops out of the slot table the client reads, so every master left may answer while
  // its slots are served by none: each master must also see the cluster whole.
  await Promise.all(
    masterNodes(redis).map(async (node) => {
      const info = await Promise.race([node.cluster('INFO'), timer]).catch((e: Error) => `cluster_state:unknown (${e.message})`);
      const state = /cluster_state:(\S+)/.exec(String(info))?.[1] ?? 'unknown';
      if (state !== 'ok') {
        throw new RedisUnavailableError(
          `Redis Cluster state is ${state} as master ${nodeAddress(node)} sees it (${describeTarget(target)}): some slots have no master that answers. ` +
            'Wait for a replica to take over (CLUSTER INFO says cluster_state:ok), or start the failed master again.',
        );
      }
    }),
  );
}

/** Redis is set up in a way that can lose or corrupt the service's data. */
export class RedisConfigError extends Error {
  override name = 'RedisConfigError';
}

/**
 * Refuses a Redis that may evict keys: an evicted queue job loses events, an evicted decision or day total counts
 * money twice. Read from INFO (CONFIG may be disabled on managed Redis). On a cluster every node is asked, replicas
 * too: a replica does not evict while it replicates, but it becomes a master with its own policy when promoted.
 */
export async function assertNoEviction(redis: RedisClient, target: string | RedisTarget): Promise<void> {
  if (!isCluster(redis)) {
    const policy = await evictionPolicy(redis);
    if (policy !== 'noeviction') throw evictionError(`Redis at ${describeTarget(target)}`, policy);
    return;
  }
  await redis.ping();
  const masters = new Set(redis.nodes('master'));
  const nodes = redis.nodes('all');
  const policies = await Promise.all(nodes.map((node) => evictionPolicy(node)));
  const i = policies.findIndex((p) => p !== 'noeviction');
  if (i >= 0) {
    const node = nodes[i]!;
    const role = masters.has(node) ? 'master' : 'replica';
    throw evictionError(`Redis Cluster ${role} ${nodeAddress(node)} (${describeTarget(target)})`, policies[i]!);
  }
}

async function evictionPolicy(node: Redis): Promise<string> {
  const info = await node.info('memory');
  return /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? 'unknown';
}

function evictionError(where: string, policy: string): RedisConfigError {
  return new RedisConfigError(
    `${where} has maxmemory-policy ${policy}: under memory pressure it would evict queued events, ` +
      'decisions and day totals (events lost, money counted twice). Set maxmemory-policy noeviction ' +
      '(redis.conf, --maxmemory-policy noeviction, or CONFIG SET maxmemory-policy noeviction' +
      (where.startsWith('Redis Cluster') ? ' on every node' : '') +
      ').',
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
