/**
 * The daily Fenfu reconciliation (单独对账: Fenfu apart from ordinary payments): for one settlement date, one CSV per
 * merchant with every transaction paid into its ledger that day, and a summary with each merchant's figures and each
 * file's SHA-256.
 *
 * Order matters, so that the files hold everything the ledger holds and nothing is paid into the date afterwards:
 * 1. close the date in every shard (a release call refuses a closed date in the same atomic step that would pay);
 * 2. archive what the settlement logs still hold (the files are read from the archive, fenfu.settlements);
 * 3. read the date's rows, and compare their sums per merchant with the Redis ledger: a difference is refused (no
 *    file is written), naming the merchants;
 * 4. write each file under a temporary name and rename it, so a reader never sees half a file.
 * Written again for a closed date, the files come out the same, byte for byte.
 */
import { createHash } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArchiveDb } from '../archive/database.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { ZoneCalendar } from '../time/calendar.ts';
import type { MerchantSettlement, SettlementLedger } from './ledger.ts';

export const CSV_HEADER = 'eventId,occurredAt,settledAt,amountFen,baseFeeFen,techFeeFen,netFen,held,kind';
export const SUMMARY_HEADER = 'merchantId,tier,count,grossFen,baseFeeFen,techFeeFen,netFen,file,sha256';

/** A merchant's figures of the date (as the report gives them), its file and the file's SHA-256. */
export interface ReconciledMerchant extends MerchantSettlement {
  file: string;
  sha256: string;
}

export interface Reconciliation {
  date: string;
  merchants: ReconciledMerchant[];
  summary: { file: string; sha256: string };
}

export class ReconciliationMismatch extends Error {
  override name = 'ReconciliationMismatch';
}

export interface ReconcileOptions {
  ledger: SettlementLedger;
  db: ArchiveDb;
  namespace: string;
  /** Archives what the settlement logs still hold; resolves once none is left (the archiver's drain). */
  archiveSettlements: () => Promise<void>;
  /** The local date today: a later date cannot be reconciled (it would close a day not yet paid). */
  today: string;
}

interface Row {
  event_id: string;
  merchant_id: string;
  occurred_at: Date | null;
  settled_at: Date;
  gross_fen: string;
  base_fee_fen: string;
  tech_fee_fen: string;
  net_fen: string;
  held: boolean | null;
  kind: string;
  tier: number | null;
}

/** Closes `date`, archives what is left, and writes its files into `outDir` (see the module's comment). */
export async function reconcile(date: string, outDir: string, options: ReconcileOptions): Promise<Reconciliation> {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`)) || new Date(`${date}T00:00:00Z`).toISOString().slice(0, 10) !== date) {
    throw new RangeError(`the settlement date must be a calendar date YYYY-MM-DD, got ${JSON.stringify(date)}`);
  }
  if (date > options.today) throw new RangeError(`settlement date ${date} is after today (${options.today}): it cannot be reconciled before it is paid`);
  const { ledger, db } = options;
  await ledger.closeDate(date);
  await options.archiveSettlements();

  // Rows archived before fees existed have no merchant or figures of their own: their transaction's, paid gross.
  const rows = (
    await db.query<Row>(
      `SELECT s.event_id, COALESCE(s.merchant_id, t.merchant_id) AS merchant_id, COALESCE(s.occurred_at, t.occurred_at) AS occurred_at, s.settled_at,
         COALESCE(s.gross_fen, t.amount_fen) AS gross_fen, COALESCE(s.base_fee_fen, 0) AS base_fee_fen, COALESCE(s.tech_fee_fen, 0) AS tech_fee_fen,
         COALESCE(s.net_fen, s.gross_fen, t.amount_fen) AS net_fen, COALESCE(s.held, t.outcome = 'review') AS held, COALESCE(s.kind, 'charge') AS kind, s.tier
       FROM fenfu.settlements s
       LEFT JOIN fenfu.transactions t ON t.namespace = s.namespace AND t.event_id = s.event_id
       WHERE s.namespace = $1 AND s.settlement_date = $2`,
      [options.namespace, date],
    )
  ).rows;
  const byMerchant = new Map<string, Row[]>();
  for (const r of rows) {
    if (r.merchant_id === null) throw new ReconciliationMismatch(`settlement ${r.event_id} of ${date} has no merchant in the archive (nor its transaction)`);
    let list = byMerchant.get(r.merchant_id);
    if (!list) byMerchant.set(r.merchant_id, (list = []));
    list.push(r);
  }

  const merchants: Omit<ReconciledMerchant, 'sha256'>[] = [];
  const files = new Map<string, string>();
  for (const merchantId of [...byMerchant.keys()].sort(byCodeUnit)) {
    const list = byMerchant.get(merchantId)!.sort((a, b) => a.settled_at.getTime() - b.settled_at.getTime() || byCodeUnit(a.event_id, b.event_id));
    const sum = (f: (r: Row) => string) => list.reduce((t, r) => t + Number(f(r)), 0);
    const file = `fenfu-${fileSafe(merchantId)}-${date}.csv`;
    const lines = list.map((r) =>
      [csvText(r.event_id), r.occurred_at?.toISOString() ?? '', r.settled_at.toISOString(), r.gross_fen, r.base_fee_fen, r.tech_fee_fen, r.net_fen, String(r.held === true), r.kind].join(','),
    );
    files.set(file, [CSV_HEADER, ...lines].join('\n') + '\n');
    merchants.push({
      merchantId,
      // The tier of its charges that day (one per month); a day of reversals only has theirs.
      tier: list.find((r) => r.kind === 'charge' && r.tier !== null)?.tier ?? list.find((r) => r.tier !== null)?.tier ?? 1,
      count: list.length,
      grossFen: sum((r) => r.gross_fen),
      baseFeeFen: sum((r) => r.base_fee_fen),
      techFeeFen: sum((r) => r.tech_fee_fen),
      netFen: sum((r) => r.net_fen),
      file,
    });
  }

  // The ledger in Redis and the archive must say the same (while Redis still keeps the date's ledger).
  const report = await ledger.report(date);
  if (report.merchants.length > 0) {
    const problems: string[] = [];
    // PostgreSQL text cannot hold NUL: the archive has U+FFFD where an id had one (src/archive/archiver.ts).
    const ledgerBy = new Map(report.merchants.map((m) => [m.merchantId.replaceAll('\u0000', '\uFFFD'), m]));
    for (const id of new Set([...ledgerBy.keys(), ...byMerchant.keys()])) {
      const l = ledgerBy.get(id);
      const a = merchants.find((m) => m.merchantId === id);
      const figures = (m: { count: number; grossFen: number; baseFeeFen: number; techFeeFen: number; netFen: number } | undefined) =>
        m ? `${m.count} paid, gross ${m.grossFen}, fees ${m.baseFeeFen} + ${m.techFeeFen}, net ${m.netFen}` : 'nothing';
      if (figures(l) !== figures(a)) problems.push(`${JSON.stringify(id)}: ledger ${figures(l)}; archive ${figures(a)}`);
    }
    if (problems.length > 0) {
      throw new ReconciliationMismatch(`the archive does not match the ledger of ${date}, no file written: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? ` (and ${problems.length - 10} more)` : ''}`);
    }
  }

  await mkdir(outDir, { recursive: true });
  const done: ReconciledMerchant[] = [];
  for (const m of merchants) {
    const text = files.get(m.file)!;
    await writeAtomically(join(outDir, m.file), text);
    done.push({ ...m, sha256: sha256(text) });
  }
  const summaryFile = `fenfu-summary-${date}.csv`;
  const summary =
    [SUMMARY_HEADER, ...done.map((m) => [csvText(m.merchantId), m.tier, m.count, m.grossFen, m.baseFeeFen, m.techFeeFen, m.netFen, csvText(m.file), m.sha256].join(','))].join('\n') + '\n';
  await writeAtomically(join(outDir, summaryFile), summary);
  return { date, merchants: done, summary: { file: summaryFile, sha256: sha256(summary) } };
}

/**
 * A merchant id as part of a file name, one to one: each byte (UTF-8) that is not a letter, digit, dot, dash or
 * underscore is percent-encoded, so no id names a path or another merchant's file; "summary" is written "%73ummary"
 * (fenfu-summary-<date>.csv is the summary's), and a name longer than 120 characters is cut and given a hash of the
 * whole id after a "~" (no encoded name has one), which file systems allow. Ids are validated at input, never a card
 * number (src/events/schema.ts).
 */
export function fileSafe(merchantId: string): string {
  if (merchantId === 'summary') return '%73ummary';
  const encoded = Array.from(new TextEncoder().encode(merchantId), (b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9._-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
  return encoded.length <= 120 ? encoded : `${encoded.slice(0, 100)}~${sha256(merchantId).slice(0, 16)}`;
}

/** A text field: RFC 4180 quoting, and a leading =, +, @, tab or CR neutralised with ' (a spreadsheet runs those). */
function csvText(text: string): string {
  return csv(/^[=+@\t\r]/.test(text) ? `'${text}` : text);
}

/** A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break. */
function csv(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, text);
  await rename(temporary, path);
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface DailyReconciliationOptions extends Omit<ReconcileOptions, 'today'> {
  calendar: ZoneCalendar;
  /** settlement.reconciliation: from which local time (seconds after midnight) today's files are written, and where. */
  secondOfDay: number;
  dir: string;
  logger: Logger;
  metrics: Metrics;
  /** How often it looks whether today's files are due, ms. @defaultValue 60_000 */
  checkEveryMs?: number;
  now?: () => number;
}

/**
 * The daily job: once the local time passes settlement.reconciliation.time, today's date is reconciled (closed and
 * its files written), once per process per day; a failed attempt (the archive behind, or not matching the ledger)
 * is logged, counted and tried again an hour later. Several processes may run it: the files come out the same.
 */
export function startDailyReconciliation(options: DailyReconciliationOptions): { stop(): Promise<void>; tick(): Promise<void> } {
  const now = options.now ?? Date.now;
  let doneFor: string | undefined;
  let retryAt = 0;
  let running: Promise<void> | undefined;
  const tick = async () => {
    const at = now();
    const local = options.calendar.local(at);
    if (local.secondOfDay < options.secondOfDay || doneFor === local.date || at < retryAt) return;
    try {
      const r = await reconcile(local.date, options.dir, { ...options, today: local.date });
      doneFor = local.date;
      options.metrics.reconciliations.inc({ result: 'written' });
      options.logger.info({ date: r.date, merchants: r.merchants.length, summary: r.summary }, 'reconciliation: files written, date closed');
    } catch (e) {
      retryAt = at + 3_600_000;
      options.metrics.reconciliations.inc({ result: 'failed' });
      options.logger.error({ date: local.date, err: (e as Error).message }, 'reconciliation: not written; tried again in an hour');
    }
  };
  const timer = setInterval(() => {
    running ??= tick().finally(() => (running = undefined));
  }, options.checkEveryMs ?? 60_000).unref();
  return {
    tick: () => (running ??= tick().finally(() => (running = undefined))),
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
