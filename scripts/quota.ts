/**
 * npm run quota -- show <userId> [--namespace <name>] [--config <file>] [--at <ISO instant>]
 * Prints one JSON object: {"userId", "channel", "quota", "effectiveQuota", "outstanding", "available", "at",
 * "openedAt", "lastRun", "history": [...]} (amounts in fen). The effective quota is the one in force now (or at
 * --at): the base raised by a holiday uplift window; available is what a charge then may spend.
 */
import { CONFIG_OPTION, NAMESPACE_OPTION, namespaceOption, openCliContext, runCommand, UsageError } from '../src/cli.ts';
import { parseInstant } from '../src/events/instant.ts';

runCommand(
  {
    name: 'quota',
    summary: "Prints a user's credit as one JSON object: channel, base quota, the effective quota in force (holiday uplifts included), outstanding, available credit, and the calibration history, amounts in fen.",
    usage: ['show <userId> [options]'],
    positionals: true,
    options: {
      namespace: NAMESPACE_OPTION,
      config: CONFIG_OPTION,
      at: { type: 'string', arg: '<ISO instant>', help: 'the instant whose effective quota and available credit to show (default: now); outstanding is always as of now' },
    },
    examples: ['npm run quota -- show u-42', 'npm run quota -- show u-42 --at 2026-10-01T12:00:00+08:00'],
  },
  async ({ values, positionals }) => {
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
});
