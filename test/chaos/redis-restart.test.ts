import { describe, expect, test } from 'vitest';
import { redisRestartScenario } from './redis-restart.ts';

// Item 2 at small size (full size: npm run chaos). Each test runs its own redis-server, killed with SIGKILL.
describe('Redis crashes and restarts mid-stream', () => {
  for (const persistence of ['everysec', 'always'] as const) {
    test(`AOF appendfsync ${persistence}: workers reconnect by themselves, no acknowledged event lost, state exact`, async () => {
      const f = await redisRestartScenario({ persistence, events: 3_000, users: 300, rate: 2_000, restarts: 2, riskWorkers: 2 });
      expect(f.acknowledged).toBe(3_000);
      expect(f.lostAcknowledged).toBe(0);
      expect(f.verification?.problems).toEqual([]);
      expect(f.workerProcessesRestarted).toBe(0);
      // The outages were real: the workers saw their connections fail.
      expect(f.reconnectsLogged).toBeGreaterThan(0);
    }, 90_000);
  }

  test('without persistence the same measurement shows the loss (the check can fail)', async () => {
    const f = await redisRestartScenario({ persistence: 'off', events: 2_000, users: 300, rate: 2_000, restarts: 2, riskWorkers: 2 });
    expect(f.lostAcknowledged).toBeGreaterThan(0);
  }, 90_000);
});
