/**
 * npm run lists -- add merchant <id> --reason "…" --by <name> [--from ISO] [--until ISO] | remove merchant <id> --by
 * <name> | show [--json] | history [--json]: the merchant admission list merchant_blocklisted reads, every change
 * recorded with who made it.
 */
import { CONFIG_OPTION, NAMESPACE_OPTION, namespaceOption, openCliContext, runCommand, UsageError } from '../src/cli.ts';
import { describeEntry, MerchantListError } from '../src/lists/merchant-list.ts';

runCommand(
  {
    name: 'lists',
    summary: "Keeps the merchant admission list: a charge whose merchant has an entry covering its occurredAt is declined (merchant_blocklisted). Every change is recorded with who made it.",
    usage: ['add merchant <id> --reason "…" --by <name> [--from ISO] [--until ISO]', 'remove merchant <id> --by <name>', 'show [--json]', 'history [--json]'],
    positionals: true,
    options: {
      reason: { type: 'string', arg: '"…"', help: 'why the merchant is listed (add; required)' },
      by: { type: 'string', arg: '<name>', help: 'who makes the change (add, remove; required)' },
      from: { type: 'string', arg: 'ISO', help: 'start of the entry, an instant with its offset (add; default now)' },
      until: { type: 'string', arg: 'ISO', help: 'end of the entry, exclusive (add; default: until removed)' },
      json: { type: 'boolean', help: 'JSON instead of text (show: one object; history: one change per line)' },
      namespace: NAMESPACE_OPTION,
      config: CONFIG_OPTION,
    },
    notes: [
      'An entry covers [from, until) by the charge\'s occurredAt, so a replay with the same list decides the same. remove ends the entries in force now and drops those not started yet.',
      'replay and backtest take a list file instead (--lists): {"merchants": [{"id", "from"?, "until"?, "reason"?}]}.',
    ],
    examples: [
      'npm run lists -- add merchant m-13 --reason "card testing reported by acquirer" --by alice',
      'npm run lists -- add merchant m-20 --reason "licence suspended" --from 2026-12-03T00:00:00+08:00 --until 2026-12-10T00:00:00+08:00 --by bob',
      'npm run lists -- remove merchant m-13 --by alice',
      'npm run lists -- show --json',
    ],
  },
  async ({ values, positionals }) => {
    const [command, kind, id, ...rest] = positionals;
    const needsMerchant = command === 'add' || command === 'remove';
    if (!['add', 'remove', 'show', 'history'].includes(command ?? '')) throw new UsageError('expected: add, remove, show or history');
    if (needsMerchant && (kind !== 'merchant' || id === undefined || rest.length > 0)) throw new UsageError(`expected: ${command} merchant <id>`);
    if (!needsMerchant && kind !== undefined) throw new UsageError(`${command} takes no argument, got ${kind}`);
    if (needsMerchant && values.by === undefined) throw new UsageError('--by <name> is required: every change records who made it');
    if (command === 'add' && values.reason === undefined) throw new UsageError('--reason is required');
    if (command !== 'add' && (values.reason ?? values.from ?? values.until) !== undefined) throw new UsageError(`--reason, --from and --until are for add`);

    const cli = await openCliContext({ namespace: namespaceOption(values.namespace), configFile: values.config, requireExisting: true });
    const list = cli.context.merchantList;
    try {
      if (command === 'add') {
        const entry = await list.add(id!, { reason: values.reason!, by: values.by!, from: values.from, until: values.until });
        process.stdout.write(`merchant ${id} listed ${describeEntry(entry)}: ${entry.reason}\n`);
      } else if (command === 'remove') {
        const ended = await list.remove(id!, { by: values.by! });
        process.stdout.write(`merchant ${id}: ${ended} entr${ended === 1 ? 'y' : 'ies'} ended now\n`);
      } else if (command === 'show') {
        const merchants = await list.show();
        if (values.json) {
          process.stdout.write(JSON.stringify({ merchants: Object.fromEntries(merchants) }, null, 2) + '\n');
          return;
        }
        process.stdout.write(`${merchants.size} merchant(s) on the admission list of namespace ${cli.context.keys.namespace}\n`);
        for (const [merchant, entries] of merchants) {
          for (const e of entries) process.stdout.write(`${merchant}  ${describeEntry(e)}  by ${e.by} at ${e.addedAt}${e.reason ? `: ${e.reason}` : ''}\n`);
        }
      } else {
        const changes = await list.history();
        for (const c of changes) {
          if (values.json) process.stdout.write(JSON.stringify(c) + '\n');
          else {
            const what = c.action === 'remove' ? `ended ${c.ended} entr${c.ended === 1 ? 'y' : 'ies'}` : `${c.action === 'load' ? `loaded from ${c.source}` : 'added'} ${describeEntry(c.entry!)}${c.entry?.reason ? `: ${c.entry.reason}` : ''}`;
            process.stdout.write(`${c.at}  ${c.by}  merchant ${c.merchantId} ${what}\n`);
          }
        }
      }
    } catch (e) {
      if (e instanceof MerchantListError) throw new UsageError(e.message);
      throw e;
    } finally {
      await cli.close();
    }
  },
);
