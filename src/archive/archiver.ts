/**
 * The archiver: every decision (each shard's decision stream), settlement (each shard's settlement log) and dead
 * letter (the dead-letter stream) into PostgreSQL, exactly once. It reads each stream through the consumer group
 * `archive`, writes a round in one transaction whose inserts ignore rows already there (idempotent by namespace
 * and eventId), acknowledges the entries only after the commit, and then trims each stream below what every
 * consumer group has acknowledged (`XTRIM MINID`). So a crash of the archiver, of Redis's connection or of PostgreSQL at any point leaves each
 * entry either unacknowledged (read again and written again, which changes nothing) or archived.
 *
 * Entries the archiver had read but not acknowledged when it died are its consumer's pending entries: a new
 * archiver (same consumer name) reads those first. The stream's own cap (retention.decisionStreamMaxLen) is the
 * last resort only: the lag alert and the producer's backpressure act long before it; an entry it removed before
 * the archive had it is counted in riskmon_archive_lost_entries_total.
 *
 * Once a round is committed, the whole decisions it archived leave Redis too (their `dec:` keys): the hot path
 * keeps only each charge's record (src/decisions/charge-record.ts), and readers of an archived decision ask
 * PostgreSQL.
 */
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { parseDecision, type Decision } from '../decisions/decision.ts';
import { SlotPipeline, type RedisClient } from '../redis/client.ts';
import type { Keys } from '../redis/keys.ts';
import type { ArchiveDb, Statement } from './database.ts';
import { Partitions, PARTITIONED_TABLES } from './partitions.ts';
import { maskCardNumbers } from '../events/card.ts';
import { parseCaseRecord, type CaseRecord } from '../cases/case.ts';

export const ARCHIVE_GROUP = 'archive';
/** One consumer name for every archiver of a namespace: a restarted archiver finds its predecessor's pending entries. */
export const ARCHIVE_CONSUMER = 'archiver';
export const ARCHIVE_SOURCES = ['decisions', 'settlements', 'dead_letters', 'cases'] as const;
/** Logged when an archiver writes entries again that it (or a predecessor) read and did not acknowledge. */
export const PENDING_AGAIN = 'archive: writing again entries read earlier and not acknowledged';
/** How often a round first looks for entries a stream's cap removed unread (countTrimmedUnread). */
const GAP_CHECK_MS = 5_000;
export type ArchiveSource = (typeof ARCHIVE_SOURCES)[number];
/** The tables a round writes (the partitioned ones and the review cases'), by which the rows metric counts. */
export const ARCHIVED_TABLES = [...PARTITIONED_TABLES, 'cases', 'case_actions', 'disputes'] as const;
export type ArchivedTable = (typeof ARCHIVED_TABLES)[number];

function noneLost(): Record<ArchiveSource, number> {
  return Object.fromEntries(ARCHIVE_SOURCES.map((s) => [s, 0])) as Record<ArchiveSource, number>;
}

interface StreamState {
  key: string;
  source: ArchiveSource;
  shard: number;
  /** '0' while this consumer's pending entries are being read again, then '>'. */
  cursor: string;
}

type Entry = [id: string, fields: string[] | null];

export interface ArchiverOptions {
  redis: RedisClient;
  keys: Keys;
  db: ArchiveDb;
  logger: Logger;
  metrics?: Metrics;
  /** Entries read per stream per round. @defaultValue 500 */
  batchSize?: number;
  /** Rest between rounds that found nothing, ms. @defaultValue 200 */
  pollMs?: number;
  /** Rest after a failed round before trying again, ms. @defaultValue 1000 */
  retryMs?: number;
}

export interface BacklogReading {
  source: ArchiveSource;
  /** Entries not yet archived: never delivered, or delivered and not acknowledged. */
  entries: number;
  /** Age of the oldest of them, seconds (0 when none). */
  oldestSeconds: number;
}

export class Archiver {
  private readonly streams: StreamState[];
  private readonly partitions: Partitions;
  private readonly batchSize: number;
  private readonly pollMs: number;
  private readonly retryMs: number;
  private running: Promise<void> | undefined;
  private stopping = false;
  private wake: (() => void) | undefined;
  private groupsReady = false;
  private lastGapCheck = 0;

  constructor(private readonly options: ArchiverOptions) {
    this.streams = archivedStreams(options.keys).map((s) => ({ ...s, cursor: '0' }));
    this.partitions = new Partitions(options.db);
    this.batchSize = options.batchSize ?? 500;
    this.pollMs = options.pollMs ?? 200;
    this.retryMs = options.retryMs ?? 1_000;
  }

  /** Creates the consumer groups (from the start of each stream: what is there when archiving begins is archived). */
  async ensureGroups(): Promise<void> {
    if (this.groupsReady) return;
    for (const s of this.streams) {
      try {
        await this.options.redis.xgroup('CREATE', s.key, ARCHIVE_GROUP, '0', 'MKSTREAM');
      } catch (e) {
        if (!String((e as Error).message).startsWith('BUSYGROUP')) throw e;
      }
    }
    this.groupsReady = true;
  }

  /**
   * One round: reads every stream once (up to batchSize entries each), archives what it read and acknowledges it.
   * Returns the number of entries archived. Throws when Redis or the database failed (nothing acknowledged then).
   */
  async archiveOnce(): Promise<number> {
    await this.ensureGroups();
    const { redis } = this.options;
    if (Date.now() - this.lastGapCheck >= GAP_CHECK_MS) {
      await this.countTrimmedUnread();
      this.lastGapCheck = Date.now();
    }
    const read = new SlotPipeline(redis);
    for (const s of this.streams) {
      read.add(s.key, (p) => p.xreadgroup('GROUP', ARCHIVE_GROUP, ARCHIVE_CONSUMER, 'COUNT', this.batchSize, 'STREAMS', s.key, s.cursor));
    }
    const replies = await read.exec();
    const batches: { stream: StreamState; entries: Entry[] }[] = [];
    let caughtUp = false;
    replies.forEach(([err, reply], i) => {
      if (err) throw err;
      const stream = this.streams[i]!;
      const entries = ((reply as [string, Entry[]][] | null)?.[0]?.[1] ?? []) as Entry[];
      // Pending entries read again: once none are left, new ones.
      if (stream.cursor === '0' && entries.length === 0) {
        stream.cursor = '>';
        caughtUp = true;
      }
      if (entries.length > 0) {
        batches.push({ stream, entries });
        if (stream.cursor === '0') this.options.logger.info({ stream: stream.key, entries: entries.length }, PENDING_AGAIN);
      }
    });
    // Nothing was pending: this round reads the new entries instead.
    if (batches.length === 0) return caughtUp ? this.archiveOnce() : 0;

    let written: Awaited<ReturnType<Archiver['write']>>;
    try {
      written = await this.write(batches);
    } catch (e) {
      if (!isDataError(e)) throw e;
      written = await this.writeEachAlone(batches);
    }
    const { rows, lost } = written;

    // Committed: now, and only now, the decisions may leave Redis and the entries their streams. In that order, so
    // an archiver dying in between leaves the entries unacknowledged, to be written (and their decisions dropped)
    // again.
    await this.dropArchivedDecisions(batches);
    await this.dropArchivedCases(batches);
    const ack = new SlotPipeline(redis);
    for (const b of batches) {
      const ids = b.entries.map(([id]) => id);
      ack.add(b.stream.key, (p) => p.xack(b.stream.key, ARCHIVE_GROUP, ...ids));
    }
    for (const [err] of await ack.exec()) if (err) throw err;
    // The dead-letter stream keeps its own cap: operators list recent rejections from it (npm run dead-letter).
    await this.trim(batches.map((b) => b.stream).filter((st) => st.source !== 'dead_letters'));

    const m = this.options.metrics;
    if (m) {
      for (const [table, n] of Object.entries(rows)) m.archiveRows.inc({ table }, n);
      for (const [source, n] of Object.entries(lost)) if (n > 0) m.archiveLost.inc({ source }, n);
    }
    for (const [source, n] of Object.entries(lost)) {
      if (n > 0) this.options.logger.error({ source, entries: n }, 'archive: entries left their stream before the archive had them (the stream cap was reached)');
    }
    return batches.reduce((n, b) => n + b.entries.length, 0);
  }

  /**
   * Entries a stream's cap removed before the archive group was given them: counted as lost (their source, the
   * metric riskmon_archive_lost_entries_total and an error log), and the group moved past the gap so they are counted
   * once. Seen from Redis 7's counters: a group whose last delivered entry is older than the stream's first has lost
   * what was added and never read, `entries-added` less `entries-read` less what the stream still holds.
   */
  async countTrimmedUnread(): Promise<Record<ArchiveSource, number>> {
    const { redis } = this.options;
    const lost = noneLost();
    const info = new SlotPipeline(redis);
    for (const st of this.streams) {
      info.add(st.key, (p) => p.xinfo('STREAM', st.key));
      info.add(st.key, (p) => p.xinfo('GROUPS', st.key));
    }
    const replies = await info.exec();
    const moves = new SlotPipeline(redis);
    this.streams.forEach((st, i) => {
      const [e1, streamReply] = replies[2 * i]!;
      const [e2, groupsReply] = replies[2 * i + 1]!;
      if (e1 || e2) throw e1 ?? e2;
      const stream = fieldMapOf(streamReply as unknown[]);
      const group = (groupsReply as unknown[][]).map(fieldMapOf).find((g) => g.name === ARCHIVE_GROUP);
      if (!group) return;
      // Redis 7 leaves entries-read unset until the group is first given an entry: none were read then.
      const read = group['entries-read'] ?? (group['last-delivered-id'] === '0-0' ? 0 : null);
      if (read === null) return;
      const length = Number(stream.length);
      const added = Number(stream['entries-added']);
      const first = (stream['first-entry'] as unknown[] | null)?.[0] as string | undefined;
      const lastDelivered = String(group['last-delivered-id']);
      // Unread entries are the newest: a gap before them means every entry the group had not been given is either
      // still in the stream or gone.
      if (first !== undefined && compareStreamIds(first, lastDelivered) <= 0) return;
      const gone = added - Number(read) - length;
      if (gone <= 0) return;
      lost[st.source] += gone;
      const before = first === undefined ? String(stream['last-generated-id']) : previousStreamId(first);
      moves.add(st.key, (p) => p.xgroup('SETID', st.key, ARCHIVE_GROUP, before, 'ENTRIESREAD', added - length));
    });
    for (const [err] of await moves.exec()) if (err) throw err;
    for (const [source, n] of Object.entries(lost)) {
      if (n === 0) continue;
      this.options.metrics?.archiveLost.inc({ source }, n);
      this.options.logger.error({ source, entries: n }, 'archive: entries left their stream before any archiver read them (the stream cap was reached)');
    }
    return lost;
  }

  /** Deletes the `dec:` key of every decision in `batches` (archived: committed and acknowledged). */
  private async dropArchivedDecisions(batches: { stream: StreamState; entries: Entry[] }[]): Promise<void> {
    const { redis, keys } = this.options;
    const drop = new SlotPipeline(redis);
    for (const { stream, entries } of batches) {
      if (stream.source !== 'decisions') continue;
      const decisionKeys: string[] = [];
      for (const [, fields] of entries) {
        const eventId = fields ? decisionEventId(fieldMap(fields).d) : null;
        if (eventId !== null) decisionKeys.push(keys.decision(stream.shard, eventId));
      }
      if (decisionKeys.length > 0) drop.add(decisionKeys[0]!, (p) => p.unlink(...decisionKeys));
    }
    for (const [err] of await drop.exec()) if (err) throw err;
  }

  /** Deletes every case a batch's entry closed from Redis (archived: its whole record and trail are in PostgreSQL). */
  private async dropArchivedCases(batches: { stream: StreamState; entries: Entry[] }[]): Promise<void> {
    const { redis, keys } = this.options;
    const drop = new SlotPipeline(redis);
    for (const { stream, entries } of batches) {
      if (stream.source !== 'cases') continue;
      const closed: string[] = [];
      for (const [, fields] of entries) {
        const f = fields ? fieldMap(fields) : undefined;
        if (f?.c !== undefined && f.case !== undefined && /"status":"closed"/.test(f.case)) closed.push(f.c);
      }
      if (closed.length === 0) continue;
      drop.add(keys.cases(stream.shard), (p) => p.hdel(keys.cases(stream.shard), ...closed).zrem(keys.closedCases(stream.shard), ...closed));
    }
    for (const [err] of await drop.exec()) if (err) throw err;
  }

  /** Writes the entries of `batches` in one transaction; the rows written per table. */
  private async write(batches: { stream: StreamState; entries: Entry[] }[]): Promise<{ rows: Partial<Record<ArchivedTable, number>>; lost: Record<ArchiveSource, number> }> {
    const { transactions, risks, deadLetters, settlements, cases, caseActions, disputes, lost } = this.rowsOf(batches);
    await this.partitions.ensure('transactions', transactions.map((t) => Date.parse(t.occurred_at)));
    await this.partitions.ensure('risk_records', risks.map((r) => Date.parse(r.created_at)));
    await this.partitions.ensure('dead_letters', deadLetters.map((d) => Date.parse(d.created_at)));
    await this.partitions.ensure('settlements', settlements.map((d) => Date.parse(d.settled_at)));
    const statements: Statement[] = [];
    const ns = this.options.keys.namespace;
    if (transactions.length > 0) {
      statements.push({
        text: `INSERT INTO fenfu.transactions (namespace, event_id, occurred_at, user_id, merchant_id, card, amount_fen, outcome, decided_at, settle_at, shard)
          SELECT $1, r.event_id, r.occurred_at, r.user_id, r.merchant_id, r.card, r.amount_fen, r.outcome, r.decided_at, r.settle_at, r.shard
          FROM jsonb_to_recordset($2::jsonb) AS r(event_id text, occurred_at timestamptz, user_id text, merchant_id text, card text, amount_fen bigint,
            outcome text, decided_at timestamptz, settle_at timestamptz, shard integer)
          ON CONFLICT DO NOTHING`,
        params: [ns, rowsJson(transactions)],
      });
      statements.push({
        text: `INSERT INTO fenfu.risk_records (namespace, event_id, created_at, occurred_at, rules, reasons, observed, config_version)
          SELECT $1, r.event_id, r.created_at, r.occurred_at, ARRAY(SELECT jsonb_array_elements_text(r.rules)), r.reasons, r.observed, r.config_version
          FROM jsonb_to_recordset($2::jsonb) AS r(event_id text, created_at timestamptz, occurred_at timestamptz, rules jsonb, reasons jsonb, observed jsonb, config_version text)
          ON CONFLICT DO NOTHING`,
        params: [ns, rowsJson(risks)],
      });
    }
    if (deadLetters.length > 0) {
      statements.push({
        text: `INSERT INTO fenfu.dead_letters (namespace, stream_id, created_at, source, reason, raw)
          SELECT $1, r.stream_id, r.created_at, r.source, r.reason, r.raw
          FROM jsonb_to_recordset($2::jsonb) AS r(stream_id text, created_at timestamptz, source text, reason text, raw text)
          ON CONFLICT DO NOTHING`,
        params: [ns, rowsJson(deadLetters)],
      });
    }
    if (settlements.length > 0) {
      statements.push({
        text: `INSERT INTO fenfu.settlements (namespace, event_id, settled_at, settlement_date, shard, merchant_id, kind, held, tier, gross_fen, base_fee_fen, tech_fee_fen, net_fen, occurred_at)
          SELECT $1, r.event_id, r.settled_at, r.settlement_date, r.shard, r.merchant_id, r.kind, r.held, r.tier, r.gross_fen, r.base_fee_fen, r.tech_fee_fen, r.net_fen, r.occurred_at
          FROM jsonb_to_recordset($2::jsonb) AS r(event_id text, settled_at timestamptz, settlement_date date, shard integer, merchant_id text, kind text,
            held boolean, tier smallint, gross_fen bigint, base_fee_fen bigint, tech_fee_fen bigint, net_fen bigint, occurred_at timestamptz)
          ON CONFLICT DO NOTHING`,
        params: [ns, rowsJson(settlements)],
      });
    }
    if (caseActions.length > 0) {
      statements.push({
        text: `INSERT INTO fenfu.case_actions (namespace, case_id, opened_at, seq, at, action, actor, note, shard)
          SELECT $1, r.case_id, r.opened_at, r.seq, r.at, r.action, r.actor, r.note, r.shard
          FROM jsonb_to_recordset($2::jsonb) AS r(case_id text, opened_at timestamptz, seq integer, at timestamptz, action text, actor text, note text, shard integer)
          ON CONFLICT DO NOTHING`,
        params: [ns, rowsJson(caseActions)],
      });
      // One row per case in the batch (its latest), replaced only by a later state: a round written again, or
      // rounds that meet out of order, never take a case back.
      statements.push({
        text: `INSERT INTO fenfu.cases (namespace, case_id, charge_id, user_id, merchant_id, amount_fen, opened, opened_at, deadline, status, outcome, closed_at, closed_by, seq, record, shard)
          SELECT $1, r.case_id, r.charge_id, r.user_id, r.merchant_id, r.amount_fen, r.opened, r.opened_at, r.deadline, r.status, r.outcome, r.closed_at, r.closed_by, r.seq, r.record, r.shard
          FROM jsonb_to_recordset($2::jsonb) AS r(case_id text, charge_id text, user_id text, merchant_id text, amount_fen bigint, opened text, opened_at timestamptz,
            deadline timestamptz, status text, outcome text, closed_at timestamptz, closed_by text, seq integer, record jsonb, shard integer)
          ON CONFLICT (namespace, case_id, opened_at) DO UPDATE SET deadline = EXCLUDED.deadline, status = EXCLUDED.status, outcome = EXCLUDED.outcome,
            closed_at = EXCLUDED.closed_at, closed_by = EXCLUDED.closed_by, seq = EXCLUDED.seq, record = EXCLUDED.record
          WHERE fenfu.cases.seq < EXCLUDED.seq`,
        params: [ns, rowsJson([...cases.values()])],
      });
    }
    if (disputes.length > 0) {
      // A complaint marks its charge disputed: its records outlive normal retention (src/archive/retention.ts). One
      // open dispute per charge: a second complaint, or one on a charge an operator disputed already, adds none.
      statements.push({
        text: `INSERT INTO fenfu.disputes (namespace, event_id, opened_at, opened_by, reason)
          SELECT $1, r.event_id, r.opened_at, r.opened_by, r.reason FROM jsonb_to_recordset($2::jsonb) AS r(event_id text, opened_at timestamptz, opened_by text, reason text)
          ON CONFLICT DO NOTHING`,
        params: [ns, rowsJson(disputes)],
      });
    }
    const results = statements.length > 0 ? await this.options.db.atomic(statements) : [];
    const rows: Partial<Record<ArchivedTable, number>> = {};
    let i = 0;
    if (transactions.length > 0) {
      rows.transactions = results[i++]!.rowCount;
      rows.risk_records = results[i++]!.rowCount;
    }
    if (deadLetters.length > 0) rows.dead_letters = results[i++]!.rowCount;
    if (settlements.length > 0) rows.settlements = results[i++]!.rowCount;
    if (caseActions.length > 0) {
      rows.case_actions = results[i++]!.rowCount;
      rows.cases = results[i++]!.rowCount;
    }
    if (disputes.length > 0) rows.disputes = results[i++]!.rowCount;
    return { rows, lost };
  }

  /**
   * After a round PostgreSQL refused for its data: each entry on its own, and one it refuses alone is set aside in
   * fenfu.archive_rejects (with the error) rather than stopping the archive for every stream.
   */
  private async writeEachAlone(batches: { stream: StreamState; entries: Entry[] }[]): Promise<{ rows: Partial<Record<ArchivedTable, number>>; lost: Record<ArchiveSource, number> }> {
    const rows: Partial<Record<ArchivedTable, number>> = {};
    const lost = noneLost();
    for (const b of batches) {
      for (const entry of b.entries) {
        try {
          const one = await this.write([{ stream: b.stream, entries: [entry] }]);
          for (const [t, n] of Object.entries(one.rows)) rows[t as ArchivedTable] = (rows[t as ArchivedTable] ?? 0) + n;
          for (const [src, n] of Object.entries(one.lost)) lost[src as ArchiveSource] += n;
        } catch (e) {
          if (!isDataError(e)) throw e;
          await this.options.db.query(
            `INSERT INTO fenfu.archive_rejects (namespace, source, stream_id, at, error, entry) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
            [this.options.keys.namespace, b.stream.source, entry[0], new Date(), maskCardNumbers((e as Error).message).slice(0, 1_000), safeText(JSON.stringify(entry[1]))],
          );
          this.options.metrics?.archiveQuarantined.inc({ source: b.stream.source });
          this.options.logger.error({ source: b.stream.source, streamId: entry[0], err: maskCardNumbers((e as Error).message) }, 'archive: PostgreSQL refused an entry; it is kept in fenfu.archive_rejects and the archive goes on');
        }
      }
    }
    return { rows, lost };
  }


  private rowsOf(batches: { stream: StreamState; entries: Entry[] }[]) {
    const transactions: { occurred_at: string; [k: string]: unknown }[] = [];
    const risks: { created_at: string; [k: string]: unknown }[] = [];
    const deadLetters: { created_at: string; [k: string]: unknown }[] = [];
    const settlements: ReturnType<typeof settlementRow>[] = [];
    const caseActions: ReturnType<typeof caseActionRow>[] = [];
    const cases = new Map<string, ReturnType<typeof caseRow>>();
    const disputes: { event_id: string; opened_at: string; opened_by: string; reason: string }[] = [];
    const lost = noneLost();
    for (const { stream, entries } of batches) {
      for (const [id, fields] of entries) {
        // A pending entry whose content is gone: the stream's cap removed it before it was archived.
        if (!fields) {
          lost[stream.source]++;
          continue;
        }
        const f = fieldMap(fields);
        if (stream.source === 'settlements') {
          settlements.push(settlementRow(f, stream.shard));
        } else if (stream.source === 'cases') {
          const record = parseCaseRecord(f.case!);
          caseActions.push(caseActionRow(f, record, stream.shard));
          const row = caseRow(record, stream.shard);
          const key = `${row.case_id}\t${row.opened_at}`;
          if ((cases.get(key)?.seq ?? -1) < row.seq) cases.set(key, row);
          const complaint = record.complaint;
          if (complaint && (f.a === 'complaint' || (f.a === 'opened' && record.opened === 'complaint'))) {
            disputes.push({ event_id: record.chargeId, opened_at: new Date(complaint.atMs).toISOString(), opened_by: `complaint ${complaint.eventId}`.slice(0, 200), reason: complaint.reason });
          }
        } else if (stream.source === 'decisions') {
          const d: Decision = parseDecision(f.d!);
          transactions.push({
            event_id: d.eventId,
            occurred_at: ms(d.occurredAt),
            user_id: d.userId,
            merchant_id: d.merchantId,
            card: d.card,
            amount_fen: d.amount,
            outcome: d.outcome,
            decided_at: ms(d.decidedAt),
            settle_at: d.settleAt === null ? null : ms(d.settleAt),
            shard: stream.shard,
          });
          risks.push({
            event_id: d.eventId,
            created_at: ms(d.decidedAt),
            occurred_at: ms(d.occurredAt),
            rules: d.rules,
            reasons: d.reasons,
            observed: d.observed,
            config_version: d.configVersion,
          });
        } else {
          deadLetters.push({ stream_id: id, created_at: f.at && Number.isFinite(Date.parse(f.at)) ? ms(f.at) : new Date(streamIdMs(id)).toISOString(), source: f.source ?? '', reason: f.reason ?? '', raw: f.raw ?? '' });
        }
      }
    }
    return { transactions, risks, deadLetters, settlements, cases, caseActions, disputes, lost };
  }

  /**
   * Trims each stream below the oldest entry any of its consumer groups still needs: for every group, its oldest
   * unacknowledged entry, or the entry after the last one it was given. So another downstream reader with its own
   * group (the demo's printer, say) loses nothing either; a group nobody reads any more holds the stream back, so
   * delete it (XGROUP DESTROY).
   */
  private async trim(streams: StreamState[]): Promise<void> {
    const { redis } = this.options;
    const info = new SlotPipeline(redis);
    for (const st of streams) info.add(st.key, (p) => p.xinfo('GROUPS', st.key));
    const groupsOf = (await info.exec()).map(([err, reply]) => {
      if (err) throw err;
      return (reply as unknown[][]).map(fieldMapOf);
    });
    const pending = new SlotPipeline(redis);
    const asked: { stream: number }[] = [];
    const floors: (string | undefined)[] = streams.map(() => undefined);
    const lower = (i: number, id: string) => {
      if (floors[i] === undefined || compareStreamIds(id, floors[i]!) < 0) floors[i] = id;
    };
    streams.forEach((st, i) => {
      for (const g of groupsOf[i]!) {
        // Never above the entry after the last one the group was given (as this snapshot says): a group that
        // acknowledges everything between this read and the next still keeps what it was not given.
        lower(i, nextStreamId(String(g['last-delivered-id'])));
        if (Number(g.pending) > 0) {
          pending.add(st.key, (p) => p.xpending(st.key, String(g.name)));
          asked.push({ stream: i });
        }
      }
    });
    if (asked.length > 0) {
      (await pending.exec()).forEach(([err, reply], j) => {
        if (err) throw err;
        const oldest = (reply as [number, string | null])[1];
        if (oldest) lower(asked[j]!.stream, oldest);
      });
    }
    const trim = new SlotPipeline(redis);
    streams.forEach((st, i) => {
      const minId = floors[i];
      if (minId) trim.add(st.key, (p) => p.xtrim(st.key, 'MINID', minId));
    });
    for (const [err] of await trim.exec()) if (err) throw err;
  }

  /** What is not archived yet, per source. */
  async backlog(now = Date.now()): Promise<BacklogReading[]> {
    return archiveBacklog(this.options.redis, this.options.keys, now);
  }

  /**
   * Archives rounds (or waits for the running archiver's) until nothing of `source` is left unarchived (entries
   * another archiver holds unacknowledged included: it is waited for), or fails after `timeoutMs`. For a reader that needs the archive complete (the
   * daily reconciliation).
   */
  async catchUp(source: ArchiveSource, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = (await this.backlog()).find((b) => b.source === source)!.entries;
      if (left === 0) return;
      if (Date.now() > deadline) throw new Error(`the archive has not caught up with the ${source} stream after ${Math.round(timeoutMs / 1000)} s: ${left} entries left`);
      // Running (start()): its own rounds archive; only one round at a time per archiver.
      if (this.running || (await this.archiveOnce()) === 0) await new Promise((r) => setTimeout(r, this.pollMs));
    }
  }

  /** Archives until stopped: rounds back to back while there is work, a rest of pollMs when there is none. */
  start(): void {
    if (this.running) return;
    this.stopping = false;
    const { logger, metrics } = this.options;
    this.running = (async () => {
      let failures = 0;
      while (!this.stopping) {
        let archived = 0;
        try {
          archived = await this.archiveOnce();
          if (failures > 0) logger.info({ afterFailures: failures }, 'archive: writing again');
          failures = 0;
        } catch (e) {
          failures++;
          // What this round read is pending now: read it again from the pending list. A stream deleted meanwhile
          // (NOGROUP) gets its group again; a month partition dropped by retention meanwhile is made again.
          for (const st of this.streams) st.cursor = '0';
          if (String((e as Error).message).includes('NOGROUP')) this.groupsReady = false;
          if ((e as { code?: string }).code === '23514' || /no partition of relation/.test((e as Error).message)) this.partitions.forget();
          metrics?.archiveErrors.inc();
          // Logged on the first failure and then every 30th: a database that is down for minutes is one story.
          if (failures === 1 || failures % 30 === 0) logger.error({ err: (e as Error).message, failures }, 'archive: a round failed; nothing of it was acknowledged, retrying');
          await this.rest(this.retryMs);
          continue;
        }
        if (archived === 0) await this.rest(this.pollMs);
      }
    })();
  }

  private rest(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  /** Stops after the round in flight (its commit and acknowledgement finish or fail as a whole). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
    this.running = undefined;
  }
}

/** The streams the archive reads: every shard's decision stream and the dead-letter stream. */
/** The eventId of a decision stream entry's JSON (the rules script writes it first), without parsing the whole. */
function decisionEventId(json: string | undefined): string | null {
  const m = json === undefined ? null : /^\{"eventId":("(?:[^"\\]|\\.)*")/.exec(json);
  if (!m) return null;
  try {
    return JSON.parse(m[1]!) as string;
  } catch {
    return null;
  }
}

function archivedStreams(keys: Keys): { key: string; source: ArchiveSource; shard: number }[] {
  return [
    ...keys.shardIds.map((shard) => ({ key: keys.decisionStream(shard), source: 'decisions' as const, shard })),
    ...keys.shardIds.map((shard) => ({ key: keys.settlementLog(shard), source: 'settlements' as const, shard })),
    { key: keys.deadLetter, source: 'dead_letters' as const, shard: -1 },
    ...keys.shardIds.map((shard) => ({ key: keys.caseLog(shard), source: 'cases' as const, shard })),
  ];
}

/**
 * What is not archived yet, per source: entries the group has not delivered plus those delivered and not
 * acknowledged, and the age of the oldest. A stream without the group yet (no archiver has run) counts whole.
 */
/**
 * Sets the lag and backlog gauges from Redis every `everyMs` until the returned stop is called: on its own timer,
 * so they keep rising while rounds fail or the database has not opened yet (that is when the alert matters).
 */
export function watchBacklog(redis: RedisClient, keys: Keys, metrics: Metrics, everyMs = 1_000): () => void {
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    archiveBacklog(redis, keys)
      .then((readings) => {
        for (const r of readings) {
          metrics.archiveBacklog.set({ source: r.source }, r.entries);
          metrics.archiveLag.set({ source: r.source }, r.oldestSeconds);
        }
      })
      .catch(() => undefined)
      .finally(() => (busy = false));
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

export async function archiveBacklog(redis: RedisClient, keys: Keys, now = Date.now()): Promise<BacklogReading[]> {
  const streams = archivedStreams(keys);
  const info = new SlotPipeline(redis);
  for (const s of streams) {
    info.add(s.key, (p) => p.xinfo('GROUPS', s.key));
    info.add(s.key, (p) => p.xpending(s.key, ARCHIVE_GROUP));
    info.add(s.key, (p) => p.xlen(s.key));
    info.add(s.key, (p) => p.xrange(s.key, '-', '+', 'COUNT', 1));
  }
  const replies = await info.exec();
  const bySource = new Map<ArchiveSource, BacklogReading>(ARCHIVE_SOURCES.map((source) => [source, { source, entries: 0, oldestSeconds: 0 }]));
  const age = (id: string) => Math.max(0, (now - streamIdMs(id)) / 1000);
  const firstUndelivered = new SlotPipeline(redis);
  const undeliveredOf: ArchiveSource[] = [];
  streams.forEach((s, i) => {
    const [groupsErr, groups] = replies[4 * i]!;
    const [pendingErr, summary] = replies[4 * i + 1]!;
    const length = Number(replies[4 * i + 2]![1] ?? 0);
    const first = (replies[4 * i + 3]![1] as [string, string[]][] | null)?.[0];
    const reading = bySource.get(s.source)!;
    const group = groupsErr ? undefined : (groups as unknown[][]).map(fieldMapOf).find((g) => g.name === ARCHIVE_GROUP);
    if (!group || pendingErr) {
      // No archiver has read this stream yet: all of it waits.
      reading.entries += length;
      if (first) reading.oldestSeconds = Math.max(reading.oldestSeconds, age(first[0]));
      return;
    }
    const lag = Number(group.lag ?? 0);
    const [pendingCount, oldestPending] = summary as [number, string | null];
    reading.entries += lag + Number(pendingCount);
    if (Number(pendingCount) > 0 && oldestPending) reading.oldestSeconds = Math.max(reading.oldestSeconds, age(oldestPending));
    else if (lag > 0) {
      firstUndelivered.add(s.key, (p) => p.xrange(s.key, nextStreamId(String(group['last-delivered-id'])), '+', 'COUNT', 1));
      undeliveredOf.push(s.source);
    }
  });
  if (undeliveredOf.length > 0) {
    (await firstUndelivered.exec()).forEach(([err, reply], i) => {
      if (err) throw err;
      const first = (reply as [string, string[]][])[0];
      if (first) bySource.get(undeliveredOf[i]!)!.oldestSeconds = Math.max(bySource.get(undeliveredOf[i]!)!.oldestSeconds, age(first[0]));
    });
  }
  return [...bySource.values()];
}

/**
 * An instant as the archive stores it: whole milliseconds in UTC, as JavaScript reads it. PostgreSQL would round
 * 7–9 fraction digits instead (23:59:59.9999999 on the 31st into the next month, past the partition chosen here),
 * and a cursor in milliseconds must meet rows in milliseconds.
 */
function ms(instant: string): string {
  return new Date(Date.parse(instant)).toISOString();
}

/**
 * The rows as one JSON parameter. PostgreSQL's text and jsonb cannot hold U+0000, which the event contract lets an
 * id carry and a rejected payload may hold: it becomes U+FFFD, so such a row is archived rather than stopping the
 * archive.
 */
function rowsJson(rows: unknown[]): string {
  return JSON.stringify(rows, (_, v: unknown) => (typeof v === 'string' ? archivedText(v) : v));
}

/** A text as the archive holds it (U+0000 as U+FFFD): what to look an id up by there. */
export function archivedText(text: string): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', '\uFFFD') : text;
}

/**
 * An error PostgreSQL gives for the data of a row (SQLSTATE classes 22 and 23: a value out of range, a check, a
 * string it cannot hold), or an entry that does not parse; not a missing partition, which is made again.
 */
function isDataError(e: unknown): boolean {
  if (e instanceof SyntaxError) return true;
  const code = (e as { code?: string }).code;
  return typeof code === 'string' && /^2[23]/.test(code) && !/no partition of relation/.test((e as Error).message);
}

/** Text PostgreSQL can hold (no U+0000), card numbers masked. */
function safeText(text: string): string {
  return maskCardNumbers(text).replaceAll('\u0000', '\uFFFD');
}

/**
 * A settlement log entry (src/settlement/releaseSettlement-15.lua) as a row of fenfu.settlements. The info kind says
 * how it was scheduled: held (after review), scheduled (T+1) or reversal (a refund of a paid charge).
 */
function settlementRow(f: Record<string, string>, shard: number) {
  const fen = (v: string | undefined) => (v === undefined ? null : Number(v));
  return {
    event_id: f.s!,
    settled_at: new Date(Number(f.at)).toISOString(),
    settlement_date: f.on!,
    shard,
    merchant_id: f.m ?? null,
    kind: f.k === undefined ? null : f.k === 'reversal' ? 'reversal' : 'charge',
    held: f.k === undefined ? null : f.k === 'held',
    tier: fen(f.tier),
    gross_fen: fen(f.g),
    base_fee_fen: fen(f.base),
    tech_fee_fen: fen(f.tech),
    net_fen: fen(f.net),
    // A reversal's own time (its refund's); a charge's is its transaction's.
    occurred_at: f.k === 'reversal' && f.oc !== undefined ? new Date(Number(f.oc)).toISOString() : null,
  };
}

/** A case log entry (src/cases/case-record.lua) as a row of fenfu.case_actions. */
function caseActionRow(f: Record<string, string>, c: CaseRecord, shard: number) {
  return { case_id: f.c!, opened_at: new Date(c.openedAtMs).toISOString(), seq: Number(f.n), at: new Date(Number(f.at)).toISOString(), action: f.a!, actor: f.by!, note: f.note ?? '', shard };
}

/** The case an entry carries, as a row of fenfu.cases. */
function caseRow(c: CaseRecord, shard: number) {
  const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
  return {
    case_id: c.id,
    charge_id: c.chargeId,
    user_id: c.userId,
    merchant_id: c.merchantId,
    amount_fen: c.amount,
    opened: c.opened,
    opened_at: iso(c.openedAtMs),
    deadline: iso(c.deadlineMs),
    status: c.status,
    outcome: c.outcome ?? null,
    closed_at: iso(c.closedAtMs),
    closed_by: c.closedBy ?? null,
    seq: c.seq,
    record: c,
    shard,
  };
}

function fieldMap(fields: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!;
  return out;
}

function fieldMapOf(flat: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}

export function streamIdMs(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

export function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am !== bm ? (am < bm ? -1 : 1) : as !== bs ? (as < bs ? -1 : 1) : 0;
}

/** The largest stream id before `id` (`id` is after 0-0). */
export function previousStreamId(id: string): string {
  const dash = id.indexOf('-');
  const seq = BigInt(id.slice(dash + 1));
  return seq > 0n ? `${id.slice(0, dash)}-${seq - 1n}` : `${BigInt(id.slice(0, dash)) - 1n}-18446744073709551615`;
}

/** The smallest stream id after `id`. */
export function nextStreamId(id: string): string {
  const dash = id.indexOf('-');
  return `${id.slice(0, dash)}-${BigInt(id.slice(dash + 1)) + 1n}`;
}
