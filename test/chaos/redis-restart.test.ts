import { describe, expect, test } from 'vitest';
import { redisRestartScenario } from './redis-restart.ts';

// Item 2 at small size (full size: npm run chaos). Each test runs its own redis-server, killed with SIGKILL.
describe('Redis crashes and restarts mid-stream', () => {
  test('AOF appendfsync always: workers reconnect by themselves, no acknowledged event lost, state exact', async () => {
    const f = await redisRestartScenario({ persistence: 'always', events: 3_000, users: 300, rate: 2_000, restarts: 2, riskWorkers: 2 });
    expect(f.acknowledged).toBe(3_000);
    // On a failure, say where the lost events went.
    expect(f.lostAcknowledged, JSON.stringify({ failedJobs: f.failedJobs, failures: f.failures, deadLetters: f.deadLetterReasons, lost: f.lostTrail })).toBe(0);
    expect(f.verification?.decisions).toBe(3_000);
    expect(f.verification?.problems).toEqual([]);
    expect(f.deadLetters).toBe(0);
    expect(f.failedJobs).toBe(0);
    expect(f.workerProcessesRestarted).toBe(0);
    // The outages were real: the workers saw their connections fail.
    expect(f.reconnectsLogged).toBeGreaterThan(0);
  }, 90_000);

  test('AOF appendfsync everysec: what survives is consistent; a loss stays within the fsync-stall bound', async () => {
    const f = await redisRestartScenario({ persistence: 'everysec', events: 3_000, users: 300, rate: 2_000, restarts: 2, riskWorkers: 2 });
    // Usually 0 (Redis writes the AOF before replying); a stalled fsync lets Redis reply up to 2 s before writing.
    expect(f.lostAcknowledged).toBeLessThanOrEqual(f.lossBound);
    expect(f.verification?.problems).toEqual([]);
    expect(f.deadLetters).toBe(0);
    expect(f.failedJobs).toBe(0);
    expect(f.workerProcessesRestarted).toBe(0);
  }, 90_000);

  test('without persistence the same measurement shows the loss (the check can fail)', async () => {
    const f = await redisRestartScenario({ persistence: 'off', events: 2_000, users: 300, rate: 2_000, restarts: 2, riskWorkers: 2 });
    expect(f.lostAcknowledged).toBeGreaterThan(0);
  }, 90_000);
});
