/**
 * Chaos on a real Redis Cluster (3 masters, 3 replicas): worker processes killed with SIGKILL, and a master killed
 * mid-stream with its replica promoted.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { parseClusterSeeds } from '../../src/redis/target.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { failoverScenario } from './cluster-failover.ts';
import { workerCrashScenario } from './worker-crash.ts';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startCluster({ masters: 3, replicasPerMaster: 1 });
}, 90_000);
afterAll(async () => {
  await cluster?.stop();
});

test('kill -9 of worker processes on the cluster: every event decided once, state equals the model, settled once', async () => {
  const f = await workerCrashScenario({ redisUrl: parseClusterSeeds(cluster.seeds), events: 6_000, users: 400, rate: 0, riskWorkers: 2, killEveryMs: 1_500 });
  expect(f.verification.problems).toEqual([]);
  expect(f.verification.decisions).toBe(f.uniqueEvents);
  expect(f.verification.settled).toBeGreaterThan(0);
  expect(f.kills).toBeGreaterThan(0);
  expect(f.redeliveredBatches).toBeGreaterThan(0);
}, 150_000);

test('a master killed mid-stream: its replica takes over, workers and producer resume by themselves, nothing decided twice', async () => {
  const f = await failoverScenario({ cluster, target: parseClusterSeeds(cluster.seeds), events: 6_000, users: 400, rate: 1_500, riskWorkers: 2 });
  console.log(
    `failover: ${f.events} events, ${f.decidedAtKill} decided at the kill, failover ${Math.round(f.failoverMs)} ms, ` +
      `${f.decidedAfterFailover} of the killed master's shard decided after it, ${f.lost} acknowledged events lost`,
  );
  expect(f.verification.problems).toEqual([]);
  expect(f.decidedAfterFailover).toBeGreaterThan(0);
  // Asynchronous replication loses at most what the master had not yet sent on: a small part of the stream.
  expect(f.lost).toBeLessThan(f.events / 10);
}, 180_000);
