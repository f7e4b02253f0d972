/**
 * Shared plumbing of the command-line tools: argument errors and failures print one clear line to stderr and
 * exit non-zero; Redis is resolved the same way as the service (REDIS_URL, else 127.0.0.1:6379, else private).
 */
import { parseArgs } from 'node:util';
import { checkNamespace, loadSettings, type Settings } from './config.ts';
import { createContext, type Context } from './context.ts';
import { silentLogger, type Logger } from './logger.ts';
import { assertReachable } from './redis/connection.ts';
import { checkLayout } from './redis/layout.ts';
import { resolveRedis, type LocalRedis } from './redis/local-server.ts';

export class UsageError extends Error {
  override name = 'UsageError';
}

/** One option of a command: how parseArgs reads it, and what `--help` says of it. */
export type CliOption = ({ type: 'string'; default?: string } | { type: 'boolean'; default?: boolean }) & {
  /** The value's placeholder in the help ("N", "<file>"); string options only. */
  arg?: string;
  help: string;
};

/** A command's whole interface: its options are parsed and documented from this one table. */
export interface CommandSpec<O extends Record<string, CliOption>> {
  /** The npm script: "replay" is run as `npm run replay -- …`. */
  name: string;
  /** One sentence: what it does. */
  summary: string;
  /** Its forms, after `npm run <name> --`, e.g. "<events.ndjson> --out <file> [options]". */
  usage: string[];
  options: O;
  /** Takes positional arguments (files, subcommands, ids). */
  positionals?: boolean;
  /** Full command lines a newcomer can paste. */
  examples: string[];
  /** Paragraphs printed after the options (exit codes, what it never does). */
  notes?: string[];
}

/** Options most commands share. */
export const NAMESPACE_OPTION = { type: 'string', arg: '<name>', help: 'the namespace (default: RISKMON_NAMESPACE, else the configuration\'s)' } as const satisfies CliOption;
export const CONFIG_OPTION = { type: 'string', arg: '<file>', help: 'configuration merged over config/default.json (default: RISKMON_CONFIG)' } as const satisfies CliOption;

type OptionValue<T> = T extends { type: 'boolean' } ? boolean : string;
/** What parseArgs gives for the table: a flag, or an option with a default, always has a value. */
export interface ParsedFor<O extends Record<string, CliOption>> {
  values: { [K in keyof O]: O[K] extends { default: string | boolean } | { type: 'boolean' } ? OptionValue<O[K]> : OptionValue<O[K]> | undefined };
  positionals: string[];
}

export function usageLine<O extends Record<string, CliOption>>(spec: CommandSpec<O>): string {
  return spec.usage.map((u) => `npm run ${spec.name} -- ${u}`).join('\n   or: ');
}

/** The text `--help` prints: summary, usage, every option with its default, notes and examples. */
export function helpText<O extends Record<string, CliOption>>(spec: CommandSpec<O>): string {
  const rows = Object.entries(spec.options).map(([name, o]) => {
    const flag = `--${name}${o.type === 'string' ? ` ${o.arg ?? '<value>'}` : ''}`;
    const fallback = o.default !== undefined && o.default !== false ? ` (default ${o.default})` : '';
    return [flag, o.help + fallback] as const;
  });
  rows.push(['--help', 'print this help and exit']);
  const width = Math.max(...rows.map(([f]) => f.length));
  return [
    spec.summary,
    '',
    `usage: ${usageLine(spec)}`,
    '',
    'options:',
    ...rows.map(([f, h]) => `  ${f.padEnd(width)}  ${h}`),
    ...(spec.notes?.length ? ['', ...spec.notes] : []),
    '',
    spec.examples.length === 1 ? 'example:' : 'examples:',
    ...spec.examples.map((e) => `  ${e}`),
    '',
  ].join('\n');
}

/**
 * Parses the command line against the spec: `--help` (or `-h`) anywhere prints the help and exits 0; an unknown
 * option, a missing value or a positional where none is taken is a UsageError.
 */
export function parseCommand<const O extends Record<string, CliOption>>(spec: CommandSpec<O>, args = process.argv.slice(2)): ParsedFor<O> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(helpText(spec));
    process.exit(0);
  }
  // A flag not given is false.
  const options = Object.fromEntries(
    Object.entries(spec.options).map(([name, o]) => {
      const fallback = o.default ?? (o.type === 'boolean' ? false : undefined);
      return [name, fallback === undefined ? { type: o.type } : { type: o.type, default: fallback }];
    }),
  );
  try {
    const parsed = parseArgs({ args, options, allowPositionals: true, strict: true }) as unknown as ParsedFor<O>;
    if (!spec.positionals && parsed.positionals.length) throw new UsageError(`unexpected argument: ${parsed.positionals[0]}`);
    return parsed;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    // parseArgs' own errors ("Unknown option '--x'. …", "Option '--out <value>' argument missing").
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/, ''));
  }
}

/**
 * Runs a command: parses its arguments (see parseCommand), runs `main`; any error becomes `<name>: <message>` on
 * stderr and exit code 1, a usage error exit code 2 with the usage line.
 */
export function runCommand<const O extends Record<string, CliOption>>(spec: CommandSpec<O>, main: (args: ParsedFor<O>) => Promise<void>): void {
  runCli(spec.name, () => main(parseCommand(spec)), `${usageLine(spec)}\n(npm run ${spec.name} -- --help lists every option)`);
}

/** Runs a CLI main; any error becomes `<tool>: <message>` on stderr and exit code 1 (2 for usage). */
function runCli(tool: string, main: () => Promise<void>, usage?: string): void {
  Promise.resolve()
    .then(main)
    .then(
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

/**
 * A whole-number option: the fallback when absent, else digits (underscores allowed between them: 200_000) from
 * `min` (default 1) to `max`; anything else is a UsageError naming the option. Every command parses numbers here.
 */
export function wholeNumberOption(name: string, value: string | undefined, fallback: number, bounds: { min?: number; max?: number } = {}): number {
  if (value === undefined) return fallback;
  const { min = 1, max } = bounds;
  const n = /^\d+(_\d+)*$/.test(value) ? Number(value.replace(/_/g, '')) : NaN;
  if (!Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
    throw new UsageError(`--${name} takes a whole number ${max === undefined ? `≥ ${min}` : `from ${min} to ${max}`}, got ${JSON.stringify(value)}`);
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
  const resolved = await resolveRedis(settings);
  const localRedis = resolved.started;
  if (localRedis && options.requireExisting) {
    await localRedis.stop();
    throw new Error('no Redis answers on 127.0.0.1:6379 and REDIS_URL is not set: there is no data to read (set REDIS_URL)');
  }
  const context = createContext(settings, resolved.target, options.logger ?? silentLogger);
  try {
    await assertReachable(context.redis, resolved.target);
    // A tool with another shard count would read and write every user's state in the wrong slot. It records no
    // layout itself (a read leaves the namespace as it was): the service does, at its start.
    await checkLayout(context.redis, context.keys, { record: false });
  } catch (e) {
    context.redis.disconnect();
    context.queueConnection.disconnect();
    await localRedis?.stop();
    throw e;
  }
  return {
    context,
    localRedis,
    async close() {
      await context.close();
      await localRedis?.stop();
    },
  };
}
