/** The callgrind benchmark at tiny size: it runs under valgrind and prints a sane instruction count (no gate here). */
import { expect, it } from 'vitest';
import { program } from '../helpers/binaries.ts';
import { runTool } from '../helpers/cli.ts';

const valgrind = program('/usr/bin/valgrind', 'valgrind');

it.skipIf(valgrind.skip)('counts the Redis instructions per charge of 400 charges after 100 of warm-up', async () => {
  const r = await runTool('bench-callgrind', ['--charges', '400', '--warmup', '100', '--users', '100', '--json'], {}, 55_000);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  expect(out).toMatchObject({ charges: 400, warmup: 100, users: 100, seed: 42, days: 3, calls: 2 });
  const { totalIr, timerIr, irPerCharge, scriptIr, scriptIrPerCharge, topFunctions, outcomes } = out as {
    totalIr: number;
    timerIr: number;
    irPerCharge: number;
    scriptIr: number;
    scriptIrPerCharge: number;
    topFunctions: { function: string; object: string; ir: number; share: number }[];
    outcomes: Record<string, number>;
  };
  // Tens of thousands of instructions a charge (about 130,000 with the defaults in 2026-12).
  expect(irPerCharge).toBeGreaterThan(10_000);
  expect(irPerCharge).toBeLessThan(1_000_000);
  expect(irPerCharge).toBeCloseTo((totalIr - timerIr) / 400, 0);
  expect(timerIr).toBeGreaterThanOrEqual(0);
  expect(timerIr).toBeLessThan(totalIr);
  // The script is nearly all of it; reading the calls and writing the replies is the rest.
  expect(scriptIr).toBeLessThan(totalIr);
  expect(scriptIrPerCharge).toBeGreaterThan(irPerCharge * 0.5);
  expect(scriptIrPerCharge).toBeLessThanOrEqual(irPerCharge);
  expect(topFunctions).toHaveLength(5);
  for (const f of topFunctions) {
    expect(f.function).not.toBe('');
    expect(f.object).not.toBe('');
    expect(f.ir).toBeGreaterThan(0);
    expect(f.share).toBeGreaterThan(0);
  }
  // Every measured charge got a decision, none an error or a duplicate.
  expect(Object.values(outcomes).reduce((a, b) => a + b, 0)).toBe(400);
  expect(Object.keys(outcomes).every((o) => ['approve', 'review', 'decline'].includes(o))).toBe(true);
});
