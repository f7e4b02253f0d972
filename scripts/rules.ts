/**
 * npm run rules -- check|publish <config.json> | approve <version> | show | history | rollback <version>: the rules
 * configuration the risk workers decide with, published without a restart (src/rules/published.ts). Publishing,
 * approving and rolling back need an admin's token (RISKMON_TOKEN); a version takes effect once a second admin
 * approves it.
 */
import { readFileSync } from 'node:fs';
import { CONFIG_OPTION, NAMESPACE_OPTION, namespaceOption, openCliContext, runCommand, UsageError, wholeNumberOption } from '../src/cli.ts';
import { RulesRefusedError } from '../src/rules/published.ts';
import { loadSettings } from '../src/config.ts';
import { operatorFromToken } from '../src/api/operator.ts';

runCommand(
  {
    name: 'rules',
    summary: 'Publishes the rules configuration the risk workers decide with, without a restart: validated first (refused with its reasons, changing nothing), switched to within seconds at a batch boundary, recorded with who and why.',
    usage: ['check <config.json>', 'publish <config.json> [--note "…"]', 'approve <version> [--note "…"]', 'show [--json]', 'history [--json]', 'rollback <version> [--note "…"]'],
    positionals: true,
    options: {
      by: { type: 'string', arg: '<name>', help: 'refused: who publishes, approves or rolls back is the admin whose token RISKMON_TOKEN holds' },
      note: { type: 'string', arg: '"…"', help: 'why, recorded with the change' },
      json: { type: 'boolean', help: 'JSON instead of text' },
      namespace: NAMESPACE_OPTION,
      config: CONFIG_OPTION,
    },
    notes: [
      'publish, approve and rollback need an admin\'s API token in RISKMON_TOKEN (npm run users -- add <name> --role admin); the change records that admin. A published version takes effect once another admin approves it; a rollback makes an approved version live again at once.',
      'A candidate is a configuration file loaded over the running configuration (config/default.json, then --config or RISKMON_CONFIG), its rules over the live version\'s: it changes only what it names. Only its "rules" part may differ: the zone, shards and retention need a restart.',
      'Run it with the workers\' configuration (RISKMON_CONFIG): a version is completed from it, and workers running another configuration refuse the version.',
      'Each rule bounds what it can change live (a burst window no longer than the card windows kept); npm run backtest shows what a candidate would change before it is published.',
      'Every decision records its version in configVersion ("cfg-…+rules-v<n>").',
    ],
    examples: [
      'npm run rules -- check candidate.json',
      'RISKMON_TOKEN=rmk_… npm run rules -- publish candidate.json --note "burst at 2 charges during the card-testing wave"',
      'RISKMON_TOKEN=rmk_… npm run rules -- approve 2   # another admin',
      'RISKMON_TOKEN=rmk_… npm run rules -- rollback 1 --note "wave over"',
      'npm run rules -- history',
    ],
  },
  async ({ values, positionals }) => {
    const [command, arg, ...rest] = positionals;
    if (rest.length) throw new UsageError(`unexpected argument: ${rest[0]}`);
    const readCandidate = (): unknown => {
      if (arg === undefined) throw new UsageError(`${command} takes a candidate configuration file`);
      try {
        return JSON.parse(readFileSync(arg, 'utf8'));
      } catch (e) {
        throw new UsageError(`candidate ${arg}: ${(e as Error).message}`);
      }
    };
    const namespace = namespaceOption(values.namespace);
    if (!['check', 'publish', 'approve', 'show', 'history', 'rollback'].includes(command ?? '')) throw new UsageError('expected: check, publish, approve, show, history or rollback');
    if (values.by !== undefined) throw new UsageError('--by is gone: who publishes, approves or rolls back is the admin whose token is in RISKMON_TOKEN');
    if ((command === 'show' || command === 'history') && arg !== undefined) throw new UsageError(`${command} takes no argument, got ${arg}`);
    const version = command === 'rollback' || command === 'approve' ? wholeNumberOption('version', arg ?? '', 0) : 0;
    const candidate = command === 'publish' || command === 'check' ? readCandidate() : undefined;

    const settings = loadSettings({ configFile: values.config, namespace });
    const governed = command === 'publish' || command === 'approve' || command === 'rollback';
    const operator = governed ? await operatorFromToken(settings, `rules ${command}`, { ...(arg ? { [command === 'publish' ? 'file' : 'version']: arg } : {}), ...(values.note ? { note: values.note } : {}) }) : undefined;
    let status = 409;
    const cli = await openCliContext({ settings, requireExisting: true }).catch(async (e: unknown) => {
      await operator?.done(503, 0);
      throw e;
    });
    const publisher = cli.context.rulesPublisher;
    try {
      if (command === 'check') {
        const checked = await publisher.check(candidate);
        if (!checked.ok) throw new RulesRefusedError(checked.problems);
        process.stdout.write(`${arg}: valid, and the running workers can switch to it live\n`);
      } else if (command === 'publish') {
        const published = await publisher.publish(candidate, { by: operator!.name, note: values.note, source: arg });
        status = 200;
        process.stdout.write(`published rules version ${published.version}, pending approval: it takes effect once another admin runs npm run rules -- approve ${published.version}\n`);
      } else if (command === 'approve') {
        const r = await publisher.approve(version, { by: operator!.name, note: values.note });
        status = 200;
        process.stdout.write(`rules version ${r.version} approved by ${operator!.name} and live (was ${r.previous}); workers switch within seconds, at a batch boundary\n`);
      } else if (command === 'rollback') {
        const r = await publisher.rollback(version, { by: operator!.name, note: values.note });
        status = 200;
        process.stdout.write(`rules version ${r.version} is live again (was ${r.previous})\n`);
      } else if (command === 'show') {
        const live = await publisher.live();
        if (values.json) process.stdout.write(JSON.stringify(live ?? { version: 0, rules: cli.context.settings.rulesInput, source: 'configuration file' }, null, 2) + '\n');
        else if (!live) process.stdout.write(`no published version in namespace ${cli.context.keys.namespace}: the workers decide with their configuration file\n${JSON.stringify(cli.context.settings.rulesInput, null, 2)}\n`);
        else process.stdout.write(`live: version ${live.version}, published ${live.publishedAt} by ${live.by}${live.approvedBy ? `, approved by ${live.approvedBy}` : ''}${live.note ? `: ${live.note}` : ''}\n${JSON.stringify(live.rules, null, 2)}\n`);
        if (!values.json) for (const p of await publisher.pending()) process.stdout.write(`pending approval: version ${p.version}, published ${p.publishedAt} by ${p.by}${p.note ? `: ${p.note}` : ''}\n`);
      } else {
        for (const c of await publisher.history()) {
          process.stdout.write(values.json ? JSON.stringify(c) + '\n' : `${c.at}  ${c.by}  ${c.action} → version ${c.version} (was ${c.previous})${c.note ? `: ${c.note}` : ''}\n`);
        }
      }
    } finally {
      await operator?.done(status);
      await cli.close();
    }
  },
);
