/** npm run users: a token printed once (its hash kept, not the token), list, revoke, and clear refusals. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArchiveDb } from '../../src/archive/database.ts';
import { ApiUsers, tokenHash } from '../../src/api/users.ts';
import { runTool } from '../helpers/cli.ts';
import { createTestDatabase, skipWithoutPostgres, type TestDatabase } from '../helpers/postgres.ts';

describe.skipIf(skipWithoutPostgres())('npm run users', () => {
  let database: TestDatabase;
  const env = () => ({ DATABASE_URL: database.url });
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => database?.drop());

  it('adds a user whose token works and is stored only as its hash; lists; revokes; refuses bad input', async () => {
    const add = await runTool('users', ['add', 'li.na', '--role', 'supervisor'], env());
    expect(add.code, add.stderr).toBe(0);
    const token = /^(rmk_\S+)$/m.exec(add.stdout)![1]!;
    expect(add.stdout).toContain('shown this once');
    const db = await openArchiveDb({ databaseUrl: database.url, dataDir: '' });
    try {
      const rows = await db.query<{ token_hash: string }>(`SELECT token_hash FROM riskmon.api_users`);
      expect(rows.rows).toEqual([{ token_hash: tokenHash(token) }]);
      expect(JSON.stringify(rows.rows)).not.toContain(token);
      expect(await new ApiUsers(db).authenticate(token)).toEqual({ name: 'li.na', role: 'supervisor' });

      const twice = await runTool('users', ['add', 'li.na', '--role', 'analyst'], env());
      expect(twice.code).toBe(1);
      expect(twice.stderr).toMatch(/user li\.na exists already/);
      for (const [args, message] of [
        [['add', 'Li Na', '--role', 'analyst'], /a user name is 1–64 lower-case letters/],
        [['add', 'wang', '--role', 'root'], /--role must be one of analyst, supervisor, admin/],
        [['revoke', 'nobody'], /no active user "nobody"/],
      ] as const) {
        const r = await runTool('users', [...args], env());
        expect(r.code, args.join(' ')).toBe(1);
        expect(r.stderr).toMatch(message);
      }
      const noRole = await runTool('users', ['add', 'wang'], env());
      expect(noRole.code).toBe(2);

      const list = await runTool('users', ['list', '--json'], env());
      expect(JSON.parse(list.stdout)).toMatchObject([{ name: 'li.na', role: 'supervisor', revokedAt: null }]);
      const revoke = await runTool('users', ['revoke', 'li.na'], env());
      expect(revoke.code, revoke.stderr).toBe(0);
      expect(await new ApiUsers(db).authenticate(token)).toBeUndefined();
      // The name can be given a new token; the revoked one stays listed.
      expect((await runTool('users', ['add', 'li.na', '--role', 'analyst'], env())).code).toBe(0);
      const after = JSON.parse((await runTool('users', ['list', '--json'], env())).stdout) as { name: string; role: string; revokedAt: string | null }[];
      expect(after.map((u) => [u.name, u.role, u.revokedAt === null])).toEqual([
        ['li.na', 'supervisor', false],
        ['li.na', 'analyst', true],
      ]);
    } finally {
      await db.close();
    }
  }, 60_000);
});
