/**
 * Worker processes for the benchmark, started like production (separate Node processes, configuration from the
 * environment), and CPU accounting from /proc so the report can say where the cores went.
 */
import { startProcesses as startWorkerProcesses, type WorkerProcesses } from '../../src/pipeline/worker-processes.ts';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export { RISK_WORKER_ENTRY, type WorkerProcesses } from '../../src/pipeline/worker-processes.ts';
export const BASELINE_WORKER_ENTRY = fileURLToPath(new URL('./baseline-worker.ts', import.meta.url));

/** Worker processes for a benchmark path; BENCH_WORKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles them. */
export function startProcesses(entry: string, count: number, env: Record<string, string>): WorkerProcesses {
  const nodeArgs = process.env.BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  return startWorkerProcesses(entry, count, { RISKMON_HTTP_PORT: '0', ...env }, { nodeArgs });
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
