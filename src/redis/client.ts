/**
 * One Redis or a Redis Cluster, behind one type. Commands on keys route by themselves (ioredis Cluster follows
 * MOVED and ASK); what is per node (SCAN, INFO) goes to every master; a pipeline goes one per slot (SlotPipeline).
 */
import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';

export type RedisClient = Redis | Cluster;

export function isCluster(client: RedisClient): client is Cluster {
  return (client as Cluster).isCluster === true;
}

/**
 * The connections that hold keys: the client itself for one Redis; for a cluster, one connection per master as of
 * the client's last slot refresh. Call it once the client is ready (after {@link assertReachable}, or any command):
 * before that a cluster lists its seeds.
 */
export function masterNodes(client: RedisClient): Redis[] {
  return isCluster(client) ? client.nodes('master') : [client];
}

/** "host:port" of one connection, for messages. */
export function nodeAddress(node: Redis): string {
  return `${node.options.host}:${node.options.port}`;
}

/** A master whose replicas did not all confirm a client's writes in time (Redis WAIT). */
export interface ReplicaShortfall {
  node: string;
  /** Replicas that confirmed; -1 when the master could not be asked (it failed, or left the cluster). */
  confirmed: number;
  error?: string;
}

/**
 * Waits until `replicas` replicas of each connection's master hold every write sent on that connection (WAIT counts
 * per connection), `timeoutMs` at most; returns the connections that fell short. WAIT undoes nothing: a write that
 * fell short stays on its master alone, and is lost if that master fails before it replicates.
 */
export async function replicaShortfalls(nodes: Iterable<Redis>, replicas: number, timeoutMs: number): Promise<ReplicaShortfall[]> {
  const list = [...nodes];
  const answers = await Promise.all(
    list.map((node) =>
      (node.call('WAIT', replicas, timeoutMs) as Promise<number>).then(
        (confirmed) => ({ confirmed }),
        (e: Error) => ({ confirmed: -1, error: e.message }),
      ),
    ),
  );
  return list.flatMap((node, i) => (answers[i]!.confirmed >= replicas ? [] : [{ node: nodeAddress(node), ...answers[i]! }]));
}

/**
 * Every key that matches `match`, in SCAN batches (`count` keys asked per call), from every master in turn. As SCAN
 * guarantees, a key present throughout is returned at least once (rarely twice). A master that fails over during the
 * scan fails it: its replica would have to be scanned from the start.
 */
export async function* scanAll(client: RedisClient, match: string, count = 1_000): AsyncGenerator<string[]> {
  // A cluster's masters are known once it is ready; a command waits for that.
  if (isCluster(client)) await client.ping();
  for (const node of masterNodes(client)) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', match, 'COUNT', count);
      if (found.length) yield found;
      cursor = next;
    } while (cursor !== '0');
  }
}

/** [error, reply] of one pipelined command, as ioredis gives it. */
export type PipelineReply = [Error | null, unknown];

/**
 * A pipeline that a cluster accepts: commands are queued by the slot of a key they name, one ioredis pipeline per
 * slot (ioredis refuses a pipeline over several slots' nodes, and one over a slot that moves fails whole), all sent
 * at once. On one Redis it is one pipeline, as before. Replies come back in the order the commands were queued;
 * commands of one slot run in that order, those of different slots in no particular order (callers queue nothing
 * whose order across slots matters).
 */
export class SlotPipeline {
  private readonly bySlot = new Map<number, ChainableCommander>();
  private readonly single: ChainableCommander | undefined;
  /** Per command queued, in order: its pipeline and its index there. */
  private readonly order: { pipeline: ChainableCommander; index: number }[] = [];

  constructor(private readonly client: RedisClient) {
    if (!isCluster(client)) this.single = client.pipeline();
  }

  /** The pipeline of `key`'s slot: queue on it the commands of that slot (then say how many with `queued`). */
  private pipelineOf(key: string): ChainableCommander {
    if (this.single) return this.single;
    const slot = calculateSlot(key);
    let pipeline = this.bySlot.get(slot);
    if (!pipeline) {
      pipeline = this.client.pipeline();
      this.bySlot.set(slot, pipeline);
    }
    return pipeline;
  }

  /**
   * Queues the commands that `queue` adds to the pipeline of `key`'s slot (every key they name must be in it);
   * returns how many it added.
   */
  add(key: string, queue: (pipeline: ChainableCommander) => unknown): number {
    const pipeline = this.pipelineOf(key);
    const before = pipeline.length;
    queue(pipeline);
    const added = pipeline.length - before;
    for (let i = 0; i < added; i++) this.order.push({ pipeline, index: before + i });
    return added;
  }

  get length(): number {
    return this.order.length;
  }

  /** Sends every slot's pipeline; the replies in queueing order (a pipeline that failed whole gives its error to each). */
  async exec(): Promise<PipelineReply[]> {
    if (this.single) return ((await this.single.exec()) ?? []) as PipelineReply[];
    const pipelines = [...this.bySlot.values()];
    const results = await Promise.all(
      pipelines.map((p) =>
        p.exec().then(
          (r) => (r ?? []) as PipelineReply[],
          (e: Error) => Array.from({ length: p.length }, (): PipelineReply => [e, null]),
        ),
      ),
    );
    const replies = new Map(pipelines.map((p, i) => [p, results[i]!]));
    return this.order.map(({ pipeline, index }) => replies.get(pipeline)![index] ?? [new Error('missing reply'), null]);
  }
}
