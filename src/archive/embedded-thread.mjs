// The embedded archive's PGlite, on a worker thread of the process that owns its folder (src/archive/embedded.ts):
// PGlite runs every query on the thread that calls it, and the risk workers' thread must not wait for one.
// Plain JavaScript so that Node starts it without a TypeScript loader, however the owning process was started.
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

const db = await PGlite.create(workerData.dataDir);

const result = (r) => ({ rows: r.rows, rowCount: r.affectedRows ?? 0 });

async function run(request) {
  switch (request.op) {
    case 'query':
      return result(await db.query(request.text, request.params ?? []));
    case 'atomic':
      return db.transaction(async (tx) => {
        const out = [];
        for (const s of request.statements) out.push(result(await tx.query(s.text, s.params ?? [])));
        return out;
      });
    case 'exec':
      await db.exec(request.script);
      return null;
    case 'close':
      await db.close();
      return null;
    default:
      throw new Error(`unknown request ${request.op}`);
  }
}

parentPort.on('message', (request) => {
  run(request).then(
    (value) => parentPort.postMessage({ id: request.id, value }),
    (e) => parentPort.postMessage({ id: request.id, error: { message: e?.message ?? String(e), code: e?.code } }),
  );
});
parentPort.postMessage({ ready: true });
