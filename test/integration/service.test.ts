/** The service as `npm start` runs it: risk workers and settlement worker consuming what a producer pushes. */
import { afterEach, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.ts';
import { silentLogger } from '../../src/logger.ts';
import { EventProducer } from '../../src/pipeline/producer.ts';
import { startService, type Service } from '../../src/service.ts';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { dropNamespace, freshNamespace, redisUrl } from '../helpers/context.ts';
import { decisionKey, decisionStreamLength } from '../helpers/shards.ts';

let service: Service | undefined;
afterEach(async () => {
  if (service) {
    await dropNamespace(service.context.redis, service.context.keys.namespace);
    await service.close();
  }
  service = undefined;
});

async function until<T>(probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('service', () => {
  it('decides pushed charges and settles the due ones on its own', async () => {
    const settings = loadSettings({ namespace: freshNamespace('svc'), overrides: { settlement: { tickSeconds: 1 } }, env: {} });
    service = await startService({ components: ['risk', 'settlement'], settings, logger: silentLogger, redisUrl: redisUrl() });
    const { context } = service;
    // A producer whose clock is just after the synthetic stream (March 2026): every approved or held charge is
    // already due by the wall clock the settlement worker uses.
    const producer = await context.openProducer({ clock: () => Date.parse('2026-03-11T12:00:00+08:00') });
    const events = [...syntheticCharges({ count: 600, users: 30, seed: 3 })];
    for (const e of events) producer.send(e);
    await producer.close();

    const decided = await until(() => decisionStreamLength(context.redis, context.keys), (n) => n === events.length);
    expect(decided).toBe(600);
    const stats = await until(() => context.ledger.stats(), (s) => s.scheduledCount === 0 && s.heldCount === 0);
    const approvedOrHeld = (await context.redis.mget(events.map((e) => decisionKey(context.keys, e.userId, e.eventId))))
      .map((d) => JSON.parse(d!))
      .filter((d) => d.outcome !== 'decline');
    expect(stats.settledCount).toBe(approvedOrHeld.length);
    expect(stats.settledAmount).toBe(approvedOrHeld.reduce((s: number, d: { amount: number }) => s + d.amount, 0));
    const text = await context.metrics.registry.metrics();
    expect(text).toMatch(/riskmon_decisions_total\{outcome="approve"\} \d+/);
    expect(text).toMatch(/riskmon_settlements_settled_total \d+/);
  });
});
