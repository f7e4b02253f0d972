/**
 * Where Redis is: one server (REDIS_URL) or a Redis Cluster (RISKMON_REDIS_CLUSTER, a few seed nodes from which the
 * client learns the rest). Parsed here once, with messages that name the variable, the entry and what to write
 * instead, and that never contain a password.
 */
import { isIP } from 'node:net';
import { maskCardNumbers } from '../events/card.ts';

export interface ClusterSeed {
  host: string;
  port: number;
}

export interface SingleRedisTarget {
  kind: 'single';
  url: string;
}

export interface ClusterRedisTarget {
  kind: 'cluster';
  /** Nodes to ask for the topology; the client connects to every node the cluster then lists. */
  seeds: ClusterSeed[];
  /** ACL user, for every node. */
  username?: string;
  /** For every node. */
  password?: string;
  /** TLS to every node (rediss:// entries). */
  tls?: boolean;
}

export type RedisTarget = SingleRedisTarget | ClusterRedisTarget;

/** RISKMON_REDIS_CLUSTER or REDIS_URL cannot be used as written. */
export class RedisTargetError extends Error {
  override name = 'RedisTargetError';
  constructor(message: string) {
    // The entry it names is the operator's text, which could hold a card number typed by mistake.
    super(maskCardNumbers(message));
  }
}

const CLUSTER_VAR = 'RISKMON_REDIS_CLUSTER';
const ENTRY_FORMS = 'host:port, or a redis:// or rediss:// URL';

/**
 * The Redis the environment names: a cluster when RISKMON_REDIS_CLUSTER is set, else REDIS_URL, else undefined
 * (the caller then uses 127.0.0.1:6379 or starts a private server, src/redis/local-server.ts). An empty value counts
 * as unset, as REDIS_URL always has (compose files pass empty variables).
 */
export function redisTargetFromEnv(env: NodeJS.ProcessEnv = process.env): RedisTarget | undefined {
  const cluster = env[CLUSTER_VAR]?.trim();
  const url = env.REDIS_URL || undefined;
  if (cluster && url) {
    throw new RedisTargetError(
      `${CLUSTER_VAR} (a Redis Cluster) and REDIS_URL (one Redis) are both set: unset one of them (riskmon does not guess which one you meant)`,
    );
  }
  if (cluster) return parseClusterSeeds(cluster);
  return url ? { kind: 'single', url } : undefined;
}

interface ParsedEntry {
  seed: ClusterSeed;
  /** undefined for a bare host:port, which takes the scheme and credentials of the URL entries. */
  tls?: boolean;
  username?: string;
  password?: string;
}

/**
 * RISKMON_REDIS_CLUSTER's value: comma-separated entries, each `host:port` (`[::1]:7000` for IPv6) or a
 * `redis://[user:password@]host[:port]` / `rediss://…` URL (port 6379 when a URL gives none). The whole cluster is
 * reached one way, so entries that give credentials must give the same ones, and rediss:// and redis:// do not mix;
 * a bare host:port takes what the URL entries give.
 */
export function parseClusterSeeds(value: string): ClusterRedisTarget {
  const raw = value.split(',').map((e) => e.trim());
  const entries: ParsedEntry[] = [];
  raw.forEach((entry, i) => {
    const where = raw.length > 1 ? `entry ${i + 1} of ${raw.length}` : 'the entry';
    if (entry === '') {
      throw new RedisTargetError(`${CLUSTER_VAR}: ${where} is empty (expected ${ENTRY_FORMS}, separated by commas)`);
    }
    const parsed = parseEntry(entry, `${CLUSTER_VAR}: ${where} ("${redactEntry(entry)}")`);
    const twin = entries.findIndex((e) => e.seed.host === parsed.seed.host && e.seed.port === parsed.seed.port);
    if (twin >= 0) throw new RedisTargetError(`${CLUSTER_VAR}: ${where} ("${redactEntry(entry)}") repeats entry ${twin + 1}`);
    entries.push(parsed);
  });

  const schemes = new Set(entries.filter((e) => e.tls !== undefined).map((e) => e.tls));
  if (schemes.size > 1) {
    throw new RedisTargetError(
      `${CLUSTER_VAR} mixes rediss:// (TLS) and redis:// entries: a cluster is reached with TLS on every node or on none; write them all one way`,
    );
  }
  const withCredentials = entries.map((e, i) => ({ ...e, n: i + 1 })).filter((e) => e.password !== undefined);
  const first = withCredentials[0];
  const other = withCredentials.find((e) => e.username !== first?.username || e.password !== first?.password);
  if (first && other) {
    throw new RedisTargetError(
      `${CLUSTER_VAR}: entries ${first.n} and ${other.n} give different credentials: every node is reached with one user and password; give them in one entry, or the same in each`,
    );
  }
  return {
    kind: 'cluster',
    seeds: entries.map((e) => e.seed),
    ...(first?.username ? { username: first.username } : {}),
    ...(first ? { password: first.password } : {}),
    ...(schemes.has(true) ? { tls: true } : {}),
  };
}

function parseEntry(entry: string, where: string): ParsedEntry {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(entry)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    if (entry.includes('@') || entry.includes('/')) {
      throw new RedisTargetError(`${where}: credentials and paths need a URL (redis://user:password@host:port); a bare entry is host:port`);
    }
    return { seed: parseHostPort(entry, where, undefined) };
  }
  if (scheme !== 'redis' && scheme !== 'rediss') {
    throw new RedisTargetError(`${where}: unsupported scheme ${scheme}:// (expected ${ENTRY_FORMS})`);
  }
  const rest = entry.slice(scheme.length + 3);
  const end = rest.search(/[/?#]/);
  const authority = end < 0 ? rest : rest.slice(0, end);
  const tail = end < 0 ? '' : rest.slice(end);
  if (tail.includes('?') || tail.includes('#')) {
    throw new RedisTargetError(`${where}: query parameters and fragments are not supported (TLS comes from rediss://, credentials from user:password@)`);
  }
  if (tail !== '' && tail !== '/' && tail !== '/0') {
    throw new RedisTargetError(`${where}: database ${tail.slice(1)}: a Redis Cluster has only database 0 (remove the path)`);
  }
  const at = authority.lastIndexOf('@');
  const hostPort = at < 0 ? authority : authority.slice(at + 1);
  const parsed: ParsedEntry = { seed: parseHostPort(hostPort, where, 6379), tls: scheme === 'rediss' };
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(':');
    const username = decode(colon < 0 ? userinfo : userinfo.slice(0, colon), where);
    const password = colon < 0 ? '' : decode(userinfo.slice(colon + 1), where);
    // ioredis sends AUTH only with a password: a user name alone would be dropped without a word.
    if (password === '') {
      throw new RedisTargetError(`${where}: gives ${username ? 'a user name but ' : ''}no password (write redis://user:password@host:port, or leave the credentials out)`);
    }
    parsed.username = username || undefined;
    parsed.password = password;
  }
  return parsed;
}

function parseHostPort(text: string, where: string, defaultPort: number | undefined): ClusterSeed {
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
    if (isIP(host) !== 6) throw new RedisTargetError(`${where}: "[${host}]" is not an IPv6 address`);
  } else {
    const colon = text.indexOf(':');
    host = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? undefined : text.slice(colon + 1);
    if (portText?.includes(':')) throw new RedisTargetError(`${where}: an IPv6 address goes in brackets ([::1]:7000)`);
    if (host === '') throw new RedisTargetError(`${where}: no host (expected ${ENTRY_FORMS})`);
    if (!(isIP(host) === 4 || HOST_NAME.test(host))) throw new RedisTargetError(`${where}: "${host}" is not a host name or IP address`);
  }
  if (portText === undefined || portText === '') {
    if (defaultPort === undefined) throw new RedisTargetError(`${where}: no port (expected host:port, e.g. ${bracketed ? `[${host}]` : host}:7000)`);
    return { host, port: defaultPort };
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65_535)) throw new RedisTargetError(`${where}: port "${portText}" is not a number 1–65535`);
  return { host, port };
}

/** DNS labels (underscores too: container names), optionally ending in a dot. */
const HOST_NAME = /^[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)*\.?$/i;

function decode(text: string, where: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new RedisTargetError(`${where}: the credentials are not valid URL encoding (write % as %25)`);
  }
}

/**
 * An entry as it may appear in a message: what stands before the last "@" is credentials; of those only a user name
 * followed by ":" is shown (a lone word may be a password written where the user goes).
 */
function redactEntry(entry: string): string {
  const at = entry.lastIndexOf('@');
  if (at < 0) return entry;
  const start = /^[a-z][a-z0-9+.-]*:\/\//i.exec(entry)?.[0].length ?? 0;
  const userinfo = entry.slice(start, at);
  const colon = userinfo.indexOf(':');
  return `${entry.slice(0, start)}${colon < 0 ? '***' : `${userinfo.slice(0, colon)}:***`}${entry.slice(at)}`;
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable REDIS_URL)';
  }
}

/**
 * A target for messages and logs, password replaced by ***: a single Redis as its URL (see {@link redactUrl}), a
 * cluster as "cluster" and its seeds written as RISKMON_REDIS_CLUSTER would be (`cluster rediss://app:***@h1:7000,h2:7000`);
 * card numbers (however they got there) masked.
 */
export function describeTarget(target: RedisTarget | string): string {
  return maskCardNumbers(describeUnmasked(target));
}

function describeUnmasked(target: RedisTarget | string): string {
  if (typeof target === 'string') return redactUrl(target);
  if (target.kind === 'single') return redactUrl(target.url);
  const seeds = target.seeds.map((s) => (isIP(s.host) === 6 ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`)).join(',');
  const user = target.username ? encodeURIComponent(target.username) : '';
  const auth = target.password !== undefined ? `${user}:***@` : '';
  const scheme = target.tls ? 'rediss://' : target.password !== undefined ? 'redis://' : '';
  return `cluster ${scheme}${auth}${seeds}`;
}

/**
 * The environment that points a child process (a worker started by replay or bench) at the same Redis: the one
 * variable of its kind set, the other emptied (so an inherited one cannot make both set).
 */
export function targetEnv(target: string | RedisTarget): { REDIS_URL: string; RISKMON_REDIS_CLUSTER: string } {
  if (typeof target === 'string') return { REDIS_URL: target, RISKMON_REDIS_CLUSTER: '' };
  if (target.kind === 'single') return { REDIS_URL: target.url, RISKMON_REDIS_CLUSTER: '' };
  const scheme = target.tls ? 'rediss' : 'redis';
  const user = target.username ? encodeURIComponent(target.username) : '';
  const auth = target.password !== undefined ? `${user}:${encodeURIComponent(target.password)}@` : user ? `${user}@` : '';
  const entries = target.seeds.map(({ host, port }) => `${scheme}://${auth}${host.includes(':') ? `[${host}]` : host}:${port}`);
  return { REDIS_URL: '', RISKMON_REDIS_CLUSTER: entries.join(',') };
}
