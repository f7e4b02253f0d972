/**
 * Pacing work to a rate (events per second), for every sender that offers load: the feed of npm run produce, the
 * demo, the benchmark's offered loads and the chaos scenarios. Item k (from 1) is due (k − 1) / rate seconds after
 * the pacer was made: due times count from the start, never from the last sleep, so timer lateness and slow items
 * are made up for instead of adding up (no drift).
 */

export interface Pacer {
  /**
   * Counts `n` more items as done and sleeps until the next one is due, unless that is no more than the slack
   * away (at once when behind). `beforeSleep` runs first when it will sleep: a sender flushes its buffered batch so
   * the batch is not held back while it waits. Rate 0: never sleeps.
   */
  wait(n?: number, beforeSleep?: () => Promise<unknown>): Promise<void>;
  /** How many items are due by now, counting from the start (rate 0: all of them): a sender that offers items on schedule sends up to here. */
  due(): number;
}

export interface PacerOptions {
  /**
   * How far ahead of the schedule a sender may run before it sleeps. A timer is not much finer than a millisecond,
   * and a sleep ends the sender's batch, so a per-item sender sleeps every so many items rather than every one.
   * 0 for a sender that offers each item at its due time. @defaultValue 20
   */
  slackMs?: number;
}

export function createPacer(ratePerSecond: number, options: PacerOptions = {}): Pacer {
  if (!(ratePerSecond >= 0) || !Number.isFinite(ratePerSecond)) throw new RangeError(`a rate is a number ≥ 0 per second, got ${ratePerSecond}`);
  const slackMs = options.slackMs ?? 20;
  // A monotonic clock: a wall-clock step must not make the sender burst or stall.
  const started = performance.now();
  let done = 0;
  return {
    async wait(n = 1, beforeSleep) {
      done += n;
      if (ratePerSecond === 0) return;
      if (dueInMs() <= slackMs) return;
      await beforeSleep?.();
      // Measured again after beforeSleep: the time it took is not slept as well.
      const ms = dueInMs();
      if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    },
    due() {
      return ratePerSecond === 0 ? Infinity : Math.floor(((performance.now() - started) * ratePerSecond) / 1000) + 1;
    },
  };

  /** Until the next item (done + 1) is due; negative when behind. */
  function dueInMs(): number {
    return (done * 1000) / ratePerSecond - (performance.now() - started);
  }
}
