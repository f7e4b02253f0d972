/**
 * A newcomer needs only Node and a `redis-server` binary: when REDIS_URL is unset and nothing answers on
 * 127.0.0.1:6379, start a private redis-server on a free port. Also used by tests that kill or restart Redis.
 */
import type { ClusterRedisTarget } from './target.ts';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export class RedisServerMissingError extends Error {
  override name = 'RedisServerMissingError';
  constructor() {
    super(
      'No Redis answers on 127.0.0.1:6379 and no redis-server binary was found to start a private one. ' +
        'Install it (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis), ' +
        'set REDIS_URL to a running Redis, or run `docker run -d -p 127.0.0.1:6379:6379 redis:7.4-alpine`.',
    );
  }
}

export interface LocalRedis {
  url: string;
  port: number;
  dir: string;
  process: ChildProcess;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its directory unless `keepDir`. */
  stop(options?: { keepDir?: boolean }): Promise<void>;
}

export interface StartOptions {
  port?: number;
  /** Working directory (AOF/RDB files); a fresh temporary one by default. */
  dir?: string;
  /** Extra redis-server arguments, e.g. ['--appendonly', 'yes']. */
  args?: string[];
  /** A command that runs redis-server, e.g. ['valgrind', '--tool=callgrind']; the server's pid is the process's. */
  prefix?: string[];
  /** How long to wait for the server to answer. @defaultValue 10 000 ms */
  startTimeoutMs?: number;
}

export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function tcpAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('error', () => done(false));
    s.connect(port, host, () => {
      // Something listens; make sure it speaks RESP.
      s.write('PING\r\n');
      s.once('data', (buf) => done(buf.toString().startsWith('+PONG') || buf.toString().startsWith('-NOAUTH')));
    });
  });
}

export async function startRedisServer(options: StartOptions = {}): Promise<LocalRedis> {
  if (!redisServerAvailable()) throw new RedisServerMissingError();
  const port = options.port ?? (await freePort());
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'riskmon-redis-'));
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--appendonly', 'no',
    '--maxmemory-policy', 'noeviction',
    ...(options.args ?? []),
  ];
  const [command, ...commandArgs] = [...(options.prefix ?? []), 'redis-server', ...args] as [string, ...string[]];
  const child = spawn(command, commandArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d.toString()));
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const deadline = Date.now() + startTimeoutMs;
  while (!(await tcpAnswers('127.0.0.1', port, 300))) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${stderr.trim()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not answer on port ${port} within ${startTimeoutMs / 1000} s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    process: child,
    async stop(stopOptions = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      if (ownDir && !stopOptions.keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The Redis URL a process should use: REDIS_URL when set; else 127.0.0.1:6379 when it answers; else a private
 * server started here (its `stop` is returned so the caller can clean up).
 */
export async function resolveRedisUrl(explicit: string | undefined): Promise<{ url: string; started?: LocalRedis }> {
  if (explicit) return { url: explicit };
  if (await tcpAnswers('127.0.0.1', 6379)) return { url: DEFAULT_REDIS_URL };
  const started = await startRedisServer();
  return { url: started.url, started };
}

/**
 * The Redis a process of these settings should use: the cluster RISKMON_REDIS_CLUSTER names (never a private one),
 * else as resolveRedisUrl.
 */
export async function resolveRedis(settings: { redisUrl: string | undefined; redisCluster: ClusterRedisTarget | undefined }): Promise<{ target: string | ClusterRedisTarget; started?: LocalRedis }> {
  if (settings.redisCluster) return { target: settings.redisCluster };
  const { url, started } = await resolveRedisUrl(settings.redisUrl);
  return { target: url, started };
}
