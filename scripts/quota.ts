/**
 * npm run quota -- show <userId> [--namespace <name>] [--config <file>] [--at <ISO instant>]
 * Prints one JSON object: {"userId", "channel", "quota", "effectiveQuota", "history": [...]} (amounts in fen).
 * The effective quota is the one in force now (or at --at): the base raised by a holiday uplift window.
 */
import { parseArgs } from 'node:util';
import { namespaceOption, openCliContext, runCli, UsageError } from '../src/cli.ts';
import { parseInstant } from '../src/events/instant.ts';

const USAGE = 'npm run quota -- show <userId> [--namespace <name>] [--config <file>] [--at <ISO instant>]';

runCli('quota', async () => {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      namespace: { type: 'string' },
      config: { type: 'string' },
      at: { type: 'string' },
    },
  });
  const [command, userId, ...rest] = positionals;
  if (command !== 'show') throw new UsageError('expected: show <userId>');
  if (!userId || rest.length > 0) throw new UsageError('show takes exactly one userId');
  let atMs = Date.now();
  if (values.at !== undefined) {
    const t = parseInstant(values.at);
    if (!t.ok) throw new UsageError(`--at: ${t.reason}`);
    atMs = t.ms;
  }
  const cli = await openCliContext({
    namespace: namespaceOption(values.namespace),
    configFile: values.config,
    requireExisting: true,
  });
  try {
    const view = await cli.context.quotaAccounts.show(userId, cli.context.calibrator, atMs);
    process.stdout.write(JSON.stringify(view) + '\n');
  } finally {
    await cli.close();
  }
}, USAGE);
