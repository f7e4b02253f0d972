/**
 * Item 5, bad input at every entry: queue payloads (through RiskProcessor, and as raw jobs through real workers),
 * NDJSON files (through the replay and its worker process) and configuration. Generated garbage: wrong types, huge
 * numbers, NaN and infinities, negative and fractional amounts, `__proto__` keys, impossible dates, zones instead of
 * offsets, lone surrogates, oversized strings and lines. Each invalid event is rejected with a reason and recorded
 * once as a dead letter, nothing crashes, no state changes, and the valid events around it are decided exactly as
 * the reference model says.
 */
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { ConfigError, loadSettings } from '../../src/config.ts';
import { createContext } from '../../src/context.ts';
import { syntheticPan } from '../../src/events/synthetic.ts';
import { silentLogger } from '../../src/logger.ts';
import { EventProducer, openRiskQueues } from '../../src/pipeline/producer.ts';
import { startRiskWorkers } from '../../src/pipeline/risk-workers.ts';
import { createRedis } from '../../src/redis/connection.ts';
import { startRedisServer } from '../../src/redis/local-server.ts';
import { replay } from '../../src/replay/replay.ts';
import { ReferenceModel, type ModelCharge } from '../helpers/reference-model.ts';
import { buildPipeline, chaosSettings, queueKey, scanKeys, unfinishedJobs, verifyNamespace, waitFor } from './harness.ts';
import type { Keys } from '../../src/redis/keys.ts';
import { testBatch } from '../helpers/batch.ts';

/** A generated input: the value sent, and whether the contract accepts it (known by construction). */
export interface Sample {
  value: unknown;
  valid: boolean;
  /** Which mutation made it invalid (for messages). */
  why: string;
}

const BASE_TIME = '2026-03-10T10:00:00.000+08:00';

function validEvent(id: string, user: number, amount: number, minute: number): Record<string, unknown> {
  const at = new Date(Date.parse(BASE_TIME) + minute * 60_000);
  return {
    type: 'charge',
    eventId: id,
    userId: `u${user}`,
    merchantId: `m${user % 3}`,
    cardId: syntheticPan(user, 0),
    amount,
    occurredAt: at.toISOString(),
  };
}

/** Values that break each field, and the field they go in. */
const BREAKERS: Record<string, fc.Arbitrary<unknown>> = {
  type: fc.constantFrom('Charge', 'chargeback', '', 42, null, ['charge'], { toString: 'charge' }, '__proto__', 'constructor'),
  eventId: fc.constantFrom('', 'x'.repeat(129), 42, null, true, [], {}, 'a\uD800', '\uDFFFb', 'y'.repeat(1_000_000)),
  userId: fc.constantFrom('', 'u'.repeat(129), 7, null, false, ['u1'], 'u\uD800'),
  merchantId: fc.constantFrom('', 'm'.repeat(129), 3.5, null, {}),
  cardId: fc.constantFrom('', '6'.repeat(129), 6222020000000000, null, { number: syntheticPan(1, 1) }),
  amount: fc.oneof(
    fc.constantFrom(0, -1, -0, 1.5, 0.1, 100_000_001, 1e21, 1e308, Number.MAX_SAFE_INTEGER + 2, NaN, Infinity, -Infinity, '100', true, null, [100], {}),
    fc.integer({ max: 0 }),
    fc.double({ noInteger: true, min: -1e9, max: 1e9 }),
    fc.integer({ min: 100_000_001 }),
  ),
  currency: fc.constantFrom('USD', 'cny', 1, null, ''),
  occurredAt: fc.oneof(
    fc.constantFrom(
      '2026-02-30T10:00:00Z',
      '2026-03-10T24:00:00Z',
      '2026-03-10T10:00:00',
      '2026-03-10 10:00:00+08:00',
      '2026-03-10T10:00Z',
      '2026-13-01T00:00:00Z',
      '2026-03-10T10:00:60Z',
      '2026-03-10T10:00:00+25:00',
      '2026-03-10T10:00:00[Asia/Shanghai]',
      '2026-03-10T10:00:00 Asia/Shanghai',
      'Mars/Olympus',
      '0000-01-01T00:00:00Z',
      '1969-12-31T23:59:59Z',
      'yesterday',
      '',
      1_773_108_000_000,
      null,
    ),
    fc.string({ maxLength: 40 }).filter((s) => !/^\d{4}-\d{2}-\d{2}T/.test(s)),
  ),
};

/** Harmless changes: the event stays valid. */
const KEEPERS: fc.Arbitrary<[string, unknown]> = fc.constantFrom<[string, unknown]>(
  ['currency', 'CNY'],
  ['note', 'extra fields are ignored'],
  ['__proto__', { amount: -1, type: 'evil' }],
  ['constructor', { prototype: { polluted: true } }],
  ['occurredAtSeconds', 1],
  ['merchantId', '商户-北京-001'],
  ['userId', 'u-😀'],
);

function withField(event: Record<string, unknown>, field: string, value: unknown): Record<string, unknown> {
  // defineProperty, so "__proto__" becomes an own key exactly as JSON.parse makes it.
  const out = { ...event };
  Object.defineProperty(out, field, { value, enumerable: true, writable: true, configurable: true });
  return out;
}

/** A sample generator for event `index` of a stream; ids are unique unless a mutation replaces them. */
export function sampleArb(tag: string, index: number): fc.Arbitrary<Sample> {
  // Event times move forward with the index (late events are the model check's business, not this one's).
  const base = fc.record({ user: fc.integer({ min: 0, max: 3 }), amount: fc.integer({ min: 1, max: 3_000_000 }), minute: fc.constant(index * 2) });
  const id = `${tag}-${index}`;
  const broken = fc
    .tuple(base, fc.constantFrom(...Object.keys(BREAKERS)), fc.boolean())
    .chain(([b, field, drop]) =>
      (drop && field !== 'currency' ? fc.constant(undefined) : BREAKERS[field]!).map((v): Sample => {
        const e = validEvent(id, b.user, b.amount, b.minute);
        if (v === undefined) delete e[field];
        else e[field] = v;
        return { value: e, valid: false, why: `${field} = ${v === undefined ? '(missing)' : String(JSON.stringify(v))?.slice(0, 40)}` };
      }),
    );
  const kept = fc.tuple(base, KEEPERS).map(([b, [field, v]]): Sample => ({ value: withField(validEvent(id, b.user, b.amount, b.minute), field, v), valid: true, why: `valid with ${field}` }));
  const plain = base.map((b): Sample => ({ value: validEvent(id, b.user, b.amount, b.minute), valid: true, why: 'valid' }));
  const junk = fc
    .oneof(fc.constantFrom(null, 0, 'charge', [], true, ''), fc.string(), fc.array(fc.nat(), { maxLength: 3 }), fc.jsonValue({ maxDepth: 2 }))
    .filter((v) => typeof v !== 'object' || v === null || Array.isArray(v) || (v as { type?: unknown }).type !== 'charge')
    .map((v): Sample => ({ value: v, valid: false, why: `junk ${String(JSON.stringify(v))?.slice(0, 40)}` }));
  return fc.oneof({ weight: 3, arbitrary: plain }, { weight: 2, arbitrary: kept }, { weight: 4, arbitrary: broken }, { weight: 1, arbitrary: junk });
}

export function streamOfSamples(tag: string, maxLength: number): fc.Arbitrary<Sample[]> {
  return fc.integer({ min: 1, max: maxLength }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => sampleArb(tag, i))));
}

/** Every key a namespace may hold after the processor ran; anything else is a state change nobody expected. */
function unexpectedKeys(all: string[], keys: Keys): string[] {
  const b = keys.base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // A shard's keys ({s<n>}: review decisions open cases), the claims (in their buckets) and the dead letters ({dl}),
  // as src/redis/keys.ts lays them out.
  const shard = `\\{s(?:${keys.shardIds.join('|')})\\}`;
  const allowed = new RegExp(`^${b}:(${shard}:(dec:.+|u:\\{.+\\}:rules|rec:\\d+:\\d+|decisions|settle:due|settle:info|settle:stats|cases|cases:bycharge|cases:queue|cases:log)|id:\\{\\d+\\}:.+|\\{dl\\}:(deadletter|deadletter:seen))$`);
  return all.filter((k) => !allowed.test(k));
}

export interface ProcessorGarbageFigures {
  runs: number;
  events: number;
  rejected: number;
  decided: number;
  wholePayloadsRejected: number;
  seconds: number;
}

/** Property: any batch of mixed garbage and valid events, straight into RiskProcessor. */
export async function processorGarbageCheck(options: { runs: number; maxEvents?: number; seed?: number }): Promise<ProcessorGarbageFigures> {
  const server = await startRedisServer();
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  const figures: ProcessorGarbageFigures = { runs: 0, events: 0, rejected: 0, decided: 0, wholePayloadsRejected: 0, seconds: 0 };
  const started = performance.now();
  let round = 0;
  try {
    const payloadArb = fc.oneof(
      { weight: 9, arbitrary: fc.constant(null).chain(() => streamOfSamples(`s${round}`, options.maxEvents ?? 25)).map((samples) => ({ samples })) },
      { weight: 1, arbitrary: fc.oneof(fc.anything(), fc.record({ v: fc.constant(1), events: fc.anything() })).map((payload) => ({ payload })) },
    );
    await fc.assert(
      fc.asyncProperty(payloadArb, async (input) => {
        round++;
        await redis.flushall();
        const settings = chaosSettings(`bad${round}`);
        const { processor, keys, cards } = buildPipeline(redis, settings);
        const samples = 'samples' in input ? input.samples : [];
        const payload = 'samples' in input ? testBatch(samples.map((s) => s.value)) : input.payload;
        const isBatch = typeof payload === 'object' && payload !== null && Array.isArray((payload as { events?: unknown }).events);
        const events = isBatch ? ((payload as { events: unknown[] }).events) : [];
        const results = await processor.process(payload, 'bad-input');

        const problems: string[] = [];
        if (results.length !== events.length) problems.push(`${results.length} results for ${events.length} events`);
        const model = ReferenceModel.fromConfig(settings.config);
        const valid: ModelCharge[] = [];
        let expectedDeadLetters = isBatch ? 0 : 1;
        events.forEach((e, i) => {
          const sample = samples[i];
          const r = results[i];
          const isValid = sample ? sample.valid : false;
          if (!isValid) {
            expectedDeadLetters++;
            if (r?.outcome !== 'rejected' || !r.error) problems.push(`event ${i} (${sample?.why ?? 'generated'}): ${r?.outcome}, expected rejected with a reason`);
            return;
          }
          const m = model.apply(e as ModelCharge).decision;
          valid.push(e as ModelCharge);
          if (r?.outcome !== m.outcome) problems.push(`event ${i} (${sample!.why}): ${r?.outcome} ${r?.error ?? ''}, model ${m.outcome}`);
        });
        const deadLetters = await redis.xrange(keys.deadLetter, '-', '+');
        for (const [, fields] of deadLetters) {
          const reason = fields[fields.indexOf('reason') + 1];
          if (!reason) problems.push('a dead letter without a reason');
        }
        const verification = await verifyNamespace(redis, keys, cards, model, {
          input: valid.map((e) => ({ eventId: e.eventId, userId: e.userId })),
          deadLetters: expectedDeadLetters,
        });
        problems.push(...verification.problems);
        problems.push(...unexpectedKeys(await scanKeys(redis, `${keys.base}:*`), keys).map((k) => `unexpected key ${k}`));
        if (problems.length) throw new Error(problems.slice(0, 10).join('\n'));

        figures.runs++;
        figures.events += events.length;
        figures.rejected += expectedDeadLetters;
        figures.decided += valid.length;
        if (!isBatch) figures.wholePayloadsRejected++;
      }),
      { numRuns: options.runs, seed: options.seed },
    );
  } finally {
    redis.disconnect();
    await server.stop();
  }
  figures.seconds = (performance.now() - started) / 1000;
  return figures;
}

export interface QueueGarbageFigures {
  garbageJobs: number;
  validEvents: number;
  failedJobs: number;
  deadLetters: number;
  decisions: number;
  problems: string[];
}

/**
 * Raw garbage jobs (any JSON as job data; batches of broken events) added straight to the shard queues, between
 * valid events from the producer, consumed by real workers: no job fails, every valid event is decided.
 */
export async function queueGarbageCheck(options: { garbageJobs: number; validEvents: number; seed?: number }): Promise<QueueGarbageFigures> {
  const server = await startRedisServer();
  const settings = chaosSettings('badq');
  const context = createContext(settings, server.url, silentLogger);
  const workerConnection = createRedis(server.url);
  let workers: { close(): Promise<unknown> } | undefined;
  const queues = await openRiskQueues(context.queueConnection, context.keys, settings.config.pipeline.shards);
  const producer = await context.openProducer({ clock: 'replay' });
  try {
    const garbage = fc.sample(
      fc.oneof(
        fc.jsonValue(),
        streamOfSamples('gq', 10).map((samples) => (testBatch(samples.filter((s) => !s.valid).map((s) => s.value)))),
        fc.record({ v: fc.constant(1), events: fc.array(fc.jsonValue(), { maxLength: 5 }), enqueuedAt: fc.oneof(fc.double(), fc.string()) }),
      ),
      { numRuns: options.garbageJobs, seed: options.seed ?? 5 },
    );
    const valid: Record<string, unknown>[] = [];
    let expectedDeadLetters = 0;
    let garbageCount = garbage.length;
    const expectedPerJob = new Map<string, { expected: number; data: unknown }>();
    for (const [i, data] of garbage.entries()) {
      const batch = typeof data === 'object' && data !== null && Array.isArray((data as { events?: unknown }).events);
      const expected = batch ? (data as { events: unknown[] }).events.length : 1;
      expectedDeadLetters += expected;
      // BullMQ stores job data as JSON: what arrives is what JSON makes of it (NaN → null, -0 → 0).
      const job = await queues[i % queues.length]!.add('events', data as never);
      expectedPerJob.set(`queue:${job.queueName}/${job.id}`, { expected, data });
      const e = validEvent(`badq-v${i}`, i % 50, 1_000 + i, i);
      valid.push(e);
      producer.send(e as never);
    }
    // Payloads that are not JSON at all, written over real jobs (a foreign writer, a partial write).
    for (const [i, raw] of ['{not json', '', `\u0000\uFFFD card ${syntheticPan(3, 1)}`, '[1,2'].entries()) {
      const job = await queues[i % queues.length]!.add('events', { v: 1, events: [], enqueuedAt: 0 });
      await context.redis.hset(queueKey(context.keys, job.queueName, job.id!), 'data', raw);
      expectedPerJob.set(`queue:${job.queueName}/${job.id}`, { expected: 1, data: raw });
      expectedDeadLetters++;
      garbageCount++;
    }
    for (let i = garbage.length; i < options.validEvents; i++) {
      const e = validEvent(`badq-v${i}`, i % 50, 1_000 + i, i);
      valid.push(e);
      producer.send(e as never);
    }
    await producer.flush();
    // Workers start once everything is queued, so no job is taken before its payload was corrupted.
    workers = await startRiskWorkers({
      connection: workerConnection,
      keys: context.keys,
      pipeline: settings.config.pipeline,
      processor: context.processor,
      logger: silentLogger,
      metrics: context.metrics,
      cards: context.cards,
    });
    await waitFor(async () => (await unfinishedJobs(context.redis, context.keys, settings.config.pipeline.shards)) === 0, 60_000, 'the queues to drain', 100);
    const failed = (await Promise.all(queues.map((q) => q.getFailedCount()))).reduce((a, b) => a + b, 0);
    // Valid events only come from the producer, in order per user: the model decides them alone.
    const model = ReferenceModel.fromConfig(settings.config);
    for (const e of valid) model.apply(e as unknown as ModelCharge);
    const verification = await verifyNamespace(context.redis, context.keys, context.cards, model, {
      input: valid.map((e) => ({ eventId: e.eventId as string, userId: e.userId as string })),
      deadLetters: expectedDeadLetters,
    });
    const deadLetters = await context.deadLetters.count();
    const problems = [...verification.problems];
    if (deadLetters !== expectedDeadLetters) {
      problems.push(`${deadLetters} dead letters, expected ${expectedDeadLetters}`);
      const got = new Map<string, number>();
      for (const d of await context.deadLetters.list(100_000)) {
        const job = d.source.replace(/#\d+$/, '');
        got.set(job, (got.get(job) ?? 0) + 1);
      }
      for (const [job, { expected, data }] of expectedPerJob) {
        if ((got.get(job) ?? 0) !== expected) problems.push(`${job}: ${got.get(job) ?? 0} dead letters, expected ${expected}: ${JSON.stringify(data)?.slice(0, 300)}`);
      }
    }
    return { garbageJobs: garbageCount, validEvents: valid.length, failedJobs: failed, deadLetters, decisions: verification.decisions, problems };
  } finally {
    await producer.close();
    await Promise.all(queues.map((q) => q.close()));
    await workers?.close();
    await workerConnection.quit();
    await context.close();
    await server.stop();
  }
}

export interface DeepElementFigures {
  /** Elements nested `depth` levels deep, each in a job with valid events. */
  deepElements: number;
  validEvents: number;
  failedJobs: number;
  deadLetters: number;
  decisions: number;
  problems: string[];
}

/** JSON text of a value nested `depth` levels deep (JSON.stringify itself overflows the stack on such values). */
export function deepJson(kind: 'array' | 'object', depth: number): string {
  return kind === 'array' ? '['.repeat(depth) + '1' + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

/**
 * Elements of any depth (a bare nested array, a field of a charge holding one, an unknown field holding one) among
 * valid events: through the processor, and as raw job payloads consumed by real workers (the text a foreign
 * producer writes, since no Node producer can even serialise it). Each malformed element is dead-lettered alone;
 * the valid events of its batch (the charge with a deep unknown field among them: unknown fields are dropped) are
 * decided as the reference model says, and no job fails.
 */
export async function deepElementCheck(options: { depth: number; jobs: number }): Promise<DeepElementFigures> {
  const server = await startRedisServer();
  const settings = chaosSettings('deep');
  const context = createContext(settings, server.url, silentLogger);
  const workerConnection = createRedis(server.url);
  let workers: { close(): Promise<unknown> } | undefined;
  const queues = await openRiskQueues(context.queueConnection, context.keys, settings.config.pipeline.shards);
  const problems: string[] = [];
  const model = ReferenceModel.fromConfig(settings.config);
  const input: { eventId: string; userId: string }[] = [];
  const decide = (e: Record<string, unknown>) => {
    input.push({ eventId: e.eventId as string, userId: e.userId as string });
    return model.apply(e as unknown as ModelCharge).decision;
  };
  let deepElements = 0;
  try {
    const deepArray = deepJson('array', options.depth);
    const deepObject = deepJson('object', options.depth);
    // One batch straight into the processor, as a parsed value.
    const direct = [validEvent('deep-p0', 1, 1_000, 0), JSON.parse(deepArray), { ...validEvent('deep-p1', 1, 1_000, 1), amount: JSON.parse(deepObject) }, validEvent('deep-p2', 1, 1_000, 2)];
    // A foreign (version-1) payload: its enqueuedAt is every event's clock, here just after the events.
    const clockMs = Date.parse(BASE_TIME) + 3_600_000;
    const results = await context.processor.process({ v: 1, events: direct, enqueuedAt: clockMs }, 'deep-direct');
    const expectedDirect = ['approve', 'rejected', 'rejected', 'approve'];
    for (const [i, e] of direct.entries()) {
      if (expectedDirect[i] === 'rejected') {
        deepElements++;
        if (results[i]?.outcome !== 'rejected' || !results[i]?.error) problems.push(`direct element ${i}: ${results[i]?.outcome}, expected rejected with a reason`);
      } else {
        const m = decide(e as Record<string, unknown>);
        if (results[i]?.outcome !== m.outcome) problems.push(`direct element ${i}: ${results[i]?.outcome} ${results[i]?.error ?? ''}, model ${m.outcome}`);
      }
    }
    // Jobs as a foreign producer writes them: the payload text, written over a real job.
    for (let j = 0; j < options.jobs; j++) {
      const v = (k: number) => validEvent(`deep-j${j}-${k}`, 10 + j, 2_000 + k, 10 + k);
      const valid = [v(0), v(1), v(2), v(3)];
      const text = `{"v":1,"enqueuedAt":${clockMs},"events":[${JSON.stringify(valid[0])},${deepArray},${JSON.stringify(valid[1])},` +
        `${JSON.stringify({ ...valid[2], note: 0 }).replace('"note":0', `"note":${deepObject}`)},` +
        `${JSON.stringify({ ...valid[3], cardId: 0 }).replace('"cardId":0', `"cardId":${deepObject}`)}]}`;
      const job = await queues[j % queues.length]!.add('events', { v: 1, events: [], enqueuedAt: 0 });
      await context.redis.hset(queueKey(context.keys, job.queueName, job.id!), 'data', text);
      deepElements += 2; // the bare array and the card field; the unknown field is dropped
      for (const e of valid.slice(0, 3)) decide(e);
    }
    workers = await startRiskWorkers({
      connection: workerConnection,
      keys: context.keys,
      pipeline: settings.config.pipeline,
      processor: context.processor,
      logger: silentLogger,
      metrics: context.metrics,
      cards: context.cards,
    });
    await waitFor(async () => (await unfinishedJobs(context.redis, context.keys, settings.config.pipeline.shards)) === 0, 60_000, 'the queues to drain', 100);
    const failedJobs = (await Promise.all(queues.map((q) => q.getFailedCount()))).reduce((a, b) => a + b, 0);
    const verification = await verifyNamespace(context.redis, context.keys, context.cards, model, { input, deadLetters: deepElements });
    problems.push(...verification.problems);
    for (const d of await context.deadLetters.list(1_000)) {
      if (d.raw.length > 2_100) problems.push(`dead letter ${d.source}: ${d.raw.length} chars of payload`);
    }
    return { deepElements, validEvents: input.length, failedJobs, deadLetters: await context.deadLetters.count(), decisions: verification.decisions, problems };
  } finally {
    await Promise.all(queues.map((q) => q.close()));
    await workers?.close();
    await workerConnection.quit();
    await context.close();
    await server.stop();
  }
}

export interface NdjsonGarbageFigures {
  runs: number;
  lines: number;
  rejected: number;
  decided: number;
  seconds: number;
}

/** Lines that are not an event at all, with what makes them so. */
const BAD_LINES: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('NaN', '{', '}', '[]', 'null', '"charge"', '{"type":"charge"', "{'type':'charge'}", 'undefined', '\u0000', '{"amount":1,"amount":-1}'),
  fc.string({ maxLength: 60 }).filter((s) => s.trim() !== '' && !/^\s*\{/.test(s)),
  fc.constant('{"type":"charge","pad":"' + 'x'.repeat(20_000) + '"}'),
);

/** Property: generated NDJSON files through the replay and its worker process; one result line per input line. */
export async function ndjsonGarbageCheck(options: { runs: number; maxLines: number; seed?: number }): Promise<NdjsonGarbageFigures> {
  const server = await startRedisServer();
  const work = mkdtempSync(join(tmpdir(), 'riskmon-badfile-'));
  const figures: NdjsonGarbageFigures = { runs: 0, lines: 0, rejected: 0, decided: 0, seconds: 0 };
  const started = performance.now();
  let round = 0;
  try {
    const lineArb = (i: number) =>
      fc.oneof(
        { weight: 8, arbitrary: sampleArb('f', i).map((s) => ({ text: JSON.stringify(s.value) ?? 'undefined', valid: s.valid, why: s.why })) },
        { weight: 2, arbitrary: BAD_LINES.map((text) => ({ text, valid: false, why: 'bad line' })) },
      );
    const fileArb = fc.integer({ min: 1, max: options.maxLines }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => lineArb(i))));
    await fc.assert(
      fc.asyncProperty(fileArb, fc.boolean(), async (lines, crlf) => {
        round++;
        // JSON.stringify drops what JSON cannot say (NaN → null, undefined fields vanish): judge the line as sent.
        const judged = lines.map((l) => ({ ...l, valid: l.valid && l.text !== undefined }));
        const settings = chaosSettings(`badfile${round}`);
        const context = createContext(settings, server.url, silentLogger);
        const input = join(work, `in-${round}.ndjson`);
        const output = join(work, `out-${round}.ndjson`);
        writeFileSync(input, judged.map((l) => l.text.replace(/[\r\n]/g, ' ')).join(crlf ? '\r\n' : '\n') + '\n');
        try {
          await replay({ context, inputPath: input, outputPath: output, workers: 1 });
          const out = readFileSync(output, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; outcome: string; error?: string });
          const problems: string[] = [];
          if (out.length !== judged.length) problems.push(`${out.length} result lines for ${judged.length} input lines`);
          const model = ReferenceModel.fromConfig(settings.config);
          judged.forEach((l, i) => {
            const r = out[i];
            if (r?.line !== i + 1) problems.push(`result ${i} has line ${r?.line}`);
            if (!l.valid) {
              if (r?.outcome !== 'rejected' || !r.error) problems.push(`line ${i + 1} (${l.why}): ${r?.outcome}, expected rejected with a reason`);
              return;
            }
            const m = model.apply(JSON.parse(l.text) as ModelCharge).decision;
            if (r?.outcome !== m.outcome) problems.push(`line ${i + 1} (${l.why}): ${r?.outcome} ${r?.error ?? ''}, model ${m.outcome}`);
          });
          const deadLetters = await context.deadLetters.count();
          const rejected = judged.filter((l) => !l.valid).length;
          if (deadLetters !== rejected) problems.push(`${deadLetters} dead letters, expected ${rejected}`);
          if (problems.length) throw new Error(problems.slice(0, 10).join('\n'));
          figures.runs++;
          figures.lines += judged.length;
          figures.rejected += rejected;
          figures.decided += judged.length - rejected;
        } finally {
          await context.close();
        }
      }),
      { numRuns: options.runs, seed: options.seed },
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
    await server.stop();
  }
  figures.seconds = (performance.now() - started) / 1000;
  return figures;
}

export interface ConfigGarbageFigures {
  runs: number;
  refused: number;
  accepted: number;
  protoAttempts: number;
}

const CONFIG_PATHS = [
  ['timezone'],
  ['namespace'],
  ['environment'],
  ['rules', 'sameCardBurst', 'windowSeconds'],
  ['rules', 'sameCardBurst', 'minCount'],
  ['rules', 'nightLargeAmount', 'from'],
  ['rules', 'nightLargeAmount', 'minAmountFen'],
  ['rules', 'userDailyCap', 'capFen'],
  ['settlement', 'settleTime'],
  ['settlement', 'delayDays'],
  ['pipeline', 'shards'],
  ['pipeline', 'lockDurationMs'],
  ['retention', 'decisionDays'],
  ['rules', 'sameCardBurst'],
  ['rules'],
  ['__proto__'],
  ['constructor', 'prototype'],
  ['rules', '__proto__'],
];

/**
 * Property: configuration files with garbage at any path load into either a valid configuration or a ConfigError
 * naming the path; never another exception, never a polluted prototype.
 */
export function configGarbageCheck(options: { runs: number; seed?: number }): ConfigGarbageFigures {
  const dir = mkdtempSync(join(tmpdir(), 'riskmon-badconfig-'));
  const figures: ConfigGarbageFigures = { runs: 0, refused: 0, accepted: 0, protoAttempts: 0 };
  const valueArb = fc.oneof(
    fc.constantFrom(-1, 0, 1e308, 1.5, '', 'Mars/Olympus', 'Asia/Shanghai', '24:00', '23:59', '7:00', null, true, [], {}, 'production', 'dev', 'a b'),
    fc.jsonValue({ maxDepth: 2 }),
  );
  try {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...CONFIG_PATHS), valueArb), { minLength: 1, maxLength: 4 }), fc.boolean(), (edits, asText) => {
        const doc: Record<string, unknown> = {};
        for (const [path, value] of edits) {
          let node = doc;
          path.slice(0, -1).forEach((p) => {
            if (typeof node[p] !== 'object' || node[p] === null || Array.isArray(node[p])) Object.defineProperty(node, p, { value: {}, enumerable: true, writable: true, configurable: true });
            node = node[p] as Record<string, unknown>;
          });
          // A copy: a later edit under this path must not write into the generated value (or make it cyclic).
          Object.defineProperty(node, path[path.length - 1]!, { value: structuredClone(value), enumerable: true, writable: true, configurable: true });
          if (path.includes('__proto__') || path.includes('constructor')) figures.protoAttempts++;
        }
        const file = join(dir, 'config.json');
        writeFileSync(file, asText ? JSON.stringify(doc).slice(0, -1) : JSON.stringify(doc));
        const before = Object.getOwnPropertyNames(Object.prototype).join();
        try {
          const s = loadSettings({ configFile: file, env: {} });
          figures.accepted++;
          if (!Object.isFrozen(s.config)) throw new Error('configuration is not frozen');
        } catch (e) {
          if (!(e instanceof ConfigError)) throw new Error(`not a ConfigError: ${(e as Error).name}: ${(e as Error).message}`);
          if (!/invalid configuration|not valid JSON|RISKMON_CARD_SECRET/.test(e.message)) throw new Error(`unclear message: ${e.message}`);
          figures.refused++;
        }
        if (Object.getOwnPropertyNames(Object.prototype).join() !== before || ({} as { polluted?: unknown }).polluted !== undefined) {
          throw new Error('Object.prototype was polluted by a configuration file');
        }
        figures.runs++;
      }),
      { numRuns: options.runs, seed: options.seed },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return figures;
}
