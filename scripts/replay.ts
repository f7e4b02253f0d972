/**
 * npm run replay -- <events.ndjson> --out <decisions.ndjson> [--config <file>] [--namespace <name>] [--workers N]
 * Without --namespace a fresh namespace is used, so live data is never touched.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { checkNamespace, loadSettings } from '../src/config.ts';
import { openCliContext, runCli, UsageError, wholeNumberOption } from '../src/cli.ts';
import { replay } from '../src/replay/replay.ts';

const USAGE = 'npm run replay -- <events.ndjson> --out <decisions.ndjson> [--config <file>] [--namespace <name>] [--workers N]';

runCli('replay', async () => {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      config: { type: 'string' },
      namespace: { type: 'string' },
      workers: { type: 'string' },
    },
  });
  const input = positionals[0];
  if (!input || positionals.length > 1) throw new UsageError('give exactly one input file');
  if (!values.out) throw new UsageError('--out is required');
  if (!existsSync(input)) throw new UsageError(`input file not found: ${input}`);
  const workers = wholeNumberOption('workers', values.workers, 1, 64);
  const namespace = checkNamespace(values.namespace ?? `replay-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`);

  const settings = loadSettings({ configFile: values.config, namespace });
  const cli = await openCliContext({ settings });
  try {
    const started = performance.now();
    const summary = await replay({ context: cli.context, inputPath: input, outputPath: values.out, workers, configFile: values.config });
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write(
      `replay: ${summary.lines} lines → ${values.out} in ${seconds.toFixed(1)} s (namespace ${summary.namespace}): ` +
        `${Object.entries(summary.byOutcome).map(([k, v]) => `${k} ${v}`).join(', ')}\n`,
    );
  } finally {
    await cli.close();
  }
}, USAGE);
