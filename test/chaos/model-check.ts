/**
 * Item 4, the model check, over event time (contract v1.1, issue 11): fast-check generates charge streams aimed at
 * the edges (duplicates with the same content written otherwise and with other content, exactly-window-apart
 * charges, local midnights, night starts and ends, day totals landing exactly on the cap, zones with DST and odd
 * offsets, varied rule settings) and at time: producer clocks that lag and lead, charges late within and beyond the
 * late tolerance, charges ahead within and beyond maxFutureSkewSeconds, back-dated beyond maxAgeDays (and exactly on
 * both bounds), interleaved users, gaps of days (weekly prunes, idle card windows). Each stream is one v2 batch with
 * an explicit clock per event, unclaimed, so the worker checks time and claims the eventIds itself; RiskProcessor
 * decides it on a real Redis, and the reference model (test/helpers/reference-model.ts) must agree on every result
 * (refusals included), every decision's outcome, rules, settleAt, cardCount and dayTotalBefore, the stored state
 * (day totals, card windows, prune date), the schedule and the ledger.
 *
 * Invariants checked on every stream from what Redis holds, whatever the model says: no user's non-declined total
 * of a local day exceeds the cap; no settleAt before the clock the charge was decided with, a review's not before
 * that clock + holdHours; a refused event leaves no decision and no claim behind; each eventId decided once.
 *
 * Each generated stream runs in its own fresh namespace; a property run processes many streams concurrently (one
 * Redis round trip per stream), so thousands of streams fit in seconds. Uses a private redis-server (flushed between
 * runs), never the shared one.
 */
import { claimLayout, EventClaims } from '../../src/decisions/claims.ts';
import fc from 'fast-check';
import { DateTime } from 'luxon';
import { Redis } from 'ioredis';
import type { BatchJobData, EventResult } from '../../src/pipeline/batch-job.ts';
import { startRedisServer } from '../../src/redis/local-server.ts';
import { parseRuleState } from '../../src/rules/rule-state.ts';
import { ReferenceModel, type ModelCharge, type ModelResult } from '../helpers/reference-model.ts';
import { buildPipeline, chaosSettings, readDecisions, verifyNamespace } from './harness.ts';
import { dueSettlements } from '../helpers/shards.ts';
import type { RedisClient } from '../../src/redis/client.ts';

export interface ModelCheckOptions {
  /** fast-check runs; each run checks `streamsPerRun` streams. */
  runs: number;
  streamsPerRun: number;
  seed?: number;
  /** Stop at the first failing run instead of shrinking it (shrinking a stream of streams can take many minutes). */
  endOnFailure?: boolean;
  /** Longest generated stream. @defaultValue 40 */
  maxEvents?: number;
}

export interface ModelCheckFigures {
  runs: number;
  streams: number;
  events: number;
  duplicates: number;
  decisions: Record<string, number>;
  ruleHits: Record<string, number>;
  nonDefaultConfigs: number;
  /** Events refused, by reason: event_time, id_conflict. */
  refused: Record<string, number>;
  /** New decisions by their time against the clock and the card (see `timeClass`). */
  timeClasses: Record<string, number>;
  /** Decisions outside the burst rule's guarantee (decided by the kept state, as the service must). */
  beyondGuarantee: number;
  /** Decisions on a card window thinned before them. */
  thinned: number;
  /** Settlements moved to the clock because T+1 had passed (late charges). */
  settledAtClock: number;
  seconds: number;
  seed: number;
}

export type RuleOverrides = {
  timezone: string;
  events: { maxFutureSkewSeconds: number; maxAgeDays: number };
  rules: {
    sameCardBurst: { windowSeconds: number; minCount: number; lateToleranceSeconds: number };
    nightLargeAmount: { from: string; to: string; minAmountFen: number };
    userDailyCap: { capFen: number };
  };
  settlement: { settleTime: string; delayDays: number; holdHours: number };
};

export const DEFAULT_RULES: RuleOverrides = {
  timezone: 'Asia/Shanghai',
  events: { maxFutureSkewSeconds: 300, maxAgeDays: 7 },
  rules: {
    sameCardBurst: { windowSeconds: 600, minCount: 3, lateToleranceSeconds: 3600 },
    nightLargeAmount: { from: '23:00', to: '02:00', minAmountFen: 500_000 },
    userDailyCap: { capFen: 5_000_000 },
  },
  settlement: { settleTime: '03:00', delayDays: 1, holdHours: 48 },
};

const variantRules: fc.Arbitrary<RuleOverrides> = fc.record({
  timezone: fc.constantFrom('Asia/Shanghai', 'America/New_York', 'Europe/London', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'UTC'),
  events: fc.record({ maxFutureSkewSeconds: fc.constantFrom(0, 300, 3_600), maxAgeDays: fc.constantFrom(1, 2, 7) }),
  rules: fc.record({
    sameCardBurst: fc.record({
      windowSeconds: fc.constantFrom(60, 600, 3_600),
      minCount: fc.integer({ min: 2, max: 4 }),
      lateToleranceSeconds: fc.constantFrom(0, 600, 3_600),
    }),
    nightLargeAmount: fc
      .constantFrom(['23:00', '02:00'], ['22:30', '06:00'], ['01:00', '05:00'], ['00:00', '00:30'])
      .chain(([from, to]) => fc.record({ from: fc.constant(from!), to: fc.constant(to!), minAmountFen: fc.constantFrom(500_000, 100_000) })),
    userDailyCap: fc.record({ capFen: fc.constantFrom(5_000_000, 1_000_000) }),
  }),
  settlement: fc.record({
    settleTime: fc.constantFrom('03:00', '02:30', '00:00', '23:59'),
    delayDays: fc.constantFrom(0, 1, 2),
    holdHours: fc.constantFrom(0, 48),
  }),
});

const rulesArb = fc.oneof({ weight: 3, arbitrary: fc.constant(DEFAULT_RULES) }, { weight: 2, arbitrary: variantRules });

/**
 * Where an event's occurredAt lies. "now": the stream's time; "late": behind its card's newest charge by a fraction
 * of the tolerance; "lateBeyond": further back than the tolerance; "future": ahead of the clock by a fraction of the
 * allowed skew; "futureBeyond": further ahead; "old": behind the clock by more than maxAge; "edge": exactly on a
 * bound of the acceptance window (d = 0) or 1 ms outside it (d = 1).
 */
type TimeRecipe =
  | { kind: 'now' }
  | { kind: 'late' | 'future'; frac: number }
  | { kind: 'lateBeyond' | 'futureBeyond' | 'old'; byMs: number }
  | { kind: 'edge'; bound: 'ahead' | 'behind'; d: 0 | 1 };

/** One event's recipe; the stream is folded from recipes so that shrinking keeps streams meaningful. */
interface Recipe {
  user: number;
  card: number;
  merchant: number;
  /** How far the stream's time moves before this event (ms). */
  step: number;
  /** The producer's clock against the stream's time: lagging (< 0) or leading (> 0), ms. */
  skew: number;
  time: TimeRecipe;
  amount: number;
  /** Re-send an earlier event: the same content (possibly written otherwise) or other content. */
  dup: { index: number; same: boolean; change: number } | null;
  offset: string;
  /** How the card is written: all forms are one card. */
  cardForm: number;
}

export function streamArb(r: RuleOverrides, maxEvents: number): fc.Arbitrary<{ anchor: number; recipes: Recipe[] }> {
  const w = r.rules.sameCardBurst.windowSeconds * 1000;
  const cap = r.rules.userDailyCap.capFen;
  const night = r.rules.nightLargeAmount.minAmountFen;
  const step = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(0, 1, 999, 1_000, w - 1, w, w + 1, Math.floor(w / 2)) },
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 30 * 60_000 }) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 6 * 3_600_000 }) },
    // Days: weekly prunes, idle card windows, day totals past retention.
    { weight: 1, arbitrary: fc.integer({ min: 86_400_000, max: 9 * 86_400_000 }) },
  );
  const skew = fc.oneof(
    { weight: 6, arbitrary: fc.constant(0) },
    { weight: 2, arbitrary: fc.integer({ min: -120_000, max: 120_000 }) },
    { weight: 1, arbitrary: fc.integer({ min: -3 * 3_600_000, max: 3 * 3_600_000 }) },
  );
  const time: fc.Arbitrary<TimeRecipe> = fc.oneof(
    { weight: 12, arbitrary: fc.constant({ kind: 'now' as const }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('late' as const), frac: fc.oneof(fc.constantFrom(0, 1), fc.double({ min: 0, max: 1, noNaN: true })) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('lateBeyond' as const), byMs: fc.oneof(fc.constantFrom(1, w, w + 1), fc.integer({ min: 1, max: 2 * 86_400_000 })) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('future' as const), frac: fc.oneof(fc.constantFrom(0, 1), fc.double({ min: 0, max: 1, noNaN: true })) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('futureBeyond' as const), byMs: fc.oneof(fc.constantFrom(1, 1_000), fc.integer({ min: 1, max: 60 * 86_400_000 })) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('old' as const), byMs: fc.oneof(fc.constantFrom(1, 1_000), fc.integer({ min: 1, max: 400 * 86_400_000 })) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('edge' as const), bound: fc.constantFrom('ahead' as const, 'behind' as const), d: fc.constantFrom(0 as const, 1 as const) }) },
  );
  const amount = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(1, night - 1, night, cap / 2, cap / 4, cap / 5, cap, cap - 1, cap + 1, 100_000_000) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: cap }) },
    { weight: 4, arbitrary: fc.integer({ min: 1, max: Math.min(night, cap) - 1 }) },
  );
  const recipeFields = {
    user: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 2 }) }),
    card: fc.integer({ min: 0, max: 1 }),
    merchant: fc.integer({ min: 0, max: 2 }),
    step,
    skew,
    time,
    amount,
    dup: sometimes(fc.record({ index: fc.nat(), same: fc.boolean(), change: fc.nat({ max: 4 }) }), 6),
    offset: fc.constantFrom('+08:00', 'Z', '-05:00', '+05:45'),
    cardForm: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }) }),
  };
  const recipe: fc.Arbitrary<Recipe> = fc.record(recipeFields);
  // Start near an edge of the local day: midnight, the night window's ends, the settlement time, or noon.
  const anchor = fc
    .record({
      day: fc.integer({ min: 0, max: 3 * 365 }),
      at: fc.constantFrom('00:00', r.rules.nightLargeAmount.from, r.rules.nightLargeAmount.to, r.settlement.settleTime, '12:00'),
      shift: fc.oneof(fc.constantFrom(0, -1, 1, -1_000, -w, -w - 1, -w + 1), fc.integer({ min: -3 * 3_600_000, max: 3_600_000 })),
    })
    .map(({ day, at, shift }) => {
      const [h, m] = at.split(':').map(Number) as [number, number];
      return DateTime.fromObject({ year: 2023, month: 1, day: 1, hour: h, minute: m }, { zone: r.timezone }).plus({ days: day }).toMillis() + shift;
    });
  // One stream in six hammers a single card: its window grows past thinAbove and is thinned.
  const hammer = fc.record({ ...recipeFields, user: fc.constant(0), card: fc.constant(0), step: fc.constantFrom(0, 1, 1_000, Math.floor(w / 10), Math.floor(w / 3)) });
  const recipes = fc.oneof(
    { weight: 5, arbitrary: fc.array(recipe, { minLength: 1, maxLength: maxEvents, size: 'medium' }) },
    { weight: 1, arbitrary: fc.array(hammer, { minLength: 1, maxLength: 2 * maxEvents, size: 'medium' }) },
  );
  return fc.record({ anchor, recipes });
}

/** `arb` once in `1 + oneIn` times, else null. */
function sometimes<T>(arb: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: oneIn, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });
}

/** A card number written another way: with spaces, with dashes, in full-width digits (all one card). */
function writeCard(card: string, form: number): string {
  if (form === 1) return card.replace(/(\d{4})(?=\d)/g, '$1 ');
  if (form === 2) return card.replace(/(\d{4})(?=\d)/g, '$1-');
  if (form === 3) return card.replace(/\d/g, (d) => String.fromCharCode(0xff10 + Number(d)));
  return card;
}

export interface StreamEvent {
  event: ModelCharge;
  /** The producer's clock stamped on it. */
  clockMs: number;
}

/** Folds recipes into events with their clocks: the stream's time, clock skews, event times, repeats. */
export function foldStream(r: RuleOverrides, anchor: number, recipes: Recipe[], tag: string): StreamEvent[] {
  const tolerance = r.rules.sameCardBurst.lateToleranceSeconds * 1000;
  const maxSkew = r.events.maxFutureSkewSeconds * 1000;
  const maxAge = r.events.maxAgeDays * 86_400_000;
  const out: StreamEvent[] = [];
  const cardMax = new Map<string, number>();
  let now = anchor;
  recipes.forEach((rc, i) => {
    now += rc.step;
    const clockMs = now + rc.skew;
    if (rc.dup && out.length > 0) {
      const original = out[rc.dup.index % out.length]!.event;
      const t = Date.parse(original.occurredAt);
      let copy: ModelCharge;
      if (rc.dup.same) {
        // The same content written otherwise: the instant in another offset, the card with separators.
        copy = { ...original, occurredAt: iso(t, rc.offset), cardId: writeCard(modelDigits(original.cardId), rc.cardForm) };
      } else {
        const changes: Partial<ModelCharge>[] = [
          { amount: original.amount > 1 ? original.amount - 1 : 2 },
          { merchantId: `${original.merchantId}x` },
          { occurredAt: iso(t + 1_000, rc.offset) },
          { userId: `u${(Number(original.userId.slice(1)) + 1) % 3}` },
          { cardId: `62220200000000${rc.user}${(rc.card + 1) % 2}9` },
        ];
        copy = { ...original, ...changes[rc.dup.change % changes.length] };
      }
      out.push({ event: copy, clockMs });
      return;
    }
    const card = `62220200000000${rc.user}${rc.card}`;
    const newest = cardMax.get(card) ?? now;
    const tm = rc.time;
    let t: number;
    switch (tm.kind) {
      case 'now':
        t = now;
        break;
      case 'late':
        t = newest - Math.floor(tm.frac * tolerance);
        break;
      case 'lateBeyond':
        t = newest - tolerance - tm.byMs;
        break;
      case 'future':
        t = clockMs + Math.floor(tm.frac * maxSkew);
        break;
      case 'futureBeyond':
        t = clockMs + maxSkew + tm.byMs;
        break;
      case 'old':
        t = clockMs - maxAge - tm.byMs;
        break;
      case 'edge':
        t = tm.bound === 'ahead' ? clockMs + maxSkew + tm.d : clockMs - maxAge - tm.d;
        break;
    }
    cardMax.set(card, Math.max(newest, t));
    out.push({
      event: {
        eventId: `${tag}-e${i}`,
        userId: `u${rc.user}`,
        merchantId: `m${rc.merchant}`,
        cardId: writeCard(card, rc.cardForm),
        amount: rc.amount,
        occurredAt: iso(t, rc.offset),
      },
      clockMs,
    });
  });
  return out;
}

function modelDigits(card: string): string {
  return card.normalize('NFKC').replace(/\D/g, '');
}

function iso(ms: number, offset: string): string {
  const zone = offset === 'Z' ? 'UTC' : `UTC${offset}`;
  const s = DateTime.fromMillis(ms, { zone }).toISO({ includeOffset: true })!;
  return offset === 'Z' ? s.replace(/\+00:00$/, 'Z') : s;
}

/** A v2 batch with one explicit clock per event, unclaimed: the worker checks time and claims the ids itself. */
export function clockedBatch(stream: StreamEvent[]): BatchJobData {
  return { v: 2, events: stream.map((s) => ({ type: 'charge', ...s.event })), clocks: stream.map((s) => s.clockMs), claimed: false, enqueuedAt: Date.now() };
}

/** How a new decision's time relates to its clock and its card (for the figures: the generator must reach each). */
function timeClass(r: ModelResult & { kind: 'new' }, p: ReferenceModel['params']): string {
  const d = r.decision;
  if (d.occurredAtMs > d.clockMs) return 'ahead of the clock';
  if (!d.withinGuarantee) return 'beyond the late tolerance';
  if (d.clockMs - d.occurredAtMs > p.lateToleranceMs) return 'behind the clock beyond the tolerance, within its card';
  if (d.occurredAtMs < d.clockMs) return 'behind the clock within the tolerance';
  return 'on the clock';
}

export async function modelCheck(options: ModelCheckOptions): Promise<ModelCheckFigures> {
  const seed = options.seed ?? Date.now() % 1_000_000;
  const server = await startRedisServer();
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  const figures: ModelCheckFigures = {
    runs: 0,
    streams: 0,
    events: 0,
    duplicates: 0,
    decisions: {},
    ruleHits: {},
    nonDefaultConfigs: 0,
    refused: {},
    timeClasses: {},
    beyondGuarantee: 0,
    thinned: 0,
    settledAtClock: 0,
    seconds: 0,
    seed,
  };
  const add = (into: Record<string, number>, key: string, n = 1) => (into[key] = (into[key] ?? 0) + n);
  const started = performance.now();
  let round = 0;
  try {
    const streamCase = rulesArb.chain((r) => streamArb(r, options.maxEvents ?? 40).map((s) => ({ r, ...s })));
    await fc.assert(
      fc.asyncProperty(fc.array(streamCase, { minLength: options.streamsPerRun, maxLength: options.streamsPerRun }), async (cases) => {
        round++;
        await redis.flushall();
        const outcomes = await Promise.all(cases.map((c, i) => checkStream(redis, c.r, c.anchor, c.recipes, `r${round}s${i}`)));
        const failure = outcomes.find((o) => o.problems.length > 0);
        if (failure) {
          throw new Error(
            `stream disagrees with the model:\n  ${failure.problems.slice(0, 8).join('\n  ')}\nevents (with their clocks):\n` +
              failure.stream.map((s) => `${JSON.stringify(s.event)} clock ${new Date(s.clockMs).toISOString()}`).join('\n'),
          );
        }
        figures.runs++;
        for (const [i, o] of outcomes.entries()) {
          figures.streams++;
          figures.events += o.stream.length;
          if (cases[i]!.r !== DEFAULT_RULES) figures.nonDefaultConfigs++;
          const p = o.model.params;
          for (const res of o.results) {
            if (res.kind === 'refused') add(figures.refused, res.reason);
            else if (res.kind === 'duplicate') figures.duplicates++;
            else {
              const d = res.decision;
              add(figures.decisions, d.outcome);
              for (const rule of d.rules) add(figures.ruleHits, rule);
              add(figures.timeClasses, timeClass(res, p));
              if (!d.withinGuarantee) figures.beyondGuarantee++;
              if (d.thinned) figures.thinned++;
              if (d.settleAtMs !== null && d.settleAtMs === d.clockMs + (d.outcome === 'review' ? p.holdHours * 3_600_000 : 0)) figures.settledAtClock++;
            }
          }
        }
      }),
      { numRuns: options.runs, seed, endOnFailure: options.endOnFailure ?? false },
    );
  } finally {
    redis.disconnect();
    await server.stop();
  }
  figures.seconds = (performance.now() - started) / 1000;
  return figures;
}

async function checkStream(redis: RedisClient, r: RuleOverrides, anchor: number, recipes: Recipe[], namespace: string) {
  const settings = chaosSettings(namespace, r);
  const { processor, keys, cards, ledger } = buildPipeline(redis, settings);
  const stream = foldStream(r, anchor, recipes, namespace);
  const model = ReferenceModel.fromConfig(settings.config);
  const got = await processor.process(clockedBatch(stream), `model:${namespace}`);
  const results = stream.map((s) => model.applyAt(s.event, s.clockMs));
  const problems = compareResults(stream, results, got, model);
  if (problems.length === 0) problems.push(...(await checkStored(redis, settings.config, keys, cards, model, stream, results)));
  if (problems.length === 0) {
    // A run at X pays into X's date: run at each due time in turn, as a ticking worker would.
    const due = await dueSettlements(redis, keys);
    for (const at of [...new Set(due.map(([, at]) => at))].sort((a, b) => a - b)) await ledger.releaseDue(at);
    const released = await verifyNamespace(redis, keys, cards, model, { input: accepted(stream, results), settled: true, deadLetters: refusedCount(results) });
    problems.push(...released.problems);
  }
  return { problems, stream, results, model };
}

function accepted(stream: StreamEvent[], results: ModelResult[]): ModelCharge[] {
  return stream.filter((_, i) => results[i]!.kind !== 'refused').map((s) => s.event);
}

function refusedCount(results: ModelResult[]): number {
  return results.filter((r) => r.kind === 'refused').length;
}

/** Each event's result from the processor against the model's: refusals (and why), outcomes, rules, settleAt. */
export function compareResults(stream: StreamEvent[], results: ModelResult[], got: EventResult[], model: ReferenceModel): string[] {
  const problems: string[] = [];
  const zone = model.params.zone;
  stream.forEach((s, i) => {
    const want = results[i]!;
    const g = got[i];
    const head = `event ${i} ${s.event.eventId} (${s.event.occurredAt}, clock ${new Date(s.clockMs).toISOString()}, ${s.event.amount} fen, zone ${zone})`;
    if (want.kind === 'refused') {
      // A conflict names the fields whose hashes differ: the model's, less one in 64 of them.
      const named = /^eventId reused with other content: (?:it differs|(.+?) differs?) from/.exec(g?.error ?? '');
      const namesAgree = named !== null && (named[1]?.split(', ') ?? []).every((f) => want.fields.includes(f));
      const agrees = want.reason === 'event_time' ? /^occurredAt is .* (ahead of|behind) the producer's clock/.test(g?.error ?? '') : namesAgree;
      if (g?.outcome !== 'rejected' || !agrees) problems.push(`${head}: service ${g?.outcome} (${g?.error}); model refuses it (${want.reason} ${want.fields})`);
      return;
    }
    const d = want.decision;
    const settleAt = d.settleAtMs === null ? null : new Date(d.settleAtMs).toISOString();
    if (!g || g.outcome !== d.outcome || (g.rules ?? []).join() !== d.rules.join() || (g.settleAt ?? null) !== settleAt) {
      problems.push(
        `${head}${want.kind === 'duplicate' ? ', duplicate' : ''}: service ${g?.outcome} [${g?.rules}] ${g?.settleAt} ${g?.error ?? ''}; ` +
          `model ${d.outcome} [${d.rules}] ${settleAt} (count ${d.cardCount}, full count ${d.fullCardCount}, ${d.withinGuarantee ? 'within' : 'beyond'} the guarantee, day before ${d.dayTotalBefore})`,
      );
    }
  });
  return problems;
}

/**
 * What Redis holds after the stream: every decision record equal to the model's (observed counts included), the
 * prune dates, then the invariants, then the namespace as a whole (verifyNamespace: stream, day totals, card
 * windows, schedule, dead letters).
 */
export async function checkStored(
  redis: RedisClient,
  config: ReturnType<typeof chaosSettings>['config'],
  keys: ReturnType<typeof buildPipeline>['keys'],
  cards: ReturnType<typeof buildPipeline>['cards'],
  model: ReferenceModel,
  stream: StreamEvent[],
  results: ModelResult[],
): Promise<string[]> {
  const problems: string[] = [];
  const stored = await readDecisions(redis, keys);
  for (const [id, d] of model.decisions) {
    const s = stored.get(id);
    if (!s) continue; // verifyNamespace names it
    if (s.observed.cardCount !== d.cardCount || s.observed.dayTotalBefore !== d.dayTotalBefore || s.observed.creditAvailable !== d.creditAvailable || s.observed.localDate !== d.localDate) {
      problems.push(`${id}: stored observed ${JSON.stringify(s.observed)}; model count ${d.cardCount} (full ${d.fullCardCount}), day before ${d.dayTotalBefore}, date ${d.localDate}`);
    }
    // The model's own promise: where the rule as written holds and nothing was thinned, the kept window saw all.
    if (d.withinGuarantee && !d.thinned && d.cardCount !== d.fullCardCount) problems.push(`${id}: kept window saw ${d.cardCount} of ${d.fullCardCount} charges within the guarantee`);
  }
  for (const user of model.users()) {
    const p = await redis.hget(keys.ruleState(user), 'p');
    if ((p ?? undefined) !== model.prunedOnOf(user)) problems.push(`prune date of ${user}: stored ${p}, model ${model.prunedOnOf(user)}`);
  }
  problems.push(...invariants(config, stored, stream, results));
  // Refused events change nothing: an id never accepted has neither a decision nor a claim.
  const acceptedIds = new Set(accepted(stream, results).map((e) => e.eventId));
  const claims = new EventClaims(redis, keys, claimLayout(config));
  for (const [i, r] of results.entries()) {
    const id = stream[i]!.event.eventId;
    if (r.kind !== 'refused' || acceptedIds.has(id)) continue;
    // No shard holds a decision of it (its user's shard is the one that would).
    const [decs, claim] = await Promise.all([Promise.all(keys.shardIds.map((shard) => redis.exists(keys.decision(shard, id)))), claims.held(id, r.clockMs).then((held) => held !== null)]);
    const dec = decs.some((n) => n > 0);
    if (dec || claim) problems.push(`${id} was refused (${r.reason}) yet left ${dec ? 'a decision' : ''}${dec && claim ? ' and ' : ''}${claim ? 'a claim' : ''}`);
  }
  const scheduled = await verifyNamespace(redis, keys, cards, model, { input: accepted(stream, results), deadLetters: refusedCount(results) });
  problems.push(...scheduled.problems);
  return problems;
}

/** The money-safety invariants over what the service stored, independent of the model's decisions. */
export function invariants(
  config: ReturnType<typeof chaosSettings>['config'],
  stored: Awaited<ReturnType<typeof readDecisions>>,
  stream: StreamEvent[],
  results: ModelResult[],
): string[] {
  const problems: string[] = [];
  const cap = config.rules.userDailyCap.capFen;
  const holdMs = config.settlement.holdHours * 3_600_000;
  const dayTotals = new Map<string, number>();
  for (const d of stored.values()) {
    if (d.outcome === 'decline') continue;
    const key = `${d.userId} ${d.observed.localDate}`;
    dayTotals.set(key, (dayTotals.get(key) ?? 0) + d.amount);
  }
  for (const [key, fen] of dayTotals) if (fen > cap) problems.push(`invariant: ${key} has ${fen} fen not declined, over the cap of ${cap}`);
  // The clock each decision was made with: its first accepted occurrence's.
  const clockOf = new Map<string, number>();
  stream.forEach((s, i) => {
    if (results[i]!.kind === 'new') clockOf.set(s.event.eventId, s.clockMs);
  });
  for (const d of stored.values()) {
    const clock = clockOf.get(d.eventId);
    if (clock === undefined) {
      problems.push(`invariant: ${d.eventId} decided although no occurrence of it was accepted`);
      continue;
    }
    if (d.settleAt === null) continue;
    const at = Date.parse(d.settleAt);
    if (at < clock) problems.push(`invariant: ${d.eventId} settles at ${d.settleAt}, before its clock ${new Date(clock).toISOString()}`);
    if (d.outcome === 'review' && at < clock + holdMs) problems.push(`invariant: ${d.eventId} under review settles at ${d.settleAt}, before its clock + ${config.settlement.holdHours} h`);
  }
  return problems;
}
