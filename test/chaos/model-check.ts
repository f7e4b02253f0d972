/**
 * Item 4, the model check: fast-check generates charge streams aimed at the edges (duplicates with the same or other
 * content, exactly-window-apart charges, local midnights, night starts and ends, day totals landing exactly on the
 * cap, late events within the configured tolerance, zones with DST and odd offsets, varied rule settings), the
 * service decides them through RiskProcessor on a real Redis, and the reference model must agree on every decision,
 * on the stored state and on the settlement ledger.
 *
 * Each generated stream runs in its own fresh namespace; a property run processes many streams concurrently (one
 * Redis round trip per stream), so thousands of streams fit in seconds. Uses a private redis-server (flushed between
 * runs), never the shared one.
 */
import fc from 'fast-check';
import { DateTime } from 'luxon';
import { Redis } from 'ioredis';
import { startRedisServer } from '../../src/redis/local-server.ts';
import { ReferenceModel, type ModelCharge } from '../helpers/reference-model.ts';
import { buildPipeline, chaosSettings, verifyNamespace } from './harness.ts';
import { testBatch } from '../helpers/batch.ts';

export interface ModelCheckOptions {
  /** fast-check runs; each run checks `streamsPerRun` streams. */
  runs: number;
  streamsPerRun: number;
  seed?: number;
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
  seconds: number;
  seed: number;
}

type RuleOverrides = {
  timezone: string;
  rules: {
    sameCardBurst: { windowSeconds: number; minCount: number; lateToleranceSeconds: number };
    nightLargeAmount: { from: string; to: string; minAmountFen: number };
    userDailyCap: { capFen: number };
  };
  settlement: { settleTime: string; delayDays: number; holdHours: number };
};

const DEFAULT_RULES: RuleOverrides = {
  timezone: 'Asia/Shanghai',
  rules: {
    sameCardBurst: { windowSeconds: 600, minCount: 3, lateToleranceSeconds: 3600 },
    nightLargeAmount: { from: '23:00', to: '02:00', minAmountFen: 500_000 },
    userDailyCap: { capFen: 5_000_000 },
  },
  settlement: { settleTime: '03:00', delayDays: 1, holdHours: 48 },
};

const variantRules: fc.Arbitrary<RuleOverrides> = fc.record({
  timezone: fc.constantFrom('Asia/Shanghai', 'America/New_York', 'Europe/London', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'UTC'),
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

/** One event's recipe; the stream is folded from recipes so that shrinking keeps streams meaningful. */
interface Recipe {
  user: number;
  card: number;
  merchant: number;
  /** How far the stream clock moves before this event (ms). */
  step: number;
  /** 0–1: how late the event is, as a fraction of the late tolerance; null: on time. */
  late: number | null;
  amount: number;
  /** Re-send an earlier event (same content or not). */
  dup: { index: number; same: boolean } | null;
  offset: string;
}

function streamArb(r: RuleOverrides, maxEvents: number): fc.Arbitrary<{ anchor: number; recipes: Recipe[] }> {
  const w = r.rules.sameCardBurst.windowSeconds * 1000;
  const cap = r.rules.userDailyCap.capFen;
  const night = r.rules.nightLargeAmount.minAmountFen;
  const step = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(0, 1, 999, 1_000, w - 1, w, w + 1, Math.floor(w / 2)) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 30 * 60_000 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 6 * 3_600_000 }) },
  );
  const amount = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(1, night - 1, night, cap / 2, cap / 4, cap / 5, cap, cap - 1, cap + 1, 100_000_000) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: cap }) },
    { weight: 4, arbitrary: fc.integer({ min: 1, max: Math.min(night, cap) - 1 }) },
  );
  const recipe: fc.Arbitrary<Recipe> = fc.record({
    user: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 2 }) }),
    card: fc.integer({ min: 0, max: 1 }),
    merchant: fc.integer({ min: 0, max: 2 }),
    step,
    late: sometimes(fc.double({ min: 0, max: 1, noNaN: true }), 5),
    amount,
    dup: sometimes(fc.record({ index: fc.nat(), same: fc.boolean() }), 6),
    offset: fc.constantFrom('+08:00', 'Z', '-05:00', '+05:45'),
  });
  // Start near an edge of the local day: midnight, the night window's ends, the settlement time, or noon.
  const anchor = fc
    .record({
      day: fc.integer({ min: 0, max: 3 * 365 }),
      at: fc.constantFrom('00:00', r.rules.nightLargeAmount.from, r.rules.nightLargeAmount.to, r.settlement.settleTime, '12:00'),
      shift: fc.oneof(fc.constantFrom(0, -1, 1, -1_000, -w, -w - 1, -w + 1), fc.integer({ min: -3 * 3_600_000, max: 3_600_000 })),
    })
    .map(({ day, at, shift }) => {
      const [h, m] = at.split(':').map(Number) as [number, number];
      return DateTime.fromObject({ year: 2025, month: 1, day: 1, hour: h, minute: m }, { zone: r.timezone }).plus({ days: day }).toMillis() + shift;
    });
  return fc.record({ anchor, recipes: fc.array(recipe, { minLength: 1, maxLength: maxEvents, size: 'medium' }) });
}

/** `arb` once in `1 + oneIn` times, else null. */
function sometimes<T>(arb: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: oneIn, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });
}

/** Folds recipes into events: a stream clock, per-user lateness within tolerance, duplicates of earlier events. */
export function foldStream(r: RuleOverrides, anchor: number, recipes: Recipe[], tag: string): ModelCharge[] {
  const tolerance = r.rules.sameCardBurst.lateToleranceSeconds * 1000;
  const events: ModelCharge[] = [];
  const userMax = new Map<number, number>();
  let clock = anchor;
  recipes.forEach((rc, i) => {
    if (rc.dup && events.length > 0) {
      const original = events[rc.dup.index % events.length]!;
      events.push(rc.dup.same ? { ...original } : { ...original, amount: rc.amount, merchantId: `m${rc.merchant}` });
      return;
    }
    clock += rc.step;
    const max = userMax.get(rc.user) ?? clock;
    const t = rc.late === null ? clock : Math.max(max - Math.floor(rc.late * tolerance), anchor);
    userMax.set(rc.user, Math.max(max, t));
    events.push({
      eventId: `${tag}-e${i}`,
      userId: `u${rc.user}`,
      merchantId: `m${rc.merchant}`,
      cardId: `62220200000000${rc.user}${rc.card}`,
      amount: rc.amount,
      occurredAt: iso(t, rc.offset),
    });
  });
  return events;
}

function iso(ms: number, offset: string): string {
  const zone = offset === 'Z' ? 'UTC' : `UTC${offset}`;
  const s = DateTime.fromMillis(ms, { zone }).toISO({ includeOffset: true })!;
  return offset === 'Z' ? s.replace(/\+00:00$/, 'Z') : s;
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
    seconds: 0,
    seed,
  };
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
          throw new Error(`stream disagrees with the model:\n  ${failure.problems.slice(0, 8).join('\n  ')}\nevents:\n${failure.events.map((e) => JSON.stringify(e)).join('\n')}`);
        }
        figures.runs++;
        for (const [i, o] of outcomes.entries()) {
          figures.streams++;
          figures.events += o.events.length;
          figures.duplicates += o.duplicates;
          if (cases[i]!.r !== DEFAULT_RULES) figures.nonDefaultConfigs++;
          for (const [k, v] of Object.entries(o.decisions)) figures.decisions[k] = (figures.decisions[k] ?? 0) + v;
          for (const [k, v] of Object.entries(o.ruleHits)) figures.ruleHits[k] = (figures.ruleHits[k] ?? 0) + v;
        }
      }),
      { numRuns: options.runs, seed, endOnFailure: false },
    );
  } finally {
    redis.disconnect();
    await server.stop();
  }
  figures.seconds = (performance.now() - started) / 1000;
  return figures;
}

async function checkStream(redis: Redis, r: RuleOverrides, anchor: number, recipes: Recipe[], namespace: string) {
  const settings = chaosSettings(namespace, r);
  const { processor, keys, cards, ledger } = buildPipeline(redis, settings);
  const events = foldStream(r, anchor, recipes, namespace);
  const model = ReferenceModel.fromConfig(settings.config);
  const problems: string[] = [];
  const decisions: Record<string, number> = {};
  const ruleHits: Record<string, number> = {};
  let duplicates = 0;

  const results = await processor.process(testBatch(events.map((e) => ({ type: 'charge', ...e }))), `model:${namespace}`);
  events.forEach((e, i) => {
    const { decision, isNew } = model.apply(e);
    const got = results[i];
    const settleAt = decision.settleAtMs === null ? null : new Date(decision.settleAtMs).toISOString();
    if (!isNew) duplicates++;
    else {
      decisions[decision.outcome] = (decisions[decision.outcome] ?? 0) + 1;
      for (const rule of decision.rules) ruleHits[rule] = (ruleHits[rule] ?? 0) + 1;
    }
    if (!got || got.outcome !== decision.outcome || (got.rules ?? []).join() !== decision.rules.join() || (got.settleAt ?? null) !== settleAt) {
      problems.push(
        `event ${i} ${e.eventId} (${e.occurredAt}, ${e.amount} fen${isNew ? '' : ', duplicate'}): service ${got?.outcome} [${got?.rules}] ${got?.settleAt}; ` +
          `model ${decision.outcome} [${decision.rules}] ${settleAt} (count ${decision.cardCount}, day before ${decision.dayTotalBefore}, zone ${r.timezone})`,
      );
    }
  });
  if (problems.length === 0) {
    const scheduled = await verifyNamespace(redis, keys, cards, model, { input: events });
    problems.push(...scheduled.problems);
    await ledger.releaseDue(Number.MAX_SAFE_INTEGER);
    const released = await verifyNamespace(redis, keys, cards, model, { input: events, settled: true });
    problems.push(...released.problems);
  }
  return { problems, events, duplicates, decisions, ruleHits };
}
