/**
 * npm run migrate-rule-state [-- --namespace <name>] [--config <file>]
 * Moves rule state of the layout before the rule-state hash (day-totals hashes, card-window sorted sets) into one
 * hash per user. Stop the risk workers first, start the new ones after; safe to run again.
 * Prints one JSON line: {"users", "days", "cards"} moved.
 */
import { CONFIG_OPTION, NAMESPACE_OPTION, namespaceOption, openCliContext, runCommand } from '../src/cli.ts';
import { migrateRuleState } from '../src/rules/migrate.ts';

runCommand(
  {
    name: 'migrate-rule-state',
    summary: 'Moves rule state of the layout before the rule-state hash (day-totals hashes, card-window sorted sets) into one hash per user; safe to run again.',
    usage: ['[options]'],
    options: {
      namespace: NAMESPACE_OPTION,
      config: CONFIG_OPTION,
    },
    notes: ['Stop the risk workers first and start the new ones after. Prints one JSON line: {"users", "days", "cards"} moved.'],
    examples: ['npm run migrate-rule-state -- --namespace live'],
  },
  async ({ values }) => {
  const cli = await openCliContext({ namespace: namespaceOption(values.namespace), configFile: values.config, requireExisting: true });
  try {
    const { redis, keys, settings } = cli.context;
    const result = await migrateRuleState(redis, keys, settings.config, (r) => process.stderr.write(`migrated ${r.users} users\n`));
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await cli.close();
  }
});
