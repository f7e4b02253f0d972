/**
 * The dispute flag on a charge (fenfu.disputes): while a dispute is open, and retention.disputeExtraYears after it
 * closed, the charge's records outlive normal retention (src/archive/retention.ts). Operators set and clear it
 * (`npm run archive -- dispute`); the review queue will too. One open dispute per charge at a time.
 */
import type { ArchiveDb } from './database.ts';
import { maskCardNumbers } from '../events/card.ts';

export interface Dispute {
  eventId: string;
  openedAt: string;
  openedBy: string;
  reason: string;
  closedAt: string | null;
  closedBy: string | null;
}

export class DisputeError extends Error {
  override name = 'DisputeError';
}

interface Row {
  event_id: string;
  opened_at: Date;
  opened_by: string;
  reason: string;
  closed_at: Date | null;
  closed_by: string | null;
}

const toDispute = (r: Row): Dispute => ({
  eventId: r.event_id,
  openedAt: r.opened_at.toISOString(),
  openedBy: r.opened_by,
  reason: r.reason,
  closedAt: r.closed_at?.toISOString() ?? null,
  closedBy: r.closed_by,
});

export class Disputes {
  constructor(
    private readonly db: ArchiveDb,
    private readonly namespace: string,
  ) {}

  /** Opens a dispute on an archived charge. Throws DisputeError for an unknown charge or one already disputed. */
  async open(eventId: string, by: string, reason: string, now = Date.now()): Promise<Dispute> {
    if (!by.trim() || !reason.trim()) throw new DisputeError('a dispute needs who opens it and why');
    // Kept for years: never a card number, whatever was typed.
    by = maskCardNumbers(by).slice(0, 200);
    reason = maskCardNumbers(reason).slice(0, 2_000);
    const known = await this.db.query(`SELECT 1 FROM fenfu.transactions WHERE namespace = $1 AND event_id = $2`, [this.namespace, eventId]);
    if (known.rows.length === 0) throw new DisputeError(`no archived charge ${JSON.stringify(eventId)} in namespace ${this.namespace}`);
    try {
      const r = await this.db.query<Row>(
        `INSERT INTO fenfu.disputes (namespace, event_id, opened_at, opened_by, reason) VALUES ($1, $2, $3, $4, $5)
         RETURNING event_id, opened_at, opened_by, reason, closed_at, closed_by`,
        [this.namespace, eventId, new Date(now), by, reason],
      );
      return toDispute(r.rows[0]!);
    } catch (e) {
      if ((e as { code?: string }).code === '23505') throw new DisputeError(`charge ${JSON.stringify(eventId)} already has an open dispute`);
      throw e;
    }
  }

  /** Closes the open dispute of a charge. Throws DisputeError when it has none. */
  async close(eventId: string, by: string, now = Date.now()): Promise<Dispute> {
    if (!by.trim()) throw new DisputeError('closing a dispute needs who closes it');
    by = maskCardNumbers(by).slice(0, 200);
    const r = await this.db.query<Row>(
      `UPDATE fenfu.disputes SET closed_at = greatest($3::timestamptz, opened_at), closed_by = $4
       WHERE namespace = $1 AND event_id = $2 AND closed_at IS NULL
       RETURNING event_id, opened_at, opened_by, reason, closed_at, closed_by`,
      [this.namespace, eventId, new Date(now), by],
    );
    if (r.rows.length === 0) throw new DisputeError(`charge ${JSON.stringify(eventId)} has no open dispute`);
    return toDispute(r.rows[0]!);
  }

  /** Every dispute of a charge, or (without one) the open ones, oldest first. */
  async list(eventId?: string): Promise<Dispute[]> {
    const r = eventId
      ? await this.db.query<Row>(`SELECT * FROM fenfu.disputes WHERE namespace = $1 AND event_id = $2 ORDER BY opened_at`, [this.namespace, eventId])
      : await this.db.query<Row>(`SELECT * FROM fenfu.disputes WHERE namespace = $1 AND closed_at IS NULL ORDER BY opened_at`, [this.namespace]);
    return r.rows.map(toDispute);
  }
}
