/** What a risk queue job carries: a micro-batch of events of users on one shard, in production order. */
export interface BatchJobData {
  /** Payload format version. */
  v: 1;
  /** Raw event objects; the worker validates them again (queue payloads are an entry point too). */
  events: unknown[];
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
