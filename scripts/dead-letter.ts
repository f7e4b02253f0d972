/** npm run dead-letter -- list [--namespace <name>] [--limit N]: rejected events with their reasons, newest first. */
import { parseArgs } from 'node:util';
import { namespaceOption, openCliContext, runCli, UsageError, wholeNumberOption } from '../src/cli.ts';

const USAGE = 'npm run dead-letter -- list [--namespace <name>] [--limit N] [--json]';

runCli('dead-letter', async () => {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      namespace: { type: 'string' },
      config: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals[0] !== 'list' || positionals.length > 1) throw new UsageError('expected: list');
  const limit = wholeNumberOption('limit', values.limit, 100);
  const cli = await openCliContext({
    namespace: namespaceOption(values.namespace),
    configFile: values.config,
    requireExisting: true,
  });
  try {
    const [entries, total] = await Promise.all([cli.context.deadLetters.list(limit), cli.context.deadLetters.count()]);
    if (values.json) {
      for (const e of entries) process.stdout.write(JSON.stringify(e) + '\n');
      return;
    }
    process.stdout.write(`${total} rejected event(s) in namespace ${cli.context.keys.namespace}${total > entries.length ? `, newest ${entries.length} shown` : ''}\n`);
    for (const e of entries) process.stdout.write(`${e.at}  ${e.source}\n  reason: ${e.reason}\n  raw:    ${e.raw}\n`);
  } finally {
    await cli.close();
  }
}, USAGE);
