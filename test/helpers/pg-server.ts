/**
 * A private PostgreSQL server for tests that crash or restart it (never the machine's shared one): initdb into a
 * temporary folder as the postgres user (PostgreSQL refuses to run as root), trust auth, a free port, its socket
 * in the same folder. `crash()` is `pg_ctl stop -m immediate`: every server process quits at once without a
 * checkpoint, and the next start runs crash recovery, as after a power cut.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = process.env.RISKMON_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  port: number;
  /** A fresh database on it; its URL. */
  createDatabase(name: string): Promise<string>;
  crash(): void;
  start(): void;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function asPostgres(args: string[]): string {
  const asRoot = process.getuid?.() === 0;
  const [cmd, ...rest] = asRoot ? ['runuser', '-u', 'postgres', '--', ...args] : args;
  return execFileSync(cmd!, rest, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface PrivatePostgresOptions {
  /** TLS: the server's certificate and key (PEM files), copied where the server may read them; ssl=on. */
  tls?: { certFile: string; keyFile: string };
}

export async function startPrivatePostgres(options: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'riskmon-pg-'));
  chmodSync(dir, 0o777);
  const data = join(dir, 'data');
  const port = await freePort();
  let tlsOptions = '';
  if (options.tls) {
    // PostgreSQL refuses a key that others can read, or that is not its own.
    copyFileSync(options.tls.certFile, join(dir, 'server.crt'));
    copyFileSync(options.tls.keyFile, join(dir, 'server.key'));
    chmodSync(join(dir, 'server.key'), 0o600);
    if (process.getuid?.() === 0) execFileSync('chown', ['postgres', join(dir, 'server.crt'), join(dir, 'server.key')]);
    tlsOptions = ` -c ssl=on -c ssl_cert_file=${join(dir, 'server.crt')} -c ssl_key_file=${join(dir, 'server.key')}`;
  }
  if (process.getuid?.() === 0) execFileSync('chown', ['postgres', dir]);
  asPostgres([`${BIN}/initdb`, '-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const start = () => {
    asPostgres([
      `${BIN}/pg_ctl`, '-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60',
      '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=on${tlsOptions}`,
      'start',
    ]);
  };
  start();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    async createDatabase(name) {
      asPostgres([`${BIN}/psql`, '-h', dir, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-qc', `CREATE DATABASE ${name}`]);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    crash() {
      asPostgres([`${BIN}/pg_ctl`, '-D', data, '-m', 'immediate', '-w', 'stop']);
    },
    start,
    async stop() {
      try {
        asPostgres([`${BIN}/pg_ctl`, '-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        /* not running */
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
