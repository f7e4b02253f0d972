/**
 * The embedded archive: PGlite in a data folder, owned by one process. PGlite has no lock between processes (two
 * openers of one folder lose or corrupt data), so the owner holds `<folder>/riskmon.lock` (its pid) and a second
 * opener is refused, naming the owner; a lock left by a process that no longer runs is taken over. The database
 * runs on a worker thread (embedded-thread.mjs) so that its queries never hold up this process's event loop.
 */
import { mkdirSync, openSync, readFileSync, closeSync, writeSync, unlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ArchiveDb, QueryResult, Statement } from './database.ts';
import { ArchiveLockedError, ArchiveUnavailableError } from './errors.ts';

const THREAD = new URL('./embedded-thread.mjs', import.meta.url);
const LOCK_FILE = 'riskmon.lock';

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the folder's lock, or throws ArchiveLockedError naming the process that holds it. Returns the release. */
export function lockFolder(dir: string): () => void {
  const path = resolve(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          if (readFileSync(path, 'utf8') === String(process.pid)) unlinkSync(path);
        } catch {
          /* already gone */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isRunning(owner)) {
        throw new ArchiveLockedError(
          `the embedded archive in ${resolve(dir)} is open in process ${owner}: one process owns an embedded archive ` +
            '(PGlite has no lock between processes). Ask that process (its /api), stop it first, or set DATABASE_URL to a PostgreSQL server.',
        );
      }
      if (owner === process.pid) throw new ArchiveLockedError(`the embedded archive in ${resolve(dir)} is already open in this process`);
      // Left by a process that is gone: take it over (if two take it over at once, only one creates the file).
      try {
        unlinkSync(path);
      } catch {
        /* another opener removed it first */
      }
    }
  }
  throw new ArchiveLockedError(`the embedded archive in ${resolve(dir)} was locked by another opener meanwhile`);
}

type Reply = { id: number; value?: unknown; error?: { message: string; code?: string } } | { ready: true; id?: undefined };

export async function openEmbedded(dataDir: string): Promise<ArchiveDb> {
  mkdirSync(dataDir, { recursive: true });
  const release = lockFolder(dataDir);
  const description = `embedded PostgreSQL (PGlite) in ${resolve(dataDir)}`;
  const thread = new Worker(THREAD, { workerData: { dataDir: resolve(dataDir, 'pgdata') } });
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let failed: Error | undefined;
  const fail = (e: Error) => {
    failed = e;
    for (const w of waiting.values()) w.reject(e);
    waiting.clear();
  };
  const ready = new Promise<void>((ok, ko) => {
    thread.on('message', (m: Reply) => {
      if ('ready' in m) return ok();
      const w = waiting.get(m.id);
      if (!w) return;
      waiting.delete(m.id);
      if (m.error) w.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
      else w.resolve(m.value);
    });
    thread.on('error', (e) => {
      ko(e);
      fail(e);
    });
    thread.on('exit', (code) => {
      const e = new ArchiveUnavailableError(`${description}: its thread exited (code ${code})`);
      ko(e);
      fail(e);
    });
  });
  try {
    await ready;
  } catch (e) {
    release();
    throw new ArchiveUnavailableError(`cannot open ${description}: ${(e as Error).message}`);
  }
  const call = <T>(request: Record<string, unknown>): Promise<T> => {
    if (failed) return Promise.reject(failed);
    const id = nextId++;
    return new Promise<T>((ok, ko) => {
      waiting.set(id, { resolve: ok as (v: unknown) => void, reject: ko });
      thread.postMessage({ ...request, id });
    });
  };
  let closed: Promise<void> | undefined;
  const db: ArchiveDb = {
    description,
    kind: 'embedded',
    query: <Row>(text: string, params?: readonly unknown[]) => call<QueryResult<Row>>({ op: 'query', text, params }),
    atomic: (statements: readonly Statement[]) => call<QueryResult<Record<string, unknown>>[]>({ op: 'atomic', statements }),
    exec: (script: string) => call<void>({ op: 'exec', script }),
    // PGlite is one connection: every statement is in the one session.
    session: (fn) => fn(db),
    close() {
      closed ??= (async () => {
        try {
          if (!failed) await call({ op: 'close' });
        } finally {
          await thread.terminate();
          release();
        }
      })();
      return closed;
    },
  };
  return db;
}
