/**
 * Loads configuration: config/default.json, then an optional JSON file (RISKMON_CONFIG or --config),
 * then a few environment variables. Validated with zod once; the result is frozen.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { configSchema, namespaceName, type RiskmonConfig } from '../config/schema.ts';

export type { RiskmonConfig } from '../config/schema.ts';

export const DEVELOPMENT_CARD_SECRET = 'riskmon-development-card-secret-do-not-use-in-production';

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
  redisUrl: string | undefined;
  /** Key for the card HMAC; never logged. */
  cardSecret: string;
  /** Login for /admin/queues (RISKMON_DASHBOARD_USER / RISKMON_DASHBOARD_PASSWORD); never logged. */
  dashboardCredentials: DashboardCredentials | undefined;
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
  let raw = readJson(DEFAULT_CONFIG_PATH);
  const file = options.configFile ?? env.RISKMON_CONFIG;
  if (file) raw = deepMerge(raw, readJson(resolve(file)));
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

  const cardSecret = env.RISKMON_CARD_SECRET ?? DEVELOPMENT_CARD_SECRET;
  if (config.environment === 'production' && cardSecret === DEVELOPMENT_CARD_SECRET) {
    throw new ConfigError(
      `RISKMON_CARD_SECRET ${env.RISKMON_CARD_SECRET ? 'is the development default' : 'is not set'}: production refuses the development card-hashing secret (set a random 32+ byte value)`,
    );
  }
  if (cardSecret.length < 16) throw new ConfigError('RISKMON_CARD_SECRET must be at least 16 characters');

  const dashboardCredentials = dashboardCredentialsFrom(env);
  if (config.environment === 'production' && config.http.dashboard.auth === 'disabled') {
    throw new ConfigError('http.dashboard.auth "disabled" is for a developer\'s own machine: production requires "basic"');
  }

  return { config, configVersion: configVersionOf(config), redisUrl: env.REDIS_URL || undefined, cardSecret, dashboardCredentials };
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
function deepMerge(base: unknown, over: unknown): unknown {
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
