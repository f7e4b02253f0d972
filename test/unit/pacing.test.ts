/** The shared pacer (src/pacing.ts) on the real clock: ratios over short runs, not tight timings. */
import { describe, expect, it } from 'vitest';
import { createPacer } from '../../src/pacing.ts';

describe('createPacer', () => {
  it('paces items one at a time to the rate, within its slack', async () => {
    const pacer = createPacer(1_000);
    const started = performance.now();
    for (let i = 0; i < 200; i++) await pacer.wait(1);
    const ms = performance.now() - started;
    // The 200th item done, the 201st is due at 200 ms; the pacer may run 20 ms ahead.
    expect(ms).toBeGreaterThanOrEqual(180);
    expect(ms).toBeLessThan(600);
  });

  it('does not drift: a slow item is made up for by the ones after it', async () => {
    const pacer = createPacer(1_000);
    const started = performance.now();
    for (let i = 0; i < 200; i++) {
      // Item 20 takes 150 ms: due times count from the start, so the next 150 go at once and the run still ends at 200 ms.
      if (i === 20) await new Promise((r) => setTimeout(r, 150));
      await pacer.wait(1);
    }
    const ms = performance.now() - started;
    expect(ms).toBeGreaterThanOrEqual(180);
    // Paced from the last sleep it would take 350 ms.
    expect(ms).toBeLessThan(290);
  });

  it('catches up at once after a stall instead of sleeping', async () => {
    const pacer = createPacer(1_000);
    await new Promise((r) => setTimeout(r, 100));
    const started = performance.now();
    await pacer.wait(50);
    expect(performance.now() - started).toBeLessThan(10);
  });

  it('flushes before it sleeps, and only then', async () => {
    const pacer = createPacer(100);
    let flushes = 0;
    const flush = async () => void flushes++;
    await pacer.wait(1, flush); // the next is due in 10 ms: within the 20 ms slack
    expect(flushes).toBe(0);
    await pacer.wait(5, flush); // due in 60 ms
    expect(flushes).toBe(1);
  });

  it('tells how many items are due, for a sender that offers each on schedule', async () => {
    const pacer = createPacer(1_000);
    expect(pacer.due()).toBe(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(pacer.due()).toBeGreaterThanOrEqual(50);
    expect(pacer.due()).toBeLessThan(150);
  });

  it('rate 0 never sleeps', async () => {
    const pacer = createPacer(0);
    const started = performance.now();
    for (let i = 0; i < 1_000; i++) await pacer.wait(1_000, () => Promise.reject(new Error('no flush without a sleep')));
    expect(performance.now() - started).toBeLessThan(50);
    expect(pacer.due()).toBe(Infinity);
  });

  it('refuses a rate that is not a number ≥ 0', () => {
    for (const rate of [-1, NaN, Infinity]) expect(() => createPacer(rate)).toThrow(RangeError);
  });
});
