/**
 * The audit trail of the API (riskmon.audit): every request, answered or refused, with who asked (null without a
 * valid token), the route, its filters, the rows returned and the status. Written before a response with data
 * leaves: a request that cannot be audited gets no data (src/api/routes.ts).
 */
import type { ArchiveDb } from '../archive/database.ts';

export interface AuditEntry {
  at: string;
  user: string | null;
  role: string | null;
  client: string;
  method: string;
  route: string;
  filters: Record<string, unknown>;
  rows: number;
  status: number;
}

export interface AuditQuery {
  user?: string;
  from?: Date;
  to?: Date;
  limit: number;
  /** Entries older than this one (newest first). */
  before?: { at: Date; id: number };
}

export class AuditLog {
  constructor(
    private readonly db: ArchiveDb,
    private readonly namespace: string,
  ) {}

  async record(entry: Omit<AuditEntry, 'at'>, now = Date.now()): Promise<void> {
    await this.db.query(
      `INSERT INTO riskmon.audit (at, namespace, user_name, role, client, method, route, filters, rows, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10)`,
      [new Date(now), this.namespace, entry.user, entry.role, entry.client, entry.method, entry.route, JSON.stringify(entry.filters), entry.rows, entry.status],
    );
  }

  /** Newest first; `next` continues after the last entry returned. */
  async query(q: AuditQuery): Promise<{ entries: AuditEntry[]; next: { at: Date; id: number } | undefined }> {
    const where = ['namespace = $1'];
    const params: unknown[] = [this.namespace];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (q.user !== undefined) add('user_name = ?', q.user);
    if (q.from) add('at >= ?', q.from);
    if (q.to) add('at < ?', q.to);
    if (q.before) {
      params.push(q.before.at, q.before.id);
      where.push(`(at, id) < ($${params.length - 1}, $${params.length})`);
    }
    params.push(q.limit + 1);
    const r = await this.db.query<{ id: number; at: Date; user_name: string | null; role: string | null; client: string; method: string; route: string; filters: Record<string, unknown>; rows: number; status: number }>(
      `SELECT id, at, user_name, role, client, method, route, filters, rows, status FROM riskmon.audit WHERE ${where.join(' AND ')} ORDER BY at DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    const page = r.rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      entries: page.map((e) => ({ at: e.at.toISOString(), user: e.user_name, role: e.role, client: e.client, method: e.method, route: e.route, filters: e.filters, rows: e.rows, status: e.status })),
      next: r.rows.length > q.limit && last ? { at: last.at, id: Number(last.id) } : undefined,
    };
  }
}
