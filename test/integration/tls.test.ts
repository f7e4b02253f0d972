/**
 * TLS with a self-signed certificate: PostgreSQL with `sslmode=verify-full` (the CA from `sslrootcert`, or Node's
 * NODE_EXTRA_CA_CERTS for the tools) and Redis through `rediss://` (NODE_EXTRA_CA_CERTS). A client that does not
 * trust the certificate is refused: the connections are verified, not merely encrypted.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArchiveDb } from '../../src/archive/database.ts';
import { freePort, startRedisServer, type LocalRedis } from '../../src/redis/local-server.ts';
import { program } from '../helpers/binaries.ts';
import { runTool } from '../helpers/cli.ts';
import { freshNamespace } from '../helpers/context.ts';
import { startPrivatePostgres, type PrivatePostgres } from '../helpers/pg-server.ts';

const initdb = program('/usr/lib/postgresql/15/bin/initdb', 'postgresql');

describe.skipIf(initdb.skip)('TLS with a self-signed certificate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'riskmon-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  let postgres: PrivatePostgres;
  let redis: LocalRedis;
  let port = 0;
  let tlsPort = 0;

  beforeAll(async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    postgres = await startPrivatePostgres({ tls: { certFile: cert, keyFile: key } });
    port = postgres.port;
    // A TLS port beside the plain one (which start-up checks with a PING); the tools are given the TLS one.
    tlsPort = await freePort();
    redis = await startRedisServer({ args: ['--tls-port', String(tlsPort), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-auth-clients', 'no'] });
  }, 60_000);
  afterAll(async () => {
    await redis?.stop();
    await postgres?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects to PostgreSQL with sslmode=verify-full and a CA it trusts, over TLS; refuses a certificate it does not trust', async () => {
    const url = `postgres://postgres@localhost:${port}/postgres?sslmode=verify-full&sslrootcert=${encodeURIComponent(cert)}`;
    const db = await openArchiveDb({ databaseUrl: url, dataDir: '' });
    try {
      const r = await db.query<{ ssl: boolean; version: string }>('SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      expect(r.rows[0]).toMatchObject({ ssl: true, version: expect.stringMatching(/^TLSv1\.[23]$/) });
    } finally {
      await db.close();
    }
    await expect(openArchiveDb({ databaseUrl: `postgres://postgres@localhost:${port}/postgres?sslmode=verify-full`, dataDir: '' })).rejects.toThrow(/self.signed|certificate/i);
  });

  it('runs the tools over TLS to both: DATABASE_URL with sslmode=verify-full and REDIS_URL rediss://, trusting the CA through NODE_EXTRA_CA_CERTS', async () => {
    const namespace = freshNamespace('tls');
    const env = {
      DATABASE_URL: `postgres://postgres@localhost:${port}/postgres?sslmode=verify-full`,
      REDIS_URL: `rediss://localhost:${tlsPort}`,
      RISKMON_NAMESPACE: namespace,
      NODE_EXTRA_CA_CERTS: cert,
    };
    const migrate = await runTool('archive', ['migrate'], env);
    expect(migrate.code, migrate.stderr).toBe(0);
    expect(migrate.stdout).toMatch(/schema version 0 → 3/);
    const status = await runTool('archive', ['status', '--json'], env);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ namespace, schemaVersion: 3 });
    const untrusted = await runTool('archive', ['status'], { ...env, NODE_EXTRA_CA_CERTS: '' });
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/cannot reach PostgreSQL .*(self.signed|certificate)/i);
    // PostgreSQL trusted through its URL, Redis not at all: Redis is refused, so its TLS is verified too.
    const redisUntrusted = await runTool('archive', ['status'], { ...env, NODE_EXTRA_CA_CERTS: '', DATABASE_URL: `${env.DATABASE_URL}&sslrootcert=${encodeURIComponent(cert)}` });
    expect(redisUntrusted.code).toBe(1);
    expect(redisUntrusted.stderr).toMatch(/self.signed|certificate/i);
    expect(redisUntrusted.stderr).not.toMatch(/cannot reach PostgreSQL/);
  });
});
