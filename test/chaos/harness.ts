/**
 * Shared machinery of the hardening scenarios (test suite at small size, `npm run chaos` at full size):
 * real worker processes that can be killed, private Redis servers, a processor on an existing connection,
 * and the read-back of a namespace's state compared with the reference model.
 */
import { complaintHandler } from '../../src/cases/complaints.ts';
import { quotaHandlers } from '../../src/quota/events.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scanAll, SlotPipeline, type RedisClient } from '../../src/redis/client.ts';
import { deleteNamespace } from '../../src/redis/namespace.ts';
import { loadSettings, type Settings } from '../../src/config.ts';
import { DeadLetters } from '../../src/deadletter/dead-letters.ts';
import { claimLayout, EventClaims } from '../../src/decisions/claims.ts';
import { eventTimeLimits } from '../../src/events/event-time.ts';
import { parseDecision, type Decision } from '../../src/decisions/decision.ts';
import { CardHasher } from '../../src/events/card.ts';
import { silentLogger } from '../../src/logger.ts';
import { createPacer } from '../../src/pacing.ts';
import { Metrics } from '../../src/metrics.ts';
import { chargeHandler, RiskProcessor } from '../../src/pipeline/risk-processor.ts';
import { parseRuleState, ruleStateFields } from '../../src/rules/rule-state.ts';
import { Keys, riskQueueName } from '../../src/redis/keys.ts';
import { freePort } from '../../src/redis/local-server.ts';
import { ChargeRules } from '../../src/rules/charge-rules.ts';
import { SettlementLedger } from '../../src/settlement/ledger.ts';
import { ZoneCalendar } from '../../src/time/calendar.ts';
import type { ReferenceModel } from '../helpers/reference-model.ts';
import { compareStreamIds, dueSettlements } from '../helpers/shards.ts';
import { settlementLog } from '../helpers/settlement.ts';
import { DateTime } from 'luxon';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const TEST_CARD_SECRET = 'chaos-card-secret-0123456789abcdef';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns true; throws with `what` after `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A config file worker processes load (RISKMON_CONFIG), e.g. with short locks so redelivery takes seconds. */
export function writeConfigFile(overrides: unknown): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'riskmon-chaos-'));
  const path = join(dir, 'config.json');
  // Archiving is off unless a scenario asks for it: the checks read the decision streams the archiver trims.
  const o = (overrides ?? {}) as { archive?: object };
  writeFileSync(path, JSON.stringify({ ...o, archive: { enabled: false, dataDir: join(dir, 'archive'), ...o.archive } }));
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function chaosSettings(namespace: string, overrides: unknown = {}): Settings {
  return loadSettings({ namespace, overrides, env: { RISKMON_CARD_SECRET: TEST_CARD_SECRET } });
}

/** A RiskProcessor (and friends) wired as src/context.ts wires them, on a connection the caller owns. */
export function buildPipeline(redis: RedisClient, settings: Settings, metrics = new Metrics({ defaultMetrics: false })) {
  const { config, configVersion, cardSecret } = settings;
  const keys = new Keys(config.namespace, config.pipeline.shards);
  const calendar = new ZoneCalendar(config.timezone);
  const cards = new CardHasher(cardSecret);
  const rules = new ChargeRules({ config, configVersion, calendar, cards, keys });
  const deadLetters = new DeadLetters(redis, keys, config.retention.deadLetterMaxLen);
  const processor = new RiskProcessor({
    redis,
    keys,
    handlers: { charge: chargeHandler(redis, rules), ...quotaHandlers({ redis, config, keys, calendar }), complaint: complaintHandler({ redis, config, keys, calendar }) },
    deadLetters,
    timeLimits: eventTimeLimits(config.events),
    claims: new EventClaims(redis, keys, claimLayout(config)),
    cards,
    metrics,
    logger: silentLogger,
  });
  return { keys, calendar, cards, rules, deadLetters, processor, metrics, ledger: new SettlementLedger(redis, keys, calendar, config.settlement.fees, config.cases) };
}

// ---------------------------------------------------------------------------------------------------------------
// Service processes

export type Entry = 'risk-worker' | 'settlement-worker' | 'archiver' | 'main';

export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Every output line so far (stdout and stderr), pino JSON where it is a log line. */
  readonly lines: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
  kill(signal?: NodeJS.Signals): void;
  /** Lines whose pino `msg` equals `msg`. */
  count(msg: string): number;
  /** Resolves once a line contains `text`. */
  waitForLine(text: string, timeoutMs?: number): Promise<void>;
}

/** Starts `workers/<entry>.ts` as production does (`node --import tsx`), capturing its output. */
export function startServiceProcess(entry: Entry, env: Record<string, string | undefined>): ServiceProcess {
  // A key set to undefined is left out of the child's environment.
  const childEnv = Object.fromEntries(
    Object.entries({ PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'info', RISKMON_CARD_SECRET: TEST_CARD_SECRET, RISKMON_HTTP_PORT: '0', ...env }).filter(([, v]) => v !== undefined),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'workers', `${entry}.ts`)], {
    cwd: REPO_ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: { text: string; resolve: () => void }[] = [];
  const onData = (() => {
    let partial = '';
    return (chunk: Buffer) => {
      partial += chunk.toString('utf8');
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        for (const w of [...waiters]) {
          if (line.includes(w.text)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve();
          }
        }
      }
    };
  })();
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  return {
    child,
    pid: child.pid!,
    lines,
    exited,
    running: () => child.exitCode === null && child.signalCode === null,
    kill: (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    count: (msg) => lines.filter((l) => l.includes(`"msg":${JSON.stringify(msg)}`)).length,
    waitForLine(text, timeoutMs = 30_000) {
      if (lines.some((l) => l.includes(text))) return Promise.resolve();
      return new Promise<void>((resolvePromise, reject) => {
        const timer = setTimeout(() => reject(new Error(`no output line containing ${JSON.stringify(text)} within ${timeoutMs} ms:\n${lines.slice(-20).join('\n')}`)), timeoutMs);
        waiters.push({
          text,
          resolve: () => {
            clearTimeout(timer);
            resolvePromise();
          },
        });
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`process exited before printing ${JSON.stringify(text)}:\n${lines.slice(-20).join('\n')}`));
        });
      });
    },
  };
}

/** Stops processes (SIGTERM, then SIGKILL after `graceMs`) and waits for them. */
export async function stopAll(processes: ServiceProcess[], graceMs = 10_000): Promise<void> {
  await Promise.all(
    processes.map(async (p) => {
      if (!p.running()) return;
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
      await p.exited;
      clearTimeout(t);
    }),
  );
}

/** How many times a message was logged over all processes. */
export function countLogged(processes: ServiceProcess[], msg: string): number {
  return processes.reduce((n, p) => n + p.count(msg), 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Reading a namespace back

/** Every key matching `pattern` (a SCAN pattern), over every master. */
export async function scanKeys(redis: RedisClient, pattern: string): Promise<string[]> {
  const out: string[] = [];
  for await (const found of scanAll(redis, pattern, 5_000)) out.push(...found);
  return out;
}

/** Deletes every key of a namespace (shared test Redis: never FLUSHALL). */
export async function dropNamespace(redis: RedisClient, keys: Keys): Promise<void> {
  await deleteNamespace(redis, keys);
}

/** Every stored decision of every shard, by eventId. */
export async function readDecisions(redis: RedisClient, keys: Keys): Promise<Map<string, Decision>> {
  const out = new Map<string, Decision>();
  for (const { decision } of await readDecisionRecords(redis, keys)) out.set(decision.eventId, decision);
  return out;
}

/** Every stored decision with the shard whose key holds it (the decision keys of every shard). */
export async function readDecisionRecords(redis: RedisClient, keys: Keys): Promise<{ shard: number; decision: Decision }[]> {
  const out: { shard: number; decision: Decision }[] = [];
  for (const shard of keys.shardIds) {
    const prefix = keys.decision(shard, '');
    // A user's key could hold ":dec:" in its id: only keys of exactly this shape are decisions.
    const names = (await scanKeys(redis, `${prefix}*`)).filter((k) => k.startsWith(prefix));
    for (let i = 0; i < names.length; i += 1_000) {
      const values = await redis.mget(names.slice(i, i + 1_000));
      for (const v of values) if (v) out.push({ shard, decision: parseDecision(v) });
    }
  }
  return out;
}

/** One shard's decision stream in order, with the entries' ids. */
async function readShardStream(redis: RedisClient, keys: Keys, shard: number): Promise<{ id: string; decision: Decision }[]> {
  const out: { id: string; decision: Decision }[] = [];
  let start = '-';
  for (;;) {
    const rows = await redis.xrange(keys.decisionStream(shard), start, '+', 'COUNT', 10_000);
    for (const [id, fields] of rows) out.push({ id, decision: parseDecision(fields[1]!) });
    if (rows.length < 10_000) return out;
    start = `(${rows[rows.length - 1]![0]}`;
  }
}

/**
 * Every shard's decision stream, merged in stream-id order (one entry per new decision). A user's decisions are all
 * in its shard's stream, so each user's are in the order they were decided.
 */
export async function readDecisionStream(redis: RedisClient, keys: Keys): Promise<Decision[]> {
  return (await readDecisionStreams(redis, keys)).map((e) => e.decision);
}

/** Every shard's decision stream entries with their shard, merged in stream-id order. */
export async function readDecisionStreams(redis: RedisClient, keys: Keys): Promise<{ shard: number; id: string; decision: Decision }[]> {
  const perShard = await Promise.all(keys.shardIds.map(async (shard) => (await readShardStream(redis, keys, shard)).map((e) => ({ shard, ...e }))));
  return perShard.flat().sort((a, b) => compareStreamIds(a.id, b.id) || a.shard - b.shard);
}

/** Entries over every shard's decision stream. */
export async function decisionStreamLength(redis: RedisClient, keys: Keys): Promise<number> {
  const lengths = await Promise.all(keys.shardIds.map((s) => redis.xlen(keys.decisionStream(s))));
  return lengths.reduce((a, b) => a + b, 0);
}

/**
 * Transactions a settlement run will pay, over every shard's due set: not those a review case holds for a person
 * (score +inf: above four eyes past its deadline; nobody decides cases in these scenarios).
 */
export async function settlementsDue(redis: RedisClient, keys: Keys): Promise<number> {
  const counts = await Promise.all(keys.shardIds.map((s) => redis.zcount(keys.settlementDue(s), '-inf', '(+inf')));
  return counts.reduce((a, b) => a + b, 0);
}

export interface Verification {
  /** Human-readable differences; empty when the namespace is exactly what the model says. */
  problems: string[];
  decisions: number;
  streamEntries: number;
  usersChecked: number;
  cardWindowsChecked: number;
  settled: number;
  settledAmount: number;
}

export interface VerifyOptions {
  /** Settlement expected to be complete (everything due released into the ledger). @defaultValue false */
  settled?: boolean;
  /** Each user's decisions must appear in the stream in input order (ordered delivery). @defaultValue true */
  orderedPerUser?: boolean;
  /** Events in the order they were produced (first occurrence of an eventId is the one that counts). */
  input?: { eventId: string; userId: string }[];
  /** Dead letters the namespace should hold; a valid event dead-lettered is a lost event. @defaultValue 0 */
  deadLetters?: number;
}

/**
 * Compares a namespace with the model: each decision once (store and stream), outcomes and rules, day totals,
 * card windows, settlement schedule or ledger. The model must have been fed the events in evaluation order.
 */
export async function verifyNamespace(
  redis: RedisClient,
  keys: Keys,
  cards: CardHasher,
  model: ReferenceModel,
  options: VerifyOptions = {},
): Promise<Verification> {
  const problems: string[] = [];
  const note = (p: string) => {
    if (problems.length < 50) problems.push(p);
  };
  const records = await readDecisionRecords(redis, keys);
  const decisions = new Map(records.map(({ decision }) => [decision.eventId, decision]));
  const streamEntries = await readDecisionStreams(redis, keys);
  const stream = streamEntries.map((e) => e.decision);
  // Each decision, stored and streamed, in its user's shard (the slot of the rules call that made it).
  for (const { shard, decision } of records) {
    if (shard !== keys.shardOf(decision.userId)) note(`decision ${decision.eventId} of ${decision.userId} stored in shard ${shard}, expected ${keys.shardOf(decision.userId)}`);
  }
  if (records.length !== decisions.size) note(`decision records: ${records.length} keys for ${decisions.size} eventIds`);
  for (const { shard, decision } of streamEntries) {
    if (shard !== keys.shardOf(decision.userId)) note(`decision ${decision.eventId} of ${decision.userId} in the stream of shard ${shard}, expected ${keys.shardOf(decision.userId)}`);
  }

  const deadLetters = await redis.xlen(keys.deadLetter);
  if (deadLetters !== (options.deadLetters ?? 0)) {
    const reasons = (await redis.xrevrange(keys.deadLetter, '+', '-', 'COUNT', 3)).map(([, f]) => f[f.indexOf('reason') + 1]);
    note(`dead letters: ${deadLetters}, expected ${options.deadLetters ?? 0} (${reasons.join(' | ')})`);
  }
  if (decisions.size !== model.decisions.size) note(`decision records: ${decisions.size}, expected ${model.decisions.size}`);
  if (stream.length !== model.decisions.size) note(`decision stream entries: ${stream.length}, expected ${model.decisions.size}`);
  const seenInStream = new Set<string>();
  for (const d of stream) {
    if (seenInStream.has(d.eventId)) note(`eventId ${d.eventId} twice in the decision stream`);
    seenInStream.add(d.eventId);
  }

  for (const [eventId, expected] of model.decisions) {
    const got = decisions.get(eventId);
    if (!got) {
      note(`no decision for ${eventId}`);
      continue;
    }
    const expectedSettle = expected.settleAtMs === null ? null : new Date(expected.settleAtMs).toISOString();
    if (got.outcome !== expected.outcome || got.rules.join() !== expected.rules.join() || got.settleAt !== expectedSettle) {
      note(
        `${eventId}: service ${got.outcome} [${got.rules}] settle ${got.settleAt} (count ${got.observed.cardCount}, day ${got.observed.dayTotalBefore}); ` +
          `model ${expected.outcome} [${expected.rules}] settle ${expectedSettle} (count ${expected.cardCount}, day ${expected.dayTotalBefore})`,
      );
    }
  }

  if (options.orderedPerUser ?? true) {
    if (!options.input) throw new Error('orderedPerUser needs the input');
    const expectedOrder = new Map<string, string[]>();
    const first = new Set<string>();
    for (const e of options.input) {
      if (first.has(e.eventId)) continue;
      first.add(e.eventId);
      (expectedOrder.get(e.userId) ?? expectedOrder.set(e.userId, []).get(e.userId)!).push(e.eventId);
    }
    const actualOrder = new Map<string, string[]>();
    for (const d of stream) (actualOrder.get(d.userId) ?? actualOrder.set(d.userId, []).get(d.userId)!).push(d.eventId);
    for (const [user, ids] of expectedOrder) {
      if ((actualOrder.get(user) ?? []).join() !== ids.join()) note(`user ${user}: decided out of production order`);
    }
  }

  // Day totals and card windows, user by user (one pipeline per chunk of users).
  const users = model.users();
  let cardWindowsChecked = 0;
  for (let i = 0; i < users.length; i += 500) {
    const chunk = users.slice(i, i + 500);
    const pipe = new SlotPipeline(redis);
    for (const user of chunk) pipe.add(keys.ruleState(user), (p) => p.hgetall(keys.ruleState(user)));
    const replies = await pipe.exec();
    replies.forEach(([err, reply], j) => {
      const user = chunk[j]!;
      if (err) return note(`rule state of ${user}: ${err.message}`);
      const stored = parseRuleState(reply as Record<string, string>);
      const days = ruleStateFields({ days: stored.days, cards: new Map() });
      const expectedDays = model.dayTotalsHash(user);
      if (!sameRecord(days, expectedDays)) note(`day totals of ${user}: stored ${JSON.stringify(days)}, expected ${JSON.stringify(expectedDays)}`);
      const expectedCards = model.cardWindows(user);
      if (stored.cards.size !== expectedCards.length) note(`card windows of ${user}: ${stored.cards.size} stored, expected ${expectedCards.length}`);
      for (const { cardId, times } of expectedCards) {
        const token = cards.token(cardId);
        const got = stored.cards.get(token) ?? [];
        if (got.join() !== times.join()) note(`card window of ${user} card ${token}: stored [${got}], expected [${times}]`);
        cardWindowsChecked++;
      }
    });
  }

  // Settlement: either still scheduled exactly as the model says, or released exactly once into the ledger.
  const expectedDue = model.settlements();
  let settled = 0;
  let settledAmount = 0;
  const due = await dueSettlements(redis, keys);
  if (!options.settled) {
    const got = new Map<string, number>(due);
    if (due.length !== got.size) note(`settlement due sets: ${due.length} entries for ${got.size} eventIds`);
    if (got.size !== expectedDue.size) note(`settlement due set: ${got.size}, expected ${expectedDue.size}`);
    for (const [id, at] of expectedDue) if (got.get(id) !== at) note(`settlement of ${id}: ${got.get(id)}, expected ${at}`);
  } else {
    // Past every deadline a review case above four eyes still holds its charge (due at +inf) for a person.
    const waiting = model.order.filter((d) => d.settleAtMs !== null && model.waitsForPerson(d));
    for (const d of waiting) expectedDue.delete(d.eventId);
    const stillDue = due.filter(([id, at]) => !(at === Infinity && waiting.some((d) => d.eventId === id)));
    if (stillDue.length > 0) note(`${stillDue.length} settlements still due`);
    if (due.length - stillDue.length !== waiting.length) note(`${due.length - stillDue.length} settlements held for a person, expected ${waiting.length}`);
    // A run pays into the ledger of the date it runs (contract v1.1): the settlement log says which, one per charge.
    const log = await settlementLog(redis, keys);
    const markers: Record<string, string> = {};
    const perDate = new Map<string, number>();
    for (const { eventId, date } of log) {
      markers[eventId] = date;
      perDate.set(date, (perDate.get(date) ?? 0) + 1);
    }
    if (log.length !== Object.keys(markers).length) note(`settlement log: ${log.length} settlements for ${Object.keys(markers).length} eventIds`);
    if (Object.keys(markers).length !== expectedDue.size) note(`${Object.keys(markers).length} settled, expected ${expectedDue.size}`);
    const expectedLedger = new Map<string, Map<string, { count: number; amount: number }>>();
    for (const d of model.order) {
      if (d.settleAtMs === null || model.waitsForPerson(d)) continue;
      const date = markers[d.eventId];
      if (date === undefined) {
        note(`${d.eventId}: never settled`);
        continue;
      }
      const dueDate = DateTime.fromMillis(d.settleAtMs, { zone: model.params.zone }).toISODate()!;
      if (date < dueDate) note(`${d.eventId}: settled on ${date}, before its due date ${dueDate}`);
      const merchants = expectedLedger.get(date) ?? new Map<string, { count: number; amount: number }>();
      const m = merchants.get(d.merchantId) ?? { count: 0, amount: 0 };
      m.count++;
      m.amount += d.amount;
      merchants.set(d.merchantId, m);
      expectedLedger.set(date, merchants);
    }
    for (const [date, merchants] of expectedLedger) {
      // Added up over the shards (each shard pays its own users' charges into its own ledger).
      const ledger: Record<string, string> = {};
      const entries = perDate.get(date) ?? 0;
      for (const shard of keys.shardIds) {
        const part = await redis.hgetall(keys.ledger(shard, date));
        for (const [field, value] of Object.entries(part)) ledger[field] = String(Number(ledger[field] ?? 0) + Number(value));
      }
      let dateCount = 0;
      for (const [merchant, { count, amount }] of merchants) {
        dateCount += count;
        settled += Number(ledger[`${merchant}\tcount`] ?? 0);
        settledAmount += Number(ledger[`${merchant}\tamount`] ?? 0);
        if (ledger[`${merchant}\tcount`] !== String(count) || ledger[`${merchant}\tamount`] !== String(amount)) {
          note(`ledger ${date} ${merchant}: ${ledger[`${merchant}\tcount`]} / ${ledger[`${merchant}\tamount`]} fen, expected ${count} / ${amount}`);
        }
      }
      if (entries !== dateCount) note(`ledger ${date}: ${entries} transactions recorded, expected ${dateCount}`);
    }
    const stats: Record<string, string> = {};
    for (const shard of keys.shardIds) {
      for (const [field, value] of Object.entries(await redis.hgetall(keys.settlementStats(shard)))) stats[field] = String(Number(stats[field] ?? 0) + Number(value));
    }
    const expectedCount = expectedDue.size;
    if (Number(stats.settledCount ?? 0) !== expectedCount) note(`settledCount ${stats.settledCount}, expected ${expectedCount}`);
    const held = { heldCount: waiting.length, heldAmount: waiting.reduce((t, d) => t + d.amount, 0) };
    for (const k of ['scheduledCount', 'scheduledAmount', 'heldCount', 'heldAmount'] as const) {
      const expected = k === 'heldCount' || k === 'heldAmount' ? held[k] : 0;
      if (Number(stats[k] ?? 0) !== expected) note(`${k} is ${stats[k]} after everything settled, expected ${expected}`);
    }
  }

  return {
    problems,
    decisions: decisions.size,
    streamEntries: stream.length,
    usersChecked: users.length,
    cardWindowsChecked,
    settled,
    settledAmount,
  };
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/** A BullMQ key of risk queue `shard` (`wait`, `active`, `id`, a job id …): `<its prefix>:risk-<shard>:<suffix>`. */
export function riskQueueKey(keys: Keys, shard: number, suffix: string): string {
  return queueKey(keys, riskQueueName(shard), suffix);
}

/** A BullMQ key of queue `queueName`: `<its prefix>:<queueName>:<suffix>` (the prefix is per queue: its slot). */
export function queueKey(keys: Keys, queueName: string, suffix: string): string {
  return `${keys.queuePrefix(queueName)}:${queueName}:${suffix}`;
}

/** Jobs not yet finished over the risk queues of a namespace. */
export async function unfinishedJobs(redis: RedisClient, keys: Keys, shards: number): Promise<number> {
  const pipe = new SlotPipeline(redis);
  for (let s = 0; s < shards; s++) {
    pipe.add(riskQueueKey(keys, s, 'wait'), (p) =>
      p
        .llen(riskQueueKey(keys, s, 'wait'))
        .llen(riskQueueKey(keys, s, 'active'))
        .zcard(riskQueueKey(keys, s, 'prioritized'))
        .zcard(riskQueueKey(keys, s, 'delayed'))
        .llen(riskQueueKey(keys, s, 'paused')),
    );
  }
  const replies = await pipe.exec();
  return replies.reduce((n, [, v]) => n + Number(v), 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Fleets of service processes and paced producers

/** Service processes of one namespace that can be killed and replaced; keeps every process it ever started. */
export class Fleet {
  readonly all: ServiceProcess[] = [];
  private readonly live = new Map<number, { entry: Entry; process: ServiceProcess }>();
  private slot = 0;
  kills = 0;

  constructor(private readonly env: Record<string, string | undefined>) {}

  start(entry: Entry, count = 1): void {
    for (let i = 0; i < count; i++) this.add(entry, this.slot++);
  }

  private add(entry: Entry, slot: number): ServiceProcess {
    const p = startServiceProcess(entry, this.env);
    this.all.push(p);
    this.live.set(slot, { entry, process: p });
    return p;
  }

  /** kill -9 every live, started process of `entry` at once (whichever holds the batches dies) and restart them. */
  killAllAndRestart(entry: Entry): number {
    const slots = [...this.live.keys()].filter((s) => this.live.get(s)!.entry === entry && this.live.get(s)!.process.lines.some((l) => l.includes('riskmon started')));
    for (const slot of slots) {
      this.live.get(slot)!.process.kill('SIGKILL');
      this.kills++;
    }
    for (const slot of slots) this.add(entry, slot);
    return slots.length;
  }

  processes(): ServiceProcess[] {
    return [...this.live.values()].map((l) => l.process);
  }

  count(msg: string): number {
    return countLogged(this.all, msg);
  }

  /** Processes that exited on their own (not killed by us and not yet stopped): a crash we did not cause. */
  unexpectedExits(): string[] {
    return this.processes()
      .filter((p) => !p.running())
      .map((p) => `pid ${p.pid} exited: ${p.lines.slice(-5).join(' | ')}`);
  }

  stop(graceMs = 10_000): Promise<void> {
    return stopAll(this.processes(), graceMs);
  }
}

/**
 * Sends events at about `rate` per second (0: as fast as possible), flushing every `flushEvery`; stops early once
 * `until()` is true. Returns how many were sent.
 */
export async function paced<E>(
  producer: { send(e: E): void; flush(): Promise<void> },
  events: Iterable<E>,
  rate: number,
  flushEvery = 1_000,
  until: () => boolean = () => false,
): Promise<number> {
  const pacer = createPacer(rate);
  let n = 0;
  for (const e of events) {
    if (n % flushEvery === 0 && until()) break;
    producer.send(e);
    n++;
    if (n % flushEvery === 0) {
      await producer.flush();
      await pacer.wait(flushEvery);
    }
  }
  await producer.flush();
  return n;
}

// ---------------------------------------------------------------------------------------------------------------
// A TCP proxy in front of Redis, to make it unreachable without touching its data

export class TcpProxy {
  private server: Server;
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly port: number,
    private readonly targetPort: number,
  ) {
    this.server = this.createServer();
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(await freePort(), targetPort);
    await proxy.listen();
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  private createServer(): Server {
    return createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  /** Redis becomes unreachable: open connections are reset and new ones refused. */
  async cut(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.sockets) s.resetAndDestroy();
    await closed;
  }

  async restore(): Promise<void> {
    this.server = this.createServer();
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.listen();
      } catch (e) {
        if (attempt > 20) throw e;
        await sleep(100);
      }
    }
  }

  async stop(): Promise<void> {
    await this.cut().catch(() => undefined);
  }
}
