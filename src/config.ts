/**
 * Loads configuration: config/default.json, then an optional JSON file (RISKMON_CONFIG or --config),
 * then a few environment variables. Validated with zod once; the result is frozen.
 *
 * Settings that would be unsafe stop the process here with a ConfigError that names the setting and what to do, and
 * never contains a secret: in production a weak or published card secret or dashboard password, a dashboard
 * without login, or NODE_ENV=production with another RISKMON_ENV; in any mode a dashboard without login on an address
 * other hosts can reach.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { configSchema, namespaceName, type RiskmonConfig } from '../config/schema.ts';
import { ruleDefaults } from './rules/registry.ts';
import { redisTargetFromEnv, type ClusterRedisTarget, type RedisTarget } from './redis/target.ts';

export type { RiskmonConfig } from '../config/schema.ts';

export const DEVELOPMENT_CARD_SECRET = 'riskmon-development-card-secret-do-not-use-in-production';

/**
 * Card secrets written anywhere in this repository (the default above, docker-compose.yml before issue 11, the docs,
 * the tests): public, so production refuses them. test/unit/config.test.ts checks that every value the compose file,
 * Dockerfile, README, docs and tests give RISKMON_CARD_SECRET is here or fails the strength check anyway.
 */
export const PUBLISHED_CARD_SECRETS: readonly string[] = [
  DEVELOPMENT_CARD_SECRET,
  'riskmon-compose-demo-secret-change-me',
  'chaos-card-secret-0123456789abcdef',
  'a-long-random-production-secret',
  'a-production-secret-of-some-length',
  'riskmon-benchmark-card-secret-0123456789',
];

/** Dashboard passwords written in this repository (compose before issue 11, README, tests); compared case-insensitively. */
export const PUBLISHED_DASHBOARD_PASSWORDS: readonly string[] = ['riskmon-demo', 'test-password-1', 'long-enough'];

/** Words that, with only digits and symbols around them, make a guessable password ("Password123!", "admin-2024"). */
const COMMON_PASSWORD_WORDS = new Set(['password', 'passwort', 'admin', 'administrator', 'changeme', 'letmein', 'welcome', 'qwerty', 'secret', 'riskmon', 'riskmondemo', 'dashboard', 'ops', 'root', 'test', 'demo']);

/** Production floor for RISKMON_CARD_SECRET: characters, and bits estimated as in {@link estimatedBits}. */
export const CARD_SECRET_MIN_LENGTH = 32;
export const CARD_SECRET_MIN_BITS = 128;
/** Production floor for RISKMON_DASHBOARD_PASSWORD: characters, and different characters. */
export const DASHBOARD_PASSWORD_MIN_LENGTH = 12;
export const DASHBOARD_PASSWORD_MIN_DISTINCT = 6;

const GENERATE_CARD_SECRET = 'generate one with `openssl rand -base64 32`';
const GENERATE_PASSWORD = 'generate one with `openssl rand -base64 18`';

const here = dirname(fileURLToPath(import.meta.url));
export const DEFAULT_CONFIG_PATH = resolve(here, '../config/default.json');

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** What a process needs to run: validated config plus the settings that come only from the environment. */
export interface Settings {
  config: RiskmonConfig;
  /** Short hash of the rule-relevant configuration; every decision records it. */
  configVersion: string;
  /** Explicit Redis URL, or undefined to use 127.0.0.1:6379 or start a private server. */
  /** REDIS_URL; undefined when unset (127.0.0.1:6379 or a private server then) or when a cluster is named. */
  redisUrl: string | undefined;
  /** RISKMON_REDIS_CLUSTER: every process then uses the cluster. */
  redisCluster: ClusterRedisTarget | undefined;
  /** DATABASE_URL: the archive's PostgreSQL; undefined for the embedded database (archive.dataDir). Never logged in full. */
  databaseUrl: string | undefined;
  /** Key for the card HMAC; never logged. */
  cardSecret: string;
  /** Login for /admin/queues (RISKMON_DASHBOARD_USER / RISKMON_DASHBOARD_PASSWORD); never logged. */
  dashboardCredentials: DashboardCredentials | undefined;
  /** The `rules` part as written (defaults, file, overrides merged, before parsing): what a published version stores. */
  rulesInput: unknown;
  /** How these settings were loaded: a candidate configuration is loaded the same way, over them. */
  loadedWith: LoadOptions;
}

export interface DashboardCredentials {
  user: string;
  password: string;
}

export interface LoadOptions {
  /** Path of a JSON file merged over the defaults. */
  configFile?: string;
  /** Namespace override (command line). */
  namespace?: string;
  /** Values merged over everything else (tests, embedding). */
  overrides?: unknown;
  env?: NodeJS.ProcessEnv;
}

export function loadSettings(options: LoadOptions = {}): Settings {
  const env = options.env ?? process.env;
  // Each rule's defaults live in its module (src/rules/registry.ts); config/default.json holds the rest.
  let raw = deepMerge({ rules: ruleDefaults() }, readJson(DEFAULT_CONFIG_PATH));
  const file = options.configFile ?? env.RISKMON_CONFIG;
  const fileRaw = file ? readJson(resolve(file)) : undefined;
  if (file) raw = deepMerge(raw, fileRaw);
  // RISKMON_ENV overrides the file, but never downgrades a file that says production.
  const fileEnvironment = isPlainObject(fileRaw) ? fileRaw.environment : undefined;
  if (fileEnvironment === 'production' && env.RISKMON_ENV && env.RISKMON_ENV !== 'production') {
    throw new ConfigError(
      `RISKMON_ENV=${env.RISKMON_ENV} but the configuration file (${file}) says environment "production": remove one of them (riskmon does not guess which one you meant)`,
    );
  }
  if (env.RISKMON_ENV) raw = deepMerge(raw, { environment: env.RISKMON_ENV });
  else if (env.NODE_ENV === 'production') raw = deepMerge(raw, { environment: 'production' });
  raw = deepMerge(raw, httpFromEnv(env));
  const namespace = options.namespace ?? env.RISKMON_NAMESPACE;
  if (namespace !== undefined) raw = deepMerge(raw, { namespace });
  if (options.overrides !== undefined) raw = deepMerge(raw, options.overrides);

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(`invalid configuration${file ? ` (${file})` : ''}:\n${formatIssues(parsed.error)}`);
  }
  const config = deepFreeze(parsed.data);
  const production = config.environment === 'production';

  // The Dockerfile sets NODE_ENV=production; a RISKMON_ENV left at development must not quietly run the image with the
  // development card secret and no password checks.
  if (env.NODE_ENV === 'production' && !production) {
    const source = env.RISKMON_ENV ? `RISKMON_ENV=${env.RISKMON_ENV}` : `environment "${config.environment}"`;
    throw new ConfigError(
      `NODE_ENV=production but ${source}: riskmon would run with development settings. Set RISKMON_ENV=production (and production secrets), or unset NODE_ENV on a development machine`,
    );
  }

  const cardSecret = env.RISKMON_CARD_SECRET ?? DEVELOPMENT_CARD_SECRET;
  if (production && cardSecret === DEVELOPMENT_CARD_SECRET) {
    throw new ConfigError(
      `RISKMON_CARD_SECRET ${env.RISKMON_CARD_SECRET ? 'is the development default' : 'is not set'}: production refuses the development card-hashing secret (${GENERATE_CARD_SECRET})`,
    );
  }
  if (production) {
    const weakness = cardSecretWeakness(cardSecret);
    if (weakness) throw new ConfigError(`RISKMON_CARD_SECRET ${weakness}: production refuses it (${GENERATE_CARD_SECRET})`);
  }
  if (cardSecret.length < 16) throw new ConfigError('RISKMON_CARD_SECRET must be at least 16 characters');

  const dashboardCredentials = dashboardCredentialsFrom(env);
  if (production && dashboardCredentials) {
    const weakness = dashboardPasswordWeakness(dashboardCredentials);
    if (weakness) throw new ConfigError(`RISKMON_DASHBOARD_PASSWORD ${weakness}: production refuses it (${GENERATE_PASSWORD})`);
  }
  if (production && config.http.dashboard.auth === 'disabled') {
    throw new ConfigError(
      'http.dashboard.auth "disabled" is for a developer\'s own machine: production requires "basic" (set it, and RISKMON_DASHBOARD_USER / RISKMON_DASHBOARD_PASSWORD)',
    );
  }
  if (config.http.enabled && config.http.dashboard.auth === 'disabled' && !isLoopbackHost(config.http.host)) {
    throw new ConfigError(
      `http.dashboard.auth "disabled" with http.host "${config.http.host}": the dashboard would be open without a login to every host that reaches this address${config.http.dashboard.readOnly ? '' : ', with the buttons that remove and add jobs'}. ` +
        'Listen on a loopback address (http.host "127.0.0.1", RISKMON_HTTP_HOST), or use http.dashboard.auth "basic" with RISKMON_DASHBOARD_USER / RISKMON_DASHBOARD_PASSWORD',
    );
  }

  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL must be a postgres:// or postgresql:// URL (with ?sslmode=require or verify-full for TLS)');
  }
  if (production && config.archive.enabled && !databaseUrl) {
    throw new ConfigError(
      'production requires DATABASE_URL (a PostgreSQL server): the embedded archive is one process\'s folder, for development and demos',
    );
  }

  return {
    config,
    configVersion: configVersionOf(config),
    ...redisOf(env),
    databaseUrl,
    cardSecret,
    dashboardCredentials,
    rulesInput: deepFreeze(structuredClone((raw as { rules?: unknown }).rules)),
    loadedWith: options,
  };
}

/** REDIS_URL or RISKMON_REDIS_CLUSTER (never both: src/redis/target.ts says why it refuses). */
function redisOf(env: NodeJS.ProcessEnv): Pick<Settings, 'redisUrl' | 'redisCluster'> {
  let target: RedisTarget | undefined;
  try {
    target = redisTargetFromEnv(env);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  return { redisUrl: target?.kind === 'single' ? target.url : undefined, redisCluster: target?.kind === 'cluster' ? target : undefined };
}

const envFlag = z.stringbool({ error: 'expected true or false' });

/** RISKMON_HTTP_ENABLED / _HOST / _PORT over the config file; replay's worker processes turn HTTP off this way. */
function httpFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const http: Record<string, unknown> = {};
  if (env.RISKMON_HTTP_ENABLED !== undefined) {
    const r = envFlag.safeParse(env.RISKMON_HTTP_ENABLED);
    if (!r.success) throw new ConfigError(`RISKMON_HTTP_ENABLED: expected true or false, got "${env.RISKMON_HTTP_ENABLED}"`);
    http.enabled = r.data;
  }
  if (env.RISKMON_HTTP_HOST) http.host = env.RISKMON_HTTP_HOST;
  if (env.RISKMON_HTTP_PORT !== undefined) {
    const port = /^\d{1,5}$/.test(env.RISKMON_HTTP_PORT) ? Number(env.RISKMON_HTTP_PORT) : NaN;
    if (!(port >= 0 && port <= 65_535)) {
      throw new ConfigError(`RISKMON_HTTP_PORT: expected a port number 0–65535 (0 = any free port), got "${env.RISKMON_HTTP_PORT}"`);
    }
    http.port = port;
  }
  return Object.keys(http).length ? { http } : {};
}

function dashboardCredentialsFrom(env: NodeJS.ProcessEnv): DashboardCredentials | undefined {
  const user = env.RISKMON_DASHBOARD_USER ?? '';
  const password = env.RISKMON_DASHBOARD_PASSWORD ?? '';
  if (!user && !password) return undefined;
  if (!user || !password) {
    throw new ConfigError('set both RISKMON_DASHBOARD_USER and RISKMON_DASHBOARD_PASSWORD (the queue dashboard login), or neither');
  }
  if (user.includes(':')) throw new ConfigError('RISKMON_DASHBOARD_USER must not contain ":" (HTTP basic auth)');
  if (password.length < 8) throw new ConfigError('RISKMON_DASHBOARD_PASSWORD must be at least 8 characters');
  return { user, password };
}

/**
 * Why a card secret is too weak for production, or undefined when it is not. Measurable criteria:
 * - a value published in this repository ({@link PUBLISHED_CARD_SECRETS}), or one that contains it;
 * - shorter than {@link CARD_SECRET_MIN_LENGTH} characters;
 * - fewer than {@link CARD_SECRET_MIN_BITS} bits by {@link estimatedBits} (32 × "a" is 0 bits, a 32-character
 *   lowercase phrase about 120; `openssl rand -base64 32` gives 44 characters and about 215, never under 190 in
 *   20,000 draws; `openssl rand -hex 32` about 245);
 * - a repetition of a shorter string ("0123456789abcdef" twice: 128 bits by the estimate, 64 in truth).
 * The reason never quotes the secret.
 */
export function cardSecretWeakness(secret: string): string | undefined {
  if (PUBLISHED_CARD_SECRETS.some((p) => secret.includes(p))) return 'is a published value (it appears in riskmon\'s repository or docs)';
  const length = [...secret].length;
  if (length < CARD_SECRET_MIN_LENGTH) return `is ${length} characters long, fewer than ${CARD_SECRET_MIN_LENGTH}`;
  const bits = estimatedBits(secret);
  if (bits < CARD_SECRET_MIN_BITS) return `has about ${Math.floor(bits)} bits of entropy (by its character frequencies), fewer than ${CARD_SECRET_MIN_BITS}`;
  if (isRepetition(secret)) return 'repeats a shorter string';
  return undefined;
}

/**
 * Why a dashboard password is too weak for production, or undefined when it is not: shorter than
 * {@link DASHBOARD_PASSWORD_MIN_LENGTH} characters, only digits, fewer than {@link DASHBOARD_PASSWORD_MIN_DISTINCT}
 * different characters, equal to the user name or containing it (a name of 3+ characters), a published value ({@link PUBLISHED_DASHBOARD_PASSWORDS}), or a
 * common word with only digits and symbols around it. The reason never quotes the password.
 */
export function dashboardPasswordWeakness({ user, password }: DashboardCredentials): string | undefined {
  const lower = password.toLowerCase();
  if (PUBLISHED_DASHBOARD_PASSWORDS.includes(lower)) return 'is a published value (it appears in riskmon\'s repository or docs)';
  const length = [...password].length;
  if (length < DASHBOARD_PASSWORD_MIN_LENGTH) return `is ${length} characters long, fewer than ${DASHBOARD_PASSWORD_MIN_LENGTH}`;
  if (/^\p{Nd}+$/u.test(password)) return 'is only digits';
  if (new Set(password).size < DASHBOARD_PASSWORD_MIN_DISTINCT) return `has fewer than ${DASHBOARD_PASSWORD_MIN_DISTINCT} different characters`;
  const userLower = user.toLowerCase();
  if (lower === userLower || (userLower.length >= 3 && lower.includes(userLower))) return 'contains RISKMON_DASHBOARD_USER';
  const letters = lower.replace(/[^\p{L}]/gu, '');
  if (COMMON_PASSWORD_WORDS.has(letters)) return 'is a common word with digits or symbols around it';
  return undefined;
}

/**
 * Bits of a string estimated from its own character frequencies: length × Shannon entropy per character
 * (−Σ p·log2 p over the characters it uses). One repeated character gives 0, a tiny alphabet little; it is an
 * estimate for catching typed or patterned values, not a proof of randomness.
 */
export function estimatedBits(value: string): number {
  const chars = [...value];
  const counts = new Map<string, number>();
  for (const c of chars) counts.set(c, (counts.get(c) ?? 0) + 1);
  let perChar = 0;
  for (const n of counts.values()) perChar -= (n / chars.length) * Math.log2(n / chars.length);
  return perChar * chars.length;
}

/** "abcabc" = "abc" twice: the string occurs inside itself doubled at an offset shorter than its length. */
function isRepetition(value: string): boolean {
  return value.length > 1 && (value + value).indexOf(value, 1) < value.length;
}

/**
 * Whether only this machine can reach an HTTP server listening on `host`: "localhost", 127.0.0.0/8, ::1 (in any
 * spelling) and IPv4-mapped 127.x (::ffff:127.0.0.1). A wildcard (0.0.0.0, ::), a LAN address or any other name is not.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/\.$/, '');
  if (h === 'localhost') return true;
  const bare = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  if (isIP(bare) === 4) return bare.split('.')[0] === '127';
  if (isIP(bare) === 6) {
    const canonical = new URL(`http://[${bare}]/`).hostname; // "[::1]", "[::ffff:7f00:1]"
    return canonical === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
  }
  return false;
}

/** Validates a namespace given on a command line, with the same message as the config. */
export function checkNamespace(name: string): string {
  const r = namespaceName.safeParse(name);
  if (!r.success) throw new ConfigError(r.error.issues[0]?.message ?? 'invalid namespace');
  return name;
}

/** Event time limits, rules, settlement and zone decide outcomes; the version changes exactly when one of them does. */
export function configVersionOf(config: RiskmonConfig): string {
  const relevant = { timezone: config.timezone, events: config.events, rules: config.rules, settlement: config.settlement };
  return 'cfg-' + createHash('sha256').update(JSON.stringify(relevant)).digest('hex').slice(0, 10);
}

export function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n');
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read configuration file ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`configuration file ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; anything else in `over` replaces. `__proto__` and friends are never copied. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') continue;
    out[k] = deepMerge(base[k], v);
  }
  return out;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
