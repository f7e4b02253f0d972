/**
 * End to end: the fixture stream is replayed through the real pipeline (worker processes), then calibrated on
 * three run dates with real chunk jobs; every account's quota and history must match the hand-computed file.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { AccountNotFoundError } from '../../src/quota/accounts.ts';
import type { RunStatus } from '../../src/quota/runs.ts';
import { replay } from '../../src/replay/replay.ts';
import { dropContext, testContext } from '../helpers/context.ts';
import { calibrate, calibrationWorker } from '../helpers/quota.ts';

const FIXTURE = new URL('../fixtures/quota-calibration.ndjson', import.meta.url).pathname;
interface Expected {
  replay: Record<string, { eventId: string; outcome: string; rules?: string[]; error?: string }>;
  runs: Pick<RunStatus, 'runId' | 'accounts' | 'calibrated' | 'up' | 'down' | 'unchanged' | 'warnings'>[];
  accounts: Record<string, { channel: string; quota: number; history: { runId: string; before: number; after: number; factors: string[]; warnings: string[] }[] }>;
  withoutAccount: string[];
}
const expected = JSON.parse(readFileSync(new URL('../fixtures/quota-calibration.expected.json', import.meta.url), 'utf8')) as Expected;

let context: Context;
let dir: string;
let lines: { line: number; eventId: string | null; outcome: string; rules?: string[]; error?: string }[];
const runs: RunStatus[] = [];

beforeAll(async () => {
  context = testContext();
  dir = mkdtempSync(join(tmpdir(), 'riskmon-quota-fixture-'));
  await replay({ context, inputPath: FIXTURE, outputPath: join(dir, 'out.ndjson') });
  lines = readFileSync(join(dir, 'out.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const worker = await calibrationWorker(context);
  try {
    for (const run of expected.runs) runs.push(await calibrate(context, run.runId));
  } finally {
    await worker.close();
  }
});

afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (context) await dropContext(context);
});

describe('quota fixture replayed and calibrated', () => {
  it('replays every line: quota events accepted, charges decided, bad lines rejected with their reason', () => {
    const input = readFileSync(FIXTURE, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; eventId: string });
    expect(lines).toHaveLength(input.length);
    lines.forEach((got, i) => {
      const want = expected.replay[String(i + 1)];
      if (want) {
        expect(got).toMatchObject({ line: i + 1, ...want });
      } else {
        expect(got).toMatchObject({ line: i + 1, eventId: input[i]!.eventId, outcome: input[i]!.type === 'charge' ? 'approve' : 'accepted' });
      }
      if (got.outcome === 'accepted') expect(got).toEqual({ line: i + 1, eventId: input[i]!.eventId, outcome: 'accepted' });
    });
  });

  it('runs each date over the accounts opened before it, with the expected changes', () => {
    expect(runs.map((r) => ({ runId: r.runId, accounts: r.accounts, calibrated: r.calibrated, up: r.up, down: r.down, unchanged: r.unchanged, warnings: r.warnings }))).toEqual(expected.runs);
  });

  for (const [userId, want] of Object.entries(expected.accounts)) {
    it(`${userId}: quota and audited history as computed by hand`, async () => {
      const view = await context.quotaAccounts.show(userId, context.calibrator);
      expect({
        channel: view.channel,
        quota: view.quota,
        history: view.history.map((h) => ({ runId: h.runId, before: h.before, after: h.after, factors: h.factors.map((f) => f.factor), warnings: h.warnings.map((w) => w.warning) })),
      }).toEqual({ channel: want.channel, quota: want.quota, history: want.history });
      expect(view.effectiveQuota).toBe(want.quota);
    });
  }

  it('has no account for users who only sent activity', async () => {
    for (const userId of expected.withoutAccount) {
      await expect(context.quotaAccounts.show(userId, context.calibrator)).rejects.toThrow(AccountNotFoundError);
    }
  });
});
