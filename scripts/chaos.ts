/**
 * npm run chaos [-- --only 1,4,7] [--write] [--scale 0.1] [--cluster]
 * The hardening scenarios of test/chaos at full size (the test suite runs them small): worker crashes, Redis
 * restarts, duplicated and shuffled deliveries, the model check, bad input, start-up guards, card scan, graceful
 * shutdown, Redis outage, backpressure and metrics. Prints the figures of each; with --write also replaces the
 * results section of docs/reliability.md. Any failed check exits 1.
 *
 * The checks that run on the given Redis (1, 3, 8, 11) take the cluster RISKMON_REDIS_CLUSTER names. With --cluster
 * they run on a private Redis Cluster (3 masters, 2 replicas each) instead, with the two that kill its masters (12, 13);
 * their results are items "1c" … "13c".
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { runCommand, UsageError, wholeNumberOption } from '../src/cli.ts';
import { startCluster, type TestCluster } from '../src/redis/local-cluster.ts';
import { resolveRedisUrl } from '../src/redis/local-server.ts';
import { parseClusterSeeds, redisTargetFromEnv, type ClusterRedisTarget, type RedisTarget } from '../src/redis/target.ts';
import { backpressureScenario } from '../test/chaos/backpressure.ts';
import { configGarbageCheck, ndjsonGarbageCheck, processorGarbageCheck, queueGarbageCheck } from '../test/chaos/bad-input.ts';
import { cardScanScenario } from '../test/chaos/card-scan.ts';
import { failoverScenario } from '../test/chaos/cluster-failover.ts';
import { duplicatesScenario } from '../test/chaos/duplicates.ts';
import { metricsIdentifierCheck } from '../test/chaos/metrics-check.ts';
import { modelCheck } from '../test/chaos/model-check.ts';
import { redisRestartScenario } from '../test/chaos/redis-restart.ts';
import { redisUnreachableScenario } from '../test/chaos/redis-unreachable.ts';
import { frozenReplicaFailover } from '../test/chaos/replica-acks.ts';
import { shutdownUnderLoadScenario, shutdownWithRedisFrozenScenario } from '../test/chaos/shutdown.ts';
import { startupGuardScenario } from '../test/chaos/startup-guards.ts';
import { workerCrashScenario } from '../test/chaos/worker-crash.ts';

const DOC = new URL('../docs/reliability.md', import.meta.url);
const BEGIN = '<!-- chaos:results:begin -->';
const END = '<!-- chaos:results:end -->';

/** The checks a --cluster run makes: those on the given Redis, and the failovers. */
const CLUSTER_ITEMS = [1, 3, 8, 11, 12, 13];
const LAST_ITEM = 13;

interface Outcome {
  /** "7", or "7c" for a check made on a private cluster (--cluster). */
  item: string;
  title: string;
  ok: boolean;
  /** Markdown lines with the figures. */
  lines: string[];
  seconds: number;
}

const fmt = (n: number) => n.toLocaleString('en-US');
const problemsOf = (p: string[] | undefined) => (p && p.length ? `**problems:** ${p.slice(0, 5).join('; ')}` : 'verification: no difference');

runCommand(
  {
    name: 'chaos',
    summary:
      'Runs the reliability scenarios at full size (worker kill -9, Redis crashes with and without persistence, Redis unreachable, shutdown under load, backpressure, duplicates, bad input, card scan, startup guards, model check) and prints their figures.',
    usage: ['[options]'],
    options: {
      only: { type: 'string', arg: 'N,N,…', help: 'run only these items (1 to 11)' },
      write: { type: 'boolean', help: 'write the results into docs/reliability.md' },
      scale: { type: 'string', arg: '<factor>', default: '1', help: 'shrink every scenario by this factor, in (0, 1]' },
      seed: { type: 'string', arg: '<n>', help: 'the model check (item 4) with this fast-check seed: a failure of the test suite names it; here it is shrunk' },
      cluster: { type: 'boolean', help: `on a private Redis Cluster of 3 masters with 2 replicas each: items ${CLUSTER_ITEMS.join(', ')} (12 and 13 kill masters)` },
    },
    notes: [
      'Each scenario starts its own servers where it stops or kills one; exits 1 when any scenario fails.',
      'Items 1, 3, 8 and 11 run on the Redis the environment names (REDIS_URL, or the cluster RISKMON_REDIS_CLUSTER names); 12 and 13 only with --cluster.',
    ],
    examples: ['npm run chaos', 'npm run chaos -- --only 2,3 --scale 0.2', 'npm run chaos -- --only 4 --seed 707', 'npm run chaos -- --cluster --scale 0.2'],
  },
  async ({ values }) => {
    const onCluster = values.cluster === true;
    const only = values.only
      ? new Set(values.only.split(',').map((item) => wholeNumberOption('only', item.trim(), 0, { max: LAST_ITEM })))
      : new Set(onCluster ? CLUSTER_ITEMS : Array.from({ length: 11 }, (_, i) => i + 1));
    const notHere = [...only].filter((i) => (onCluster ? !CLUSTER_ITEMS.includes(i) : i > 11));
    if (notHere.length) {
      throw new UsageError(onCluster ? `--cluster runs items ${CLUSTER_ITEMS.join(', ')}; not ${notHere.join(', ')}` : `items 12 and 13 kill cluster masters: they run with --cluster (a private cluster)`);
    }
    const scale = Number(values.scale);
    if (!(scale > 0 && scale <= 1)) throw new UsageError('--scale takes a factor in (0, 1]');
    const n = (full: number) => Math.max(1, Math.round(full * scale));
    let redisUrl: string | RedisTarget;
    let started: { stop(): Promise<void> } | undefined;
    let cluster: TestCluster | undefined;
    const fromEnv = redisTargetFromEnv();
    if (onCluster) {
      process.stdout.write('starting a private Redis Cluster (3 masters, 2 replicas each) …\n');
      cluster = await startCluster({ masters: 3, replicasPerMaster: 2 });
      started = cluster;
      redisUrl = parseClusterSeeds(cluster.seeds);
    } else if (fromEnv?.kind === 'cluster') {
      redisUrl = fromEnv;
    } else {
      const resolved = await resolveRedisUrl(fromEnv?.url);
      redisUrl = resolved.url;
      started = resolved.started;
    }
    const outcomes: Outcome[] = [];

    const run = async (number: number, name: string, fn: () => Promise<{ ok: boolean; lines: string[] }>) => {
      if (!only.has(number)) return;
      const item = onCluster ? `${number}c` : String(number);
      const title = onCluster ? `${name} — on a Redis Cluster` : name;
      process.stdout.write(`\n[${item}] ${title} …\n`);
      const t0 = performance.now();
      let result: { ok: boolean; lines: string[] };
      try {
        result = await fn();
      } catch (e) {
        const cause = (e as Error).cause instanceof Error ? ` — cause: ${((e as Error).cause as Error).message.split('\n').slice(0, 6).join(' / ')}` : '';
        result = { ok: false, lines: [`**failed:** ${(e as Error).message.split('\n').slice(0, 3).join(' / ').slice(0, 600)}${cause}`] };
      }
      const outcome = { item, title, ...result, seconds: (performance.now() - t0) / 1000 };
      outcomes.push(outcome);
      for (const l of outcome.lines) process.stdout.write(`    ${l}\n`);
      process.stdout.write(`    → ${outcome.ok ? 'PASS' : 'FAIL'} in ${outcome.seconds.toFixed(1)} s\n`);
    };

    await run(1, 'Worker crashes (kill -9 and restart during the stream)', async () => {
      const f = await workerCrashScenario({ redisUrl, events: n(100_000), users: n(10_000), rate: 4_000, riskWorkers: 2, killEveryMs: 3_000 });
      return {
        ok: f.verification.problems.length === 0 && f.redeliveredBatches > 0,
        lines: [
          `${fmt(f.events)} events offered at 4,000/s to 2 risk worker processes + 1 settlement worker; every 3 s (once the workers have work) the risk worker processes, or every fourth time the settlement worker, killed with SIGKILL and restarted`,
          `processes killed: ${f.kills}; batches redelivered after a kill: ${f.redeliveredBatches}`,
          `decision records ${fmt(f.verification.decisions)}, stream entries ${fmt(f.verification.streamEntries)} (unique events ${fmt(f.uniqueEvents)}); day totals of ${fmt(f.verification.usersChecked)} users and ${fmt(f.verification.cardWindowsChecked)} card windows equal the model; settled once: ${fmt(f.verification.settled)} transactions, ${fmt(f.verification.settledAmount)} fen`,
          problemsOf(f.verification.problems),
          `took ${f.seconds.toFixed(1)} s`,
        ],
      };
    });

    await run(2, 'Redis restarts (SIGKILL, AOF everysec / always / none)', async () => {
      const lines: string[] = [];
      let ok = true;
      for (const persistence of ['everysec', 'always', 'off'] as const) {
        const f = await redisRestartScenario({ persistence, events: n(50_000), users: n(5_000), rate: 3_000, restarts: 5, riskWorkers: 2 });
        const exact = f.verification ? f.verification.problems.length === 0 : true;
        const lossAllowed = persistence === 'everysec' ? f.lossBound : 0;
        if (persistence !== 'off' && (!exact || f.lostAcknowledged > lossAllowed || f.deadLetters > 0 || f.failedJobs > 0)) ok = false;
        lines.push(
          `${persistence === 'off' ? 'no persistence' : `appendfsync ${persistence}`}: ${fmt(f.acknowledged)} acknowledged events, ${f.restarts} crashes, ` +
            `**${fmt(f.lostAcknowledged)} acknowledged events lost**, dead letters ${f.deadLetters}, failed jobs ${f.failedJobs}, worker processes restarted ${f.workerProcessesRestarted}, ` +
            `${persistence === 'everysec' ? `(allowed by an fsync stall: ≤ ${fmt(f.lossBound)}) ` : ''}` +
            `${f.verification ? (exact ? `what survived (${fmt(f.decisions)} decisions) equals the model, in production order` : problemsOf(f.verification.problems)) : 'state not comparable (data gone)'} (${f.seconds.toFixed(1)} s)`,
        );
      }
      return { ok, lines };
    });

    await run(3, 'Duplicated and shuffled deliveries (three producers at once)', async () => {
      const f = await duplicatesScenario({ redisUrl, events: n(100_000), users: n(10_000), burst: 500 });
      return {
        ok: f.verification.problems.length === 0 && f.duplicatesAnswered === f.deliveries - f.events,
        lines: [
          `${fmt(f.events)} events × ${f.copies} copies = ${fmt(f.deliveries)} deliveries, each copy shuffled in bursts of 500, sent concurrently; two worker sets`,
          `decisions ${fmt(f.verification.decisions)}, stream entries ${fmt(f.verification.streamEntries)}; answered as duplicates ${fmt(f.duplicatesAnswered)}; users evaluated out of production order ${fmt(f.usersReordered)}`,
          `day totals, card windows and settlement schedule equal the model fed the actual evaluation order; ${problemsOf(f.verification.problems)}`,
          `took ${f.seconds.toFixed(1)} s`,
        ],
      };
    });

    await run(4, 'Model check (fast-check streams vs the reference model)', async () => {
      const seed = values.seed === undefined ? undefined : wholeNumberOption('seed', values.seed, 0);
      const f = await modelCheck({ runs: n(500), streamsPerRun: 20, ...(seed === undefined ? {} : { seed }) });
      return {
        ok: true,
        lines: [
          `${fmt(f.streams)} generated streams (${fmt(f.runs)} runs × 20, seed ${f.seed}), ${fmt(f.events)} events of which ${fmt(f.duplicates)} duplicates; ${fmt(f.nonDefaultConfigs)} streams with varied rule settings and zones`,
          `decisions ${Object.entries(f.decisions).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}; rule hits ${Object.entries(f.ruleHits).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}`,
          `counterexamples: 0 (decisions, day totals, card windows, schedule and ledger all equal) in ${f.seconds.toFixed(1)} s`,
        ],
      };
    });

    await run(5, 'Bad input at every entry (property-based)', async () => {
      const p = await processorGarbageCheck({ runs: n(3_000) });
      const q = await queueGarbageCheck({ garbageJobs: n(1_000), validEvents: n(5_000) });
      const f = await ndjsonGarbageCheck({ runs: n(10), maxLines: 1_000 });
      const c = configGarbageCheck({ runs: n(5_000) });
      return {
        ok: q.problems.length === 0 && q.failedJobs === 0,
        lines: [
          `queue payloads into the processor: ${fmt(p.runs)} generated batches, ${fmt(p.events)} events: ${fmt(p.rejected)} rejected with a reason, ${fmt(p.decided)} valid ones decided as the model says, ${fmt(p.wholePayloadsRejected)} whole payloads rejected; no other key written`,
          `raw jobs through workers: ${fmt(q.garbageJobs)} garbage jobs (4 of them not JSON at all) among ${fmt(q.validEvents)} valid events: failed jobs ${q.failedJobs}, dead letters ${fmt(q.deadLetters)}, decisions ${fmt(q.decisions)}; ${problemsOf(q.problems)}`,
          `NDJSON files through the replay: ${f.runs} files, ${fmt(f.lines)} lines: ${fmt(f.rejected)} rejected with a reason, ${fmt(f.decided)} decided, one result line per input line`,
          `configuration files: ${fmt(c.runs)} generated: ${fmt(c.refused)} refused with a ConfigError naming the path, ${fmt(c.accepted)} valid; ${fmt(c.protoAttempts)} __proto__/constructor attempts, prototype never polluted`,
        ],
      };
    });

    await run(6, 'Start-up guards (through workers/risk-worker.ts)', async () => {
      const cases = await startupGuardScenario();
      return {
        ok: cases.every((c) => c.exitCode === 1 && c.keysWritten === 0 && !c.secretPrinted && c.message.startsWith('riskmon: ')),
        lines: cases.map((c) => `${c.name}: exit ${c.exitCode} in ${c.ms} ms, keys written ${c.keysWritten}: \`${c.message.split('\n')[0]!.replace(/127\.0\.0\.1:\d+/, '127.0.0.1:<port>').replace(/\/tmp\/[^ )]+/, '<file>')}\``),
      };
    });

    await run(7, 'No card number at rest', async () => {
      const f = await cardScanScenario({ events: n(100_000), users: n(10_000), replayLines: n(5_000) });
      return {
        ok: f.scan.hits.length === 0 && f.scan.knownCardHits.length === 0 && f.ownPathsHits.length === 0 && f.foreignInTransitAofHits > 0,
        lines: [
          `${fmt(f.eventsSent)} events with ${fmt(f.cardsSent)} distinct Luhn-valid card numbers (producer, replay, processor, ${f.garbageEvents} garbage events carrying cards, raw foreign jobs)`,
          `scanned: ${fmt(f.redisKeys)} Redis keys (names and values of every type), ${fmt(f.aofBytes)} bytes of AOF, ${fmt(f.logLines)} log lines, ${fmt(f.metricsBytes)} bytes of metrics, ${fmt(f.decisionRecords)} decision records, ${fmt(f.replayOutputLines)} replay output lines, ${fmt(f.archiveRows)} rows of the PostgreSQL archive`,
          `**hits: ${f.scan.hits.length} Luhn-valid 13–19 digit strings, ${f.scan.knownCardHits.length} of the card numbers sent** (${fmt(f.scan.digitRunsChecked)} digit runs, ${fmt(f.scan.scoresChecked)} sorted-set scores checked; ${fmt(f.scan.timestampsExcluded)} epoch-ms timestamps, ${f.scan.fractionsExcluded} decimal fractions and ${f.scan.uuidsExcluded} UUID fragments set apart)`,
          `our own paths alone, AOF before any rewrite: ${f.ownPathsHits.length} hits; a foreign producer's raw jobs left ${f.foreignInTransitAofHits} card numbers in the AOF until the rewrite (in transit; the workers scrub the payloads once processed)`,
        ],
      };
    });

    await run(8, 'Graceful shutdown (SIGTERM under load)', async () => {
      const a = await shutdownUnderLoadScenario({ redisUrl, events: n(30_000), users: n(3_000), rate: 1_500, stops: 8, runMs: 1_000, graceMs: 15_000 });
      // Freezing Redis: a private single server of its own (not part of a cluster run).
      const b = onCluster ? undefined : await shutdownWithRedisFrozenScenario({ events: n(20_000), users: n(2_000), graceMs: 5_000 });
      const ms = a.stops.map((s) => s.ms).sort((x, y) => x - y);
      return {
        ok: a.verification.problems.length === 0 && a.stops.every((s) => s.exitCode === 0 && s.activeAfter === 0) && a.stalledRecoveries === 0 && (!b || b.verification.problems.length === 0),
        lines: [
          `${a.stops.length} SIGTERMs to service processes (risk + settlement) under a 1,500 events/s load: exit codes ${[...new Set(a.stops.map((s) => s.exitCode))].join(',')}, exit within ${ms[0]}–${ms[ms.length - 1]} ms (median ${ms[Math.floor(ms.length / 2)]} ms), batches left active ${a.stops.reduce((x, s) => x + s.activeAfter, 0)}, stalled recoveries needed ${a.stalledRecoveries}`,
          `${fmt(a.events)} events: ${problemsOf(a.verification.problems)}, ${fmt(a.verification.decisions)} decisions, settled once ${fmt(a.verification.settled)}`,
          ...(b ? [`SIGTERM while Redis is frozen: exit ${b.exitCode} after ${b.ms} ms (grace ${b.graceMs} ms), batches redelivered afterwards ${b.redelivered}, ${fmt(b.verification.decisions)} decisions, ${problemsOf(b.verification.problems)}`] : []),
        ],
      };
    });

    await run(9, 'Redis unreachable', async () => {
      const f = await redisUnreachableScenario({ events: n(30_000), users: n(3_000), rate: 1_000, outageMs: 30_000 });
      return {
        ok: f.verification.problems.length === 0 && f.decisionsDuringOutage === 0 && f.workerProcessesRestarted === 0,
        lines: [
          `outage of ${f.outageMs / 1000} s (proxy cut: connections reset, new ones refused) in a ${fmt(f.events)}-event stream at 1,000/s`,
          `decisions during the outage ${f.decisionsDuringOutage}; first decision ${f.resumeMs} ms after Redis came back; worker processes restarted ${f.workerProcessesRestarted}`,
          `fail-fast producer: open one failed after ${f.failFast.openProducerMs} ms, a new one after ${f.failFast.newProducerMs} ms: \`${f.failFast.newProducerError.replace(/127\.0\.0\.1:\d+/, '127.0.0.1:<port>')}\``,
          `${fmt(f.verification.decisions)} decisions, settled once ${fmt(f.verification.settled)}; ${problemsOf(f.verification.problems)}`,
        ],
      };
    });

    await run(10, 'Backpressure (producer faster than the workers)', async () => {
      const lines: string[] = [];
      let ok = true;
      for (const mode of ['unbounded', 'wait', 'refuse'] as const) {
        const f = await backpressureScenario({ mode, events: n(100_000), users: n(10_000), bound: 4, maxBatch: 20 });
        if (f.verification.problems.length || (mode !== 'unbounded' && f.maxWaitingJobsPerShard > 4)) ok = false;
        lines.push(
          `${mode === 'unbounded' ? 'unbounded' : `bound 4 batches/shard, ${mode === 'wait' ? 'sendWhenReady waits' : 'send refused (BackpressureError), caller retries'}`}: ` +
            `max waiting ${fmt(f.maxWaitingJobs)} batches (${f.maxWaitingJobsPerShard} on one shard) ≈ ${fmt(f.peakBacklogEvents)} events ≈ ${f.peakBacklogMb} MB of Redis (${f.bytesPerQueuedEvent} B/event); ` +
            `refusals ${fmt(f.refusals)}; producer done in ${f.sendSeconds.toFixed(1)} s; decisions ${fmt(f.verification.decisions)}/${fmt(f.events)}; ${problemsOf(f.verification.problems)}`,
        );
      }
      return { ok, lines };
    });

    await run(11, 'Metrics carry no identifiers', async () => {
      const f = await metricsIdentifierCheck({ redisUrl, users: n(10_000) });
      return {
        ok: f.leaked.length === 0 && f.unboundedLabels.length === 0,
        lines: [
          `${fmt(f.events)} events from ${fmt(f.users)} users: ${fmt(f.identifiersChecked)} identifiers (event, user, merchant, card, card token, last four) searched in the metrics text: ${f.leaked.length} found`,
          `${f.series} series; label values outside the finite sets: ${f.unboundedLabels.length}. Dashboard 401 / read-only: see the operate issue's HTTP server`,
        ],
      };
    });

    await run(12, 'A master killed mid-stream (its replica promoted)', async () => {
      const f = await failoverScenario({ cluster: cluster!, target: redisUrl as ClusterRedisTarget, events: n(30_000), users: n(3_000), rate: 1_500, riskWorkers: 2 });
      return {
        ok: f.verification.problems.length === 0 && f.decidedAfterFailover > 0,
        lines: [
          `${fmt(f.events)} events at 1,500/s to 2 risk worker processes + 1 settlement worker; the master of shard 0 killed with SIGKILL once ${fmt(f.decidedAtKill)} were decided; its replica served its slots ${Math.round(f.failoverMs)} ms later`,
          `decided on that shard after the failover, without a restart: ${fmt(f.decidedAfterFailover)}; acknowledged events lost with the master: **${fmt(f.lost)}**`,
          `what was decided equals the model for those events: ${problemsOf(f.verification.problems)}, ${fmt(f.verification.decisions)} decisions, settled once ${fmt(f.verification.settled)}`,
        ],
      };
    });

    await run(13, 'A failover whose replica missed the last writes, with and without pipeline.replicaAcks', async () => {
      const target = redisUrl as ClusterRedisTarget;
      const without = await frozenReplicaFailover({ cluster: cluster!, target, replicaAcks: 0, events: n(4_000) });
      const withAcks = await frozenReplicaFailover({ cluster: cluster!, target, replicaAcks: 1, events: n(4_000) });
      return {
        ok: without.lost > 0 && without.lostAfterResend === 0 && withAcks.flushRefused && withAcks.lost === 0 && without.verification.problems.length === 0 && withAcks.verification.problems.length === 0,
        lines: [
          `the replicas of one master frozen and cut off while the producer sends the second half of ${fmt(without.events)} charges; that master killed, a replica without those writes promoted`,
          `replicaAcks 0: every flush acknowledged; **${fmt(without.lost)} acknowledged charges lost**; sent again, ${fmt(without.lost - without.lostAfterResend)} of them decided (a claim that outlived its job does not block a resend)`,
          `replicaAcks 1: the flush during the freeze failed (EnqueueError) and was sent again after the failover (${withAcks.resendAttempts} ${withAcks.resendAttempts === 1 ? 'try' : 'tries'}): **${fmt(withAcks.lost)} lost**, ${fmt(withAcks.verification.decisions)} decisions, ${problemsOf(withAcks.verification.problems)}`,
        ],
      };
    });

    await started?.stop();
    const failed = outcomes.filter((o) => !o.ok);
    process.stdout.write(`\n${outcomes.length - failed.length}/${outcomes.length} passed\n`);
    if (values.write) writeResults(outcomes, scale, process.argv.slice(2).join(' '));
    if (failed.length) throw new Error(`failed: ${failed.map((o) => `[${o.item}] ${o.title}`).join(', ')}`);
  },
);

function machine(): string {
  const redis = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).match(/v=(\S+)/)?.[1] ?? '?';
  return `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GB RAM, Node ${process.version}, Redis ${redis}`;
}

/** Replaces the sections of the items that ran, keeps the others (a partial run updates only its items). */
function writeResults(outcomes: Outcome[], scale: number, args: string): void {
  const doc = readFileSync(DOC, 'utf8');
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (start < 0 || end < 0) throw new Error(`docs/reliability.md has no ${BEGIN} … ${END} section`);
  const sections = new Map<string, string>();
  for (const part of doc.slice(start + BEGIN.length, end).split(/\n(?=\*\*\d+c?\. )/)) {
    const item = /^\*\*(\d+c?)\. /.exec(part.trim())?.[1];
    if (item) sections.set(item, part.trim());
  }
  const date = new Date().toISOString().slice(0, 10);
  for (const o of outcomes) {
    sections.set(
      o.item,
      [
        `**${o.item}. ${o.title}** — ${o.ok ? 'pass' : 'FAIL'} (${o.seconds.toFixed(0)} s; ${date}, \`npm run chaos -- ${args}\`${scale !== 1 ? `, scale ${scale}` : ''})`,
        '',
        ...o.lines.map((l) => `- ${l}`),
      ].join('\n'),
    );
  }
  const body = [
    BEGIN,
    '',
    `Machine: ${machine()}, shared with other work while the scenarios ran (timings are indicative, not benchmarks).`,
    '',
    ...[...sections.keys()].sort((a, b) => parseInt(a) - parseInt(b) || a.localeCompare(b)).flatMap((k) => [sections.get(k)!, '']),
    END,
  ].join('\n');
  writeFileSync(DOC, doc.slice(0, start) + body + doc.slice(end + END.length));
  process.stdout.write('wrote docs/reliability.md\n');
}
