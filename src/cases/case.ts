/**
 * A review case: the record the case scripts keep in the shard's `cases` hash (JSON, src/cases/case-record.lua) and
 * log with every action, and the view the API and console show. Instants are epoch ms in the record, ISO-8601 in
 * the view; money is fen.
 */
import { z } from 'zod';

export const CASE_STATUSES = ['open', 'locked', 'pending_approval', 'closed'] as const;
/** `locked` is an open case an analyst holds now (its lock not expired): a view, not a stored status. */
export type CaseStatus = (typeof CASE_STATUSES)[number];
export const CASE_OUTCOMES = ['released', 'cancelled', 'auto_released'] as const;
export type CaseOutcome = (typeof CASE_OUTCOMES)[number];

/** Every action a case log records (src/cases/*.lua, src/settlement/releaseSettlement-15.lua, complaints). */
export const CASE_ACTIONS = ['opened', 'taken', 'lock_expired', 'release_requested', 'released', 'approved', 'cancelled', 'auto_released', 'extended', 'deadline_waiting', 'complaint', 'refunded'] as const;
export type CaseAction = (typeof CASE_ACTIONS)[number];

const ms = z.number().int();
// lua-cjson writes an empty array as {}.
const list = z.union([z.array(z.string()), z.object({}).strict().transform(() => [] as string[])]);

export const caseRecordSchema = z.object({
  id: z.string(),
  chargeId: z.string(),
  userId: z.string(),
  merchantId: z.string(),
  amount: z.number().int(),
  /** credit_limit counted the charge: a cancel gives its credit back. */
  credit: z.boolean(),
  /** The charge's local date (its day's charge count). */
  localDate: z.string(),
  /** Its T+1 instant: a release pays it from then on. */
  t1Ms: ms,
  deadlineMs: ms,
  firstDeadlineMs: ms,
  status: z.enum(['open', 'pending_approval', 'closed']),
  opened: z.enum(['review', 'complaint']),
  openedAtMs: ms,
  rules: list,
  /** The charge was paid before the case opened (a complaint's): a cancel books a reversal. */
  paid: z.boolean(),
  /** A complaint froze it: never released but by a person. */
  frozen: z.boolean(),
  extensions: z.number().int(),
  seq: z.number().int(),
  /** Refunded of the charge so far, as the case saw it (a cancel gives back the rest). */
  refundedFen: z.number().int().optional(),
  lockedBy: z.string().optional(),
  lockedUntilMs: ms.optional(),
  releasedBy: z.string().optional(),
  releaseNote: z.string().optional(),
  releaseAskedAtMs: ms.optional(),
  approvedBy: z.string().optional(),
  waiting: z.boolean().optional(),
  complaint: z.object({ eventId: z.string(), reason: z.string(), atMs: ms }).optional(),
  outcome: z.enum(CASE_OUTCOMES).optional(),
  closedBy: z.string().optional(),
  closedAtMs: ms.optional(),
  cancelledFen: z.number().int().optional(),
  creditGivenBackFen: z.number().int().optional(),
  reversed: z.boolean().optional(),
});
export type CaseRecord = z.output<typeof caseRecordSchema>;

export function parseCaseRecord(json: string): CaseRecord {
  return caseRecordSchema.parse(JSON.parse(json));
}

/** A case as the API answers it. */
export interface CaseView {
  id: string;
  chargeId: string;
  userId: string;
  merchantId: string;
  amountFen: number;
  status: CaseStatus;
  opened: 'review' | 'complaint';
  openedAt: string;
  deadline: string;
  /** The deadline has passed and the case waits for a person (four eyes, approval, or a complaint). */
  overdue: boolean;
  rules: string[];
  paid: boolean;
  frozen: boolean;
  extensions: number;
  lockedBy: string | null;
  lockedUntil: string | null;
  releasedBy: string | null;
  releaseNote: string | null;
  approvedBy: string | null;
  complaint: { eventId: string; reason: string; at: string } | null;
  outcome: CaseOutcome | null;
  closedBy: string | null;
  closedAt: string | null;
  cancelledFen: number | null;
  creditGivenBackFen: number | null;
  reversed: boolean;
}

const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());

export function caseView(c: CaseRecord, nowMs: number): CaseView {
  const locked = c.status === 'open' && c.lockedBy !== undefined && (c.lockedUntilMs ?? 0) > nowMs;
  return {
    id: c.id,
    chargeId: c.chargeId,
    userId: c.userId,
    merchantId: c.merchantId,
    amountFen: c.amount,
    status: locked ? 'locked' : c.status,
    opened: c.opened,
    openedAt: iso(c.openedAtMs)!,
    deadline: iso(c.deadlineMs)!,
    overdue: c.status !== 'closed' && c.deadlineMs <= nowMs,
    rules: c.rules,
    paid: c.paid,
    frozen: c.frozen,
    extensions: c.extensions,
    lockedBy: locked ? c.lockedBy! : null,
    lockedUntil: locked ? iso(c.lockedUntilMs) : null,
    releasedBy: c.releasedBy ?? null,
    releaseNote: c.releaseNote ?? null,
    approvedBy: c.approvedBy ?? null,
    complaint: c.complaint ? { eventId: c.complaint.eventId, reason: c.complaint.reason, at: iso(c.complaint.atMs)! } : null,
    outcome: c.outcome ?? null,
    closedBy: c.closedBy ?? null,
    closedAt: iso(c.closedAtMs),
    cancelledFen: c.cancelledFen ?? null,
    creditGivenBackFen: c.creditGivenBackFen ?? null,
    reversed: c.reversed ?? false,
  };
}
