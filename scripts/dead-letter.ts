/** npm run dead-letter -- list [--namespace <name>] [--limit N]: rejected events with their reasons, newest first. */
import { CONFIG_OPTION, NAMESPACE_OPTION, namespaceOption, openCliContext, runCommand, UsageError, wholeNumberOption } from '../src/cli.ts';

runCommand(
  {
    name: 'dead-letter',
    summary: 'Lists rejected events (malformed lines, refused events) with their reasons, newest first; card numbers masked.',
    usage: ['list [options]'],
    positionals: true,
    options: {
      namespace: NAMESPACE_OPTION,
      config: CONFIG_OPTION,
      limit: { type: 'string', arg: 'N', default: '100', help: 'how many to show' },
      json: { type: 'boolean', help: 'one JSON object per line instead of text' },
    },
    examples: ['npm run dead-letter -- list --limit 20', 'npm run dead-letter -- list --namespace live --json'],
  },
  async ({ values, positionals }) => {
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
});
