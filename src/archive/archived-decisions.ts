/**
 * Decisions as the archive holds them: one charge with its risk record and settlement, or a page of charges by
 * user, merchant, time and outcome (keyset pagination on occurredAt, eventId). The card is its last four digits.
 */
import type { ArchiveDb } from './database.ts';
import { archivedText } from './archiver.ts';

export interface ArchivedDecision {
  eventId: string;
  userId: string;
  merchantId: string;
  amountFen: number;
  /** The card's last four digits, nothing more. */
  cardLast4: string;
  occurredAt: string;
  outcome: 'approve' | 'review' | 'decline';
  decidedAt: string;
  settleAt: string | null;
  /** When it was paid into the Fenfu ledger, and that ledger's date; null while unpaid. */
  settledAt: string | null;
  settlementDate: string | null;
  /** The risk record (null once retention dropped it: 3 years, against 5 for the transaction). */
  rules: string[] | null;
  reasons: string[] | null;
  observed: Record<string, unknown> | null;
  configVersion: string | null;
}

export interface DecisionFilter {
  userId?: string;
  merchantId?: string;
  /** occurredAt from (inclusive) and to (exclusive). */
  from?: Date;
  to?: Date;
  outcome?: 'approve' | 'review' | 'decline';
  limit: number;
  /** Continue after this (occurredAt, eventId). */
  after?: { occurredAt: string; eventId: string };
}

interface Row {
  event_id: string;
  user_id: string;
  merchant_id: string;
  amount_fen: number;
  card: string;
  occurred_at: Date;
  outcome: ArchivedDecision['outcome'];
  decided_at: Date;
  settle_at: Date | null;
  settled_at: Date | null;
  settlement_date: string | null;
  rules: string[] | null;
  reasons: string[] | null;
  observed: Record<string, unknown> | null;
  config_version: string | null;
}

const SELECT = `SELECT t.event_id, t.user_id, t.merchant_id, t.amount_fen, t.card, t.occurred_at, t.outcome, t.decided_at, t.settle_at,
    s.settled_at, to_char(s.settlement_date, 'YYYY-MM-DD') AS settlement_date, r.rules, r.reasons, r.observed, r.config_version
  FROM fenfu.transactions t
  LEFT JOIN fenfu.risk_records r ON r.namespace = t.namespace AND r.event_id = t.event_id
  LEFT JOIN fenfu.settlements s ON s.namespace = t.namespace AND s.event_id = t.event_id`;

/** "****1234" (or any label) → "1234": the last four digits only. */
export function last4(card: string): string {
  return card.replace(/\D/g, '').slice(-4);
}

function toDecision(r: Row): ArchivedDecision {
  return {
    eventId: r.event_id,
    userId: r.user_id,
    merchantId: r.merchant_id,
    amountFen: Number(r.amount_fen),
    cardLast4: last4(r.card),
    occurredAt: r.occurred_at.toISOString(),
    outcome: r.outcome,
    decidedAt: r.decided_at.toISOString(),
    settleAt: r.settle_at?.toISOString() ?? null,
    settledAt: r.settled_at?.toISOString() ?? null,
    settlementDate: r.settlement_date,
    rules: r.rules,
    reasons: r.reasons,
    observed: r.observed,
    configVersion: r.config_version,
  };
}

export class ArchivedDecisions {
  constructor(
    private readonly db: ArchiveDb,
    private readonly namespace: string,
  ) {}

  async byId(eventId: string): Promise<ArchivedDecision | undefined> {
    const r = await this.db.query<Row>(`${SELECT} WHERE t.namespace = $1 AND t.event_id = $2`, [this.namespace, archivedText(eventId)]);
    return r.rows[0] && toDecision(r.rows[0]);
  }

  /** A user's decisions that occurred in the `days` before `until` (inclusive), newest first, at most `limit`. */
  async recentOfUser(userId: string, until: Date, days: number, limit: number): Promise<ArchivedDecision[]> {
    const r = await this.db.query<Row>(
      `${SELECT} WHERE t.namespace = $1 AND t.user_id = $2 AND t.occurred_at <= $3 AND t.occurred_at > $4 ORDER BY t.occurred_at DESC, t.event_id DESC LIMIT $5`,
      [this.namespace, userId, until, new Date(until.getTime() - days * 86_400_000), limit],
    );
    return r.rows.map(toDecision);
  }

  /** One page, oldest first; `next` continues after its last decision. */
  async query(f: DecisionFilter): Promise<{ decisions: ArchivedDecision[]; next: { occurredAt: string; eventId: string } | undefined }> {
    const where = ['t.namespace = $1'];
    const params: unknown[] = [this.namespace];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (f.userId !== undefined) add('t.user_id = ?', f.userId);
    if (f.merchantId !== undefined) add('t.merchant_id = ?', f.merchantId);
    if (f.from) add('t.occurred_at >= ?', f.from);
    if (f.to) add('t.occurred_at < ?', f.to);
    if (f.outcome) add('t.outcome = ?', f.outcome);
    if (f.after) {
      params.push(new Date(f.after.occurredAt), f.after.eventId);
      where.push(`(t.occurred_at, t.event_id) > ($${params.length - 1}, $${params.length})`);
    }
    params.push(f.limit + 1);
    const r = await this.db.query<Row>(`${SELECT} WHERE ${where.join(' AND ')} ORDER BY t.occurred_at, t.event_id LIMIT $${params.length}`, params);
    const page = r.rows.slice(0, f.limit).map(toDecision);
    const last = page[page.length - 1];
    return { decisions: page, next: r.rows.length > f.limit && last ? { occurredAt: last.occurredAt, eventId: last.eventId } : undefined };
  }
}
