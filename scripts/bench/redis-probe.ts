/**
 * What the benchmark reads from Redis itself: CPU (INFO cpu), per-command time (INFO commandstats) and memory,
 * both as a whole and per kind of key (MEMORY USAGE summed over a SCAN of the namespace).
 */
import type { Redis } from 'ioredis';
import { masterNodes, type RedisClient } from '../../src/redis/client.ts';

export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** CPU seconds the Redis process has used (user + system, all threads). */
/** CPU seconds Redis has used, summed over every master of a cluster. */
export async function redisCpuSeconds(redis: RedisClient): Promise<number> {
  let total = 0;
  for (const node of masterNodes(redis)) {
    const info = parseInfo(await node.info('cpu'));
    total += Number(info.used_cpu_user) + Number(info.used_cpu_sys);
  }
  return total;
}

/**
 * Memory Redis holds for keys: used_memory without what belongs to connections and caches (client query and reply
 * buffers, which a pipelined SCAN or DEL grows and Redis shrinks later on a timer; replication and AOF buffers;
 * the script caches). Key dictionaries and TTLs are included.
 */
export async function keyMemory(redis: Redis): Promise<number> {
  const flat = (await redis.call('MEMORY', 'STATS')) as unknown[];
  const stats = new Map<string, unknown>();
  for (let i = 0; i + 1 < flat.length; i += 2) stats.set(String(flat[i]), flat[i + 1]);
  const n = (name: string) => Number(stats.get(name) ?? 0);
  return (
    n('total.allocated') -
    n('clients.normal') -
    n('clients.slaves') -
    n('replication.backlog') -
    n('aof.buffer') -
    n('lua.caches') -
    n('functions.caches') -
    n('cluster.links')
  );
}

export interface CommandStat {
  command: string;
  calls: number;
  usec: number;
}

/** Commands by total time, most expensive first (since the last CONFIG RESETSTAT). */
/** Calls and time per command, summed over every master of a cluster. */
export async function commandStats(redis: RedisClient): Promise<CommandStat[]> {
  const byCommand = new Map<string, CommandStat>();
  for (const node of masterNodes(redis)) {
    const info = parseInfo(await node.info('commandstats'));
    for (const [k, v] of Object.entries(info)) {
      if (!k.startsWith('cmdstat_')) continue;
      const f = Object.fromEntries(v.split(',').map((p) => p.split('=') as [string, string]));
      const command = k.slice('cmdstat_'.length);
      const s = byCommand.get(command) ?? { command, calls: 0, usec: 0 };
      s.calls += Number(f.calls);
      s.usec += Number(f.usec);
      byCommand.set(command, s);
    }
  }
  return [...byCommand.values()].sort((a, b) => b.usec - a.usec);
}

export interface KeyGroup {
  keys: number;
  bytes: number;
  /** Elements: zset members, hash fields, stream entries. */
  elements: number;
  /** Keys per Redis encoding (OBJECT ENCODING): listpack, hashtable, ... */
  encodings?: Record<string, number>;
}

/**
 * Classifies a key of namespace `base` (rm:<ns>) into the groups the report needs, by what follows the namespace and
 * its shard tag (src/redis/keys.ts): anything the rules keep per user is rule state; the whole decisions (until
 * archived), the charge records and eventId claims (the dedupe), and the settlement schedule are measured apart.
 */
export function keyGroup(base: string, key: string): string {
  const rest = key.slice(base.length + 1).replace(/^\{s\d+\}:/, '');
  if (rest.startsWith('dec:')) return 'wholeDecision';
  if (rest.startsWith('rec:')) return 'chargeRecord';
  if (/^id:\{\d+\}:/.test(rest)) return 'claim';
  if (rest === 'decisions') return 'decisionStream';
  if (rest.startsWith('u:') && rest.endsWith(':rules')) return 'ruleState';
  if (rest === 'settle:due' || rest === 'settle:info') return 'settlementDue';
  if (rest === 'q' || rest.startsWith('q:') || /^\{[^}]+\}:q(:|$)/.test(rest)) return 'queue';
  return 'other';
}

/**
 * MEMORY USAGE (exact, SAMPLES 0) of every key of a namespace, summed by group: `classify` names a key's group
 * (keyGroup by default).
 */
export async function memoryByGroup(redis: Redis, base: string, classify: (key: string) => string = (key) => keyGroup(base, key)): Promise<Record<string, KeyGroup>> {
  const groups: Record<string, KeyGroup> = {};
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${base}:*`, 'COUNT', 2_000);
    cursor = next;
    if (keys.length === 0) continue;
    const p = redis.pipeline();
    for (const key of keys) {
      p.memory('USAGE', key, 'SAMPLES', 0);
      p.type(key);
      p.object('ENCODING', key);
    }
    const replies = (await p.exec()) ?? [];
    const sizes = redis.pipeline();
    keys.forEach((key, i) => {
      const type = replies[i * 3 + 1]![1] as string;
      if (type === 'zset') sizes.zcard(key);
      else if (type === 'hash') sizes.hlen(key);
      else if (type === 'stream') sizes.xlen(key);
      else if (type === 'set') sizes.scard(key);
      else sizes.exists(key);
    });
    const counts = (await sizes.exec()) ?? [];
    keys.forEach((key, i) => {
      const g = (groups[classify(key)] ??= { keys: 0, bytes: 0, elements: 0 });
      g.keys++;
      g.bytes += Number(replies[i * 3]![1] ?? 0);
      const encoding = String(replies[i * 3 + 2]![1]);
      g.encodings = { ...g.encodings, [encoding]: (g.encodings?.[encoding] ?? 0) + 1 };
      g.elements += Number(counts[i]![1] ?? 0);
    });
  } while (cursor !== '0');
  return groups;
}
