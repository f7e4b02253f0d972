/**
 * Replays an NDJSON event file through the real pipeline (producer → shard queues → worker processes → Redis)
 * and writes exactly one result line per input line, in input order. Lines that break the contract are
 * rejected at the edge, dead-lettered with their reason, and the stream goes on.
 *
 * A file is in arrival order and has no wall clock: its clock is the largest occurredAt of the events accepted so
 * far, in file order (an event more than events.maxAgeDays behind it is rejected), so a file replays the same
 * whenever it runs.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { QueueEvents, type Job } from 'bullmq';
import type { Context } from '../context.ts';
import { readEventLines } from '../events/lines.ts';
import { countLineRejection } from '../pipeline/producer.ts';
import { safeEventId } from '../pipeline/risk-processor.ts';
import type { BatchJobData, EventResult } from '../pipeline/batch-job.ts';
import { RISK_WORKER_ENTRY, startProcesses } from '../pipeline/worker-processes.ts';
import { riskQueueName } from '../redis/keys.ts';
import { checkLayout } from '../redis/layout.ts';
import { targetEnv } from '../redis/target.ts';
import { progressDisplay } from '../progress.ts';

export interface ReplayOptions {
  context: Context;
  inputPath: string;
  outputPath: string;
  /** Worker processes to start for this namespace. @defaultValue 1 */
  workers?: number;
  /** Config file the worker processes load (same as the replay's). */
  configFile?: string;
  /** A list file (merchants, users, cards: src/lists/lists.ts) loaded into the namespace before the first event. */
  listsPath?: string;
  /** Called at most every `progressEveryMs` and once at the end. */
  onProgress?: (p: ReplayProgress) => void;
  /** @defaultValue 200 */
  progressEveryMs?: number;
}

export interface ReplayProgress {
  /** Lines read and sent (or rejected at the edge). */
  read: number;
  /** Lines whose result is in: decided, accepted, or rejected with its reason. */
  done: number;
}

/** A display of a replay's progress: what to pass to replay(), and what ends it. */
export type ReplayProgressView = Required<Pick<ReplayOptions, 'onProgress' | 'progressEveryMs'>> & { stop(): void };

/** A replay's progress on stderr (npm run replay; each run of npm run backtest): lines done of the file's, and lines read. */
export function showReplayProgress(label: string, totalLines: number): ReplayProgressView {
  const display = progressDisplay({ label, total: totalLines, counted: 'done', fields: ['read'] });
  return { onProgress: (p) => display.update(p.done, { read: p.read }), progressEveryMs: display.everyMs, stop: display.stop };
}

export interface ReplaySummary {
  namespace: string;
  lines: number;
  decided: number;
  accepted: number;
  rejected: number;
  byOutcome: Record<string, number>;
}

export interface ReplayLine {
  line: number;
  eventId: string | null;
  outcome: EventResult['outcome'];
  rules?: string[];
  settleAt?: string | null;
  error?: string;
}


export async function replay(options: ReplayOptions): Promise<ReplaySummary> {
  const { context } = options;
  const { config } = context.settings;
  const workerCount = options.workers ?? 1;
  // The namespace records this process's shard count first: a worker process started with another configuration
  // (another pipeline.shards) is then refused at its start, rather than listening to other queues for ever.
  await checkLayout(context.redis, context.keys);
  if (options.listsPath) await context.lists.loadFile(options.listsPath, `replay --lists ${options.listsPath}`);
  const results: (ReplayLine | undefined)[] = [];
  const jobs: { job: Job<BatchJobData>; shard: number; lines: number[] }[] = [];
  // Progress: lines done as their jobs complete, while later lines are still read (the results themselves are read
  // below, in line order). A job that completes before its add is acknowledged, or a job of another sender in a
  // namespace given, is not counted; the final report counts every line.
  let lineNo = 0;
  let done = 0;
  const linesOfJob = new Map<string, number>();

  // Their own connections (blocking reads), closed at the end: BullMQ leaves connections it was given open.
  const eventConnections = Array.from({ length: config.pipeline.shards }, () => context.queueConnection.duplicate());
  for (const c of eventConnections) c.on('error', () => undefined);
  const queueEvents = eventConnections.map(
    (connection, shard) => new QueueEvents(riskQueueName(shard), { connection, prefix: context.keys.queuePrefix(riskQueueName(shard)) }),
  );
  if (options.onProgress) {
    queueEvents.forEach((q, shard) =>
      q.on('completed', ({ jobId }) => {
        const key = `${shard}:${jobId}`;
        done += linesOfJob.get(key) ?? 0;
        linesOfJob.delete(key);
      }),
    );
  }
  await Promise.all(queueEvents.map((q) => q.waitUntilReady()));
  const producer = await context.openProducer({
    clock: 'replay',
    reply: true,
    rejectionSource: (line) => `replay:${context.keys.namespace}:${String(line)}`,
    onRejected: ({ tag, eventId, reason }) => {
      results[(tag as number) - 1] = { line: tag as number, eventId, outcome: 'rejected', rules: [], settleAt: null, error: reason };
      done++;
    },
    onJob: (job, shard, lines) => {
      jobs.push({ job, shard, lines: lines as number[] });
      if (options.onProgress) linesOfJob.set(`${shard}:${job.id}`, lines.length);
    },
  });
  const children = startProcesses(RISK_WORKER_ENTRY, workerCount, {
    ...targetEnv(context.redisTarget),
    RISKMON_NAMESPACE: config.namespace,
    RISKMON_CARD_SECRET: context.settings.cardSecret,
    ...(options.configFile ? { RISKMON_CONFIG: options.configFile } : {}),
  });

  const ticker = options.onProgress && setInterval(() => options.onProgress!({ read: lineNo, done }), options.progressEveryMs ?? 200);
  try {
    const rejections: Promise<unknown>[] = [];
    // Lines are read with a byte bound: a huge line is rejected without ever being held whole.
    for await (const item of readEventLines(options.inputPath, config.pipeline.maxLineBytes)) {
      lineNo = item.line;
      if (!item.ok) {
        results[lineNo - 1] = { line: lineNo, eventId: guessEventId(item.raw), outcome: 'rejected', rules: [], settleAt: null, error: item.reason };
        done++;
        rejections.push(
          context.deadLetters.recordNow({ source: `replay:${context.keys.namespace}:${lineNo}`, reason: item.reason, raw: item.raw }),
          countLineRejection(context.queueConnection, context.keys, item.label),
        );
        if (rejections.length >= 1_000) await Promise.all(rejections.splice(0));
        continue;
      }
      producer.send(item.event, lineNo, item.occurredAtMs);
      if (producer.sent % 10_000 === 0) await producer.flush();
    }
    await producer.flush();
    await Promise.all(rejections);

    const exited = children.exited;
    for (const { job, shard, lines } of jobs) {
      const value = (await Promise.race([job.waitUntilFinished(queueEvents[shard]!), exited])) as EventResult[];
      value.forEach((r, i) => {
        const line = lines[i]!;
        results[line - 1] =
          r.outcome === 'rejected'
            ? { line, eventId: r.eventId, outcome: 'rejected', rules: [], settleAt: null, error: r.error }
            : r.outcome === 'accepted'
              ? { line, eventId: r.eventId, outcome: 'accepted' }
              : { line, eventId: r.eventId, outcome: r.outcome, rules: r.rules ?? [], settleAt: r.settleAt ?? null };
      });
    }

    const out = createWriteStream(options.outputPath);
    const summary: ReplaySummary = { namespace: context.keys.namespace, lines: lineNo, decided: 0, accepted: 0, rejected: 0, byOutcome: {} };
    for (let i = 0; i < lineNo; i++) {
      const r = results[i] ?? { line: i + 1, eventId: null, outcome: 'rejected' as const, rules: [], settleAt: null, error: 'no result (internal error)' };
      summary.byOutcome[r.outcome] = (summary.byOutcome[r.outcome] ?? 0) + 1;
      if (r.outcome === 'rejected') summary.rejected++;
      else if (r.outcome === 'accepted') summary.accepted++;
      else summary.decided++;
      if (!out.write(JSON.stringify(r) + '\n')) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
    clearInterval(ticker);
    options.onProgress?.({ read: lineNo, done: lineNo });
    return summary;
  } finally {
    clearInterval(ticker);
    await producer.close();
    await Promise.all(queueEvents.map((q) => q.close()));
    for (const c of eventConnections) c.disconnect();
    await children.stop();
  }
}

/** The eventId of a rejected line, if it has one (a card number in it masked). */
function guessEventId(line: string): string | null {
  try {
    return safeEventId(JSON.parse(line));
  } catch {
    return null;
  }
}
