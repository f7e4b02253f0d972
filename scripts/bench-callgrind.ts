/**
 * Redis instructions per charge in the rules script, counted by valgrind's callgrind: the speed gate of a change to
 * evaluateCharges-n.lua. Instruction counts repeat run to run on a shared, noisy machine where timings move by 15–20%
 * between minutes; they say nothing of cache misses or wall time, so they complement `npm run bench`, not replace it.
 *
 *   npm run bench:callgrind -- [--charges 20000] [--users 2000] [--seed 42] [--json]
 *
 * A private redis-server runs under `valgrind --tool=callgrind --instr-atstart=no` (uninstrumented, so start-up and
 * the warm-up run fast). A seeded synthetic feed (src/events/synthetic.ts) goes through the rules script exactly as
 * the workers call it (ChargeRules.scriptCall, runs of CHARGES_PER_CALL, one call at a time), with the clock a replay
 * stamps (the largest occurredAt so far) and a fixed decision time. After the warm-up (script loaded, users' state
 * filled), `callgrind_control --instr=on` and `--zero`; then the measured charges; then `--dump`, whose file gives:
 * - Ir per charge, the number to compare: every instruction redis-server ran while the measured calls were in
 *   flight (reading and parsing the calls, the script, the replies) but its timer's (serverCron, which runs hz times
 *   a second of wall time, however slow valgrind makes it), ÷ charges;
 * - script Ir per charge: the part inside EVALSHA (evalShaCommand, inclusive);
 * - the functions with the most instructions of their own.
 * Redis runs with `activerehashing no` (dicts rehash on the commands' own steps, not on the timer) and no slow log
 * (under valgrind every call is slow). What still varies, by about 0.05%, is Redis's own randomness, seeded afresh at
 * every start with no option to fix it: the dicts' hash seed (chain lengths in the keyspace and the command table)
 * and the skiplist levels of the settlement schedule.
 */
import { openAccountScript } from '../src/quota/events.ts';
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadSettings } from '../src/config.ts';
import { runCommand, wholeNumberOption } from '../src/cli.ts';
import { CardHasher } from '../src/events/card.ts';
import { syntheticCharges } from '../src/events/synthetic.ts';
import { Lists } from '../src/lists/lists.ts';
import { createRedis } from '../src/redis/connection.ts';
import { Keys } from '../src/redis/keys.ts';
import { startRedisServer, type LocalRedis } from '../src/redis/local-server.ts';
import { defineScript } from '../src/redis/scripts.ts';
import { ChargeRules, CHARGES_PER_CALL, evaluateChargesScript, parseChargeReply, type ChargeInput } from '../src/rules/charge-rules.ts';
import { DAY_MS, ZoneCalendar } from '../src/time/calendar.ts';
import type { Redis } from 'ioredis';

const run = promisify(execFile);

export const VALGRIND = '/usr/bin/valgrind';
const CALLGRIND_CONTROL = '/usr/bin/callgrind_control';
const CALLGRIND_ANNOTATE = '/usr/bin/callgrind_annotate';
/** The function whose inclusive cost is the script's own (Redis 7: src/eval.c). */
const SCRIPT_FUNCTION = 'evalShaCommand';
/** Redis's timer (hz times a second): its work depends on wall time, which valgrind stretches. */
const TIMER_FUNCTION = 'serverCron';
const NAMESPACE = 'bench-callgrind';
const START_MS = Date.parse('2026-03-10T00:00:00+08:00');

export interface CallgrindOptions {
  /** Charges measured. @defaultValue 20 000 */
  charges?: number;
  /** Charges before the measurement (not counted): the script is loaded and users have state. @defaultValue 2 000 */
  warmup?: number;
  /** @defaultValue 2 000 */
  users?: number;
  /** @defaultValue 42 */
  seed?: number;
  /** Simulated days the feed (warm-up and measured) spans. @defaultValue 3 */
  days?: number;
  /** Functions listed, by their own Ir. @defaultValue 5 */
  top?: number;
  /**
   * Merchants (m-0 …) on the admission list, with an entry that ended before the feed: the lookup's cost without
   * changing a decision. The feed's merchants are m-0 … m-199. @defaultValue 0
   */
  listed?: number;
  /**
   * Open a credit account (invited, 15,000 CNY) for every user of the feed before the warm-up, so every charge is
   * checked and counted by credit_limit: its cost with accounts. @defaultValue false
   */
  accounts?: boolean;
  /** Copy the callgrind dump here (for callgrind_annotate or KCachegrind). */
  keepDump?: string;
  onProgress?: (line: string) => void;
}

export interface FunctionCost {
  function: string;
  /** The shared object or program it is in ("redis-server", "libc.so.6"). */
  object: string;
  /** Its own instructions (not those of what it calls). */
  ir: number;
  /** Of the total. */
  share: number;
}

export interface CallgrindResult {
  charges: number;
  warmup: number;
  users: number;
  seed: number;
  days: number;
  /** Script calls measured (runs of up to CHARGES_PER_CALL). */
  calls: number;
  /** Every instruction of redis-server during the measured calls. */
  totalIr: number;
  /** Of it, the timer's work (serverCron, inclusive): it follows wall time (about 0.5% here), not the charges. */
  timerIr: number;
  /** (totalIr − timerIr) ÷ charges: the number to compare. */
  irPerCharge: number;
  /** Inclusive Ir of EVALSHA (the script itself). */
  scriptIr: number;
  scriptIrPerCharge: number;
  topFunctions: FunctionCost[];
  /** Decisions of the measured charges, by outcome (duplicates and errors would show here too). */
  outcomes: Record<string, number>;
  redisVersion: string;
  valgrindVersion: string;
  /** Wall time of the measured part under callgrind. */
  measuredSeconds: number;
}

export function callgrindAvailable(): boolean {
  return spawnSync(VALGRIND, ['--version'], { stdio: 'ignore' }).status === 0 && spawnSync(CALLGRIND_CONTROL, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** The seeded feed with the clocks a replay's producer stamps. */
export function feedInputs(options: { count: number; users: number; seed: number; days: number }): ChargeInput[] {
  const events = [...syntheticCharges({ count: options.count, users: options.users, seed: options.seed, prefix: 'cg', startMs: START_MS, spanMs: options.days * DAY_MS })];
  let clockMs = -Infinity;
  return events.map((event) => {
    const occurredAtMs = Date.parse(event.occurredAt);
    // A replay's clock: the largest occurredAt so far (test/helpers/batch.ts).
    clockMs = Math.max(clockMs, occurredAtMs);
    return { event, occurredAtMs, clockMs };
  });
}

/** Script calls over the inputs, arguments computed up front, as the workers build them. */
function callsOf(inputs: ChargeInput[], rules: ChargeRules) {
  const calls: { keys: string[]; args: (string | number)[]; charges: number }[] = [];
  for (let i = 0; i < inputs.length; i += CHARGES_PER_CALL) {
    const run = inputs.slice(i, i + CHARGES_PER_CALL);
    // A fixed decision time (the run's clock), so the decisions' bytes are the same every time.
    calls.push({ ...rules.scriptCall(run, run[run.length - 1]!.clockMs), charges: run.length });
  }
  return calls;
}

/** The "1,234,567 (12.3%)  file:function [object]" lines of callgrind_annotate; a function's contexts ("call'2") summed. */
export function annotateLines(text: string): { ir: number; fn: string; object: string }[] {
  const byName = new Map<string, { ir: number; fn: string; object: string }>();
  for (const line of text.split('\n')) {
    const m = /^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.+?)(?:\s+\[(.+)\])?\s*$/.exec(line);
    if (!m || m[2] === 'PROGRAM TOTALS') continue;
    // "file:function" (the file is "???" without debug information); "'2" marks a recursion level.
    const fn = m[2]!.slice(m[2]!.lastIndexOf(':') + 1).replace(/'\d+$/, '');
    const object = m[3] ?? '?';
    const key = `${fn} ${object}`;
    const entry = byName.get(key) ?? byName.set(key, { ir: 0, fn, object }).get(key)!;
    entry.ir += Number(m[1]!.replace(/,/g, ''));
  }
  return [...byName.values()].sort((a, b) => b.ir - a.ir);
}

/**
 * A name for a function callgrind shows as an address (a static function: Debian's redis-server exports only the
 * rest, and links Lua in): "0x1613d0, after lua_close", the exported function before it. Needs nm (binutils).
 */
function nameAddresses(object: string): (fn: string) => string {
  const nm = spawnSync('nm', ['-D', '--defined-only', object], { encoding: 'utf8' });
  if (nm.status !== 0) return (fn) => fn;
  const symbols = nm.stdout
    .split('\n')
    .map((l) => /^([0-9a-f]+) [Tt] (\S+)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ at: parseInt(m[1]!, 16), name: m[2]! }))
    .sort((a, b) => a.at - b.at);
  return (fn) => {
    if (!/^0x[0-9a-f]+$/.test(fn)) return fn;
    const at = parseInt(fn, 16);
    const before = symbols.filter((s) => s.at <= at).pop();
    return `0x${at.toString(16)}${before ? `, after ${before.name}` : ''}`;
  };
}

/** The total Ir of a callgrind dump: its `summary:` line (what callgrind_annotate calls PROGRAM TOTALS). */
export function dumpTotal(text: string): number {
  const m = /^summary:\s+(\d+)/m.exec(text) ?? /^totals:\s+(\d+)/m.exec(text);
  if (!m) throw new Error('no summary: or totals: line in the callgrind dump');
  return Number(m[1]);
}

async function control(pid: number, ...args: string[]): Promise<void> {
  await run(CALLGRIND_CONTROL, [...args, String(pid)], { timeout: 120_000 });
}

export async function benchCallgrind(options: CallgrindOptions = {}): Promise<CallgrindResult> {
  const charges = options.charges ?? 20_000;
  const warmup = options.warmup ?? 2_000;
  const users = options.users ?? 2_000;
  const seed = options.seed ?? 42;
  const days = options.days ?? 3;
  const progress = options.onProgress ?? (() => undefined);
  if (!callgrindAvailable()) throw new Error(`${VALGRIND} and ${CALLGRIND_CONTROL} are needed (Debian/Ubuntu: apt-get install -y valgrind)`);

  const settings = loadSettings({ namespace: NAMESPACE, env: {} });
  const { config, configVersion, cardSecret } = settings;
  const calendar = new ZoneCalendar(config.timezone);
  // One shard: each call is the feed's next charges, as one shard's queue would give them (one slot per call).
  const rules = new ChargeRules({ config, configVersion, calendar, cards: new CardHasher(cardSecret), keys: new Keys(config.namespace, 1) });
  const inputs = feedInputs({ count: warmup + charges, users, seed, days });
  const warmCalls = callsOf(inputs.slice(0, warmup), rules);
  const measuredCalls = callsOf(inputs.slice(warmup), rules);

  const dir = mkdtempSync(join(tmpdir(), 'riskmon-callgrind-'));
  const outFile = join(dir, 'callgrind.out');
  let server: LocalRedis | undefined;
  let redis: Redis | undefined;
  try {
    progress('starting redis-server under callgrind (instrumentation off)');
    server = await startRedisServer({
      dir,
      prefix: [VALGRIND, '--tool=callgrind', `--callgrind-out-file=${outFile}`, '--instr-atstart=no'],
      // Rehashing only on the commands' own steps, not on the timer; no slow log (under valgrind every call is slow).
      args: ['--activerehashing', 'no', '--slowlog-log-slower-than', '-1'],
      startTimeoutMs: 60_000,
    });
    const pid = server.process.pid!;
    redis = createRedis(server.url, { name: 'bench-callgrind' });
    const evaluate = defineScript(redis, evaluateChargesScript);
    const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';
    const valgrindVersion = spawnSync(VALGRIND, ['--version'], { encoding: 'utf8' }).stdout.trim();

    const outcomes: Record<string, number> = {};
    const callAll = async (calls: typeof warmCalls, count?: Record<string, number>) => {
      for (const call of calls) {
        const replies = (await evaluate(redis!, call.keys, call.args)) as string[];
        for (const reply of replies) {
          // Outcomes only: a duplicate's local date (from the generation, here 0) is not read.
          const r = parseChargeReply(reply, 0);
          if (r.kind === 'error') throw new Error(`rules script failed: ${r.message}`);
          if (count) {
            const label = r.kind === 'new' ? r.summary.outcome : r.kind;
            count[label] = (count[label] ?? 0) + 1;
          }
        }
      }
    };
    const list = new Lists(redis, new Keys(config.namespace, 1), 0, new CardHasher(cardSecret)).merchants;
    for (let m = 0; m < (options.listed ?? 0); m++) {
      await list.add(`m-${m}`, { reason: 'benchmark: ended before the feed', by: 'bench', from: '2020-01-01T00:00:00Z', until: '2020-01-02T00:00:00Z' }, Date.parse('2020-01-01T00:00:00Z'));
    }
    if (options.accounts) {
      // Through the opening script, as the workers open them; opened before any charge of the feed.
      const open = defineScript(redis, openAccountScript);
      const k = new Keys(config.namespace, 1);
      const band = config.calibration.bands.invited;
      const openedAt = START_MS - DAY_MS;
      const pipeline = redis.pipeline();
      for (let u = 0; u < users; u++) {
        const userId = `u-${u}`;
        open(pipeline, [k.account(userId), k.accountIndex(0), k.appliedEvent(0, `open-${u}`), k.decision(0, `open-${u}`)], [`open-${u}`, userId, 'invited', band.maxFen, openedAt, new Date(openedAt).toISOString(), calendar.local(openedAt).date, band.minFen, band.maxFen, 86_400]);
      }
      await pipeline.exec();
    }
    progress(`warm-up: ${warmup} charges, ${users} users${options.listed ? `, ${options.listed} merchants listed` : ''}${options.accounts ? ', every user with a credit account' : ''}`);
    await redis.script('LOAD', evaluateChargesScript.lua);
    await callAll(warmCalls);

    progress(`measuring ${charges} charges (${measuredCalls.length} calls) with instrumentation on`);
    await control(pid, '--instr=on');
    await control(pid, '--zero');
    const started = performance.now();
    await callAll(measuredCalls, outcomes);
    const measuredSeconds = (performance.now() - started) / 1000;
    await control(pid, '--dump');

    const dumps = readdirSync(dir).filter((f) => /^callgrind\.out\.\d+$/.test(f)).sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop()));
    if (!dumps.length) throw new Error(`callgrind wrote no dump in ${dir}`);
    const dump = join(dir, dumps[dumps.length - 1]!);
    if (options.keepDump) copyFileSync(dump, options.keepDump);
    const totalIr = dumpTotal(readFileSync(dump, 'utf8'));
    const annotate = (...args: string[]) => run(CALLGRIND_ANNOTATE, ['--auto=no', '--threshold=100', ...args, dump], { maxBuffer: 64 << 20 }).then((r) => r.stdout);
    const self = annotateLines(await annotate());
    const inclusive = annotateLines(await annotate('--inclusive=yes'));
    const scriptIr = inclusive.find((f) => f.fn === SCRIPT_FUNCTION)?.ir;
    if (scriptIr === undefined) throw new Error(`${SCRIPT_FUNCTION} is not in the callgrind dump (no symbols for redis-server?)`);
    const timerIr = inclusive.find((f) => f.fn === TIMER_FUNCTION)?.ir ?? 0;
    const top = self.slice(0, options.top ?? 5);
    const names = new Map(top.map((f) => [f.object, nameAddresses(f.object)]));
    const perCharge = (ir: number) => Math.round((ir / charges) * 10) / 10;
    return {
      charges,
      warmup,
      users,
      seed,
      days,
      calls: measuredCalls.length,
      totalIr,
      timerIr,
      irPerCharge: perCharge(totalIr - timerIr),
      scriptIr,
      scriptIrPerCharge: perCharge(scriptIr),
      topFunctions: top.map((f) => ({
        function: names.get(f.object)!(f.fn),
        // Debian's redis-server is a link to redis-check-rdb, which callgrind names.
        object: basename(f.object) === 'redis-check-rdb' ? 'redis-server' : basename(f.object),
        ir: f.ir,
        share: Math.round((f.ir / totalIr) * 10_000) / 10_000,
      })),
      outcomes,
      redisVersion,
      valgrindVersion,
      measuredSeconds: Math.round(measuredSeconds * 10) / 10,
    };
  } finally {
    await redis?.quit().catch(() => redis?.disconnect());
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function renderCallgrind(r: CallgrindResult): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const width = Math.max(0, ...r.topFunctions.map((f) => f.function.length + f.object.length + 3));
  return [
    `${n(r.charges)} charges measured (${r.calls} calls of up to ${CHARGES_PER_CALL}) after ${n(r.warmup)} warm-up; ${n(r.users)} users, seed ${r.seed}, ${r.days} days`,
    `Redis instructions per charge: ${n(r.irPerCharge)} Ir`,
    `  inside EVALSHA (the script itself): ${n(r.scriptIrPerCharge)} Ir`,
    `  total ${n(r.totalIr)} Ir, of which the timer (serverCron, not counted above) ${n(r.timerIr)}`,
    `outcomes: ${JSON.stringify(r.outcomes)}`,
    `top ${r.topFunctions.length} functions by their own Ir:`,
    ...r.topFunctions.map((f) => `  ${`${f.function} (${f.object})`.padEnd(width)}  ${n(f.ir).padStart(14)}  ${(f.share * 100).toFixed(1)}%`),
    `${r.redisVersion === '?' ? 'Redis' : `Redis ${r.redisVersion}`}, ${r.valgrindVersion}; measured part ${r.measuredSeconds} s under callgrind`,
    '',
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runCommand(
    {
      name: 'bench:callgrind',
      summary:
        'Counts the Redis instructions per charge of the rules script with valgrind\'s callgrind (a private redis-server, a seeded synthetic feed, runs of CHARGES_PER_CALL as the workers call it): a number that repeats run to run, the speed gate of a change to the script.',
      usage: ['[options]'],
      options: {
        charges: { type: 'string', arg: 'N', default: '20000', help: 'charges measured' },
        warmup: { type: 'string', arg: 'N', default: '2000', help: 'charges before the measurement (script loaded, users with state)' },
        users: { type: 'string', arg: 'N', default: '2000', help: 'distinct users in the feed' },
        seed: { type: 'string', arg: 'N', default: '42', help: "the feed's seed" },
        days: { type: 'string', arg: 'N', default: '3', help: 'simulated days the feed spans' },
        top: { type: 'string', arg: 'N', default: '5', help: 'functions listed by their own instructions (0 for none)' },
        accounts: { type: 'boolean', help: 'open a credit account for every user first: credit_limit checks and counts every charge' },
        listed: { type: 'string', arg: 'N', default: '0', help: "merchants m-0 … on the admission list (entries that ended before the feed: the lookup's cost, the same decisions); the feed has m-0 … m-199" },
        'keep-dump': { type: 'string', arg: '<file>', help: 'copy the callgrind dump of the measured part there (callgrind_annotate, KCachegrind)' },
        json: { type: 'boolean', help: 'print the result as one JSON object' },
      },
      notes: [
        'Needs valgrind (Debian/Ubuntu: apt-get install -y valgrind) and redis-server. About 45 s with the defaults on 2 cores. Progress goes to stderr.',
        'The number to compare is "Redis instructions per charge": everything redis-server runs while the measured calls are in flight but its timer (serverCron), ÷ charges. It repeats to about 0.1% run to run; compare runs of the same options and the same Redis build only.',
      ],
      examples: ['npm run bench:callgrind', 'npm run bench:callgrind -- --charges 2000 --warmup 200 --json'],
    },
    async ({ values }) => {
      const result = await benchCallgrind({
        charges: wholeNumberOption('charges', values.charges, 20_000),
        warmup: wholeNumberOption('warmup', values.warmup, 2_000, { min: 0 }),
        users: wholeNumberOption('users', values.users, 2_000),
        seed: wholeNumberOption('seed', values.seed, 42, { min: 0 }),
        days: wholeNumberOption('days', values.days, 3, { max: 365 }),
        top: wholeNumberOption('top', values.top, 5, { min: 0 }),
        listed: wholeNumberOption('listed', values.listed, 0, { min: 0 }),
        accounts: values.accounts === true,
        keepDump: values['keep-dump'],
        onProgress: (line) => process.stderr.write(`bench:callgrind: ${line}\n`),
      });
      process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : renderCallgrind(result));
    },
  );
}
