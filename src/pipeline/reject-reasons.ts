/** What a risk worker says of an event it dead-letters: the `reason` label of riskmon_events_rejected_total. */
import { EVENT_REJECT_LABELS, type EventRejectLabel } from '../events/schema.ts';

/**
 * Why a worker dead-lettered an event (label `reason` of riskmon_events_rejected_total): what the event schema says
 * of it (src/events/schema.ts), a payload that is no batch, a failed evaluation, its time or eventId, or the state it
 * met: a second account opening or a refund the charge does not allow (`conflict`), a repayment or snapshot of a
 * user without a credit account (`no_credit_account`) or timed before its opening (`before_opening`), a refund of a
 * charge with no decision (`unknown_charge`).
 */
export type RejectReason =
  | EventRejectLabel
  | 'bad_payload'
  | 'evaluation_error'
  | 'event_time'
  | 'clock_ahead'
  | 'id_conflict'
  | 'conflict'
  | 'no_credit_account'
  | 'before_opening'
  | 'unknown_charge';

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
  'no_credit_account',
  'before_opening',
  'unknown_charge',
];
