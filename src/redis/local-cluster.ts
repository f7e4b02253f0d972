/**
 * A real Redis Cluster on this machine, for tests and the cluster benchmark: private redis-server processes on
 * free ports, joined with `redis-cli --cluster create`, in a temporary directory that goes away with them.
 *
 * `start` returns only once the cluster is settled, so a client connecting to `seeds` sees one topology: every node
 * says cluster_state:ok with all 16384 slots served, every node agrees on who is master of what, and every replica's
 * link to its master is up. The node timeout is short (1.5 s) so that a killed master is failed over in seconds.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, redisServerAvailable, RedisServerMissingError, tcpAnswers } from './local-server.ts';

export interface ClusterOptions {
  /** Redis Cluster needs at least 3 (redis-cli refuses fewer). @defaultValue 3 */
  masters?: number;
  /** 0 for masters only (benchmarks: no replication traffic, nothing to fail over to). @defaultValue 1 */
  replicasPerMaster?: number;
  /** More redis-server arguments for every node, e.g. ['--maxmemory-policy', 'allkeys-lru']. */
  extraArgs?: string[];
  /** cluster-node-timeout: how long a silent node takes to be marked failed. @defaultValue 1500 ms */
  nodeTimeoutMs?: number;
  /** How long start may take before it gives up (and cleans up). @defaultValue 60 000 ms */
  startTimeoutMs?: number;
}

export interface ClusterNode {
  port: number;
  /** The cluster bus port (given explicitly: port + 10000 may be taken or above 65535). */
  busPort: number;
  /** The node's cluster id (CLUSTER MYID). */
  id: string;
  /** As last seen by the harness: at start, after waitForFailover, and on every masterOf / replicaOf. */
  role: 'master' | 'replica';
  /** For a replica, the port of its master as last seen. */
  masterPort?: number;
  pid: number;
  /** False once killed (or exited by itself). */
  alive: boolean;
  process: ChildProcess;
  /** The node's directory (redis.log, nodes.conf). */
  dir: string;
}

export interface TestCluster {
  /** For RISKMON_REDIS_CLUSTER: every node as 127.0.0.1:port, comma-separated. */
  seeds: string;
  nodes: ClusterNode[];
  /** The port of the master that serves a slot (a number) or a key (a string, hash tags applied), asked of a live node. */
  masterOf(slotOrKey: number | string): Promise<number>;
  /** The port of a live replica of that master, or undefined when it has none. */
  replicaOf(masterPort: number): Promise<number | undefined>;
  /** Sends a signal to one node; for SIGKILL/SIGTERM/SIGINT resolves once it has exited. */
  kill(port: number, signal?: NodeJS.Signals): Promise<void>;
  /**
   * Waits until a replica of the (killed or frozen) master at `oldMasterPort` has been promoted and every live node
   * says cluster_state:ok with all slots served again. Resolves the new master's port.
   */
  waitForFailover(oldMasterPort: number, timeoutMs?: number): Promise<number>;
  /** One command on one node, on a connection of its own (CLIENT KILL, CONFIG SET, INFO …). */
  call(port: number, ...args: string[]): Promise<unknown>;
  /** The last lines of a node's log, for failure messages. */
  logTail(port: number, lines?: number): string;
  /** Stops every node and removes the directory. Safe to call twice. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const SLOTS = 16_384;
const POLL_MS = 100;

export function redisCliAvailable(): boolean {
  return spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).status === 0;
}

export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const masters = options.masters ?? 3;
  const replicasPerMaster = options.replicasPerMaster ?? 1;
  if (!Number.isInteger(masters) || masters < 3) throw new Error(`startCluster: masters must be an integer ≥ 3 (redis-cli refuses fewer), got ${masters}`);
  if (!Number.isInteger(replicasPerMaster) || replicasPerMaster < 0) {
    throw new Error(`startCluster: replicasPerMaster must be an integer ≥ 0, got ${replicasPerMaster}`);
  }
  if (!redisServerAvailable()) throw new RedisServerMissingError();
  if (!redisCliAvailable()) throw new Error('redis-cli not found: install it (Debian/Ubuntu: apt-get install -y redis-tools)');

  const total = masters * (1 + replicasPerMaster);
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1_500;
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  const root = mkdtempSync(join(tmpdir(), 'riskmon-cluster-'));
  const nodes: ClusterNode[] = [];
  // A test that fails before stop() (or a process.exit) must not leave six redis-servers behind.
  const onExit = () => {
    for (const n of nodes) if (n.alive) n.process.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(nodes.map((n) => stopNode(n)));
    rmSync(root, { recursive: true, force: true });
    process.removeListener('exit', onExit);
  };

  try {
    const ports = await distinctFreePorts(2 * total);
    const started = await Promise.all(
      Array.from({ length: total }, (_, i) =>
        startNode({ root, port: ports[2 * i]!, busPort: ports[2 * i + 1]!, nodeTimeoutMs, extraArgs: options.extraArgs ?? [], deadline }),
      ),
    );
    nodes.push(...started);
    const create = await run(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `${HOST}:${n.port}`), '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'],
      deadline,
    );
    if (create.code !== 0) throw new Error(`redis-cli --cluster create failed (exit ${create.code}):\n${create.output.trim()}`);
    await waitUntil(deadline, 'the cluster to settle', () => settled(nodes, masters, replicasPerMaster));
  } catch (e) {
    const logs = nodes.map((n) => `--- node ${n.port} ---\n${tail(n.dir, 15)}`).join('\n');
    await stop();
    throw new Error(`startCluster: ${(e as Error).message}${logs ? `\n${logs}` : ''}`, { cause: e });
  }

  const byPort = (port: number): ClusterNode => {
    const node = nodes.find((n) => n.port === port);
    if (!node) throw new Error(`no cluster node on port ${port} (nodes: ${nodes.map((n) => n.port).join(', ')})`);
    return node;
  };

  /** The topology from the first live node that answers, with the harness's roles updated from it. */
  const topology = async (): Promise<NodeLine[]> => {
    for (const n of nodes.filter((x) => x.alive)) {
      const text = await ask(n.port, 'CLUSTER', 'NODES').catch(() => undefined);
      if (typeof text !== 'string') continue;
      const lines = parseClusterNodes(text);
      updateRoles(nodes, lines);
      return lines;
    }
    throw new Error('no live cluster node answers CLUSTER NODES');
  };

  return {
    seeds: nodes.map((n) => `${HOST}:${n.port}`).join(','),
    nodes,
    async masterOf(slotOrKey) {
      const live = nodes.find((n) => n.alive);
      if (!live) throw new Error('no live cluster node');
      const slot = typeof slotOrKey === 'number' ? slotOrKey : Number(await ask(live.port, 'CLUSTER', 'KEYSLOT', slotOrKey));
      if (!(Number.isInteger(slot) && slot >= 0 && slot < SLOTS)) throw new Error(`masterOf: ${slotOrKey} is not a slot 0–16383 or a key`);
      const owner = (await topology()).find((l) => l.role === 'master' && !l.failed && l.slots.some(([a, b]) => slot >= a && slot <= b));
      if (!owner) throw new Error(`no master serves slot ${slot}`);
      return owner.port;
    },
    async replicaOf(masterPort) {
      const master = byPort(masterPort);
      const lines = await topology();
      const replica = lines.find((l) => l.role === 'replica' && l.masterId === master.id && !l.failed && byPort(l.port).alive);
      return replica?.port;
    },
    async kill(port, signal = 'SIGKILL') {
      const node = byPort(port);
      if (!node.alive) return;
      const waits = signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT';
      const exited = waits ? exitOf(node.process) : undefined;
      node.process.kill(signal);
      if (exited) {
        await exited;
        node.alive = false;
      }
    },
    async waitForFailover(oldMasterPort, timeoutMs = 30_000) {
      const old = byPort(oldMasterPort);
      const candidates = nodes.filter((n) => n.masterPort === oldMasterPort).map((n) => n.id);
      if (candidates.length === 0) throw new Error(`waitForFailover: the master on port ${oldMasterPort} has no replica to promote`);
      let promoted: number | undefined;
      await waitUntil(Date.now() + timeoutMs, `a replica of ${oldMasterPort} to be promoted`, async () => {
        const live = nodes.filter((n) => n.alive && n.port !== oldMasterPort);
        const views = await Promise.all(live.map((n) => ask(n.port, 'CLUSTER', 'NODES').catch(() => undefined)));
        const infos = await Promise.all(live.map((n) => ask(n.port, 'CLUSTER', 'INFO').catch(() => undefined)));
        if (!infos.every((i) => typeof i === 'string' && clusterHealthy(i))) return false;
        const parsed = views.map((v) => (typeof v === 'string' ? parseClusterNodes(v) : undefined));
        if (parsed.some((p) => p === undefined)) return false;
        // Every live node must agree that a former replica now serves the old master's slots.
        const newIds = new Set(parsed.map((lines) => lines!.find((l) => candidates.includes(l.id) && l.role === 'master' && l.slots.length > 0)?.id));
        if (newIds.size !== 1 || newIds.has(undefined)) return false;
        const stillOld = parsed.some((lines) => lines!.some((l) => l.id === old.id && l.slots.length > 0));
        if (stillOld) return false;
        updateRoles(nodes, parsed[0]!);
        promoted = nodes.find((n) => n.id === [...newIds][0])!.port;
        return true;
      });
      return promoted!;
    },
    call(port, ...args) {
      return ask(byPort(port).port, ...args);
    },
    logTail(port, lines = 20) {
      return tail(byPort(port).dir, lines);
    },
    stop,
  };
}

async function startNode(o: { root: string; port: number; busPort: number; nodeTimeoutMs: number; extraArgs: string[]; deadline: number }): Promise<ClusterNode> {
  // One directory per node: replicas write the RDB of a full sync to their working directory.
  const dir = join(o.root, String(o.port));
  mkdirSync(dir);
  const args = [
    '--port', String(o.port),
    '--cluster-port', String(o.busPort),
    '--bind', HOST,
    '--cluster-enabled', 'yes',
    '--cluster-config-file', join(dir, 'nodes.conf'),
    '--cluster-node-timeout', String(o.nodeTimeoutMs),
    '--appendonly', 'no',
    '--save', '',
    '--dir', dir,
    '--logfile', join(dir, 'redis.log'),
    '--maxmemory-policy', 'noeviction',
    // A master waits 5 s by default for more replicas before a diskless full sync: the bulk of a start.
    '--repl-diskless-sync-delay', '0',
    // CLUSTER SLOTS leaves out a replica whose replication offset is still 0 (Redis 7), so clients would not know it
    // until the first write or the master's first ping to it (every 10 s by default).
    '--repl-ping-replica-period', '1',
    ...o.extraArgs,
  ];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d.toString()));
  const node: ClusterNode = { port: o.port, busPort: o.busPort, id: '', role: 'master', pid: child.pid ?? -1, alive: true, process: child, dir };
  child.once('exit', () => (node.alive = false));
  await waitUntil(o.deadline, `redis-server on port ${o.port} to answer`, async () => {
    if (child.exitCode !== null) throw new Error(`redis-server on port ${o.port} exited (${child.exitCode}): ${stderr.trim() || tail(dir, 10)}`);
    return tcpAnswers(HOST, o.port, 300);
  });
  node.id = String(await ask(o.port, 'CLUSTER', 'MYID'));
  return node;
}

async function stopNode(node: ClusterNode): Promise<void> {
  if (!node.alive || node.process.exitCode !== null || node.process.signalCode !== null) return;
  const exited = exitOf(node.process);
  node.process.kill('SIGCONT'); // a frozen node cannot act on SIGTERM
  node.process.kill('SIGTERM');
  const timer = setTimeout(() => node.process.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}

function exitOf(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Ports for the nodes and their buses, all different (freePort may hand out a port twice in a row). */
async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** One command on one node, on a connection of its own that never retries: polling wants an answer or an error. */
async function ask(port: number, ...args: string[]): Promise<unknown> {
  const redis = new Redis({ host: HOST, port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 2_000, commandTimeout: 5_000 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await redis.call(args[0]!, ...args.slice(1));
  } finally {
    redis.disconnect();
  }
}

interface NodeLine {
  id: string;
  port: number;
  role: 'master' | 'replica';
  masterId?: string;
  /** Flagged fail or pfail (suspected) by the node that was asked. */
  failed: boolean;
  /** Inclusive slot ranges. */
  slots: [number, number][];
  /** Agrees with the node's peers on its configuration: not in handshake, has an address. */
  settled: boolean;
}

/** CLUSTER NODES: `<id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <epoch> <link> <slot> ...` */
function parseClusterNodes(text: string): NodeLine[] {
  return text
    .trim()
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id, address, flags, master, , , , , ...slotFields] = line.trim().split(' ');
      const flagSet = new Set(flags!.split(','));
      const slots = slotFields
        .filter((s) => !s.startsWith('[')) // "[slot->-id]": a slot being migrated
        .map((s): [number, number] => {
          const [a, b] = s.split('-').map(Number);
          return [a!, b ?? a!];
        });
      return {
        id: id!,
        port: Number(/:(\d+)@/.exec(address!)?.[1]),
        role: flagSet.has('slave') ? 'replica' : 'master',
        masterId: master === '-' ? undefined : master,
        failed: flagSet.has('fail') || flagSet.has('fail?'),
        slots,
        settled: !flagSet.has('handshake') && !flagSet.has('noaddr'),
      };
    });
}

function updateRoles(nodes: ClusterNode[], lines: NodeLine[]): void {
  for (const line of lines) {
    const node = nodes.find((n) => n.id === line.id);
    if (!node) continue;
    node.role = line.role;
    node.masterPort = line.masterId ? nodes.find((n) => n.id === line.masterId)?.port : undefined;
  }
}

function clusterHealthy(info: string): boolean {
  return /^cluster_state:ok\r?$/m.test(info) && new RegExp(`^cluster_slots_ok:${SLOTS}\\r?$`, 'm').test(info);
}

/**
 * Settled: every node healthy, sees all the others, and describes the same topology (the expected number of masters,
 * each with its replicas, no node failed), and every replica's link to its master is up.
 */
async function settled(nodes: ClusterNode[], masters: number, replicasPerMaster: number): Promise<boolean> {
  const answers = await Promise.all(
    nodes.map(async (n) => {
      const [info, view, replication, slots] = await Promise.all([
        ask(n.port, 'CLUSTER', 'INFO'),
        ask(n.port, 'CLUSTER', 'NODES'),
        ask(n.port, 'INFO', 'replication'),
        ask(n.port, 'CLUSTER', 'SLOTS'),
      ]).catch(() => [undefined, undefined, undefined, undefined]);
      return { info, view, replication, slots };
    }),
  );
  const views: string[] = [];
  for (const a of answers) {
    if (typeof a.info !== 'string' || typeof a.view !== 'string' || typeof a.replication !== 'string') return false;
    if (!clusterHealthy(a.info) || !new RegExp(`^cluster_known_nodes:${nodes.length}\\r?$`, 'm').test(a.info)) return false;
    const lines = parseClusterNodes(a.view);
    if (lines.length !== nodes.length || lines.some((l) => l.failed || !l.settled)) return false;
    const ms = lines.filter((l) => l.role === 'master');
    if (ms.length !== masters) return false;
    if (ms.some((m) => lines.filter((l) => l.masterId === m.id).length !== replicasPerMaster)) return false;
    views.push(lines.map((l) => `${l.id} ${l.role} ${l.masterId ?? '-'} ${JSON.stringify(l.slots)}`).sort().join('\n'));
    if (/^role:slave\r?$/m.test(a.replication) && !/^master_link_status:up\r?$/m.test(a.replication)) return false;
    if (/^master_sync_in_progress:1\r?$/m.test(a.replication)) return false;
    // What clients read: each slot range with its master and every replica.
    if (!Array.isArray(a.slots) || a.slots.some((range) => !Array.isArray(range) || range.length !== 3 + replicasPerMaster)) return false;
  }
  if (new Set(views).size !== 1) return false;
  updateRoles(nodes, parseClusterNodes(answers[0]!.view as string));
  return true;
}

/** Polls `check` until it is true; a thrown error ends the wait at once. */
async function waitUntil(deadline: number, what: string, check: () => Promise<boolean>): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${((Date.now() - started) / 1000).toFixed(1)} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function run(command: string, args: string[], deadline: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d.toString()));
    child.stderr.on('data', (d) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(0, deadline - Date.now()));
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

function tail(dir: string, lines: number): string {
  try {
    return readFileSync(join(dir, 'redis.log'), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
