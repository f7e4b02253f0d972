/** Test helpers for credit quotas: build events, push them through the real processor, run calibrations. */
import { expect } from 'vitest';
import type { Context } from '../../src/context.ts';
import { startCalibrationWorkerFor } from '../../src/quota/calibration-worker.ts';
import type { RunStatus } from '../../src/quota/runs.ts';
import { testBatch } from '../helpers/batch.ts';

let sequence = 0;
const nextId = (prefix: string) => `${prefix}-${++sequence}`;

type Json = Record<string, unknown>;

export const opened = (userId: string, occurredAt: string, quota = 1_000_000, channel: 'invited' | 'applied' = 'invited'): Json => ({
  type: 'account_opened',
  eventId: nextId('open'),
  userId,
  channel,
  quota,
  occurredAt,
});

export const charge = (userId: string, occurredAt: string, amount = 1_000): Json => ({
  type: 'charge',
  eventId: nextId('charge'),
  userId,
  merchantId: 'm-quota',
  cardId: `card-${userId}`,
  amount,
  occurredAt,
});

/** `count` charges from `firstAt`, `stepMinutes` apart. */
export function charges(userId: string, firstAt: string, count: number, stepMinutes = 30): Json[] {
  const start = Date.parse(firstAt);
  return Array.from({ length: count }, (_, i) => charge(userId, new Date(start + i * stepMinutes * 60_000).toISOString()));
}

export const repayment = (userId: string, dueAt: string, paidAt: string, amount = 10_000): Json => ({
  type: 'repayment',
  eventId: nextId('repay'),
  userId,
  amount,
  dueAt,
  paidAt,
  occurredAt: paidAt,
});

export const assets = (userId: string, occurredAt: string, balance: number, redeemed = 0): Json => ({
  type: 'asset_snapshot',
  eventId: nextId('assets'),
  userId,
  balance,
  redeemed,
  occurredAt,
});

export const social = (userId: string, occurredAt: string, friendsAdded: number, momentsBlocked = false): Json => ({
  type: 'social_snapshot',
  eventId: nextId('social'),
  userId,
  friendsAdded,
  momentsBlocked,
  occurredAt,
});

/**
 * Pushes events through the real processor (validation, handlers, Lua) in one batch, in arrival order (by
 * occurredAt, stable: a stream's events arrive about when they happen); every one must be accepted but those whose
 * eventIds are in `refused`, which must be rejected.
 */
export async function feed(context: Context, events: Json[], refused: ReadonlySet<string> = new Set()): Promise<void> {
  const at = (e: Json) => Date.parse(String(e.occurredAt));
  const arrival = events.map((e, i) => ({ e, i })).sort((a, b) => at(a.e) - at(b.e) || a.i - b.i).map(({ e }) => e);
  const results = await context.processor.process(testBatch(arrival), nextId('test-batch'));
  expect(results.filter((r) => (r.outcome === 'rejected') !== refused.has(r.eventId ?? ''))).toEqual([]);
}

/** A calibration worker in this process (no scheduler), as `npm start` runs it. */
export function calibrationWorker(context: Context, concurrency?: number) {
  return startCalibrationWorkerFor(context, concurrency);
}

/** Starts run D and waits until the worker(s) finished it. */
export async function calibrate(context: Context, date: string): Promise<RunStatus> {
  await context.calibration.start(date);
  return context.calibration.waitUntilDone(date, { pollMs: 20 });
}
