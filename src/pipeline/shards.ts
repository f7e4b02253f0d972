/**
 * Users are partitioned over `shards` ordered queues. Each queue runs one job at a time across all worker
 * processes (BullMQ global concurrency 1), so one user's events are evaluated in the order they were produced,
 * whatever the number of processes.
 */
export function shardOf(userId: string, shards: number): number {
  // FNV-1a, 32-bit: stable across processes and versions (unlike a seeded hash).
  let h = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) {
    h ^= userId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}
