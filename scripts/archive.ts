/**
 * npm run archive -- migrate | status | retention [--dry-run] [--now ISO] | dispute open|close|list …
 * The archive in PostgreSQL (DATABASE_URL) or the embedded database (archive.dataDir).
 */
import { loadSettings, type Settings } from '../src/config.ts';
import { CONFIG_OPTION, NAMESPACE_OPTION, namespaceOption, openCliContext, runCommand, UsageError } from '../src/cli.ts';
import { archiveBacklog } from '../src/archive/archiver.ts';
import { openArchiveDb, type ArchiveDb } from '../src/archive/database.ts';
import { Disputes } from '../src/archive/disputes.ts';
import { migrateArchive } from '../src/archive/migrate.ts';
import { applyRetention } from '../src/archive/retention.ts';
import { parseInstant } from '../src/events/instant.ts';

runCommand(
  {
    name: 'archive',
    summary: 'The archive of decisions, settlements and dead letters in PostgreSQL: its schema, how far it is behind Redis, retention, dispute flags.',
    usage: [
      'migrate [options]',
      'status [options]',
      'retention [--dry-run] [--now <ISO instant>] [options]',
      'dispute open <eventId> --reason "…" --by <name> [options]',
      'dispute close <eventId> --by <name> [options]',
      'dispute list [<eventId>] [options]',
    ],
    positionals: true,
    options: {
      namespace: NAMESPACE_OPTION,
      config: CONFIG_OPTION,
      json: { type: 'boolean', help: 'print one JSON object' },
      'dry-run': { type: 'boolean', help: 'retention: count what would be dropped, drop nothing' },
      now: { type: 'string', arg: '<ISO instant>', help: 'retention: the instant to count retention from (default: now; a later one only with --dry-run in production)' },
      reason: { type: 'string', arg: '<text>', help: 'dispute open: why' },
      by: { type: 'string', arg: '<name>', help: 'dispute open/close: who' },
    },
    notes: [
      'DATABASE_URL names the PostgreSQL server (postgres://user:password@host:5432/db?sslmode=verify-full); without it, the embedded database in archive.dataDir (data/archive), which only one process may open at a time.',
      'Every command first applies the schema migrations this version has (the service does too, at start). status needs Redis as well.',
      'Retention (archive.retention): transaction detail 5 years from occurredAt, risk records and dead letters 3 years from creation, a disputed charge while its dispute is open and 2 years after it closed.',
    ],
    examples: [
      'npm run archive -- migrate',
      'npm run archive -- status --namespace live',
      'npm run archive -- retention --dry-run --now 2031-12-01T00:00:00Z',
      'npm run archive -- dispute open ch-20261203-0042 --reason "customer complaint 7731" --by ops-li',
    ],
  },
  async ({ values, positionals }) => {
    const [command, ...rest] = positionals;
    const settings = loadSettings({ configFile: values.config, namespace: namespaceOption(values.namespace) });
    const commands: Record<string, (db: ArchiveDb) => Promise<void>> = {
      migrate: async (db) => {
        const m = await migrateArchive(db);
        if (values.json) return print(values.json, { database: db.description, ...m });
        process.stdout.write(
          m.applied.length > 0 ? `${db.description}: schema version ${m.from} → ${m.to} (applied ${m.applied.join(', ')})\n` : `${db.description}: schema version ${m.to}, up to date\n`,
        );
      },
      status: (db) => status(db, settings, values.json ?? false),
      retention: async (db) => {
        const nowMs = retentionNow(values.now, values['dry-run'] ?? false, settings);
        const report = await applyRetention(db, settings.config.archive.retention, { now: nowMs, dryRun: values['dry-run'] ?? false });
        if (values.json) return print(true, report);
        const verb = report.dryRun ? 'would drop' : 'dropped';
        process.stdout.write(`retention at ${report.now} in ${db.description}${report.dryRun ? ' (dry run: nothing changed)' : ''}\n`);
        for (const [table, n] of Object.entries(report.rows)) {
          process.stdout.write(`  ${table.padEnd(13)} ${verb} ${n} rows (${table === 'disputes' ? 'closed before' : 'from before'} ${report.cutoffs[table as keyof typeof report.cutoffs]})\n`);
        }
        process.stdout.write(report.partitions.length > 0 ? `  partitions    ${verb} ${report.partitions.join(', ')}\n` : '  partitions    none to drop\n');
      },
      dispute: async (db) => {
        const [action, eventId, ...extra] = rest;
        if (extra.length > 0) throw new UsageError('dispute takes one eventId');
        const disputes = new Disputes(db, settings.config.namespace);
        if (action === 'list') {
          const list = await disputes.list(eventId);
          if (values.json) return print(true, list);
          if (list.length === 0) process.stdout.write(eventId ? `no disputes on ${eventId}\n` : 'no open disputes\n');
          for (const d of list) {
            process.stdout.write(`${d.eventId}  opened ${d.openedAt} by ${d.openedBy}: ${d.reason}${d.closedAt ? `; closed ${d.closedAt} by ${d.closedBy}` : ' (open)'}\n`);
          }
          return;
        }
        if (!eventId) throw new UsageError('dispute open|close takes the eventId of the charge');
        if (!values.by) throw new UsageError('--by <name> is required: who opens or closes the dispute');
        if (action === 'open') {
          if (!values.reason) throw new UsageError('--reason "…" is required to open a dispute');
          const d = await disputes.open(eventId, values.by, values.reason);
          return values.json ? print(true, d) : void process.stdout.write(`dispute opened on ${d.eventId} at ${d.openedAt}: its records are kept until it closes + ${settings.config.archive.retention.disputeExtraYears} years\n`);
        }
        if (action === 'close') {
          const d = await disputes.close(eventId, values.by);
          return values.json ? print(true, d) : void process.stdout.write(`dispute on ${d.eventId} closed at ${d.closedAt}\n`);
        }
        throw new UsageError('expected: dispute open, dispute close or dispute list');
      },
    };
    const run = command === undefined ? undefined : commands[command];
    if (!run) throw new UsageError('expected: migrate, status, retention or dispute');
    if (command !== 'dispute' && rest.length > 0) throw new UsageError(`${command} takes no arguments`);
    if (command !== 'retention' && (values['dry-run'] || values.now !== undefined)) throw new UsageError('--dry-run and --now belong to retention');
    const db = await openArchiveDb({ databaseUrl: settings.databaseUrl, dataDir: settings.config.archive.dataDir });
    try {
      if (command !== 'migrate') await migrateArchive(db);
      await run(db);
    } finally {
      await db.close();
    }
  },
);

function print(json: boolean | undefined, value: unknown): void {
  if (json) process.stdout.write(JSON.stringify(value) + '\n');
}

/** --now for retention: any past instant; a later one than the wall clock drops data early, so production allows it only in a dry run. */
function retentionNow(text: string | undefined, dryRun: boolean, settings: Settings): number {
  if (text === undefined) return Date.now();
  const t = parseInstant(text);
  if (!t.ok) throw new UsageError(`--now: ${t.reason}`);
  if (t.ms > Date.now() && !dryRun && settings.config.environment === 'production') {
    throw new UsageError('--now later than the wall clock drops records before their retention ends: production allows it only with --dry-run');
  }
  return t.ms;
}

async function status(db: ArchiveDb, settings: Settings, json: boolean): Promise<void> {
  const migration = await migrateArchive(db);
  const cli = await openCliContext({ settings, requireExisting: true });
  try {
    const { context } = cli;
    const backlog = await archiveBacklog(context.redis, context.keys);
    const counts = await db.query<{ t: string; n: number }>(
      `SELECT 'transactions' AS t, count(*)::int AS n FROM fenfu.transactions WHERE namespace = $1
       UNION ALL SELECT 'settlements', count(*)::int FROM fenfu.settlements WHERE namespace = $1
       UNION ALL SELECT 'risk_records', count(*)::int FROM fenfu.risk_records WHERE namespace = $1
       UNION ALL SELECT 'dead_letters', count(*)::int FROM fenfu.dead_letters WHERE namespace = $1
       UNION ALL SELECT 'cases', count(*)::int FROM fenfu.cases WHERE namespace = $1
       UNION ALL SELECT 'case_actions', count(*)::int FROM fenfu.case_actions WHERE namespace = $1
       UNION ALL SELECT 'open disputes', count(*)::int FROM fenfu.disputes WHERE namespace = $1 AND closed_at IS NULL`,
      [context.keys.namespace],
    );
    const rows = Object.fromEntries(counts.rows.map((r) => [r.t, r.n]));
    if (json) return print(true, { namespace: context.keys.namespace, database: db.description, schemaVersion: migration.to, rows, backlog });
    process.stdout.write(`archive of namespace ${context.keys.namespace} in ${db.description} (schema version ${migration.to})\n`);
    for (const [t, n] of Object.entries(rows)) process.stdout.write(`  ${t.padEnd(13)} ${n} rows\n`);
    for (const b of backlog) process.stdout.write(`  ${b.source.padEnd(13)} ${b.entries} entries not yet archived${b.entries > 0 ? `, oldest ${b.oldestSeconds.toFixed(1)} s old` : ''}\n`);
  } finally {
    await cli.close();
  }
}
