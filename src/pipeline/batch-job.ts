/** What a risk queue job carries: a micro-batch of events of users on one shard, in production order. */
export interface BatchJobData {
  /**
   * Payload format version. 2: per-event producer clocks, eventIds claimed by the producer. A version-1 payload
   * (queued by something else) is decided with `enqueuedAt` as every event's clock, and its worker claims its ids.
   */
  v: 1 | 2;
  /** Raw event objects; the worker validates them again (queue payloads are an entry point too). */
  events: unknown[];
  /** The producer's clock when it accepted each event (epoch ms), one per event: workers decide with it. */
  clocks?: number[];
  /** Instead of `clocks`, when every event of the batch was accepted at one clock (live: one per claim round). */
  clock?: number;
  /** The producer claimed every eventId of the batch (src/decisions/claims.ts). */
  claimed?: boolean;
  /** When the producer accepted the first event of the batch (ms); decision latency is measured from here. */
  enqueuedAt: number;
  /** Return per-event results as the job's return value (replay); otherwise only counts. */
  reply?: boolean;
}

export type EventOutcome = 'approve' | 'review' | 'decline' | 'accepted' | 'rejected';

/** One event's result, as returned to a replay. */
export interface EventResult {
  eventId: string | null;
  outcome: EventOutcome;
  rules?: string[];
  settleAt?: string | null;
  error?: string;
}

export const BATCH_JOB_NAME = 'events';
