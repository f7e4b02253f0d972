/**
 * npm run settlement -- report --date YYYY-MM-DD [--namespace <name>]   per-merchant count and amount settled
 * npm run settlement -- pending [--namespace <name>] [--limit N]         scheduled and held transactions
 * npm run settlement -- release [--now <ISO instant>] [--namespace <name>] settle everything due by then
 */
import { parseArgs } from 'node:util';
import { namespaceOption, openCliContext, runCli, UsageError, wholeNumberOption } from '../src/cli.ts';
import { parseInstant } from '../src/events/instant.ts';

const USAGE = 'npm run settlement -- report --date YYYY-MM-DD | pending [--limit N] | release [--now ISO] [--namespace <name>] [--config <file>]';

runCli('settlement', async () => {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      date: { type: 'string' },
      namespace: { type: 'string' },
      config: { type: 'string' },
      limit: { type: 'string' },
      now: { type: 'string' },
    },
  });
  const command = positionals[0];
  if (!command || !['report', 'pending', 'release'].includes(command)) throw new UsageError('expected report, pending or release');
  if (command === 'report' && !/^\d{4}-\d{2}-\d{2}$/.test(values.date ?? '')) throw new UsageError('report needs --date YYYY-MM-DD');
  let nowMs = Date.now();
  if (values.now) {
    const t = parseInstant(values.now);
    if (!t.ok) throw new UsageError(`--now: ${t.reason}`);
    nowMs = t.ms;
  }
  const limit = wholeNumberOption('limit', values.limit, 1_000);

  const cli = await openCliContext({
    namespace: namespaceOption(values.namespace),
    configFile: values.config,
    requireExisting: true,
  });
  try {
    const { ledger, settings } = cli.context;
    if (command === 'report') {
      print(await ledger.report(values.date!));
    } else if (command === 'pending') {
      const [pending, stats] = await Promise.all([ledger.pending(limit), ledger.stats()]);
      print({ ...stats, pending });
    } else {
      print({ now: new Date(nowMs).toISOString(), ...(await ledger.releaseDue(nowMs, settings.config.settlement.batchSize)) });
    }
  } finally {
    await cli.close();
  }
}, USAGE);

function print(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}
