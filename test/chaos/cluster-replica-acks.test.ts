/**
 * What pipeline.replicaAcks buys through a failover whose promoted replica missed the last writes (a cluster of 3
 * masters with 2 replicas each; test/chaos/replica-acks.ts).
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { parseClusterSeeds } from '../../src/redis/target.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { frozenReplicaFailover } from './replica-acks.ts';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startCluster({ masters: 3, replicasPerMaster: 2 });
}, 90_000);
afterAll(async () => {
  await cluster?.stop();
});

test('without replicaAcks a failover loses events the producer acknowledged; sending them again recovers them', async () => {
  const f = await frozenReplicaFailover({ cluster, target: parseClusterSeeds(cluster.seeds), replicaAcks: 0, events: 400 });
  console.log(`replicaAcks 0: ${f.lost} of ${f.events} acknowledged events lost; ${f.lostAfterResend} after sending them again`);
  expect(f.flushRefused).toBe(false);
  expect(f.lost).toBeGreaterThan(0);
  // Sending the lost events again recovers them: a claim that outlived its job does not block the resend.
  expect(f.lostAfterResend).toBe(0);
  expect(f.verification.problems).toEqual([]);
}, 120_000);

test('with replicaAcks 1 the flush fails instead, and what is sent again is decided: nothing acknowledged is lost', async () => {
  const f = await frozenReplicaFailover({ cluster, target: parseClusterSeeds(cluster.seeds), replicaAcks: 1, events: 400 });
  console.log(`replicaAcks 1: flush refused ${f.flushRefused}, confirmed after ${f.resendAttempts} resends, ${f.lost} of ${f.events} lost`);
  expect(f.flushRefused).toBe(true);
  expect(f.lost).toBe(0);
  expect(f.verification.problems).toEqual([]);
  expect(f.verification.decisions).toBe(f.events);
}, 120_000);
