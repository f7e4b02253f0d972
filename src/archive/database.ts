/**
 * The archive's database: PostgreSQL (DATABASE_URL) or, with none configured, an embedded PostgreSQL (PGlite) in a
 * data folder. Both are reached through one small interface, so the archiver, the retention job, the API and the
 * tools run the same SQL on either: `query` for one statement, `atomic` for statements that commit together.
 *
 * The embedded database runs in a worker thread of the one process that owns its folder (src/archive/embedded.ts):
 * PGlite has no lock between processes and runs queries on the thread that calls it.
 */
import pg from 'pg';
import { openEmbedded } from './embedded.ts';
import { ArchiveUnavailableError } from './errors.ts';

export { ArchiveLockedError, ArchiveUnavailableError } from './errors.ts';

export interface Statement {
  text: string;
  params?: readonly unknown[];
}

export interface QueryResult<Row> {
  rows: Row[];
  /** Rows inserted, updated or deleted. */
  rowCount: number;
}

export interface ArchiveDb {
  /** Where the data is, for logs and errors (a URL without its password, or the folder). */
  readonly description: string;
  readonly kind: 'postgres' | 'embedded';
  query<Row = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<Row>>;
  /** The statements in one transaction: all committed, or none (the error is thrown). */
  atomic(statements: readonly Statement[]): Promise<QueryResult<Record<string, unknown>>[]>;
  /** A script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
  /** `fn` on one connection throughout (a session lock, then the statements it guards). */
  session<T>(fn: (session: Session) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export type Session = Pick<ArchiveDb, 'query' | 'exec'>;

export interface OpenOptions {
  /** DATABASE_URL; undefined for the embedded database. */
  databaseUrl: string | undefined;
  /** The embedded database's folder. */
  dataDir: string;
  /** Connections to PostgreSQL at most. @defaultValue 4 */
  poolSize?: number;
}

export async function openArchiveDb(options: OpenOptions): Promise<ArchiveDb> {
  if (options.databaseUrl) return openPostgres(options.databaseUrl, options.poolSize ?? 4);
  return openEmbedded(options.dataDir);
}

/** int8 (counts, fen) as a number: every amount is far below 2^53 fen. */
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}

async function openPostgres(url: string, max: number): Promise<ArchiveDb> {
  const description = redactUrl(url);
  const pool = new pg.Pool({ connectionString: url, max, types, connectionTimeoutMillis: 10_000 });
  // An idle client losing its server (a restart) must not crash the process: the next query reconnects.
  pool.on('error', () => {});
  try {
    await pool.query('SELECT 1');
  } catch (e) {
    await pool.end().catch(() => {});
    throw new ArchiveUnavailableError(`cannot reach PostgreSQL at ${description}: ${(e as Error).message}`);
  }
  const result = <Row>(r: pg.QueryResult): QueryResult<Row> => ({ rows: r.rows as Row[], rowCount: r.rowCount ?? 0 });
  return {
    description,
    kind: 'postgres',
    async query<Row>(text: string, params?: readonly unknown[]) {
      return result<Row>(await pool.query(text, params as unknown[] | undefined));
    },
    async atomic(statements) {
      const client = await pool.connect();
      let broken = false;
      try {
        await client.query('BEGIN');
        const out: QueryResult<Record<string, unknown>>[] = [];
        for (const s of statements) out.push(result(await client.query(s.text, s.params as unknown[] | undefined)));
        await client.query('COMMIT');
        return out;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => (broken = true));
        throw e;
      } finally {
        // A client whose ROLLBACK failed may be mid-transaction: destroy it rather than hand it out again.
        client.release(broken);
      }
    },
    async exec(script) {
      await pool.query(script);
    },
    async session(fn) {
      const client = await pool.connect();
      try {
        return await fn({
          query: async <Row>(text: string, params?: readonly unknown[]) => result<Row>(await client.query(text, params as unknown[] | undefined)),
          exec: async (script: string) => void (await client.query(script)),
        });
      } finally {
        client.release();
      }
    },
    async close() {
      await pool.end();
    },
  };
}
