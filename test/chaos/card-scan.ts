/**
 * Item 7, no card number at rest: Luhn-valid card numbers flow through every entry (the producer into worker
 * processes, an NDJSON replay, garbage events carrying card numbers in any field), then every place data rests is
 * scanned for 13–19 digit Luhn-valid strings: every Redis key name and value of every type, the AOF files on disk,
 * the worker processes' logs, the metrics text, the decision records and the replay's output file.
 *
 * Epoch-millisecond timestamps (13 digits, 2014–2039) are Luhn-valid one time in ten and fill Redis (stream ids,
 * window scores, job timestamps); they are counted apart, and every string is also checked against the exact card
 * numbers that were sent, inside any longer digit run, so the exclusion cannot hide a real card.
 */
import pg from 'pg';
import { archiveBacklog } from '../../src/archive/archiver.ts';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import type { Redis } from 'ioredis';
import { createContext } from '../../src/context.ts';
import { isLuhnValid, syntheticCharges, syntheticPan } from '../../src/events/synthetic.ts';
import { DASHBOARD_PATH, queueDashboard } from '../../src/http/dashboard.ts';
import { silentLogger } from '../../src/logger.ts';
import { EventProducer, openRiskQueues } from '../../src/pipeline/producer.ts';
import { replay } from '../../src/replay/replay.ts';
import { freshNamespace } from '../helpers/context.ts';
import { chaosSettings, Fleet, paced, settlementsDue, unfinishedJobs, waitFor, writeConfigFile } from './harness.ts';
import { decisionStreamEntries } from '../helpers/shards.ts';
import { RestartableRedis } from './redis-restart.ts';
import { testBatch } from '../helpers/batch.ts';
import type { RedisClient } from '../../src/redis/client.ts';

const TS_MIN = 1_400_000_000_000;
const TS_MAX = 2_200_000_000_000;

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
/** Digits with up to three separators (whitespace, dots, dashes, invisible characters) between two of them. */
const SEPARATED_RUN = /[0-9](?:[\s.\p{Pd}\p{Cf}]{0,3}[0-9]){12,}/gu;

export interface ScanResult {
  /** Luhn-valid 13–19 digit strings that are not timestamp-shaped. */
  hits: string[];
  /** Card numbers that were sent, found anywhere (also inside longer digit runs or timestamp-shaped runs). */
  knownCardHits: string[];
  timestampsExcluded: number;
  fractionsExcluded: number;
  /** Digit runs inside a UUID (BullMQ lock tokens): hex groups that came out all digits, Luhn-valid by chance. */
  uuidsExcluded: number;
  digitRunsChecked: number;
  scoresChecked: number;
}

/**
 * Finds card-like numbers: digit runs, optionally grouped by single spaces or dashes, Luhn-valid (after NFKC); and
 * the cards that were sent in any written form (dots, double spaces, dashes, full-width, zero-width separators).
 */
export class CardScanner {
  readonly result: ScanResult = { hits: [], knownCardHits: [], timestampsExcluded: 0, fractionsExcluded: 0, uuidsExcluded: 0, digitRunsChecked: 0, scoresChecked: 0 };
  readonly byPlace: Record<string, number> = {};

  constructor(private readonly knownCards: Set<string>) {}

  scan(place: string, raw: string): void {
    // Full-width and other compatibility digits read as digits; a sent card written with dots, double spaces,
    // dashes or invisible characters between its digits is still that card.
    const text = /[^\x00-\x7f]/.test(raw) ? raw.normalize('NFKC') : raw;
    for (const m of text.matchAll(SEPARATED_RUN)) {
      if (/^[0-9](?:[ -]?[0-9])*$/.test(m[0])) continue; // plain or single spaces/dashes: checked below
      const digits = m[0].replace(/[^0-9]/g, '');
      for (let i = 0; i + 16 <= digits.length; i++) {
        if (this.knownCards.has(digits.slice(i, i + 16))) this.hit(place, 'known', `${digits.slice(i, i + 16)} (written ${JSON.stringify(m[0])})`);
      }
    }
    const uuids = [...text.matchAll(UUID)].map((u) => [u.index!, u.index! + u[0].length] as const);
    for (const m of text.matchAll(/\d(?:[ -]?\d){12,}/g)) {
      const run = m[0];
      const digits = run.replace(/\D/g, '');
      this.result.digitRunsChecked++;
      for (let i = 0; i + 16 <= digits.length; i++) {
        if (this.knownCards.has(digits.slice(i, i + 16))) this.hit(place, 'known', digits.slice(i, i + 16));
      }
      // An epoch-ms timestamp, alone or followed by a short number (a Redis stream id "<ms>-<seq>", a count).
      const ms = /^(\d{13})(?:[ -]\d{1,6})?$/.exec(run)?.[1];
      if (ms !== undefined && Number(ms) >= TS_MIN && Number(ms) < TS_MAX) {
        if (isLuhnValid(ms) || (digits.length <= 19 && isLuhnValid(digits))) this.result.timestampsExcluded++;
        continue;
      }
      // Part of a UUID ("0b3e1f25-4369-8069-0730-9c1d…": a lock token whose middle groups are all digits).
      if (uuids.some(([from, to]) => m.index! >= from && m.index! + run.length <= to)) {
        if (digits.length <= 19 && isLuhnValid(digits)) this.result.uuidsExcluded++;
        continue;
      }
      // The fraction of a decimal number ("0.012055579842900302" in the metrics text).
      if (m.index! >= 2 && text[m.index! - 1] === '.' && /\d/.test(text[m.index! - 2]!)) {
        if (digits.length <= 19 && isLuhnValid(digits)) this.result.fractionsExcluded++;
        continue;
      }
      if (digits.length < 13 || digits.length > 19 || !isLuhnValid(digits)) continue;
      this.hit(place, 'luhn', run);
    }
  }

  /**
   * A sorted-set score is a number Redis computes with, not stored text (BullMQ's delayed scores are epoch ms × 4096,
   * 16 digits, Luhn-valid one time in ten): it only counts when it is one of the card numbers sent.
   */
  scanScore(place: string, score: string): void {
    this.result.scoresChecked++;
    if (this.knownCards.has(score)) this.hit(place, 'known', score);
  }

  private hit(place: string, kind: 'known' | 'luhn', value: string): void {
    this.byPlace[place] = (this.byPlace[place] ?? 0) + 1;
    const list = kind === 'known' ? this.result.knownCardHits : this.result.hits;
    if (list.length < 20) list.push(`${place}: ${value}`);
  }
}

/** Every key of a Redis (its names and values, whatever the type) through the scanner. */
export async function scanRedis(redis: RedisClient, scanner: CardScanner): Promise<number> {
  let cursor = '0';
  let keys = 0;
  do {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 1_000);
    cursor = next;
    keys += batch.length;
    const types = await Promise.all(batch.map((k) => redis.type(k)));
    for (const [i, key] of batch.entries()) {
      scanner.scan('redis key name', key);
      const type = types[i];
      let value: unknown;
      if (type === 'string') value = await redis.get(key);
      else if (type === 'hash') value = await redis.hgetall(key);
      else if (type === 'list') value = await redis.lrange(key, 0, -1);
      else if (type === 'set') value = await redis.smembers(key);
      else if (type === 'zset') {
        const flat = await redis.zrange(key, 0, -1, 'WITHSCORES');
        for (let j = 0; j < flat.length; j += 2) {
          scanner.scan('redis zset member', flat[j]!);
          scanner.scanScore('redis zset score', flat[j + 1]!);
        }
        continue;
      }
      else if (type === 'stream') value = await redis.xrange(key, '-', '+');
      else if (type === 'none') continue;
      else throw new Error(`unexpected Redis type ${type} for ${key}`);
      scanner.scan(`redis ${type} value`, JSON.stringify(value));
    }
  } while (cursor !== '0');
  return keys;
}

export interface CardScanOptions {
  events: number;
  users: number;
  /** Lines in the replayed NDJSON file. */
  replayLines: number;
}

export interface CardScanFigures {
  cardsSent: number;
  /** Rows of the PostgreSQL archive scanned (0 without a server). */
  archiveRows: number;
  eventsSent: number;
  garbageEvents: number;
  redisKeys: number;
  aofBytes: number;
  logLines: number;
  metricsBytes: number;
  decisionRecords: number;
  replayOutputLines: number;
  /** Bytes of `npm run dead-letter -- list` output (text and --json) and of the dashboard API's job listings. */
  cliOutputBytes: number;
  dashboardBytes: number;
  /** Dead letters of events whose id held a card, and how many of those name the field (never the number). */
  idsHoldingCardsSent: number;
  idsHoldingCardsDeadLettered: number;
  /** Hits after phase 1 (our producer, replay and processor only), Redis and the AOF before any rewrite. */
  ownPathsHits: string[];
  /** Card numbers a foreign producer's raw jobs left in the AOF before it was rewritten (in transit, expected). */
  foreignInTransitAofHits: number;
  scan: ScanResult;
  byPlace: Record<string, number>;
}

/** The ways a card number is written (contract v1.1): every one must be found, normalised, masked. */
export const CARD_FORMS: Record<string, (pan: string) => string> = {
  plain: (pan) => pan,
  spaces: (pan) => pan.replace(/(\d{4})(?=\d)/g, '$1 '),
  doubleSpaces: (pan) => pan.replace(/(\d{4})(?=\d)/g, '$1  '),
  dashes: (pan) => pan.replace(/(\d{4})(?=\d)/g, '$1-'),
  dots: (pan) => pan.replace(/(\d{4})(?=\d)/g, '$1.'),
  fullWidth: (pan) => pan.replace(/\d/g, (c) => String.fromCharCode(0xff10 + Number(c))),
  zeroWidth: (pan) => pan.replace(/(\d{4})(?=\d)/g, '$1\u200b'),
};
/** The forms an id may not hold (one separator at most between digits): rejected, never stored. */
const ID_FORMS = ['plain', 'spaces', 'dashes', 'dots', 'fullWidth', 'zeroWidth'];

/**
 * Valid events in the contract whose card is written in each form (accepted: one token, nothing in clear), and
 * with card numbers in fields outside the contract, in values and in key names (dropped before queueing).
 */
function validWithCardForms(input: { type: 'charge'; cardId: string; [k: string]: unknown }[]): unknown[] {
  const forms = Object.values(CARD_FORMS);
  return input.slice(0, 4 * forms.length).map((e, i) => {
    const form = forms[i % forms.length]!;
    const card = form(e.cardId);
    return i % 2 === 0 ? { ...e, eventId: `${e.eventId}-f`, cardId: card } : { ...e, eventId: `${e.eventId}-f`, cardId: card, note: `card ${card}`, [card]: 1, extra: { pan: card } };
  });
}

/** Events that break the contract but carry card numbers where a careless store would keep them. */
function garbageWithCards(namespace: string, pans: string[]): unknown[] {
  const p = (i: number) => pans[i % pans.length]!;
  const spaced = (s: string) => s.replace(/(\d{4})(?=\d)/g, '$1 ');
  const at = '2026-03-10T10:00:00+08:00';
  // Ids holding a card, in every event type that has the field: each must come back "<field> holds a card number".
  const idsHoldingCards = ID_FORMS.flatMap((name, i) => {
    const card = CARD_FORMS[name]!(p(20 + i));
    return [
      { type: 'charge', eventId: `${namespace}-id-${name}-u`, userId: card, merchantId: 'm', cardId: p(20 + i), amount: 100, occurredAt: at },
      { type: 'charge', eventId: `${namespace}-id-${name}-m`, userId: 'u-g', merchantId: card, cardId: p(20 + i), amount: 100, occurredAt: at },
      { type: 'charge', eventId: card, userId: 'u-g', merchantId: 'm', cardId: p(20 + i), amount: 100, occurredAt: at },
      { type: 'account_opened', eventId: `${namespace}-id-${name}-a`, userId: card, channel: 'invited', quota: 500_000, occurredAt: at },
      { type: 'repayment', eventId: card, userId: 'u-g', amount: 100, dueAt: at, paidAt: at, occurredAt: at },
    ];
  });
  // Rejected for another reason, a card written in each form somewhere in it (reasons and raw text are masked).
  const formsInBrokenEvents = Object.entries(CARD_FORMS).flatMap(([name, form], i) => [
    { type: 'charge', eventId: `${namespace}-bad-${name}`, userId: 'u-g', merchantId: 'm', cardId: form(p(30 + i)), amount: 0, note: form(p(30 + i)), occurredAt: form(p(30 + i)) },
    { type: form(p(30 + i)), eventId: `${namespace}-type-${name}` },
  ]);
  return [
    ...idsHoldingCards,
    ...formsInBrokenEvents,
    { type: 'charge', eventId: `${namespace}-g1`, userId: 'u-g', merchantId: 'm', cardId: p(0), amount: -5, occurredAt: '2026-03-10T10:00:00+08:00' },
    { type: 'charge', eventId: `${namespace}-g2`, userId: 'u-g', merchantId: 'm', cardId: p(1), amount: 100, occurredAt: 'yesterday' },
    { type: 'charge', eventId: `${namespace}-g3`, userId: 'u-g', merchantId: p(2), cardId: p(2), amount: 1.5, occurredAt: '2026-03-10T10:00:00+08:00' },
    { type: 'chargeback', eventId: `${namespace}-g4`, note: `card ${spaced(p(3))}`, cardId: p(3) },
    { type: 'charge', eventId: `${namespace}-g5`, userId: p(4), cardId: { number: p(4) } },
    { eventId: `${namespace}-g6`, cardNumber: p(5).replace(/(\d{4})(?=\d)/g, '$1-') },
    `${p(6)}`,
    [p(7), p(8)],
  ];
}

/** Runs `scripts/<name>.ts` as `npm run <name>` does; resolves to stdout and stderr together. */
function runScript(name: string, args: string[], env: Record<string, string>): Promise<string> {
  const script = new URL(`../../scripts/${name}.ts`, import.meta.url).pathname;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', script, ...args], { env: { ...process.env, ...env }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${name} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout + stderr);
    });
  });
}

async function aofRewritten(redis: RedisClient): Promise<void> {
  await redis.call('BGREWRITEAOF');
  await waitFor(async () => /aof_rewrite_in_progress:0[\s\S]*aof_rewrite_scheduled:0/.test(await redis.info('persistence')), 30_000, 'the AOF rewrite', 50);
}

/** Reads the plain AOF as the commands it holds and scans every argument (ZADD scores as scores). */
function scanAof(dir: string, scanner: CardScanner): number {
  let bytes = 0;
  for (const file of readdirSync(join(dir, 'appendonlydir'))) {
    const buf = readFileSync(join(dir, 'appendonlydir', file));
    bytes += buf.length;
    if (file.endsWith('.manifest')) {
      scanner.scan('AOF manifest', buf.toString('latin1'));
      continue;
    }
    for (const command of parseAof(buf)) {
      const name = command[0]?.toUpperCase();
      if (name === 'ZADD') {
        let i = 2;
        while (i < command.length && /^(NX|XX|GT|LT|CH|INCR)$/i.test(command[i]!)) scanner.scan('AOF', command[i++]!);
        for (; i + 1 < command.length; i += 2) {
          scanner.scanScore('AOF ZADD score', command[i]!);
          scanner.scan('AOF', command[i + 1]!);
        }
        scanner.scan('AOF', command[1] ?? '');
      } else {
        // Arguments are bytes (latin1 keeps their lengths); read as UTF-8 so full-width digits are digits.
        for (const arg of command) scanner.scan('AOF', Buffer.from(arg, 'latin1').toString('utf8'));
      }
    }
  }
  return bytes;
}

/** RESP arrays of bulk strings, as Redis writes its AOF; anything else in the file is an error. */
export function parseAof(buf: Buffer): string[][] {
  const commands: string[][] = [];
  let pos = 0;
  const line = () => {
    const end = buf.indexOf('\r\n', pos);
    if (end < 0) throw new Error(`AOF: unterminated line at byte ${pos}`);
    const text = buf.toString('latin1', pos, end);
    pos = end + 2;
    return text;
  };
  while (pos < buf.length) {
    const header = line();
    if (!header.startsWith('*')) throw new Error(`AOF: expected an array at byte ${pos}, got ${JSON.stringify(header.slice(0, 20))}`);
    const args: string[] = [];
    for (let n = Number(header.slice(1)); n > 0; n--) {
      const len = Number(line().slice(1));
      args.push(buf.toString('latin1', pos, pos + len));
      pos += len + 2;
    }
    commands.push(args);
  }
  return commands;
}

/** A fresh database on the machine's PostgreSQL (RISKMON_TEST_POSTGRES), or undefined when there is none. */
async function freshArchiveDatabase(name: string): Promise<{ url: string; drop(): Promise<void> } | undefined> {
  const adminUrl = process.env.RISKMON_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3_000 });
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
  } catch {
    return undefined;
  } finally {
    await admin.end().catch(() => undefined);
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => c.end());
    },
  };
}

export async function cardScanScenario(options: CardScanOptions): Promise<CardScanFigures> {
  // Plain-text AOF (no RDB preamble, no compression), so a card on disk cannot hide from a text scan.
  const redis = await RestartableRedis.start(['--appendonly', 'yes', '--appendfsync', 'always', '--aof-use-rdb-preamble', 'no', '--rdbcompression', 'no']);
  const namespace = freshNamespace('chaos-cards');
  // The archive is scanned too, when a PostgreSQL server is there to hold one (the service processes archive into it).
  const archive = await freshArchiveDatabase(namespace.replaceAll('-', '_'));
  const overrides = { settlement: { tickSeconds: 1 }, archive: { enabled: archive !== undefined } };
  const settings = chaosSettings(namespace, overrides);
  const configFile = writeConfigFile(overrides);
  const context = createContext(settings, redis.url, silentLogger);
  const fleet = new Fleet({ REDIS_URL: redis.url, RISKMON_NAMESPACE: namespace, RISKMON_CONFIG: configFile.path, LOG_LEVEL: 'debug', ...(archive ? { DATABASE_URL: archive.url } : {}) });
  const work = mkdtempSync(join(tmpdir(), 'riskmon-cards-'));
  const startMs = Date.now() - 20 * 86_400_000;
  // Event ids without digits of the random namespace: a hex tail glued to a counter can look like a card number.
  const input = [...syntheticCharges({ count: options.events, users: options.users, seed: 61, startMs, prefix: 'evt' })];
  const pans = [...new Set(input.map((e) => e.cardId))];
  for (const pan of pans.slice(0, 10)) if (!isLuhnValid(pan)) throw new Error(`synthetic card ${pan} is not Luhn-valid`);
  const garbage = garbageWithCards(namespace, pans);
  const withForms = validWithCardForms(input);
  const shards = settings.config.pipeline.shards;
  let producer: EventProducer | undefined;
  try {
    fleet.start('main', 2);
    await Promise.all(fleet.processes().map((p) => p.waitForLine('riskmon started')));

    // Phase 1, every way our own code takes events in: the producer, an NDJSON replay (valid and broken lines),
    // and the processor in this process (so this process' metrics registry has seen cards and rejections too).
    // The synthetic input is from 20 days ago: the producer's clock is the end of its span.
    producer = await context.openProducer({ clock: () => startMs + 27 * 3_600_000 });
    await paced(producer, [...input, ...(withForms as typeof input)], 0);
    await context.processor.process(
      testBatch([...input.slice(0, 50).map((e) => ({ ...e, eventId: `${e.eventId}-inproc` })), ...withForms.map((e) => ({ ...(e as object), eventId: `${(e as { eventId: string }).eventId}-inproc` })), ...garbage]),
      'scan:inproc',
    );
    const inputPath = join(work, 'events.ndjson');
    const outputPath = join(work, 'decisions.ndjson');
    const replayEvents = [...syntheticCharges({ count: options.replayLines, users: 50, seed: 67, startMs, prefix: 'evt-r' })];
    const lines = replayEvents.map((e) => JSON.stringify(e));
    lines.push(`{"type":"charge","cardId":"${pans[0]}",broken json`, `{"type":"charge","eventId":"${namespace}-r-bad","cardId":"${pans[1]}","amount":0}`);
    lines.push(...withForms.map((e) => JSON.stringify({ ...(e as object), eventId: `${(e as { eventId: string }).eventId}-r` })));
    lines.push(...garbage.map((g) => JSON.stringify(g)));
    // The JSON parser quotes the line in its error: a card written in each form inside a line that does not parse.
    lines.push(...Object.values(CARD_FORMS).map((form, i) => `{"type":"charge","userId":"${form(pans[40 + (i % 10)] ?? pans[0]!)}" broken`));
    writeFileSync(inputPath, lines.join('\n') + '\n');
    const replayContext = createContext(chaosSettings(`${namespace}-replay`), redis.url, silentLogger);
    try {
      await replay({ context: replayContext, inputPath, outputPath, workers: 1 });
    } finally {
      await replayContext.close();
    }
    await waitFor(async () => (await unfinishedJobs(context.redis, context.keys, shards)) === 0, 120_000, 'the queues to drain', 250);
    await waitFor(async () => (await settlementsDue(context.redis, context.keys)) === 0, 60_000, 'settlements to be released', 250);

    const known = new Set([...pans, ...replayEvents.map((e) => e.cardId), syntheticPan(0, 0)]);
    const phase1 = new CardScanner(known);
    await scanRedis(context.redis, phase1);
    scanAof(redis.dir, phase1);

    // Phase 2, a foreign producer queues raw events (cards in clear, garbage with cards in any field): the workers
    // scrub the payload once processed, and after the next AOF rewrite nothing is left on disk either.
    const [queue] = await openRiskQueues(context.queueConnection, context.keys, 1);
    const foreign = [...input.slice(0, 20), ...(withForms as typeof input)].map((e) => ({ ...e, eventId: `${e.eventId}-foreign` }));
    await queue!.add('events', testBatch([...foreign, ...garbage]));
    await queue!.add('events', `raw ${pans[0]}` as never);
    await queue!.close();
    await waitFor(async () => (await unfinishedJobs(context.redis, context.keys, shards)) === 0, 60_000, 'the foreign jobs', 100);
    const inTransit = new CardScanner(known);
    scanAof(redis.dir, inTransit);
    if (archive) await waitFor(async () => (await archiveBacklog(context.redis, context.keys)).every((b) => b.entries === 0), 60_000, 'the archive to catch up', 250);
    await fleet.stop();
    await aofRewritten(context.redis);

    const scanner = new CardScanner(known);
    const redisKeys = await scanRedis(context.redis, scanner);
    const aofBytes = scanAof(redis.dir, scanner);
    const logLines = fleet.all.flatMap((p) => p.lines);
    scanner.scan('worker logs', logLines.join('\n'));
    const metricsText = await context.metrics.registry.metrics();
    scanner.scan('metrics', metricsText);
    const decisions = await decisionStreamEntries(context.redis, context.keys);
    scanner.scan('decision stream', JSON.stringify(decisions));
    const replayOutput = readFileSync(outputPath, 'utf8');
    scanner.scan('replay output', replayOutput);

    // What operators see: the dead-letter CLI (text and JSON) and the queue dashboard's API.
    let cliOutputBytes = 0;
    for (const args of [['list', '--limit', '1000'], ['list', '--limit', '1000', '--json']]) {
      const out = await runScript('dead-letter', args, { REDIS_URL: redis.url, RISKMON_NAMESPACE: namespace, RISKMON_CONFIG: configFile.path });
      cliOutputBytes += out.length;
      scanner.scan('dead-letter CLI output', out);
    }
    const dashboardQueues = await openRiskQueues(context.queueConnection, context.keys, shards);
    let dashboardBytes = 0;
    try {
      const app = new Hono().route(DASHBOARD_PATH, queueDashboard({ queues: dashboardQueues, readOnly: true, namespace }));
      for (const q of dashboardQueues) {
        for (const status of ['completed', 'failed', 'waiting']) {
          const res = await app.request(`${DASHBOARD_PATH}/api/queues?activeQueue=${encodeURIComponent(q.name)}&status=${status}&page=1&jobsPerPage=1000`);
          const body = await res.text();
          if (res.status !== 200) throw new Error(`dashboard API answered ${res.status}: ${body.slice(0, 200)}`);
          dashboardBytes += body.length;
          scanner.scan('dashboard API', body);
        }
      }
    } finally {
      await Promise.all(dashboardQueues.map((q) => q.close()));
    }
    // Every row of every table of the archive, as text.
    let archiveRows = 0;
    if (archive) {
      const client = new pg.Client({ connectionString: archive.url });
      await client.connect();
      try {
        const tables = await client.query<{ t: string }>(`SELECT schemaname || '.' || tablename AS t FROM pg_tables WHERE schemaname IN ('fenfu', 'riskmon')`);
        for (const { t } of tables.rows) {
          const rows = await client.query<{ r: string }>(`SELECT row_to_json(x)::text AS r FROM ${t} x`);
          archiveRows += rows.rows.length;
          scanner.scan(`archive ${t}`, rows.rows.map((r) => r.r).join('\n'));
        }
      } finally {
        await client.end();
      }
    }
    const deadLetters = await context.deadLetters.list(10_000);
    const idsHoldingCardsDeadLettered = deadLetters.filter((d) => /^(eventId|userId|merchantId) holds a card number$/.test(d.reason)).length;

    return {
      cardsSent: known.size,
      eventsSent: input.length + garbage.length + lines.length + foreign.length + garbage.length + 1,
      garbageEvents: 3 * garbage.length + 3,
      redisKeys,
      aofBytes,
      logLines: logLines.length,
      metricsBytes: metricsText.length,
      decisionRecords: decisions.length,
      replayOutputLines: replayOutput.trim().split('\n').length,
      cliOutputBytes,
      dashboardBytes,
      archiveRows,
      idsHoldingCardsSent: ID_FORMS.length * 5,
      idsHoldingCardsDeadLettered,
      ownPathsHits: [...phase1.result.hits, ...phase1.result.knownCardHits],
      foreignInTransitAofHits: inTransit.result.knownCardHits.length + inTransit.result.hits.length,
      scan: scanner.result,
      byPlace: scanner.byPlace,
    };
  } finally {
    await producer?.close();
    await fleet.stop();
    await context.close();
    await redis.stop();
    await archive?.drop();
    configFile.remove();
    rmSync(work, { recursive: true, force: true });
  }
}
