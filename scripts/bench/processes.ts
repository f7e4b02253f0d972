/**
 * Worker processes for the benchmark, started like production (separate Node processes, configuration from the
 * environment), and CPU accounting from /proc so the report can say where the cores went.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** tsx's loader, resolved from here so worker processes start from any working directory. */
const TSX_LOADER = import.meta.resolve('tsx');

export const RISK_WORKER_ENTRY = fileURLToPath(new URL('../../workers/risk-worker.ts', import.meta.url));
export const BASELINE_WORKER_ENTRY = fileURLToPath(new URL('./baseline-worker.ts', import.meta.url));

export interface WorkerProcesses {
  pids: number[];
  /** Rejects as soon as a process exits on its own. */
  exited: Promise<never>;
  stop(): Promise<void>;
}

export function startProcesses(entry: string, count: number, env: Record<string, string>): WorkerProcesses {
  const children: ChildProcess[] = [];
  let stopping = false;
  let fail: (e: Error) => void = () => undefined;
  const exited = new Promise<never>((_, reject) => (fail = reject));
  exited.catch(() => undefined);
  for (let i = 0; i < count; i++) {
    // Profiling hook: BENCH_WORKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" (not allowed in NODE_OPTIONS).
    const nodeArgs = process.env.BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
    const child = spawn(process.execPath, [...nodeArgs, '--import', TSX_LOADER, entry], {
      env: {
        ...process.env,
        LOG_LEVEL: 'warn',
        // Service processes serve HTTP (metrics, health): not needed here, and benchmark workers must not fight
        // over a port if it is on.
        RISKMON_HTTP_ENABLED: 'false',
        RISKMON_HTTP_PORT: '0',
        ...env,
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
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

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** User + system CPU seconds a process has used (0 when it is gone or /proc is unavailable). */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** Busy and total CPU seconds of the whole machine, from /proc/stat. */
export function machineCpuSeconds(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: (total - idle) / CLOCK_TICKS, total: total / CLOCK_TICKS };
  } catch {
    return { busy: 0, total: 0 };
  }
}
