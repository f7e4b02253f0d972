/**
 * npm run decisions -- show <eventId> [--namespace <name>]   the stored decision as JSON (exit 1 when there is none)
 * npm run decisions -- export [--namespace <name>] [--since ISO] [--unsorted]
 *   every stored decision as NDJSON, sorted by decidedAt then eventId (held in memory: on a large namespace narrow it
 *   with --since, or stream in SCAN order, unsorted and in constant memory, with --unsorted)
 *
 * Output goes through the card mask, as every CLI output does (decisions hold at most "****1234").
 */
import { once } from 'node:events';
import { CONFIG_OPTION, NAMESPACE_OPTION, namespaceOption, openCliContext, runCommand, UsageError } from '../src/cli.ts';
import { DecisionStore } from '../src/decisions/decision-store.ts';
import type { Decision } from '../src/decisions/decision.ts';
import { parseInstant } from '../src/events/instant.ts';
import { scrubCardData } from '../src/events/scrub.ts';

runCommand(
  {
    name: 'decisions',
    summary: 'Reads stored decisions: one as JSON, or all of them as NDJSON; card numbers masked, as in every output.',
    usage: ['show <eventId> [options]', 'export [--since <ISO instant>] [--unsorted] [options]'],
    positionals: true,
    options: {
      since: { type: 'string', arg: '<ISO instant>', help: 'export: only decisions decided at or after this instant' },
      unsorted: { type: 'boolean', help: 'export: in SCAN order and constant memory, instead of sorted by decidedAt then eventId (held in memory)' },
      namespace: NAMESPACE_OPTION,
      config: CONFIG_OPTION,
    },
    notes: ['show exits 1 when the eventId has no decision.'],
    examples: ['npm run decisions -- show e-42 --namespace live', 'npm run decisions -- export --since 2026-03-10T00:00:00+08:00 > decisions.ndjson'],
  },
  async ({ values, positionals }) => {
  const command = positionals[0];
  if (command === 'show') {
    if (positionals.length !== 2 || positionals[1] === '') throw new UsageError('show takes exactly one eventId');
    if (values.since !== undefined || values.unsorted) throw new UsageError('--since and --unsorted belong to export');
  } else if (command === 'export') {
    if (positionals.length !== 1) throw new UsageError('export takes no positional arguments');
  } else {
    throw new UsageError('expected show or export');
  }
  let sinceMs: number | undefined;
  if (values.since !== undefined) {
    const t = parseInstant(values.since);
    if (!t.ok) throw new UsageError(`--since: ${t.reason}`);
    sinceMs = t.ms;
  }

  const cli = await openCliContext({ namespace: namespaceOption(values.namespace), configFile: values.config, requireExisting: true });
  try {
    const store = new DecisionStore(cli.context.redis, cli.context.keys);
    if (command === 'show') {
      const eventId = positionals[1]!;
      const decision = await store.get(eventId);
      if (!decision) throw new Error(`no stored decision for eventId ${JSON.stringify(scrubCardData(eventId))} in namespace ${cli.context.keys.namespace}`);
      await write(JSON.stringify(scrubCardData(decision), null, 2) + '\n');
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

function ndjson(decisions: Decision[]): string {
  return decisions.map((d) => JSON.stringify(scrubCardData(d)) + '\n').join('');
}

/** Writes to stdout, waiting while its buffer is full (an export can be far larger than memory wants to hold twice). */
async function write(text: string): Promise<void> {
  if (!process.stdout.write(text)) await once(process.stdout, 'drain');
}
