/**
 * Event time against the clock (contract v1.1). A producer's occurredAt is untrusted: an event is accepted only
 * inside [clock − maxAgeDays, clock + maxFutureSkewSeconds], where the clock is the producer's (the wall clock
 * live, the largest occurredAt accepted so far in a replay). The producer checks it and stamps the clock on what it
 * queues; workers check it again with that stamp, so a backlog never changes a decision.
 */
import type { RiskmonConfig } from '../config.ts';
import type { QueuedCharge, RiskEvent } from './schema.ts';
import { parseInstant } from './instant.ts';
import { DAY_MS } from '../time/calendar.ts';

export interface EventTimeLimits {
  maxFutureSkewMs: number;
  maxAgeMs: number;
}

export function eventTimeLimits(events: RiskmonConfig['events']): EventTimeLimits {
  return { maxFutureSkewMs: events.maxFutureSkewSeconds * 1000, maxAgeMs: events.maxAgeDays * DAY_MS };
}

/** Why the event cannot be accepted at `clockMs`, or undefined when it can. */
export function eventTimeProblem(event: RiskEvent | QueuedCharge, occurredAtMs: number, clockMs: number, limits: EventTimeLimits): string | undefined {
  if (occurredAtMs > clockMs + limits.maxFutureSkewMs) {
    return `occurredAt is ${span(occurredAtMs - clockMs)} ahead of the producer's clock ${new Date(clockMs).toISOString()} (at most ${span(limits.maxFutureSkewMs)})`;
  }
  if (occurredAtMs < clockMs - limits.maxAgeMs) {
    return `occurredAt is ${span(clockMs - occurredAtMs)} behind the producer's clock ${new Date(clockMs).toISOString()} (at most ${span(limits.maxAgeMs)})`;
  }
  if (event.type === 'repayment') {
    const paidAt = parseInstant(event.paidAt);
    if (paidAt.ok && paidAt.ms > occurredAtMs + limits.maxFutureSkewMs) {
      return `paidAt is ${span(paidAt.ms - occurredAtMs)} after occurredAt (a repayment is reported once paid)`;
    }
  }
  return undefined;
}

/**
 * Why a batch stamped with `clockMs` cannot be decided by a worker whose own clock reads `nowMs`: a producer clock
 * ahead of real time (a job queued by hand, a replay of events from the future) would settle and prune as of a time
 * that has not come. Undefined when it can.
 */
export function clockProblem(clockMs: number, nowMs: number, limits: EventTimeLimits): string | undefined {
  if (clockMs <= nowMs + limits.maxFutureSkewMs) return undefined;
  return `the producer's clock ${new Date(clockMs).toISOString()} is ${span(clockMs - nowMs)} ahead of this worker's clock (at most ${span(limits.maxFutureSkewMs)})`;
}

/** Why a replayed event cannot be accepted when the wall clock reads `wallMs`: events from the future are not facts yet. */
export function aheadOfWallProblem(occurredAtMs: number, wallMs: number, limits: EventTimeLimits): string | undefined {
  if (occurredAtMs <= wallMs + limits.maxFutureSkewMs) return undefined;
  return `occurredAt is ${span(occurredAtMs - wallMs)} ahead of the wall clock ${new Date(wallMs).toISOString()} (at most ${span(limits.maxFutureSkewMs)}): a replay takes only events that have happened`;
}

/** "9 days 2 h", "5 min 3 s", "300 s": readable, exact enough for a reason. */
function span(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3_600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  if (s < 86_400) return `${Math.floor(s / 3_600)} h${Math.floor((s % 3_600) / 60) ? ` ${Math.floor((s % 3_600) / 60)} min` : ''}`;
  const days = Math.floor(s / 86_400);
  const hours = Math.floor((s % 86_400) / 3_600);
  return `${days} day${days === 1 ? '' : 's'}${hours ? ` ${hours} h` : ''}`;
}
