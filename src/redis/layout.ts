/**
 * The key layout a namespace was written with, recorded on first start and checked on every start: a process
 * with another shard count would look for each user's state in another slot (a user's shard is its hash modulo
 * the count), deciding as if the user had no history; a namespace written before shard slots holds its state
 * under other keys altogether. Either is refused, with what to do.
 */
import type { RedisClient } from './client.ts';
import type { Keys } from './keys.ts';

/**
 * 3: a charge's dedupe is its record in a shard's record hashes (their count, recordParts, is recorded too), what a release needs waits in the settlement info
 * (layout 2 kept both in the decision key, which now leaves Redis once archived). 2: every key in its shard's slot
 * (`{s<n>}`) or a global group's. 1 (never recorded): per-user `{userId}` tags.
 */
export const LAYOUT_VERSION = 3;

export class LayoutError extends Error {
  override name = 'LayoutError';
}

/** Keys only the layout before shard slots wrote: one is enough to know the namespace holds such data. */
function version1Keys(keys: Keys): string[] {
  return ['settle:due', 'accounts', 'decisions', 'fenfu:settled', 'lists:merchants', 'rules:versions', 'deadletter'].map((k) => `${keys.base}:${k}`);
}

/**
 * Records the layout of a new namespace, or checks an existing one's against this process's. With `record: false`
 * a new namespace is left as it is (a start that other guards may still refuse writes nothing).
 */
export async function checkLayout(redis: RedisClient, keys: Keys, { record = true } = {}): Promise<void> {
  let recorded = await redis.hgetall(keys.layout);
  if (!recorded.version || !recorded.shards || (!recorded.recordParts && Number(recorded.version) === LAYOUT_VERSION)) {
    // Single-key reads: on a cluster these keys are in different slots.
    const old = (await Promise.all(version1Keys(keys).map((k) => redis.exists(k)))).some((n) => n === 1);
    if (old) {
      throw new LayoutError(
        `namespace ${keys.namespace} holds data in the key layout before shard slots (per-user {userId} tags), which this version does not read. ` +
          'Replay its events into a new namespace, or keep running the version that wrote it until it drains (docs/operations.md, "Upgrading the key layout").',
      );
    }
    if (!record) return;
    // One transaction: processes starting together must never read a version without its shard count. A record
    // without one (written by an older start) is completed the same way; the first writer of each field wins.
    await redis.multi().hsetnx(keys.layout, 'version', LAYOUT_VERSION).hsetnx(keys.layout, 'shards', keys.shards).hsetnx(keys.layout, 'recordParts', keys.chargeRecordParts).exec();
    recorded = await redis.hgetall(keys.layout);
  }
  if (Number(recorded.version) !== LAYOUT_VERSION) {
    throw new LayoutError(
      `namespace ${keys.namespace} was written with key layout ${recorded.version}; this version reads layout ${LAYOUT_VERSION}. ` +
        'Replay its recent events into a new namespace, or keep running the version that wrote it until it drains (docs/operations.md, "Upgrading the key layout").',
    );
  }
  if (recorded.recordParts !== undefined && Number(recorded.recordParts) !== keys.chargeRecordParts) {
    throw new LayoutError(
      `namespace ${keys.namespace} was written with retention.chargeRecordHashesPerShard = ${recorded.recordParts}, and this process has ${keys.chargeRecordParts}: ` +
        "a charge's record (its dedupe) would be looked for in another hash, and a redelivered charge decided twice. " +
        `Set it back to ${recorded.recordParts}, or change it by the procedure in docs/operations.md ("Changing the shard count").`,
    );
  }
  if (Number(recorded.shards) !== keys.shards) {
    throw new LayoutError(
      `namespace ${keys.namespace} was written with pipeline.shards = ${recorded.shards}, and this process has ${keys.shards}: ` +
        "a user's shard is its hash modulo the count, so every user would be looked for in another slot and decided as if new. " +
        `Set pipeline.shards back to ${recorded.shards}, or change it by the procedure in docs/operations.md ("Changing the shard count").`,
    );
  }
}
