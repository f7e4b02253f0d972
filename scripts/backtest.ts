/**
 * npm run backtest -- <events.ndjson> --candidate <config.json> [--baseline <config.json>] [--lists <lists.json>]
 * --out <diff.ndjson> [--json]: what a rules change would do, by running the file through the real pipeline twice.
 */
import { existsSync, readFileSync } from 'node:fs';
import { CONFIG_OPTION, NAMESPACE_OPTION, namespaceOption, openCliContext, runCommand, UsageError, wholeNumberOption } from '../src/cli.ts';
import { loadSettings } from '../src/config.ts';
import { silentLogger } from '../src/logger.ts';
import { countLines } from '../src/events/lines.ts';
import { backtest, type BacktestSummary } from '../src/replay/backtest.ts';
import { showReplayProgress } from '../src/replay/replay.ts';
import { PROGRESS_NOTE } from '../src/progress.ts';

runCommand(
  {
    name: 'backtest',
    summary: 'Shows what a configuration change would do: runs an event file through the real pipeline twice, in fresh namespaces (baseline, then candidate), and writes one line per input line whose outcome or fired rules differ.',
    usage: ['<events.ndjson> --candidate <config.json> --out <diff.ndjson> [options]'],
    positionals: true,
    options: {
      candidate: { type: 'string', arg: '<config.json>', help: 'the configuration to try, merged over the baseline: it changes what it names (required)' },
      baseline: { type: 'string', arg: '<config.json>', help: "what to compare with (default: the namespace's live published rules, else the running configuration)" },
      lists: { type: 'string', arg: '<lists.json>', help: 'lists loaded into both runs: {"merchants": [{"id", "from"?, "until"?, "reason"?}], "users": [{"id", …}], "cards": [{"number", …}]}, each part optional; card numbers are tokenized on load' },
      out: { type: 'string', arg: '<diff.ndjson>', help: 'where to write the differing lines: {"line","eventId","baseline":{"outcome","rules"},"candidate":{…}} (required)' },
      json: { type: 'boolean', help: 'print the summary as one JSON object: {"lines","changed","transitions","rules"}' },
      workers: { type: 'string', arg: 'N', default: '1', help: 'worker processes per run, 1 to 64 (decisions are the same for any number)' },
      keep: { type: 'boolean', help: 'keep the two namespaces afterwards (their names are printed), to inspect them' },
      namespace: NAMESPACE_OPTION,
      config: CONFIG_OPTION,
    },
    notes: [
      'Files are in arrival order: each run\'s clock is the largest occurredAt accepted so far, as in npm run replay.',
      'The summary says whether the running workers could switch to the candidate live (npm run rules -- publish), and if not why.',
      `${PROGRESS_NOTE} With --json, nothing.`,
    ],
    examples: [
      'npm run backtest -- test/fixtures/rule-edges.ndjson --candidate candidate.json --lists test/fixtures/rule-edges.lists.json --out /tmp/diff.ndjson',
      'npm run backtest -- events.ndjson --candidate tight.json --baseline loose.json --out diff.ndjson --json',
    ],
  },
  async ({ values, positionals }) => {
    const input = positionals[0];
    if (!input || positionals.length > 1) throw new UsageError('give exactly one input file');
    if (!values.candidate) throw new UsageError('--candidate is required');
    if (!values.out) throw new UsageError('--out is required');
    for (const [what, path] of [['input file', input], ['list file', values.lists]] as const) {
      if (path !== undefined && !existsSync(path)) throw new UsageError(`${what} not found: ${path}`);
    }
    const json = (option: string, path: string): unknown => {
      let value: unknown;
      try {
        value = JSON.parse(readFileSync(path, 'utf8'));
      } catch (e) {
        throw new UsageError(`--${option} ${path}: ${(e as Error).message}`);
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new UsageError(`--${option} ${path}: a configuration object, e.g. {"rules": {"sameCardBurst": {"minCount": 2}}}`);
      }
      return value;
    };
    const candidate = json('candidate', values.candidate);
    const baseline = values.baseline === undefined ? undefined : json('baseline', values.baseline);
    const workers = wholeNumberOption('workers', values.workers, 1, { max: 64 });
    const started = loadSettings({ configFile: values.config, namespace: namespaceOption(values.namespace) });

    const cli = await openCliContext({ settings: started });
    try {
      const t0 = performance.now();
      // --json: stdout is the summary and stderr only errors.
      const totalLines = values.json ? 0 : await countLines(input);
      const result = await backtest({
        started,
        redisTarget: cli.context.redisTarget,
        logger: silentLogger,
        inputPath: input,
        candidate,
        baseline,
        listsPath: values.lists,
        outputPath: values.out,
        workers,
        keep: values.keep,
        onProgress: values.json ? undefined : (m) => process.stderr.write(`backtest: ${m}\n`),
        showRunProgress: values.json ? undefined : (run) => showReplayProgress(`backtest: ${run}`, totalLines),
      });
      const seconds = ((performance.now() - t0) / 1000).toFixed(1);
      if (values.json) {
        process.stdout.write(JSON.stringify(result.summary) + '\n');
        return;
      }
      process.stdout.write(describe(result.summary, values.baseline ?? result.baselineSource, values.candidate, values.out));
      process.stdout.write(
        result.publishable.ok
          ? 'The running workers can switch to the candidate live: npm run rules -- publish ' + values.candidate + ' --by <name>\n'
          : `Publishing it live would be refused (it needs a restart):\n${result.publishable.problems.map((p) => `  ${p}`).join('\n')}\n`,
      );
      process.stderr.write(`backtest: done in ${seconds} s${values.keep ? `; namespaces kept: ${result.namespaces.baseline}, ${result.namespaces.candidate}` : ''}\n`);
    } finally {
      await cli.close();
    }
  },
);

function describe(s: BacktestSummary, baseline: string, candidate: string, out: string): string {
  const lines = [`${s.lines} lines, ${s.changed} changed (baseline: ${baseline}; candidate: ${candidate}) → ${out}`];
  const transitions = Object.entries(s.transitions).sort((a, b) => b[1].count - a[1].count);
  if (transitions.length) {
    lines.push('', 'transition            lines           fen');
    for (const [t, v] of transitions) lines.push(`${t.padEnd(18)} ${String(v.count).padStart(8)} ${v.fen.toLocaleString('en-US').padStart(13)}`);
  }
  lines.push('', 'rule                   baseline  candidate');
  for (const [r, v] of Object.entries(s.rules)) lines.push(`${r.padEnd(22)} ${String(v.baseline).padStart(8)} ${String(v.candidate).padStart(10)}`);
  return lines.join('\n') + '\n\n';
}
