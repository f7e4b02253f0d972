/**
 * The embedded archive: PGlite in a data folder, owned by one process. PGlite has no lock between processes (two
 * openers of one folder lose or corrupt data), so the owner holds `<folder>/riskmon.lock` and a second opener is
 * refused, naming the owner; a lock its owner stopped refreshing (it died) is taken over. The database
 * runs on a worker thread (embedded-thread.mjs) so that its queries never hold up this process's event loop.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import lockfile from 'proper-lockfile';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ArchiveDb, QueryResult, Statement } from './database.ts';
import { ArchiveLockedError, ArchiveUnavailableError } from './errors.ts';

const THREAD = new URL('./embedded-thread.mjs', import.meta.url);
const LOCK_FILE = 'riskmon.lock';
const PID_FILE = 'riskmon.pid';
/** A lock not refreshed for this long is stale: its owner is gone (or stalled that long). */
const LOCK_STALE_MS = 30_000;

/** The lock's owner, for the refusal: the pid it wrote beside the lock (informational; the lock is the directory). */
function ownerOf(dir: string): string {
  try {
    const pid = readFileSync(resolve(dir, PID_FILE), 'utf8').trim();
    return /^\d+$/.test(pid) ? `process ${pid}` : 'another process';
  } catch {
    return 'another process';
  }
}

/**
 * Takes the folder's lock (proper-lockfile: an atomic mkdir, kept fresh every few seconds, so a lock whose owner died
 * goes stale and is taken over, whatever pid the next process gets), or throws ArchiveLockedError naming the owner.
 * `onLost` is called if the lock is taken away (the process stalled past the stale time): stop using the database.
 */
export async function lockFolder(dir: string, onLost: (e: Error) => void): Promise<() => Promise<void>> {
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(resolve(dir), {
      lockfilePath: resolve(dir, LOCK_FILE),
      realpath: false,
      stale: LOCK_STALE_MS,
      update: LOCK_STALE_MS / 6,
      onCompromised: onLost,
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
    throw new ArchiveLockedError(
      `the embedded archive in ${resolve(dir)} is open in ${ownerOf(dir)}: one process owns an embedded archive ` +
        '(PGlite has no lock between processes). Ask that process (its /api), stop it first, or set DATABASE_URL to a PostgreSQL server.',
    );
  }
  writeFileSync(resolve(dir, PID_FILE), String(process.pid));
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await release().catch(() => undefined);
  };
}

type Reply = { id: number; value?: unknown; error?: { message: string; code?: string } } | { ready: true; id?: undefined };

export async function openEmbedded(dataDir: string): Promise<ArchiveDb> {
  mkdirSync(dataDir, { recursive: true });
  const description = `embedded PostgreSQL (PGlite) in ${resolve(dataDir)}`;
  let lost: Error | undefined;
  let thread: Worker | undefined;
  const release = await lockFolder(dataDir, (e) => {
    // Another process may open the folder now: this one must not write another byte.
    lost = new ArchiveLockedError(`${description}: its lock was lost (${e.message}); the archive is closed in this process`);
    void thread?.terminate();
  });
  thread = new Worker(THREAD, { workerData: { dataDir: resolve(dataDir, 'pgdata') } });
  const worker = thread;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let failed: Error | undefined;
  const fail = (e: Error) => {
    failed = e;
    for (const w of waiting.values()) w.reject(e);
    waiting.clear();
  };
  const ready = new Promise<void>((ok, ko) => {
    worker.on('message', (m: Reply) => {
      if ('ready' in m) return ok();
      const w = waiting.get(m.id);
      if (!w) return;
      waiting.delete(m.id);
      if (m.error) w.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
      else w.resolve(m.value);
    });
    worker.on('error', (e) => {
      ko(e);
      fail(e);
    });
    worker.on('exit', (code) => {
      const e = lost ?? new ArchiveUnavailableError(`${description}: its thread exited (code ${code})`);
      ko(e);
      fail(e);
    });
  });
  try {
    await ready;
  } catch (e) {
    await release();
    throw new ArchiveUnavailableError(`cannot open ${description}: ${(e as Error).message}`);
  }
  const call = <T>(request: Record<string, unknown>): Promise<T> => {
    if (lost ?? failed) return Promise.reject(lost ?? failed);
    const id = nextId++;
    return new Promise<T>((ok, ko) => {
      waiting.set(id, { resolve: ok as (v: unknown) => void, reject: ko });
      worker.postMessage({ ...request, id });
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
          if (!failed && !lost) await call({ op: 'close' });
        } finally {
          await worker.terminate();
          await release();
        }
      })();
      return closed;
    },
  };
  return db;
}
