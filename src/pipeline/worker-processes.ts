/**
 * Worker processes started as production starts them (`node --import tsx workers/<entry>.ts`, configuration from the
 * environment), for replays and benchmarks. A process that exits on its own is reported at once. None outlives
 * its parent: each has an IPC channel to it and shuts down as on SIGTERM when the channel closes, which it does
 * however the parent ends (SIGKILL and crashes included).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** tsx's loader, resolved from here so worker processes start from any working directory. */
const TSX_LOADER = import.meta.resolve('tsx');

export const RISK_WORKER_ENTRY = fileURLToPath(new URL('../../workers/risk-worker.ts', import.meta.url));

/** Preloaded into every process started here, whatever its entry (bench baselines included): stopWithParent(). */
const WITH_PARENT_PRELOAD = fileURLToPath(new URL('../../workers/with-parent.ts', import.meta.url));

/**
 * In a process started by startProcesses: when the parent goes away, the IPC channel closes and this process
 * signals itself SIGTERM, so it stops as a service does (in-flight batches finish or go back to their queue within
 * the grace period); an entry without a SIGTERM handler simply exits. Does nothing in a process without an IPC
 * channel (production, started by a supervisor). The channel does not keep the process alive.
 */
export function stopWithParent(): void {
  if (!process.send || !process.channel) return;
  process.channel.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}

export interface WorkerProcesses {
  pids: number[];
  /** Rejects as soon as a process exits on its own. */
  exited: Promise<never>;
  /** SIGTERM (in-flight batches finish or go back to their queue), SIGKILL after 10 s. */
  stop(): Promise<void>;
}

export interface StartProcessesOptions {
  /** Extra Node arguments, e.g. ["--cpu-prof"]. */
  nodeArgs?: string[];
  /** @defaultValue "inherit" */
  stdio?: 'inherit' | 'ignore';
}

export function startProcesses(entry: string, count: number, env: Record<string, string>, options: StartProcessesOptions = {}): WorkerProcesses {
  const children: ChildProcess[] = [];
  let stopping = false;
  let fail: (e: Error) => void = () => undefined;
  const exited = new Promise<never>((_, reject) => (fail = reject));
  exited.catch(() => undefined);
  for (let i = 0; i < count; i++) {
    const stdio = options.stdio ?? 'inherit';
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', TSX_LOADER, '--import', WITH_PARENT_PRELOAD, entry], {
      env: {
        ...process.env,
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
        // Several processes on one host must not fight over the HTTP port.
        RISKMON_HTTP_ENABLED: 'false',
        ...env,
      },
      // The IPC channel is how a child learns that its parent is gone (stopWithParent); nothing is sent on it.
      stdio: ['ignore', stdio, stdio, 'ipc'],
    });
    // Nor does it keep the parent alive.
    child.channel?.unref();
    child.on('exit', (code, signal) => {
      if (!stopping) fail(new Error(`${entry} process ${i + 1} exited unexpectedly (${signal ?? `code ${code}`})`));
    });
    children.push(child);
  }
  return {
    pids: children.map((c) => c.pid!),
    exited,
    async stop() {
      stopping = true;
      await Promise.all(
        children.map(async (c) => {
          if (c.exitCode !== null || c.signalCode !== null) return;
          const done = once(c, 'exit');
          c.kill('SIGTERM');
          const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
          await done;
          clearTimeout(timer);
        }),
      );
    },
  };
}
