/**
 * npm run lists -- add merchant|user|card <id or card number> --reason "…" [--from ISO] [--until ISO] |
 * remove merchant|user|card <id or card number> (both with an admin's token in RISKMON_TOKEN) | show [kind] [--json] | history [kind] [--json] | sync: the lists
 * merchant_blocklisted, user_frozen and card_blocklisted read, every change recorded with who made it. A card is
 * given as its number, tokenized at once, and shown as its last four only.
 */
import { CONFIG_OPTION, NAMESPACE_OPTION, namespaceOption, openCliContext, runCommand, UsageError } from '../src/cli.ts';
import { loadSettings } from '../src/config.ts';
import { operatorFromToken } from '../src/api/operator.ts';
import { maskCardNumbers } from '../src/events/card.ts';
import { describeEntry, LIST_KINDS, ListError, type ListChange, type ListEntry, type ListKind } from '../src/lists/lists.ts';

const PLURAL: Record<ListKind, string> = { merchant: 'merchants', user: 'users', card: 'cards' };

runCommand(
  {
    name: 'lists',
    summary:
      'Keeps the lists a charge is declined by while an entry covers its occurredAt: merchants (merchant_blocklisted), users (user_frozen: frozen accounts) and cards (card_blocklisted). Every change is recorded with who made it.',
    usage: [
      'add merchant|user|card <id or card number> --reason "…" [--from ISO] [--until ISO]',
      'remove merchant|user|card <id or card number>',
      'show [merchant|user|card] [--json]',
      'history [merchant|user|card] [--json]',
      'sync',
    ],
    positionals: true,
    options: {
      reason: { type: 'string', arg: '"…"', help: 'why it is listed (add; required)' },
      by: { type: 'string', arg: '<name>', help: 'refused: who changes a list is the admin whose token RISKMON_TOKEN holds' },
      from: { type: 'string', arg: 'ISO', help: 'start of the entry, an instant with its offset (add; default now)' },
      until: { type: 'string', arg: 'ISO', help: 'end of the entry, exclusive (add; default: until removed)' },
      json: { type: 'boolean', help: 'JSON instead of text (show: one object; history: one change per line)' },
      namespace: NAMESPACE_OPTION,
      config: CONFIG_OPTION,
    },
    notes: [
      "add and remove need an admin's API token in RISKMON_TOKEN (npm run users -- add <name> --role admin); the change records that admin, and the audit trail each attempt.",
      "An entry covers [from, until) by the charge's occurredAt, so a replay with the same list decides the same. remove ends the entries in force now and drops those not started yet.",
      'A card is given as its number (13–19 digits, spaces or dashes allowed, Luhn checked), or as "-" to read it from stdin (kept out of the shell history and the process list); it is stored as the keyed hash the producer puts on charges (RISKMON_CARD_SECRET: use the producers\' secret), and shown as ****1234; show --json keys cards by that token.',
      'replay and backtest take a list file instead (--lists): {"merchants": [{"id", "from"?, "until"?, "reason"?}], "users": [{"id", …}], "cards": [{"number", …}]}, each part optional.',
    ],
    examples: [
      'npm run lists -- add merchant m-13 --reason "card testing reported by acquirer"',
      'npm run lists -- add merchant m-20 --reason "licence suspended" --from 2026-12-03T00:00:00+08:00 --until 2026-12-10T00:00:00+08:00',
      'npm run lists -- add user u-42 --reason "异常账户: identity under review"',
      'npm run lists -- add card "6222 0212 3456 7890 128" --reason "reported stolen"',
      'npm run lists -- remove card - < card.txt',
      'npm run lists -- remove merchant m-13',
      'npm run lists -- show --json',
      'npm run lists -- sync',
    ],
  },
  async ({ values, positionals }) => {
    const [command, kindArg, id, ...rest] = positionals;
    const changes = command === 'add' || command === 'remove';
    if (!['add', 'remove', 'show', 'history', 'sync'].includes(command ?? '')) throw new UsageError('expected: add, remove, show, history or sync');
    if (command === 'sync' && kindArg !== undefined) throw new UsageError('sync takes no list: it copies all three');
    const kind = kindArg === undefined ? undefined : (LIST_KINDS as readonly string[]).includes(kindArg) ? (kindArg as ListKind) : null;
    if (kind === null) throw new UsageError(`expected a list: merchant, user or card, got ${maskCardNumbers(kindArg!)}`);
    if (changes && (kind === undefined || id === undefined || rest.length > 0)) throw new UsageError(`expected: ${command} merchant|user|card <id or card number>`);
    if (!changes && id !== undefined) throw new UsageError(`${command} takes at most a list (merchant, user or card)`);
    if (values.by !== undefined) throw new UsageError('--by is gone: who changes a list is the admin whose token is in RISKMON_TOKEN');
    if (command === 'add' && values.reason === undefined) throw new UsageError('--reason is required');
    if (command !== 'add' && (values.reason ?? values.from ?? values.until) !== undefined) throw new UsageError(`--reason, --from and --until are for add`);

    // "-": the card number from stdin, so it stays out of the shell's history and the process list.
    const given = changes && kind === 'card' && id === '-' ? await firstLineOfStdin() : id;

    const settings = loadSettings({ configFile: values.config, namespace: namespaceOption(values.namespace) });
    // A change needs an admin's token; the audit records the list and, for a card, only its last four digits.
    const operator = changes
      ? await operatorFromToken(settings, `lists ${command}`, { list: kind!, id: kind === 'card' ? `****${String(given).replace(/\D/g, '').slice(-4)}` : given!, ...(values.reason ? { reason: values.reason } : {}) })
      : undefined;
    let status = 409;
    const cli = await openCliContext({ settings, requireExisting: true }).catch(async (e: unknown) => {
      await operator?.done(503, 0);
      throw e;
    });
    const { lists } = cli.context;
    try {
      if (command === 'add') {
        const list = lists.of(kind!);
        // The card's label, never the number given.
        const label = list.identify(given!).label;
        const entry = await list.add(given!, { reason: values.reason!, by: operator!.name, from: values.from, until: values.until });
        status = 200;
        process.stdout.write(`${kind} ${label} listed ${describeEntry(entry)}: ${entry.reason}\n`);
      } else if (command === 'remove') {
        const list = lists.of(kind!);
        const label = list.identify(given!).label;
        const ended = await list.remove(given!, { by: operator!.name });
        status = 200;
        process.stdout.write(`${kind} ${label}: ${ended} entr${ended === 1 ? 'y' : 'ies'} ended now\n`);
      } else if (command === 'show') {
        const kinds = kind ? [kind] : LIST_KINDS;
        const shown = new Map<ListKind, Map<string, ListEntry[]>>();
        for (const k of kinds) shown.set(k, await lists.of(k).show());
        if (values.json) {
          process.stdout.write(JSON.stringify(Object.fromEntries([...shown].map(([k, m]) => [PLURAL[k], Object.fromEntries(m)])), null, 2) + '\n');
          return;
        }
        process.stdout.write(`${[...shown].map(([k, m]) => `${m.size} ${k}(s)`).join(', ')} listed in namespace ${cli.context.keys.namespace}\n`);
        for (const [k, listed] of shown) {
          for (const [listedId, entries] of listed) {
            for (const e of entries) process.stdout.write(`${k} ${k === 'card' ? (e.last4 ?? '****') : listedId}  ${describeEntry(e)}  by ${e.by} at ${e.addedAt}${e.reason ? `: ${e.reason}` : ''}\n`);
          }
        }
      } else if (command === 'sync') {
        // Each shard's rules read a copy of the lists in their own slot; a change cut short may have left some behind.
        const copied = await lists.sync();
        process.stdout.write(`${copied} shard cop${copied === 1 ? 'y' : 'ies'} of list entries brought up to date in namespace ${cli.context.keys.namespace}\n`);
      } else {
        for (const c of await lists.history(1_000, kind ? [kind] : LIST_KINDS)) {
          if (values.json) process.stdout.write(JSON.stringify(c) + '\n');
          else process.stdout.write(`${c.at}  ${c.by}  ${c.kind} ${c.label} ${describeChange(c)}\n`);
        }
      }
    } catch (e) {
      if (e instanceof ListError) throw new UsageError(e.message);
      throw e;
    } finally {
      await operator?.done(status);
      await cli.close();
    }
  },
);

async function firstLineOfStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text.split('\n')[0]!.trim();
}

function describeChange(c: ListChange): string {
  if (c.action === 'remove') return `ended ${c.ended} entr${c.ended === 1 ? 'y' : 'ies'}`;
  return `${c.action === 'load' ? `loaded from ${c.source}` : 'added'} ${describeEntry(c.entry!)}${c.entry?.reason ? `: ${c.entry.reason}` : ''}`;
}
