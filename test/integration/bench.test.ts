/**
 * `npm run bench` end to end at a tiny size: it starts its own redis-server and worker processes, runs every path,
 * and prints the report. No timing is asserted; what must hold is that the script works and that its check of
 * decisions against the one-event-at-a-time path fails when a decision differs.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TINY = ['--count', '2000', '--users', '200', '--duration', '1', '--rounds', '1', '--scale-rounds', '2', '--calibration-accounts', '0', '--baseline-count', '1000'];

function bench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/bench.ts', ...args], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run bench', () => {
  it('runs every path on the same stream and finds the decisions identical', async () => {
    const { code, stdout, stderr } = await bench([...TINY, '--loads', '1000', '--scale-users', '200,5000']);
    expect(code, stderr).toBe(0);
    for (const row of ['| ceiling | saturation | 2,000 |', '| baseline | saturation | 1,000 |', '| riskmon | saturation | 2,000 |', '| riskmon | 1,000 | 1,000 |', '| one at a time (reference) | sequential | 2,000 |']) {
      expect(stdout).toContain(row);
    }
    expect(stdout).toContain('| riskmon (round 1) | identical (2000 decisions) |');
    expect(stdout).toContain('| riskmon @ 1000/s | identical (1000 decisions) |');
    // Found nothing before: the probe looked for keys without their shard tag, and a 0 passed these checks.
    expect(stdout).toMatch(/\| rule state: day totals and card windows, one hash per user \| [1-9][\d,]* \| [1-9][\d,]* \|/);
    expect(stdout).toMatch(/\| card windows \(inside the rule-state hashes\) \|.*\| [1-9][\d,]* cards, about [\d.]+ (B|KB) per card/);
    expect(stdout).toMatch(/\| charge records \(the dedupe\) \| [1-9][\d,]* \| [1-9][\d,]* \| [\d.]+ B per charge/);
    expect(stdout).toMatch(/\| eventId claims \| [1-9][\d,]* \| [1-9][\d,]* \| [\d.]+ B per event/);
    // Cost growth row for 5,000 users: measured after the load (5,000 users) and a warm-up (2,000 decisions).
    const row = /\| 5,000 \| [\d,]+ \| ([\d,]+) \| [\d,]+ \|.*\| [\d,]+, [\d.]+ \(from ([\d,]+) keys\) \|/.exec(stdout);
    expect(row, stdout).not.toBeNull();
    const num = (s: string) => Number(s.replaceAll(',', ''));
    expect(num(row![2]!)).toBeGreaterThanOrEqual(5_000);
    expect(num(row![1]!)).toBeGreaterThanOrEqual(num(row![2]!) + 2_000);
    // Measured in two slices, the sizes alternating.
    expect(stdout).toMatch(/\| 5,000 \| [\d,]+ \| [\d,]+ \| [\d,]+ \| [\d,]+, [\d,]+ \|/);
    expect(stdout).toContain('Not measured:'); // no calibration at this size
  }, 180_000);

  it('fails when one decision differs from the one-event-at-a-time path', async () => {
    const { code, stdout, stderr } = await bench([...TINY, '--no-baseline', '--loads', 'none', '--scale-users', 'none', '--inject-difference']);
    expect(code).toBe(1);
    expect(stdout).toMatch(/\| riskmon \(round 1\) \| DIFFERENT: [1-9]\d* differ, 0 missing, 0 unexpected of 2000 \|/);
    expect(stdout).toContain('| ceiling (round 1) | identical (2000 decisions) |');
    expect(stderr).toContain('decisions differ from the one-event-at-a-time path in: riskmon (round 1)');
  }, 180_000);
});
