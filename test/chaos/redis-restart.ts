/**
 * Item 2, Redis restarts: a private redis-server with AOF (`appendfsync everysec` or `always`, or no persistence
 * for contrast) is killed with SIGKILL and restarted on the same port and directory several times while a stream
 * flows. The worker processes are never restarted: they reconnect by themselves. The producer counts an event as
 * acknowledged once `flush()` resolved for it; afterwards we count acknowledged events without a decision (lost)
 * and compare the whole namespace with the reference model.
 */
import { isClaimed } from '../helpers/claims.ts';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createContext } from '../../src/context.ts';
import { CardHasher } from '../../src/events/card.ts';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { silentLogger } from '../../src/logger.ts';
import { createPacer } from '../../src/pacing.ts';
import { EventProducer } from '../../src/pipeline/producer.ts';
import { startRedisServer, type LocalRedis } from '../../src/redis/local-server.ts';
import { freshNamespace } from '../helpers/context.ts';
import { ReferenceModel } from '../helpers/reference-model.ts';
import { chaosSettings, Fleet, readDecisions, readDecisionStream, riskQueueKey, scanKeys, sleep, unfinishedJobs, verifyNamespace, waitFor, writeConfigFile, type Verification } from './harness.ts';
import { CRASH_PIPELINE } from './worker-crash.ts';

export type Persistence = 'everysec' | 'always' | 'off';

export interface RedisRestartOptions {
  persistence: Persistence;
  events: number;
  users: number;
  /** Events per second offered. */
  rate: number;
  restarts: number;
  riskWorkers: number;
  /** How long Redis stays down at each restart, ms. @defaultValue 500 */
  downMs?: number;
}

export interface RedisRestartFigures {
  persistence: Persistence;
  events: number;
  acknowledged: number;
  restarts: number;
  /** Acknowledged events with no decision at the end. */
  lostAcknowledged: number;
  /** Where the lost events' jobs are, and whether their ids were claimed (empty when none was lost). */
  lostTrail: string[];
  /** The most an fsync stall may cost (`everysec` replies while postponing its write up to 2 s): rate × 2 s × crashes. */
  lossBound: number;
  decisions: number;
  workerProcessesRestarted: number;
  reconnectsLogged: number;
  /** Jobs in the failed sets, and what the workers logged about them. */
  failedJobs: number;
  failures: string[];
  /** Dead letters (valid events must produce none) and their first reasons. */
  deadLetters: number;
  deadLetterReasons: string[];
  seconds: number;
  verification: Verification | null;
}

export function persistenceArgs(persistence: Persistence): string[] {
  return persistence === 'off' ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', persistence];
}

/** A redis-server that can be crashed and started again on the same port and data directory. */
export class RestartableRedis {
  private constructor(
    private server: LocalRedis,
    readonly dir: string,
    private readonly args: string[],
  ) {}

  static async start(args: string[]): Promise<RestartableRedis> {
    const dir = mkdtempSync(join(tmpdir(), 'riskmon-chaos-redis-'));
    return new RestartableRedis(await startRedisServer({ dir, args }), dir, args);
  }

  get url(): string {
    return this.server.url;
  }

  get pid(): number {
    return this.server.process.pid!;
  }

  /** SIGKILL: the server gets no chance to flush anything. */
  async crash(): Promise<void> {
    const exited = once(this.server.process, 'exit');
    this.server.process.kill('SIGKILL');
    await exited;
  }

  /** Freezes the server (SIGSTOP): connections stay open but nothing answers. */
  freeze(): void {
    this.server.process.kill('SIGSTOP');
  }

  thaw(): void {
    this.server.process.kill('SIGCONT');
  }

  /**
   * A SIGKILL during write() can cut the AOF inside a MULTI block (a Lua script's writes). Redis 7.0 truncates at the
   * last whole command and leaves the MULTI open: the next load merges what follows into it (the unacknowledged
   * half-script comes back) and drops acknowledged writes that no EXEC follows (fixed in Valkey by
   * valkey-io/valkey#4342). redis-check-aof --fix cuts before the MULTI: the restart procedure docs/reliability.md
   * gives operators, and the one this harness follows.
   */
  repairAof(): void {
    const manifest = join(this.dir, 'appendonlydir', 'appendonly.aof.manifest');
    if (!existsSync(manifest)) return;
    const r = spawnSync('redis-check-aof', ['--fix', manifest], { input: 'y\n', encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`redis-check-aof --fix failed: ${r.stdout}${r.stderr}`);
  }

  /** Starts the server again on the same port and directory, after repairing its AOF (unless `repairAof: false`). */
  async restart(options: { repairAof?: boolean } = {}): Promise<void> {
    if (options.repairAof ?? true) this.repairAof();
    for (let attempt = 1; ; attempt++) {
      try {
        this.server = await startRedisServer({ port: this.server.port, dir: this.dir, args: this.args });
        return;
      } catch (e) {
        if (attempt >= 10) throw e;
        await sleep(200);
      }
    }
  }

  async stop(): Promise<void> {
    await this.server.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function redisRestartScenario(options: RedisRestartOptions): Promise<RedisRestartFigures> {
  const redis = await RestartableRedis.start(persistenceArgs(options.persistence));
  const namespace = freshNamespace('chaos-restart');
  const overrides = { pipeline: CRASH_PIPELINE };
  const settings = chaosSettings(namespace, overrides);
  const configFile = writeConfigFile(overrides);
  const context = createContext(settings, redis.url, silentLogger);
  const fleet = new Fleet({ REDIS_URL: redis.url, RISKMON_NAMESPACE: namespace, RISKMON_CONFIG: configFile.path });
  const started = performance.now();
  const startMs = Date.now() - 20 * 86_400_000;
  const input = [...syntheticCharges({ count: options.events, users: options.users, seed: 23, startMs, prefix: namespace })];
  let producer: EventProducer | undefined;
  try {
    fleet.start('risk-worker', options.riskWorkers);
    await Promise.all(fleet.processes().map((p) => p.waitForLine('riskmon started')));
    producer = await context.openProducer({ clock: 'replay' });

    // Restart points spread over the stream; the producer keeps going (its connection waits for Redis).
    const restartAt = Array.from({ length: options.restarts }, (_, i) => Math.floor(((i + 1) * input.length) / (options.restarts + 1)));
    let acknowledged = 0;
    // One outage after the other: a crash during the previous restart would kill the dead process and wait forever.
    let outages: Promise<void> = Promise.resolve();
    const chunk = 250;
    const pacer = createPacer(options.rate);
    for (let i = 0; i < input.length; i += chunk) {
      for (const e of input.slice(i, i + chunk)) producer.send(e);
      await producer.flush();
      acknowledged = Math.min(input.length, i + chunk);
      if (restartAt.length && acknowledged >= restartAt[0]!) {
        restartAt.shift();
        // Crash Redis right after acknowledgements, without waiting: the stream goes on into the outage.
        outages = outages.then(async () => {
          await redis.crash();
          await sleep(options.downMs ?? 500);
          await redis.restart();
        });
      }
      await pacer.wait(Math.min(chunk, input.length - i));
    }
    await outages;

    const shards = settings.config.pipeline.shards;
    await waitFor(async () => (await unfinishedJobs(context.redis, context.keys, shards)) === 0, 120_000, 'the queues to drain', 250);
    const crashed = fleet.unexpectedExits();
    if (crashed.length) throw new Error(`worker processes died on their own:\n${crashed.join('\n')}`);

    const failedPipe = context.redis.pipeline();
    for (let s = 0; s < shards; s++) failedPipe.zcard(riskQueueKey(context.keys, s, 'failed'));
    const failedJobs = ((await failedPipe.exec()) ?? []).reduce((n, [, v]) => n + Number(v), 0);
    const failures = fleet.all.flatMap((p) => p.lines.filter((l) => l.includes('"batch failed"') || l.includes('"level":60')));
    const decisions = await readDecisions(context.redis, context.keys);
    const ackedIds = new Set(input.slice(0, acknowledged).map((e) => e.eventId));
    const lostIds = [...ackedIds].filter((id) => !decisions.has(id));
    const lostAcknowledged = lostIds.length;
    // Where did lost events go? The jobs that carried them, and whether their ids were claimed.
    const lostTrail: string[] = [];
    if (lostIds.length) {
      const jobKeys = (await Promise.all(context.keys.shardIds.map((s) => scanKeys(context.redis, riskQueueKey(context.keys, s, '*'))))).flat().filter((k) => /:\d+$/.test(k));
      for (const key of jobKeys) {
        const [data, finishedOn, stc, ats, failedReason] = await context.redis.hmget(key, 'data', 'finishedOn', 'stc', 'ats', 'failedReason');
        const hit = lostIds.filter((id) => data?.includes(`"${id}"`));
        if (hit.length) lostTrail.push(`${hit.length} in ${key} finishedOn=${finishedOn} stalled=${stc} attemptsStarted=${ats} failedReason=${failedReason}`);
      }
      const claimed = await Promise.all(lostIds.slice(0, 5).map((id) => isClaimed(context.redis, context.keys, id).then(Number)));
      lostTrail.push(`first lost ids ${lostIds.slice(0, 5).join(' ')} claimed=${claimed.join(',')}; ${(await context.redis.info('persistence')).match(/aof_delayed_fsync:\d+/)}`);
      if (process.env.CHAOS_DEBUG) console.error(lostTrail.join('\n'));
    }
    let verification: Verification | null = null;
    if (options.persistence !== 'off') {
      // What survived must be consistent: the model fed the surviving events, in the order they were decided, equals
      // the state, and each user's survivors were decided in production order. (With nothing lost this is the
      // model of the whole input.)
      const byId = new Map(input.map((e) => [e.eventId, e]));
      // Decided with the producer's replay clock: the largest occurredAt sent before, in input order.
      const clockOf = new Map<string, number>();
      let clock = -Infinity;
      for (const e of input) clockOf.set(e.eventId, (clock = Math.max(clock, Date.parse(e.occurredAt))));
      const model = ReferenceModel.fromConfig(settings.config);
      for (const d of await readDecisionStream(context.redis, context.keys)) model.applyAt(byId.get(d.eventId)!, clockOf.get(d.eventId));
      const survivors = input.filter((e) => decisions.has(e.eventId));
      verification = await verifyNamespace(context.redis, context.keys, new CardHasher(settings.cardSecret), model, { input: survivors });
    }
    return {
      persistence: options.persistence,
      events: input.length,
      acknowledged,
      restarts: options.restarts,
      lostAcknowledged,
      lostTrail,
      lossBound: Math.ceil(options.rate * 2 * options.restarts),
      decisions: decisions.size,
      workerProcessesRestarted: fleet.all.length - options.riskWorkers,
      reconnectsLogged: fleet.count('worker error'),
      failedJobs,
      failures: failures.slice(0, 10),
      deadLetters: await context.deadLetters.count(),
      deadLetterReasons: [...new Set((await context.deadLetters.list(1_000)).map((d) => d.reason))].slice(0, 5),
      seconds: (performance.now() - started) / 1000,
      verification,
    };
  } finally {
    await producer?.close();
    await fleet.stop();
    await context.close();
    await redis.stop();
    configFile.remove();
  }
}
