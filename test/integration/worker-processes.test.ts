import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { TEST_CARD_SECRET, waitFor } from '../chaos/harness.ts';
import { freshNamespace, redisUrl } from '../helpers/context.ts';

const PARENT = fileURLToPath(new URL('../helpers/worker-parent.ts', import.meta.url));

/** Running, and not a zombie (an orphan's zombie lingers until PID 1 reaps it, which not every container's does). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('worker processes never outlive the process that started them', () => {
  // Before: the children of a SIGKILLed replay or bench kept running (and consuming) forever.
  test('parent SIGKILLed: its risk workers shut down as on SIGTERM within seconds', async () => {
    const parent = spawn(process.execPath, ['--import', 'tsx', PARENT, '2'], {
      env: { ...process.env, REDIS_URL: redisUrl(), RISKMON_NAMESPACE: freshNamespace('orphans'), RISKMON_CARD_SECRET: TEST_CARD_SECRET },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    parent.stdout.on('data', (d) => (output += d));
    parent.stderr.on('data', (d) => (output += d));
    let pids: number[] = [];
    try {
      await waitFor(() => /"pids"/.test(output), 20_000, 'the worker pids');
      pids = (JSON.parse(output.split('\n').find((l) => l.includes('"pids"'))!) as { pids: number[] }).pids;
      expect(pids).toHaveLength(2);
      await waitFor(() => output.split('riskmon started').length - 1 === 2, 30_000, 'both workers to start');
      expect(pids.every(alive)).toBe(true);

      parent.kill('SIGKILL');
      const killedAt = Date.now();
      await waitFor(() => !pids.some(alive), 10_000, 'the orphaned workers to exit', 50);
      // The workers' own output (their stdout is the pipe they inherited): each stopped through the SIGTERM path.
      await waitFor(() => output.split('shut down cleanly').length - 1 === 2, 2_000, 'both "shut down cleanly" lines');
      console.log(`orphaned workers gone ${Date.now() - killedAt} ms after the parent was killed`);
    } finally {
      parent.kill('SIGKILL');
      for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  }, 60_000);
});
