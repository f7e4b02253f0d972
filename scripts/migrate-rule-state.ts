/**
 * npm run migrate-rule-state [-- --namespace <name>] [--config <file>]
 * Moves rule state of the layout before the rule-state hash (day-totals hashes, card-window sorted sets) into one
 * hash per user. Stop the risk workers first, start the new ones after; safe to run again.
 * Prints one JSON line: {"users", "days", "cards"} moved.
 */
import { parseArgs } from 'node:util';
import { namespaceOption, openCliContext, runCli } from '../src/cli.ts';
import { migrateRuleState } from '../src/rules/migrate.ts';

const USAGE = 'npm run migrate-rule-state -- [--namespace <name>] [--config <file>]';

runCli('migrate-rule-state', async () => {
  const { values } = parseArgs({ options: { namespace: { type: 'string' }, config: { type: 'string' } } });
  const cli = await openCliContext({ namespace: namespaceOption(values.namespace), configFile: values.config, requireExisting: true });
  try {
    const { redis, keys, settings } = cli.context;
    const result = await migrateRuleState(redis, keys, settings.config, (r) => process.stderr.write(`migrated ${r.users} users\n`));
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await cli.close();
  }
}, USAGE);
