/** What a risk worker says of an event it dead-letters: the `reason` label of riskmon_events_rejected_total. */
import { EVENT_REJECT_LABELS, type EventRejectLabel } from '../events/schema.ts';

/**
 * Why a worker dead-lettered an event (label `reason` of riskmon_events_rejected_total): what the event schema says
 * of it (src/events/schema.ts), a payload that is no batch, a failed evaluation, its time or eventId, or the state it
 * met (a second account opening).
 */
export type RejectReason = EventRejectLabel | 'bad_payload' | 'evaluation_error' | 'event_time' | 'clock_ahead' | 'id_conflict' | 'conflict';

/**
 * The labels workers emit, created at zero so rates and ratios have series from the start. A queued event is parsed
 * JSON of bounded size already: "invalid_json" and "too_long" are lines, refused by the producers
 * (riskmon_producer_rejected_events).
 */
export const REJECT_REASONS: readonly RejectReason[] = [
  ...EVENT_REJECT_LABELS.filter((l) => l !== 'invalid_json' && l !== 'too_long'),
  'bad_payload',
  'evaluation_error',
  'event_time',
  'clock_ahead',
  'id_conflict',
  'conflict',
];
