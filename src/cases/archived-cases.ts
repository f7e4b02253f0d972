/**
 * Cases as the archive holds them (fenfu.cases, fenfu.case_actions): closed ones (Redis lets them go once archived),
 * any case's audit trail, and the trail of every case, newest first.
 */
import type { ArchiveDb } from '../archive/database.ts';
import { archivedText } from '../archive/archiver.ts';
import { caseRecordSchema, type CaseRecord } from './case.ts';

export interface CaseActionEntry {
  caseId: string;
  seq: number;
  at: string;
  action: string;
  actor: string;
  note: string;
}

interface ActionRow {
  case_id: string;
  seq: number;
  at: Date;
  action: string;
  actor: string;
  note: string;
}

const toAction = (r: ActionRow): CaseActionEntry => ({ caseId: r.case_id, seq: r.seq, at: r.at.toISOString(), action: r.action, actor: r.actor, note: r.note });

export class ArchivedCases {
  constructor(
    private readonly db: ArchiveDb,
    private readonly namespace: string,
  ) {}

  /** The case with this id (the last opened, when an eventId came again and opened a second). */
  async byId(id: string): Promise<CaseRecord | undefined> {
    const r = await this.db.query<{ record: unknown }>(`SELECT record FROM fenfu.cases WHERE namespace = $1 AND case_id = $2 ORDER BY opened_at DESC LIMIT 1`, [this.namespace, archivedText(id)]);
    return r.rows[0] && caseRecordSchema.parse(r.rows[0].record);
  }

  /** Closed cases, the last closed first. */
  async closed(limit: number): Promise<CaseRecord[]> {
    const r = await this.db.query<{ record: unknown }>(
      `SELECT record FROM fenfu.cases WHERE namespace = $1 AND status = 'closed' ORDER BY closed_at DESC, case_id LIMIT $2`,
      [this.namespace, limit],
    );
    return r.rows.map((row) => caseRecordSchema.parse(row.record));
  }

  /** One case's actions (the case with this id opened at `openedAtMs`), in order. */
  async actions(id: string, openedAtMs: number): Promise<CaseActionEntry[]> {
    const r = await this.db.query<ActionRow>(
      `SELECT case_id, seq, at, action, actor, note FROM fenfu.case_actions WHERE namespace = $1 AND case_id = $2 AND opened_at = $3 ORDER BY seq`,
      [this.namespace, archivedText(id), new Date(openedAtMs)],
    );
    return r.rows.map(toAction);
  }

  /** Every case's actions, newest first, optionally one person's. */
  async trail(limit: number, actor?: string): Promise<CaseActionEntry[]> {
    const r = await this.db.query<ActionRow>(
      `SELECT case_id, seq, at, action, actor, note FROM fenfu.case_actions WHERE namespace = $1 AND ($2::text IS NULL OR actor = $2) ORDER BY at DESC, case_id, seq DESC LIMIT $3`,
      [this.namespace, actor ?? null, limit],
    );
    return r.rows.map(toAction);
  }
}
