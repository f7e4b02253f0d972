/**
 * Shared plumbing of the command-line tools: argument errors and failures print one clear line to stderr and
 * exit non-zero; Redis is resolved the same way as the service (REDIS_URL, else 127.0.0.1:6379, else private).
 */
import { checkNamespace, loadSettings, type Settings } from './config.ts';
import { createContext, type Context } from './context.ts';
import { silentLogger, type Logger } from './logger.ts';
import { assertReachable } from './redis/connection.ts';
import { resolveRedisUrl, type LocalRedis } from './redis/local-server.ts';

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Runs a CLI main; any error becomes `<tool>: <message>` on stderr and exit code 1 (2 for usage). */
export function runCli(tool: string, main: () => Promise<void>, usage?: string): void {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      const err = e as Error;
      process.stderr.write(`${tool}: ${err.message}\n`);
      if (err instanceof UsageError && usage) process.stderr.write(`usage: ${usage}\n`);
      if (process.env.RISKMON_DEBUG) process.stderr.write(`${err.stack}\n`);
      process.exit(err instanceof UsageError ? 2 : 1);
    },
  );
}

/** The `--namespace` option, validated; undefined when it was not given. */
export function namespaceOption(value: string | undefined): string | undefined {
  return value === undefined ? undefined : checkNamespace(value);
}

/** A whole-number option: the fallback when absent, else a number from `min` to `max` (a UsageError names it). */
export function wholeNumberOption(name: string, value: string | undefined, fallback: number, max?: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || (max !== undefined && n > max)) {
    throw new UsageError(max === undefined ? `--${name} must be a positive whole number` : `--${name} must be a whole number from ${min} to ${max}`);
  }
  return n;
}

export interface CliContext {
  context: Context;
  localRedis?: LocalRedis;
  close(): Promise<void>;
}

/** Opens a context for a namespace; with `requireExisting` a private Redis would be empty, so it is refused. */
export async function openCliContext(
  options: { namespace?: string; configFile?: string; logger?: Logger; settings?: Settings; requireExisting?: boolean } = {},
): Promise<CliContext> {
  const settings = options.settings ?? loadSettings({ configFile: options.configFile, namespace: options.namespace });
  const resolved = await resolveRedisUrl(settings.redisUrl);
  const localRedis = resolved.started;
  if (localRedis && options.requireExisting) {
    await localRedis.stop();
    throw new Error('no Redis answers on 127.0.0.1:6379 and REDIS_URL is not set: there is no data to read (set REDIS_URL)');
  }
  const context = createContext(settings, resolved.url, options.logger ?? silentLogger);
  await assertReachable(context.redis, resolved.url);
  return {
    context,
    localRedis,
    async close() {
      await context.close();
      await localRedis?.stop();
    },
  };
}
