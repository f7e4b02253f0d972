/**
 * npm run decisions -- show <eventId> [--namespace <name>]   the decision as JSON, from Redis or, once it has left
 *   Redis, from the archive (exit 1 when neither has it)
 * npm run decisions -- export [--namespace <name>] [--since ISO] [--unsorted]
 *   every decision Redis holds as NDJSON, sorted by decidedAt then eventId (held in memory: on a large namespace
 *   narrow it with --since, or stream in SCAN order, unsorted and in constant memory, with --unsorted)
 * npm run decisions -- export --archive [--since ISO]   every archived decision, by occurredAt, in constant memory
 *
 * Output goes through the card mask, as every CLI output does (decisions hold at most "****1234").
 */
import { once } from 'node:events';
import { CONFIG_OPTION, NAMESPACE_OPTION, namespaceOption, openCliContext, runCommand, UsageError } from '../src/cli.ts';
import { DecisionStore } from '../src/decisions/decision-store.ts';
import type { Decision } from '../src/decisions/decision.ts';
import { parseInstant } from '../src/events/instant.ts';
import { scrubCardData } from '../src/events/scrub.ts';
import { loadSettings, type Settings } from '../src/config.ts';
import { ArchivedDecisions, type ArchivedDecision } from '../src/archive/archived-decisions.ts';
import { openArchiveDb } from '../src/archive/database.ts';
import { migrateArchive } from '../src/archive/migrate.ts';

runCommand(
  {
    name: 'decisions',
    summary: 'Reads stored decisions: one as JSON, or all of them as NDJSON; card numbers masked, as in every output.',
    usage: ['show <eventId> [options]', 'export [--since <ISO instant>] [--unsorted] [options]', 'export --archive [--since <ISO instant>] [options]'],
    positionals: true,
    options: {
      since: { type: 'string', arg: '<ISO instant>', help: 'export: only decisions decided at or after this instant' },
      unsorted: { type: 'boolean', help: 'export: in SCAN order and constant memory, instead of sorted by decidedAt then eventId (held in memory)' },
      archive: { type: 'boolean', help: 'export: from the archive (PostgreSQL), every decision however old, by occurredAt (--since then bounds occurredAt)' },
      namespace: NAMESPACE_OPTION,
      config: CONFIG_OPTION,
    },
    notes: [
      'show reads Redis, then the archive (DATABASE_URL, or the embedded one, which only opens while the service is stopped); it exits 1 when neither has the eventId.',
      'Archived decisions come in the same shape, with the card as ****1234, plus settledAt and settlementDate, and "source": "archive".',
    ],
    examples: ['npm run decisions -- show e-42 --namespace live', 'npm run decisions -- export --since 2026-03-10T00:00:00+08:00 > decisions.ndjson'],
  },
  async ({ values, positionals }) => {
  const command = positionals[0];
  if (command === 'show') {
    if (positionals.length !== 2 || positionals[1] === '') throw new UsageError('show takes exactly one eventId');
    if (values.since !== undefined || values.unsorted || values.archive) throw new UsageError('--since, --unsorted and --archive belong to export');
  } else if (command === 'export') {
    if (positionals.length !== 1) throw new UsageError('export takes no positional arguments');
    if (values.archive && values.unsorted) throw new UsageError('--archive exports by occurredAt in constant memory already: drop --unsorted');
  } else {
    throw new UsageError('expected show or export');
  }
  let sinceMs: number | undefined;
  if (values.since !== undefined) {
    const t = parseInstant(values.since);
    if (!t.ok) throw new UsageError(`--since: ${t.reason}`);
    sinceMs = t.ms;
  }

  const settings = loadSettings({ configFile: values.config, namespace: namespaceOption(values.namespace) });
  if (command === 'export' && values.archive) {
    await withArchive(settings, async (archived) => {
      let after: { occurredAt: string; eventId: string } | undefined;
      do {
        const page = await archived.query({ from: sinceMs === undefined ? undefined : new Date(sinceMs), limit: 1_000, after });
        await write(page.decisions.map((d) => JSON.stringify(scrubCardData(asRecord(d))) + '\n').join(''));
        after = page.next;
      } while (after);
    });
    return;
  }
  const cli = await openCliContext({ settings, requireExisting: true });
  try {
    const store = new DecisionStore(cli.context.redis, cli.context.keys);
    if (command === 'show') {
      const eventId = positionals[1]!;
      const decision = await store.get(eventId);
      if (decision) {
        await write(JSON.stringify(scrubCardData(decision), null, 2) + '\n');
        return;
      }
      const archived = settings.config.archive.enabled ? await withArchive(settings, (a) => a.byId(eventId)) : undefined;
      if (!archived) throw new Error(`no decision for eventId ${JSON.stringify(scrubCardData(eventId))} in namespace ${cli.context.keys.namespace}, in Redis or in the archive`);
      await write(JSON.stringify(scrubCardData(asRecord(archived)), null, 2) + '\n');
    } else if (values.unsorted) {
      for await (const batch of store.scan({ sinceMs })) await write(ndjson(batch));
    } else {
      const all = await store.sorted({ sinceMs });
      for (let i = 0; i < all.length; i += 1_000) await write(ndjson(all.slice(i, i + 1_000)));
    }
  } finally {
    await cli.close();
  }
});

/** The archive's decision in the shape Redis stores, plus its settlement. */
function asRecord(a: ArchivedDecision): Record<string, unknown> {
  return {
    eventId: a.eventId,
    userId: a.userId,
    merchantId: a.merchantId,
    amount: a.amountFen,
    card: `****${a.cardLast4}`,
    occurredAt: a.occurredAt,
    outcome: a.outcome,
    rules: a.rules,
    reasons: a.reasons,
    observed: a.observed,
    settleAt: a.settleAt,
    decidedAt: a.decidedAt,
    configVersion: a.configVersion,
    settledAt: a.settledAt,
    settlementDate: a.settlementDate,
    source: 'archive',
  };
}

async function withArchive<T>(settings: Settings, use: (archived: ArchivedDecisions) => Promise<T>): Promise<T> {
  const db = await openArchiveDb({ databaseUrl: settings.databaseUrl, dataDir: settings.config.archive.dataDir });
  try {
    await migrateArchive(db);
    return await use(new ArchivedDecisions(db, settings.config.namespace));
  } finally {
    await db.close();
  }
}

function ndjson(decisions: Decision[]): string {
  return decisions.map((d) => JSON.stringify(scrubCardData(d)) + '\n').join('');
}

/** Writes to stdout, waiting while its buffer is full (an export can be far larger than memory wants to hold twice). */
async function write(text: string): Promise<void> {
  if (!process.stdout.write(text)) await once(process.stdout, 'drain');
}
