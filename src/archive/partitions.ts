/**
 * Monthly partitions of the archive's tables (UTC calendar months of the instant each table's retention counts
 * from), created when a row of a new month arrives. A row outside every partition would fail its insert, so the
 * archiver ensures the months of a batch before inserting it; a partition is never created twice per process.
 */
import type { ArchiveDb } from './database.ts';

export const PARTITIONED_TABLES = ['transactions', 'settlements', 'risk_records', 'dead_letters'] as const;
export type PartitionedTable = (typeof PARTITIONED_TABLES)[number];

/** The first instant of the UTC month holding `ms`. */
export function monthStart(ms: number): Date {
  const d = new Date(ms);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
}

export function partitionName(table: PartitionedTable, month: Date): string {
  return `${table}_${month.getUTCFullYear()}_${String(month.getUTCMonth() + 1).padStart(2, '0')}`;
}

export class Partitions {
  private readonly known = new Set<string>();

  constructor(private readonly db: ArchiveDb) {}

  /** Creates the partitions of `table` for every month of `instants` (epoch ms) that has none yet. */
  async ensure(table: PartitionedTable, instants: Iterable<number>): Promise<void> {
    const months = new Map<string, Date>();
    for (const ms of instants) {
      const month = monthStart(ms);
      const name = partitionName(table, month);
      if (!this.known.has(name)) months.set(name, month);
    }
    for (const [name, month] of months) {
      const next = new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 1));
      try {
        await this.db.query(
          `CREATE TABLE IF NOT EXISTS fenfu.${name} PARTITION OF fenfu.${table} FOR VALUES FROM ('${month.toISOString()}') TO ('${next.toISOString()}')`,
        );
      } catch (e) {
        // Two creators at once: the loser's IF NOT EXISTS can still meet the winner's catalog row.
        const code = (e as { code?: string }).code;
        if (code !== '42P07' && code !== '23505') throw e;
      }
      this.known.add(name);
    }
  }

  /** Forget what is known (after a partition was dropped). */
  forget(): void {
    this.known.clear();
  }
}
