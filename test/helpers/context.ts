/** Test wiring: a fresh namespace per test on the shared test Redis, built exactly as production builds it. */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { inject } from 'vitest';
import { loadSettings } from '../../src/config.ts';
import { createContext, type Context } from '../../src/context.ts';
import { silentLogger } from '../../src/logger.ts';
import { Keys } from '../../src/redis/keys.ts';
import { deleteNamespace } from '../../src/redis/namespace.ts';
import type { RedisClient } from '../../src/redis/client.ts';
import type { RedisTarget } from '../../src/redis/target.ts';

export function redisUrl(): string {
  return inject('redisUrl');
}

/**
 * A namespace no other test uses. Letters only after the prefix: ids built on it (`<namespace>-108`) must never
 * look like a card number, which a run of hex digits that happened to be all decimal did (CI: a Luhn-valid
 * "3709352570-108" made 290 events of a chaos run invalid).
 */
export function freshNamespace(prefix = 'test'): string {
  return `${prefix}-${Array.from(randomBytes(10), (b) => String.fromCharCode(97 + (b % 26))).join('')}`;
}

/** A context in a fresh namespace, on the shared test Redis unless given another one (a URL or a cluster). */
export function testContext(overrides: Record<string, unknown> = {}, url: string | RedisTarget = redisUrl()): Context {
  const settings = loadSettings({ namespace: freshNamespace(), overrides, env: {} });
  return createContext(settings, url, silentLogger);
}

/** Deletes every key of the context's namespace, then closes it. */
export async function dropContext(context: Context): Promise<void> {
  await dropNamespace(context.redis, context.keys.namespace);
  await context.close();
}

export async function dropNamespace(redis: RedisClient, namespace: string): Promise<void> {
  // The shard count does not matter: every key of a namespace starts with its base.
  await deleteNamespace(redis, new Keys(namespace, 1));
}
