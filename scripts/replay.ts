/**
 * Runs a file through the real pipeline and writes one result per input line. Without --namespace it works in a
 * fresh namespace, so live data is never touched, and removes it at the end unless --keep.
 */
import { existsSync } from 'node:fs';
import { checkNamespace, loadSettings } from '../src/config.ts';
import { openCliContext, runCommand, UsageError, wholeNumberOption } from '../src/cli.ts';
import { deleteNamespace } from '../src/redis/namespace.ts';
import { countLines } from '../src/events/lines.ts';
import { PROGRESS_NOTE } from '../src/progress.ts';
import { replay, showReplayProgress } from '../src/replay/replay.ts';

runCommand(
  {
    name: 'replay',
    summary: 'Runs an NDJSON file of events through the real pipeline (producer, queues, worker processes) and writes one result per input line, in order.',
    usage: ['<events.ndjson> --out <results.ndjson> [options]'],
    positionals: true,
    options: {
      out: { type: 'string', arg: '<file>', help: 'where to write the results: {"line","eventId","outcome","rules","settleAt","error"} per line' },
      config: { type: 'string', arg: '<file>', help: 'configuration merged over config/default.json' },
      namespace: { type: 'string', arg: '<name>', help: 'the namespace to work in (kept afterwards); a fresh one by default' },
      lists: { type: 'string', arg: '<lists.json>', help: 'load these lists into the namespace first: {"merchants": [{"id", "from"?, "until"?, "reason"?}], "users": [{"id", …}], "cards": [{"number", …}]}, each part optional; card numbers are tokenized on load' },
      keep: { type: 'boolean', help: 'keep the fresh namespace afterwards (its name is printed), to inspect it' },
      workers: { type: 'string', arg: 'N', default: '1', help: 'worker processes, 1 to 64 (decisions are the same for any number)' },
    },
    notes: ['Files are in arrival order: the replay clock is the largest occurredAt accepted so far (README, "Event contract").', PROGRESS_NOTE],
    examples: ['npm run replay -- test/fixtures/rule-edges.ndjson --lists test/fixtures/rule-edges.lists.json --out /tmp/results.ndjson', 'npm run replay -- events.ndjson --out results.ndjson --workers 3 --keep'],
  },
  async ({ values, positionals }) => {
    const input = positionals[0];
    if (!input || positionals.length > 1) throw new UsageError('give exactly one input file');
    if (!values.out) throw new UsageError('--out is required');
    if (!existsSync(input)) throw new UsageError(`input file not found: ${input}`);
    if (values.lists !== undefined && !existsSync(values.lists)) throw new UsageError(`list file not found: ${values.lists}`);
    const workers = wholeNumberOption('workers', values.workers, 1, { max: 64 });
    const fresh = values.namespace === undefined;
    const namespace = checkNamespace(values.namespace ?? `replay-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`);

    const settings = loadSettings({ configFile: values.config, namespace });
    const cli = await openCliContext({ settings });
    // A fresh namespace goes when the replay ends, however it ends (a failed run would leave it behind otherwise).
    const remove = fresh && !values.keep;
    try {
      const started = performance.now();
      const progress = showReplayProgress('replay', await countLines(input));
      let summary;
      try {
        summary = await replay({ context: cli.context, inputPath: input, outputPath: values.out, workers, configFile: values.config, listsPath: values.lists, onProgress: progress.onProgress, progressEveryMs: progress.progressEveryMs });
      } finally {
        progress.stop();
      }
      const seconds = (performance.now() - started) / 1000;
      process.stderr.write(
        `replay: ${summary.lines} lines → ${values.out} in ${seconds.toFixed(1)} s (namespace ${summary.namespace}${remove ? ', removed: --keep keeps it' : ''}): ` +
          `${Object.entries(summary.byOutcome).map(([k, v]) => `${k} ${v}`).join(', ')}\n`,
      );
    } finally {
      if (remove) await deleteNamespace(cli.context.redis, cli.context.keys).catch(() => undefined);
      await cli.close();
    }
  },
);
