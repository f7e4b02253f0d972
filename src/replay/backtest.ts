/**
 * What would this change do? Runs an event file through the real pipeline twice, each in a fresh namespace (the
 * baseline configuration, then the candidate), with the same lists (merchants, users, cards), and compares the
 * outcome and the fired rules line by line. Each run is a replay (replay.ts): worker processes started with that
 * configuration, so a candidate decides here exactly as it does once published.
 */
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { deepMerge, loadSettings, type Settings } from '../config.ts';
import { createContext } from '../context.ts';
import { readEventLines } from '../events/lines.ts';
import type { Logger } from '../logger.ts';
import { deleteNamespace } from '../redis/namespace.ts';
import { checkRulesInput } from '../rules/published.ts';
import { RULE_NAMES } from '../rules/registry.ts';
import { replay, type ReplayLine, type ReplayProgressView } from './replay.ts';
import type { RedisTarget } from '../redis/target.ts';

export interface BacktestOptions {
  /** The running configuration (--config): what the runs are loaded over, and where the live rules are read. */
  started: Settings;
  /** The Redis to backtest in (its own namespaces): a URL or a cluster. */
  redisTarget: string | RedisTarget;
  logger: Logger;
  inputPath: string;
  /** A configuration merged over the baseline (as a published one is over the live version). */
  candidate: unknown;
  /** Likewise; default: the namespace's live published rules, else the running configuration's. */
  baseline?: unknown;
  listsPath?: string;
  outputPath: string;
  workers?: number;
  /** Keep the two namespaces (their names are in the result). */
  keep?: boolean;
  /** Where to keep each run's full results (replay lines) as baseline.ndjson and candidate.ndjson. */
  resultsDir?: string;
  /** What is happening, between the runs. */
  onProgress?: (message: string) => void;
  /** Shows one run's line progress: called as the run starts, stopped as it ends (before its onProgress message). */
  showRunProgress?: (run: BacktestRun) => ReplayProgressView;
}

export type BacktestRun = 'baseline' | 'candidate';

export interface Side {
  outcome: ReplayLine['outcome'];
  rules: string[];
}

export interface BacktestSummary {
  lines: number;
  changed: number;
  /** "approve->review": how many lines and their fen. */
  transitions: Record<string, { count: number; fen: number }>;
  /** Hits per rule in each run. */
  rules: Record<string, { baseline: number; candidate: number }>;
}

export interface BacktestResult {
  summary: BacktestSummary;
  /** What the baseline was: "live rules version 3", "the running configuration", or the file given. */
  baselineSource: string;
  /** Whether the running workers could switch to the candidate live, and if not why (npm run rules -- publish). */
  publishable: { ok: true } | { ok: false; problems: string[] };
  namespaces: { baseline: string; candidate: string };
}

export async function backtest(options: BacktestOptions): Promise<BacktestResult> {
  const { started } = options;
  const progress = options.onProgress ?? (() => undefined);
  const scratch = mkdtempSync(join(tmpdir(), 'riskmon-backtest-'));
  const suffix = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const namespaces = { baseline: `backtest-${suffix}-base`, candidate: `backtest-${suffix}-cand` };
  const resultsDir = options.resultsDir ?? scratch;
  try {
    let baseline = options.baseline;
    let baselineSource = 'the baseline file';
    if (baseline === undefined) {
      const context = createContext(started, options.redisTarget, options.logger);
      try {
        const live = await context.rulesPublisher.live();
        baseline = live ? { rules: live.rules } : {};
        baselineSource = live ? `live rules version ${live.version} of namespace ${started.config.namespace}` : 'the running configuration';
      } finally {
        await context.close();
      }
    }
    // The candidate changes what it names in the baseline, as a published candidate does in the live version.
    const runs = { baseline, candidate: deepMerge(baseline, options.candidate) };
    const candidateSettings = settingsWith(started, options.candidate, namespaces.candidate);
    const publishable = checkRulesInput(started, candidateSettings.rulesInput);

    for (const side of ['baseline', 'candidate'] satisfies BacktestRun[]) {
      // The worker processes load the configuration from a file: the running one's file with this side over it.
      const configFile = join(scratch, `${side}.config.json`);
      writeFileSync(configFile, JSON.stringify(deepMerge(fileConfig(started), runs[side])));
      const settings = settingsWith(started, runs[side], namespaces[side]);
      // Never the running namespace: a side's file may name one, and this run's namespace is removed afterwards.
      if (settings.config.namespace !== namespaces[side]) throw new Error(`backtest: the ${side} would run in namespace ${settings.config.namespace}`);
      const context = createContext(settings, options.redisTarget, options.logger);
      try {
        progress(`${side}: replaying ${options.inputPath} in namespace ${namespaces[side]}`);
        const shown = options.showRunProgress?.(side);
        let summary;
        try {
          summary = await replay({
            context,
            inputPath: options.inputPath,
            outputPath: join(resultsDir, `${side}.ndjson`),
            workers: options.workers,
            configFile,
            listsPath: options.listsPath,
            onProgress: shown?.onProgress,
            progressEveryMs: shown?.progressEveryMs,
          });
        } finally {
          shown?.stop();
        }
        progress(`${side}: ${summary.lines} lines, ${Object.entries(summary.byOutcome).map(([k, v]) => `${k} ${v}`).join(', ')}`);
      } finally {
        if (!options.keep) await deleteNamespace(context.redis, context.keys).catch(() => undefined);
        await context.close();
      }
    }

    const summary = await compare(options.inputPath, started, join(resultsDir, 'baseline.ndjson'), join(resultsDir, 'candidate.ndjson'), options.outputPath);
    return { summary, baselineSource, publishable: publishable.ok ? { ok: true } : { ok: false, problems: publishable.problems }, namespaces };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** The running configuration's file (--config or RISKMON_CONFIG), as written; {} without one. */
function fileConfig(started: Settings): unknown {
  const file = started.loadedWith.configFile ?? (started.loadedWith.env ?? process.env).RISKMON_CONFIG;
  return file ? JSON.parse(readFileSync(resolve(file), 'utf8')) : {};
}

/** The running settings with `over` merged in, in `namespace` whatever `over` says (the worker processes get it too). */
function settingsWith(started: Settings, over: unknown, namespace: string): Settings {
  return loadSettings({ ...started.loadedWith, namespace, overrides: deepMerge(deepMerge(started.loadedWith.overrides ?? {}, over), { namespace }) });
}

/** Writes the lines whose outcome or rules differ, and sums them up. */
async function compare(inputPath: string, started: Settings, baselinePath: string, candidatePath: string, outputPath: string): Promise<BacktestSummary> {
  const read = (path: string) =>
    readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as ReplayLine);
  const base = read(baselinePath);
  const cand = read(candidatePath);
  if (base.length !== cand.length) throw new Error(`the runs gave ${base.length} and ${cand.length} result lines for one file`);
  // Amounts by line, read as the producer reads them (the result lines carry none).
  const amounts = new Map<number, number>();
  for await (const item of readEventLines(inputPath, started.config.pipeline.maxLineBytes)) {
    if (item.ok && item.event.type === 'charge') amounts.set(item.line, item.event.amount);
  }
  const summary: BacktestSummary = { lines: base.length, changed: 0, transitions: {}, rules: Object.fromEntries(RULE_NAMES.map((r) => [r, { baseline: 0, candidate: 0 }])) };
  const out = createWriteStream(outputPath);
  const side = (r: ReplayLine): Side => ({ outcome: r.outcome, rules: r.rules ?? [] });
  for (let i = 0; i < base.length; i++) {
    const b = base[i]!;
    const c = cand[i]!;
    for (const r of b.rules ?? []) summary.rules[r]!.baseline++;
    for (const r of c.rules ?? []) summary.rules[r]!.candidate++;
    if (b.outcome === c.outcome && (b.rules ?? []).join(',') === (c.rules ?? []).join(',')) continue;
    summary.changed++;
    const key = `${b.outcome}->${c.outcome}`;
    const t = (summary.transitions[key] ??= { count: 0, fen: 0 });
    t.count++;
    t.fen += amounts.get(b.line) ?? 0;
    if (!out.write(JSON.stringify({ line: b.line, eventId: b.eventId ?? c.eventId, baseline: side(b), candidate: side(c) }) + '\n')) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return summary;
}
