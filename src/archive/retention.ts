/**
 * Retention of the archive (seed 002, 数据管理规范), run daily by the archiving process and by
 * `npm run archive -- retention [--dry-run] [--now ISO]`:
 * - transaction detail (a charge's row, its settlement) is dropped transactionYears (5) after its occurredAt;
 * - risk records (reasons and observed values, dead letters, the API's audit trail, entries the archive set
 *   aside) riskRecordYears (3) after their creation, and review cases with their actions riskRecordYears after
 *   they closed (an open case stays);
 * - a charge under dispute keeps all of its records while the dispute is open and disputeExtraYears (2) after it
 *   closed, whichever is later; a closed dispute itself goes with the last of them.
 * Rows are deleted (one transaction per run, so a run is all or nothing); a monthly partition wholly past its
 * table's cutoff that is left empty is dropped. A dry run counts the same rows and changes nothing.
 */
import type { RiskmonConfig } from '../config.ts';
import type { ArchiveDb, Statement } from './database.ts';
import { PARTITIONED_TABLES, type PartitionedTable } from './partitions.ts';

type RetentionConfig = RiskmonConfig['archive']['retention'];
type RetainedTable = PartitionedTable | 'disputes' | 'audit' | 'archive_rejects' | 'cases' | 'case_actions';

export interface RetentionReport {
  now: string;
  dryRun: boolean;
  /** The instant each table's records are dropped before (disputed ones excepted). */
  cutoffs: Record<RetainedTable, string>;
  /** Rows dropped (or, in a dry run, that would be). */
  rows: Record<RetainedTable, number>;
  /** Empty partitions wholly before their cutoff, dropped (or that would be). */
  partitions: string[];
}

/** pg_advisory_xact_lock key: two processes running retention at once take turns. */
const RETENTION_LOCK = 72_011_502;

/** A disputed charge's records stay while this holds for it (`param` is the dispute cutoff: now − disputeExtraYears). */
const PROTECTED = (alias: string, param = '$2') =>
  `EXISTS (SELECT 1 FROM fenfu.disputes d WHERE d.namespace = ${alias}.namespace AND d.event_id = ${alias}.event_id AND (d.closed_at IS NULL OR d.closed_at > ${param}))`;

export async function applyRetention(db: ArchiveDb, config: RetentionConfig, options: { now?: number; dryRun?: boolean } = {}): Promise<RetentionReport> {
  const now = new Date(options.now ?? Date.now());
  // n calendar years back; 29 February goes to 28 February (not 1 March: a day early is a day too early).
  const years = (n: number) => {
    const d = new Date(now);
    d.setUTCFullYear(d.getUTCFullYear() - n);
    if (d.getUTCMonth() !== now.getUTCMonth()) d.setUTCDate(0);
    return d;
  };
  const transactionCutoff = years(config.transactionYears);
  const riskCutoff = years(config.riskRecordYears);
  const disputeCutoff = years(config.disputeExtraYears);
  // A closed dispute is kept as long as the longest-kept record it can protect would be.
  const closedDisputeCutoff = years(Math.max(config.transactionYears, config.riskRecordYears, config.disputeExtraYears));
  const cutoffs: RetentionReport['cutoffs'] = {
    transactions: transactionCutoff.toISOString(),
    settlements: transactionCutoff.toISOString(),
    risk_records: riskCutoff.toISOString(),
    dead_letters: riskCutoff.toISOString(),
    disputes: closedDisputeCutoff.toISOString(),
    audit: riskCutoff.toISOString(),
    archive_rejects: riskCutoff.toISOString(),
    cases: riskCutoff.toISOString(),
    case_actions: riskCutoff.toISOString(),
  };
  const dryRun = options.dryRun ?? false;

  // Transactions and their settlements together; then risk records, dead letters, closed disputes.
  const doomedTransactions = `FROM fenfu.transactions t WHERE t.occurred_at < $1 AND NOT ${PROTECTED('t')}`;
  // A case is its charge's record: kept while that charge is disputed.
  const doomedCase = `c.status = 'closed' AND c.closed_at < $1 AND NOT EXISTS (SELECT 1 FROM fenfu.disputes d WHERE d.namespace = c.namespace AND d.event_id = c.charge_id AND (d.closed_at IS NULL OR d.closed_at > $2))`;
  const statements: Statement[] = dryRun
    ? [
        {
          text: `SELECT (SELECT count(*)::int ${doomedTransactions}) AS transactions,
            (SELECT count(*)::int FROM fenfu.settlements s WHERE EXISTS (SELECT 1 ${doomedTransactions} AND t.namespace = s.namespace AND t.event_id = s.event_id)) AS settlements`,
          params: [transactionCutoff, disputeCutoff],
        },
        { text: `SELECT count(*)::int AS n FROM fenfu.risk_records r WHERE r.created_at < $1 AND NOT ${PROTECTED('r')}`, params: [riskCutoff, disputeCutoff] },
        { text: `SELECT count(*)::int AS n FROM fenfu.dead_letters WHERE created_at < $1`, params: [riskCutoff] },
        { text: `SELECT count(*)::int AS n FROM fenfu.disputes WHERE closed_at < $1`, params: [closedDisputeCutoff] },
        { text: `SELECT count(*)::int AS n FROM riskmon.audit WHERE at < $1`, params: [riskCutoff] },
        { text: `SELECT count(*)::int AS n FROM fenfu.archive_rejects WHERE at < $1`, params: [riskCutoff] },
        {
          text: `SELECT (SELECT count(*)::int FROM fenfu.cases c WHERE ${doomedCase}) AS cases,
            (SELECT count(*)::int FROM fenfu.case_actions a WHERE EXISTS (SELECT 1 FROM fenfu.cases c WHERE c.namespace = a.namespace AND c.case_id = a.case_id AND c.opened_at = a.opened_at AND ${doomedCase})) AS case_actions`,
          params: [riskCutoff, disputeCutoff],
        },
      ]
    : [
        {
          text: `WITH gone AS (DELETE FROM fenfu.transactions t WHERE t.occurred_at < $1 AND NOT ${PROTECTED('t')} RETURNING namespace, event_id),
            paid AS (DELETE FROM fenfu.settlements s USING gone WHERE s.namespace = gone.namespace AND s.event_id = gone.event_id RETURNING 1)
            SELECT (SELECT count(*)::int FROM gone) AS transactions, (SELECT count(*)::int FROM paid) AS settlements`,
          params: [transactionCutoff, disputeCutoff],
        },
        { text: `WITH gone AS (DELETE FROM fenfu.risk_records r WHERE r.created_at < $1 AND NOT ${PROTECTED('r')} RETURNING 1) SELECT count(*)::int AS n FROM gone`, params: [riskCutoff, disputeCutoff] },
        { text: `WITH gone AS (DELETE FROM fenfu.dead_letters WHERE created_at < $1 RETURNING 1) SELECT count(*)::int AS n FROM gone`, params: [riskCutoff] },
        { text: `WITH gone AS (DELETE FROM fenfu.disputes WHERE closed_at < $1 RETURNING 1) SELECT count(*)::int AS n FROM gone`, params: [closedDisputeCutoff] },
        { text: `WITH gone AS (DELETE FROM riskmon.audit WHERE at < $1 RETURNING 1) SELECT count(*)::int AS n FROM gone`, params: [riskCutoff] },
        { text: `WITH gone AS (DELETE FROM fenfu.archive_rejects WHERE at < $1 RETURNING 1) SELECT count(*)::int AS n FROM gone`, params: [riskCutoff] },
        {
          text: `WITH gone AS (DELETE FROM fenfu.cases c WHERE ${doomedCase} RETURNING namespace, case_id, opened_at),
            trail AS (DELETE FROM fenfu.case_actions a USING gone WHERE a.namespace = gone.namespace AND a.case_id = gone.case_id AND a.opened_at = gone.opened_at RETURNING 1)
            SELECT (SELECT count(*)::int FROM gone) AS cases, (SELECT count(*)::int FROM trail) AS case_actions`,
          params: [riskCutoff, disputeCutoff],
        },
      ];
  if (db.kind === 'postgres') statements.unshift({ text: 'SELECT pg_advisory_xact_lock($1)', params: [RETENTION_LOCK] });
  const results = await db.atomic(statements);
  const [tx, risk, dead, disputes, audit, rejects, cases] = results.slice(db.kind === 'postgres' ? 1 : 0).map((r) => r.rows[0] as Record<string, number>);
  const rows: RetentionReport['rows'] = {
    transactions: tx!.transactions!,
    settlements: tx!.settlements!,
    risk_records: risk!.n!,
    dead_letters: dead!.n!,
    disputes: disputes!.n!,
    audit: audit!.n!,
    archive_rejects: rejects!.n!,
    cases: cases!.cases!,
    case_actions: cases!.case_actions!,
  };

  const partitions: string[] = [];
  for (const table of PARTITIONED_TABLES) {
    const cutoff = Date.parse(cutoffs[table]);
    for (const p of await listPartitions(db, table)) {
      if (p.endMs > cutoff) continue;
      // In a dry run the rows counted above are still there: a partition holding only those would be dropped.
      const left = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fenfu.${p.name}`);
      if (left.rows[0]!.n > 0 && !dryRun) continue;
      if (dryRun && left.rows[0]!.n > 0 && !(await onlyDoomed(db, table, p.name, cutoff, disputeCutoff))) continue;
      if (!dryRun) {
        // Locked, checked empty again and dropped in one transaction: a row the archiver writes meanwhile (a late
        // entry for that month) either lands before the lock, and the partition stays, or waits, and is refused
        // by a partition that no longer exists, so the archiver makes it again (Partitions.forget) and writes it.
        const [, , still] = await db.atomic([
          { text: `LOCK TABLE fenfu.${p.name} IN ACCESS EXCLUSIVE MODE` },
          { text: `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM fenfu.${p.name}) THEN EXECUTE 'DROP TABLE fenfu.${p.name}'; END IF; END $$` },
          { text: `SELECT to_regclass('fenfu.${p.name}') IS NOT NULL AS present` },
        ]);
        if ((still!.rows[0] as { present: boolean }).present) continue;
      }
      partitions.push(`fenfu.${p.name}`);
    }
  }
  return { now: now.toISOString(), dryRun, cutoffs, rows, partitions };
}

/** Whether every row of a partition wholly before the cutoff would be dropped (nothing in it is protected). */
async function onlyDoomed(db: ArchiveDb, table: PartitionedTable, partition: string, cutoff: number, disputeCutoff: Date): Promise<boolean> {
  if (table === 'dead_letters') return true;
  const kept =
    table === 'settlements'
      ? db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM fenfu.${partition} x WHERE NOT EXISTS (SELECT 1 FROM fenfu.transactions t WHERE t.namespace = x.namespace AND t.event_id = x.event_id AND t.occurred_at < $1 AND NOT ${PROTECTED('t')})`,
          [new Date(cutoff), disputeCutoff],
        )
      : db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fenfu.${partition} x WHERE ${PROTECTED('x', '$1')}`, [disputeCutoff]);
  return (await kept).rows[0]!.n === 0;
}

/** The monthly partitions of a table, from their names (`<table>_YYYY_MM`, src/archive/partitions.ts). */
async function listPartitions(db: ArchiveDb, table: PartitionedTable): Promise<{ name: string; endMs: number }[]> {
  const rows = await db.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
     JOIN pg_namespace n ON n.oid = p.relnamespace WHERE n.nspname = 'fenfu' AND p.relname = $1 ORDER BY c.relname`,
    [table],
  );
  const out: { name: string; endMs: number }[] = [];
  for (const { name } of rows.rows) {
    const m = new RegExp(`^${table}_(\\d{4})_(\\d{2})$`).exec(name);
    if (!m) continue;
    out.push({ name, endMs: Date.UTC(Number(m[1]), Number(m[2]), 1) });
  }
  return out;
}
