/**
 * npm run settlement -- report --date YYYY-MM-DD [--json]              per merchant: tier, count, gross, fees, net
 * npm run settlement -- pending [--namespace <name>] [--limit N]         scheduled and held transactions
 * npm run settlement -- release [--now <ISO instant>] [--namespace <name>] settle everything due by then into the
 *   ledger of that instant's local date; an instant later than the wall clock (+ events.maxFutureSkewSeconds) is
 *   refused (paying in the future moves money early) unless --allow-future, itself refused in production
 * npm run settlement -- merchant <merchantId> [--month YYYY-MM]          a merchant's month: tier, volume, fees, pending
 * npm run settlement -- reconcile --date YYYY-MM-DD --out <dir>          closes the date and writes its reconciliation
 *   files (one CSV per merchant and a summary with each file's SHA-256) from the archive
 */
import { CONFIG_OPTION, NAMESPACE_OPTION, namespaceOption, openCliContext, runCommand, UsageError, wholeNumberOption } from '../src/cli.ts';
import { loadSettings } from '../src/config.ts';
import { parseInstant } from '../src/events/instant.ts';
import { maskCardNumbers } from '../src/events/card.ts';
import { Archiver } from '../src/archive/archiver.ts';
import { openArchiveDb } from '../src/archive/database.ts';
import { migrateArchive } from '../src/archive/migrate.ts';
import type { MerchantSettlement, SettlementReport } from '../src/settlement/ledger.ts';
import { reconcile } from '../src/settlement/reconciliation.ts';
import { recordRelease } from '../src/settlement/settlement-worker.ts';

runCommand(
  {
    name: 'settlement',
    summary: 'Settlement by hand: per-merchant reports, what is scheduled and held, and releasing what is due.',
    usage: ['report --date YYYY-MM-DD [--json] [options]', 'pending [--limit N] [options]', 'release [--now <ISO instant>] [--allow-future] [options]', 'reconcile --date YYYY-MM-DD --out <dir> [options]', 'merchant <merchantId> [--month YYYY-MM] [options]'],
    positionals: true,
    options: {
      date: { type: 'string', arg: 'YYYY-MM-DD', help: "report, reconcile: the ledger's local date" },
      out: { type: 'string', arg: '<dir>', help: 'reconcile: the folder the files are written into (created if missing)' },
      month: { type: 'string', arg: 'YYYY-MM', help: "merchant: the month of settlement dates (default: this month, local)" },
      json: { type: 'boolean', help: 'report: one JSON object {date, merchants: [{merchantId, tier, count, grossFen, baseFeeFen, techFeeFen, netFen}]}' },
      limit: { type: 'string', arg: 'N', help: 'pending: how many to list (default 100)' },
      now: { type: 'string', arg: '<ISO instant>', help: "release: settle what is due by this instant into its local date's ledger (default: now)" },
      'allow-future': { type: 'boolean', help: 'release: allow --now after the wall clock + events.maxFutureSkewSeconds (tests, replays; refused in production)' },
      namespace: NAMESPACE_OPTION,
      config: CONFIG_OPTION,
    },
    notes: [
      'report prints, per merchant, the fee tier, count, gross, base and technical fees and net paid on the date (fen; a',
      'reversal counts negative); pending the scheduled and held transactions; release what it paid, by tier (each',
      'transaction settles once: its due entry and settlement info go in the call that pays).',
      'reconcile closes the date (nothing more is paid into it; what falls due waits for the next date), archives what',
      'the settlement logs still hold, and writes fenfu-<merchantId>-<date>.csv per merchant and fenfu-summary-<date>.csv;',
      'it refuses, writing nothing, when the archive and the ledger disagree. Run again, it writes the same files.',
      "merchant prints one merchant's month as JSON: its tier (and whether the month's tiers are computed yet), the",
      "volume of the month before and of this one so far, what each date paid it with the fees, and what is pending or held.",
    ],
    examples: ['npm run settlement -- pending --namespace live', 'npm run settlement -- report --date 2026-03-11', 'npm run settlement -- release --now 2026-03-11T03:00:00+08:00'],
  },
  async ({ values, positionals }) => {
  const command = positionals[0];
  if (!command || !['report', 'pending', 'release', 'reconcile', 'merchant'].includes(command) || positionals.length > (command === 'merchant' ? 2 : 1)) {
    throw new UsageError('expected report, pending, release, reconcile or merchant <merchantId>');
  }
  if (command === 'merchant' && !positionals[1]) throw new UsageError('merchant needs a merchantId');
  if (values.month !== undefined && (command !== 'merchant' || !/^\d{4}-(0[1-9]|1[0-2])$/.test(values.month))) {
    throw new UsageError(command === 'merchant' ? `--month takes YYYY-MM, got ${JSON.stringify(values.month)}` : '--month belongs to merchant');
  }
  if ((command === 'report' || command === 'reconcile') && !/^\d{4}-\d{2}-\d{2}$/.test(values.date ?? '')) throw new UsageError(`${command} needs --date YYYY-MM-DD`);
  if (command === 'reconcile' && !values.out) throw new UsageError('reconcile needs --out <dir>');
  if (command !== 'reconcile' && values.out !== undefined) throw new UsageError('--out belongs to reconcile');
  if (command !== 'release' && (values.now !== undefined || values['allow-future'])) throw new UsageError('--now and --allow-future belong to release');
  if (command !== 'report' && values.json) throw new UsageError('--json belongs to report');
  const limit = wholeNumberOption('limit', values.limit, 1_000);
  const settings = loadSettings({ configFile: values.config, namespace: namespaceOption(values.namespace) });

  const wallMs = Date.now();
  let nowMs = wallMs;
  if (values.now !== undefined) {
    const t = parseInstant(values.now);
    if (!t.ok) throw new UsageError(`--now: ${t.reason}`);
    nowMs = t.ms;
  }
  if (values['allow-future'] && settings.config.environment === 'production') {
    throw new UsageError('--allow-future is refused in production: a release must never pay ahead of the wall clock');
  }
  const toleranceMs = settings.config.events.maxFutureSkewSeconds * 1000;
  if (nowMs > wallMs + toleranceMs && !values['allow-future']) {
    throw new UsageError(
      `--now ${values.now} is later than the wall clock (${new Date(wallMs).toISOString()}) by more than events.maxFutureSkewSeconds ` +
        `(${settings.config.events.maxFutureSkewSeconds} s): paying in the future moves money early (tests: --allow-future, never in production)`,
    );
  }

  const cli = await openCliContext({ settings, requireExisting: true });
  try {
    const { ledger, metrics, logger } = cli.context;
    if (command === 'report') {
      const report = await ledger.report(values.date!);
      if (values.json) print({ date: report.date, merchants: report.merchants });
      else process.stdout.write(reportTable(report));
    } else if (command === 'reconcile') {
      const db = await openArchiveDb({ databaseUrl: settings.databaseUrl, dataDir: settings.config.archive.dataDir });
      try {
        await migrateArchive(db);
        const archiver = new Archiver({ redis: cli.context.redis, keys: cli.context.keys, db, logger });
        const result = await reconcile(values.date!, values.out!, {
          ledger,
          db,
          namespace: settings.config.namespace,
          archiveSettlements: () => archiver.catchUp('settlements'),
          today: cli.context.calendar.local(Date.now()).date,
        });
        print(result);
      } finally {
        await db.close();
      }
    } else if (command === 'merchant') {
      const month = values.month ?? cli.context.calendar.local(Date.now()).date.slice(0, 7);
      const statement = await ledger.merchantStatement(positionals[1]!, month);
      print({ ...statement, merchantId: maskCardNumbers(statement.merchantId) });
    } else if (command === 'pending') {
      const [pending, stats] = await Promise.all([ledger.pending(limit), ledger.stats()]);
      print({ ...stats, pending: pending.map((p) => ({ ...p, eventId: maskCardNumbers(p.eventId) })) });
    } else {
      const result = await ledger.releaseDue(nowMs, settings.config.settlement.batchSize);
      recordRelease(result, metrics, logger);
      const { decisionSeconds: _, ...caseDeadlines } = result.caseDeadlines;
      print({ now: new Date(nowMs).toISOString(), ...result, caseDeadlines });
    }
  } finally {
    await cli.close();
  }
});

/** The report as a table: one line per merchant and a total, amounts in fen. */
function reportTable(report: SettlementReport): string {
  const head = ['merchant', 'tier', 'count', 'gross', 'base fee', 'tech fee', 'net'];
  const row = (m: Omit<MerchantSettlement, 'tier'> & { tier: number | string }) => [maskCardNumbers(m.merchantId), String(m.tier), ...[m.count, m.grossFen, m.baseFeeFen, m.techFeeFen, m.netFen].map(fen)];
  const total = report.merchants.reduce(
    (t, m) => ({ ...t, count: t.count + m.count, grossFen: t.grossFen + m.grossFen, baseFeeFen: t.baseFeeFen + m.baseFeeFen, techFeeFen: t.techFeeFen + m.techFeeFen, netFen: t.netFen + m.netFen }),
    { merchantId: 'total', tier: '', count: 0, grossFen: 0, baseFeeFen: 0, techFeeFen: 0, netFen: 0 },
  );
  const rows = [head, ...report.merchants.map(row), row(total)];
  const widths = head.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  const title = `Fenfu settlement of ${report.date} (fen)${report.merchants.length === 0 ? ': nothing paid' : ''}\n`;
  return title + rows.map(line).join('\n') + '\n';
}

const fen = (n: number) => n.toLocaleString('en-US');

function print(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}
