/**
 * `npm run bench:acks` end to end at a tiny size: it starts a private master with a replica and a private cluster
 * with replicas, sends with and without pipeline.replicaAcks, and prints one row per setting. No timing is asserted.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

test('npm run bench:acks measures both settings on both targets', async () => {
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/bench-replica-acks.ts', '--count', '600', '--flush-every', '200', '--rounds', '1'], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
  expect(code, stderr).toBe(0);
  for (const target of ['one master + replica', '3 masters + replicas']) {
    for (const acks of [0, 1]) expect(stdout).toMatch(new RegExp(`\\| ${target.replace(/\+/g, '\\+')} \\| 200 \\| ${acks} \\| [\\d,]+ \\| [\\d.]+ \\| [\\d.]+ \\| [\\d.]+ \\|`));
  }
}, 120_000);
