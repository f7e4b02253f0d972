/**
 * npm run archive -- migrate | status [--namespace <name>] [--json]
 * The archive in PostgreSQL (DATABASE_URL) or the embedded database (archive.dataDir).
 */
import { loadSettings } from '../src/config.ts';
import { CONFIG_OPTION, NAMESPACE_OPTION, namespaceOption, openCliContext, runCommand, UsageError } from '../src/cli.ts';
import { Archiver } from '../src/archive/archiver.ts';
import { openArchiveDb } from '../src/archive/database.ts';
import { migrateArchive } from '../src/archive/migrate.ts';
import { silentLogger } from '../src/logger.ts';

runCommand(
  {
    name: 'archive',
    summary: 'The archive of decisions and dead letters in PostgreSQL: migrate its schema, or show how far it is behind Redis.',
    usage: ['migrate [options]', 'status [options]'],
    positionals: true,
    options: {
      namespace: NAMESPACE_OPTION,
      config: CONFIG_OPTION,
      json: { type: 'boolean', help: 'status as one JSON object' },
    },
    notes: [
      'DATABASE_URL names the PostgreSQL server (postgres://user:password@host:5432/db?sslmode=verify-full); without it, the embedded database in archive.dataDir (data/archive), which only one process may open at a time.',
      'migrate applies the schema migrations this version has (the service and the archiver also do at start); status needs Redis too.',
    ],
    examples: ['npm run archive -- migrate', 'npm run archive -- status --namespace live'],
  },
  async ({ values, positionals }) => {
    const command = positionals[0];
    if (positionals.length !== 1 || (command !== 'migrate' && command !== 'status')) throw new UsageError('expected: migrate or status');
    const settings = loadSettings({ configFile: values.config, namespace: namespaceOption(values.namespace) });
    const db = await openArchiveDb({ databaseUrl: settings.databaseUrl, dataDir: settings.config.archive.dataDir });
    try {
      const migration = await migrateArchive(db);
      if (command === 'migrate') {
        process.stdout.write(
          migration.applied.length > 0
            ? `${db.description}: schema version ${migration.from} → ${migration.to} (applied ${migration.applied.join(', ')})\n`
            : `${db.description}: schema version ${migration.to}, up to date\n`,
        );
        return;
      }
      const cli = await openCliContext({ settings, requireExisting: true });
      try {
        const { context } = cli;
        const archiver = new Archiver({ redis: context.redis, keys: context.keys, db, logger: silentLogger });
        const backlog = await archiver.backlog();
        const counts = await db.query<{ t: string; n: number }>(
          `SELECT 'transactions' AS t, count(*)::int AS n FROM fenfu.transactions WHERE namespace = $1
           UNION ALL SELECT 'settlements', count(*)::int FROM fenfu.settlements WHERE namespace = $1
           UNION ALL SELECT 'risk_records', count(*)::int FROM fenfu.risk_records WHERE namespace = $1
           UNION ALL SELECT 'dead_letters', count(*)::int FROM fenfu.dead_letters WHERE namespace = $1`,
          [context.keys.namespace],
        );
        const rows = Object.fromEntries(counts.rows.map((r) => [r.t, r.n]));
        if (values.json) {
          process.stdout.write(JSON.stringify({ namespace: context.keys.namespace, database: db.description, schemaVersion: migration.to, rows, backlog }) + '\n');
          return;
        }
        process.stdout.write(`archive of namespace ${context.keys.namespace} in ${db.description} (schema version ${migration.to})\n`);
        for (const [t, n] of Object.entries(rows)) process.stdout.write(`  ${t.padEnd(13)} ${n} rows\n`);
        for (const b of backlog) process.stdout.write(`  ${b.source.padEnd(13)} ${b.entries} entries not yet archived${b.entries > 0 ? `, oldest ${b.oldestSeconds.toFixed(1)} s old` : ''}\n`);
      } finally {
        await cli.close();
      }
    } finally {
      await db.close();
    }
  },
);
