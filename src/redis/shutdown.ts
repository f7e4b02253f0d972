/**
 * Shutdown with a deadline: a SIGTERM must end within pipeline.shutdownGraceMs whatever state Redis is in, and what
 * could not be closed in time is given up, and said so, rather than waited for.
 *
 * BullMQ's graceful `Worker.close()` starts by disconnecting the worker's blocking connection (the one that waits in
 * BZPOPMIN) and waits for its ioredis client to emit "end". A client between two reconnect attempts (status
 * "reconnecting": RedisClient is away, or has just come back and the client's retry timer has not fired yet) never emits
 * it: ioredis' `disconnect()` then only cancels the retry timer, and there is no socket left whose closing would end
 * the client. `close()` would wait forever (taskforcesh/bullmq#4656, #4065). So a worker is asked to close only once
 * that client is in a state it can be closed from, and at the deadline the worker is stopped without waiting.
 */
import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import type { RedisClient } from './client.ts';

/**
 * Resolves true when `promise` fulfils by `deadline` (epoch ms; `Infinity` for no deadline), false when the deadline
 * comes first; rejects when `promise` rejects first. The promise itself is left running.
 */
export function settlesBy(promise: Promise<unknown>, deadline: number): Promise<boolean> {
  const fulfilled = promise.then(() => true);
  if (deadline === Infinity) return fulfilled;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([fulfilled, expired]).finally(() => clearTimeout(timer));
}

/** ioredis statuses from which `disconnect()` ends the client ("end"): a live socket, or none ever opened. */
const CLOSABLE_STATUSES = new Set(['ready', 'connect', 'wait', 'end']);
const STATUS_POLL_MS = 25;
/** A forced close touches no Redis command; this only guards against the unforeseen. */
const FORCED_CLOSE_MS = 1_000;

/** The ioredis status of the worker's blocking client, or undefined if it has none (or it never initialised). */
async function blockingStatus(worker: Worker, deadline: number): Promise<{ status: () => string } | undefined> {
  const connection = worker.getBackend().blockingConnection;
  if (!connection) return undefined;
  let client: { status: string } | undefined;
  const got = await settlesBy(connection.client.then((c) => (client = c)), deadline).catch(() => true);
  if (!got) return { status: () => 'initializing' };
  return client ? { status: () => client!.status } : undefined;
}

/** Waits, until `deadline`, for the worker's blocking client to be closable; returns its last status when it is not. */
async function untilClosable(worker: Worker, deadline: number): Promise<string | undefined> {
  const blocking = await blockingStatus(worker, deadline);
  if (!blocking) return undefined;
  while (!CLOSABLE_STATUSES.has(blocking.status())) {
    if (Date.now() >= deadline) return blocking.status();
    await new Promise((r) => setTimeout(r, Math.min(STATUS_POLL_MS, Math.max(0, deadline - Date.now()))));
  }
  return undefined;
}

/**
 * Closes a BullMQ worker: it stops taking jobs, and its in-flight jobs finish, by `deadline`. Past it the worker is
 * stopped without them (logged); their locks expire and they are redelivered. Returns whether it closed cleanly.
 */
export async function closeWorker(worker: Worker, deadline: number, logger: Logger): Promise<boolean> {
  if (!worker.closing) {
    const stuckStatus = await untilClosable(worker, deadline);
    if (stuckStatus !== undefined) {
      logger.error(
        { queue: worker.name, blockingConnection: stuckStatus },
        'Redis did not come back before the shutdown deadline: worker stopped without waiting for its in-flight jobs (they are redelivered once their locks expire)',
      );
      await settlesBy(worker.close(true), Date.now() + FORCED_CLOSE_MS).catch(() => false);
      return false;
    }
  }
  if (await settlesBy(worker.close(), deadline)) return true;
  logger.error(
    { queue: worker.name },
    'worker did not finish its in-flight jobs before the shutdown deadline: abandoned them (they are redelivered once their locks expire)',
  );
  // Drop its blocking connection so that nothing of it reconnects; the rest goes with the shared connection.
  await settlesBy(worker.getBackend().blockingConnection?.close(true) ?? Promise.resolve(), Date.now() + FORCED_CLOSE_MS).catch(() => false);
  return false;
}

/**
 * QUIT on each connection (commands already sent are answered first), by `deadline`; past it the connections are
 * dropped, with whatever they had not sent yet (logged). Returns whether every QUIT was answered in time.
 */
export async function quitConnections(connections: Record<string, RedisClient>, deadline: number, logger: Logger): Promise<boolean> {
  const entries = Object.entries(connections);
  const quit = await Promise.all(entries.map(([, redis]) => settlesBy(redis.quit(), deadline).catch(() => true)));
  const dropped = entries.filter((_, i) => !quit[i]).map(([name]) => name);
  if (dropped.length === 0) return true;
  logger.error(
    { connections: dropped },
    'Redis did not answer QUIT before the shutdown deadline: connections dropped, with the commands they had not sent yet',
  );
  for (const [name, redis] of entries) if (dropped.includes(name)) redis.disconnect();
  return false;
}
