/**
 * Rules configuration published without a restart (`npm run rules`). A candidate is a configuration file of which
 * only the `rules` part may differ from the running configuration (the zone, shards and retention need a restart);
 * it is loaded over the running configuration exactly as a file would be, validated (the schema, each rule's checks,
 * and each rule's live bounds: what the state it keeps can honour), and stored complete as the next version. Risk
 * workers look for a new live version before a batch, at most once a second, so they switch within seconds and never
 * inside a batch; every decision records the version that decided it.
 */

import { auditText } from '../audit-text.ts';
import { ConfigError, deepMerge, formatIssues, loadSettings, type Settings } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Keys } from '../redis/keys.ts';
import { defineScript, loadScript } from '../redis/scripts.ts';
import type { ChargeRules } from './charge-rules.ts';
import { RULES, rulesConfigSchema, type RulesConfig } from './registry.ts';
import type { RuleModule } from './rule.ts';
import type { RedisClient } from '../redis/client.ts';

export const publishRulesScript = loadScript(new URL('./publishRules-3.lua', import.meta.url));

/** A published version as stored. */
export interface PublishedRules {
  version: number;
  /** The complete `rules` part, as written (before parsing). */
  rules: unknown;
  by: string;
  note?: string;
  publishedAt: string;
  /** Published and not yet approved: not live, and not to be made live but by a second admin's approval. */
  pendingApproval?: true;
  /** The second admin who made it live, and when. */
  approvedBy?: string;
  approvedAt?: string;
  /** The candidate file it came from. */
  source?: string;
  /**
   * The configuration (configVersion) its rules were completed from: only processes running that configuration
   * use it, so a version never brings another configuration file's rules along.
   */
  configVersion: string;
}

export interface RulesChange {
  at: string;
  action: 'publish' | 'approve' | 'rollback';
  version: number;
  /** The version live before (0: the configuration file). */
  previous: number;
  by: string;
  note?: string;
}

export type RulesCheck = { ok: true; rules: RulesConfig; rulesInput: unknown } | { ok: false; problems: string[] };

/** The version text decisions record: the configuration's, and the published rules version. */
export function publishedVersionLabel(started: Settings, version: number): string {
  return `${started.configVersion}+rules-v${version}`;
}

/** Whether workers started with `started` can decide with these rules (as written): schema, checks, live bounds. */
export function checkRulesInput(started: Settings, rulesInput: unknown): RulesCheck {
  const parsed = rulesConfigSchema.safeParse(rulesInput);
  if (!parsed.success) return { ok: false, problems: formatIssues(parsed.error).split('\n').map((l) => `rules.${l.trim()}`) };
  const problems: string[] = [];
  for (const rule of RULES as readonly RuleModule[]) {
    const of = (rules: RulesConfig) => (rules as Record<string, unknown>)[rule.configKey] as never;
    for (const p of rule.liveCheck?.(of(started.config.rules), of(parsed.data)) ?? []) problems.push(`rules.${[rule.configKey, ...p.path].join('.')}: ${p.message}`);
  }
  return problems.length ? { ok: false, problems } : { ok: true, rules: parsed.data, rulesInput };
}

/**
 * A candidate configuration (parsed JSON), loaded over the running one as a file would be, its rules over `baseRules`
 * (the live version's) when given, then checked: a candidate changes only what it names.
 */
export function checkCandidate(started: Settings, candidate: unknown, baseRules?: unknown): RulesCheck {
  if (typeof candidate !== 'object' || candidate === null || Array.isArray(candidate)) {
    return { ok: false, problems: ['a candidate is a configuration object, e.g. {"rules": {"sameCardBurst": {"minCount": 4}}}'] };
  }
  let loaded: Settings;
  try {
    const base = baseRules === undefined ? {} : { rules: baseRules };
    loaded = loadSettings({ ...started.loadedWith, overrides: deepMerge(deepMerge(started.loadedWith.overrides ?? {}, base), candidate) });
  } catch (e) {
    if (e instanceof ConfigError) return { ok: false, problems: e.message.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('invalid configuration')) };
    throw e;
  }
  const config = loaded.config as unknown as Record<string, unknown>;
  const running = started.config as unknown as Record<string, unknown>;
  const outside = Object.keys(candidate).filter((k) => k !== 'rules' && JSON.stringify(config[k]) !== JSON.stringify(running[k]));
  if (outside.length) {
    return { ok: false, problems: outside.map((k) => `${k}: differs from the running configuration and needs a restart (only "rules" is published live)`) };
  }
  return checkRulesInput(started, loaded.rulesInput);
}

/** Why a process running `started` must not use a version completed from another configuration, or null. */
export function lineageProblem(started: Settings, version: Pick<PublishedRules, 'version' | 'configVersion'>): string | null {
  if (version.configVersion === started.configVersion) return null;
  return (
    `version ${version.version} was published over configuration ${version.configVersion}, and this process runs ${started.configVersion} ` +
    '(another configuration file, or a release with other rule defaults): run npm run rules with the workers\' configuration (RISKMON_CONFIG) and publish again'
  );
}

export class RulesRefusedError extends Error {
  constructor(readonly problems: string[]) {
    super(`the candidate is refused, nothing changed:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

const BY = auditText('--by', 64);
const NOTE = auditText('--note', 500);

/** Who and why, checked before anything is recorded. */
function actor(o: { by: string; note?: string }): { by: string; note?: string } {
  const by = BY.safeParse(o.by);
  const note = o.note === undefined ? undefined : NOTE.safeParse(o.note);
  const problems = [...(by.success ? [] : [by.error.issues[0]!.message]), ...(note && !note.success ? [note.error.issues[0]!.message] : [])];
  if (problems.length) throw new RulesRefusedError(problems);
  return { by: by.data!, ...(note?.data ? { note: note.data } : {}) };
}

export class RulesPublisher {
  private readonly run: ReturnType<typeof defineScript>;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly started: Settings,
  ) {
    this.run = defineScript(redis, publishRulesScript);
  }

  /**
   * Validates a candidate and records it as the next version, pending approval: it takes effect once a second
   * admin approves it (`approve`). Refused (RulesRefusedError, nothing changed) when it does not validate.
   */
  async publish(candidate: unknown, given: { by: string; note?: string; source?: string }, nowMs = Date.now()): Promise<PublishedRules> {
    const o = { ...given, ...actor(given) };
    const checked = await this.check(candidate);
    if (!checked.ok) throw new RulesRefusedError(checked.problems);
    const record: Omit<PublishedRules, 'version'> = {
      configVersion: this.started.configVersion,
      rules: checked.rulesInput,
      by: o.by,
      ...(o.note ? { note: o.note } : {}),
      publishedAt: new Date(nowMs).toISOString(),
      pendingApproval: true,
      ...(o.source ? { source: o.source } : {}),
    };
    const [version] = (await this.change('publish', JSON.stringify(record), { action: 'publish', by: o.by, ...(o.note ? { note: o.note } : {}) })) as [number, number];
    return { version, ...record };
  }

  /** What publishing the candidate would give: its complete rules over the live version's, or why it is refused. */
  async check(candidate: unknown): Promise<RulesCheck> {
    const live = await this.live();
    const lineage = live && lineageProblem(this.started, live);
    if (lineage) return { ok: false, problems: [`the live ${lineage}`] };
    return checkCandidate(this.started, candidate, live?.rules);
  }

  /**
   * Makes a version pending approval live, approved by `by`, who must not be its publisher (checked again: the
   * running configuration may have changed since it was published).
   */
  async approve(version: number, given: { by: string; note?: string }, nowMs = Date.now()): Promise<{ version: number; previous: number }> {
    const o = actor(given);
    const target = await this.liveable(version);
    const { version: _v, pendingApproval: _p, ...stored } = target;
    const approved = JSON.stringify({ ...stored, approvedBy: o.by, approvedAt: new Date(nowMs).toISOString() });
    return this.changeOrRefuse('approve', String(version), { action: 'approve', by: o.by, ...(o.note ? { note: o.note } : {}) }, [o.by, approved]);
  }

  /** Makes an earlier approved version live again (checked again: the running configuration may have changed since). */
  async rollback(version: number, given: { by: string; note?: string }): Promise<{ version: number; previous: number }> {
    const o = actor(given);
    await this.liveable(version);
    return this.changeOrRefuse('rollback', String(version), { action: 'rollback', by: o.by, ...(o.note ? { note: o.note } : {}) });
  }

  /** A version this process may make live: it exists, was completed from this configuration, and validates here. */
  private async liveable(version: number): Promise<PublishedRules> {
    const target = await this.version(version);
    if (!target) throw new RulesRefusedError([`no published version ${version} (npm run rules -- history lists them)`]);
    const lineage = lineageProblem(this.started, target);
    if (lineage) throw new RulesRefusedError([lineage]);
    const checked = checkRulesInput(this.started, target.rules);
    if (!checked.ok) throw new RulesRefusedError(checked.problems);
    return target;
  }

  private async changeOrRefuse(action: 'approve' | 'rollback', arg: string, record: Omit<RulesChange, 'at' | 'version' | 'previous'>, extra: string[] = []) {
    try {
      const [live, previous] = (await this.change(action, arg, record, extra)) as [number, number];
      return { version: live, previous };
    } catch (e) {
      if (/^(LIVE|NOVERSION|APPROVED|SAMEADMIN|PENDING) /.test((e as Error).message)) throw new RulesRefusedError([(e as Error).message.replace(/^\w+ /, '')]);
      throw e;
    }
  }

  /** Versions published and awaiting a second admin's approval, oldest first. */
  async pending(): Promise<PublishedRules[]> {
    const all = await this.redis.hgetall(this.keys.rulesVersions);
    return Object.entries(all)
      .map(([v, json]) => ({ version: Number(v), ...(JSON.parse(json) as Omit<PublishedRules, 'version'>) }))
      .filter((r) => r.pendingApproval)
      .sort((a, b) => a.version - b.version);
  }

  /** The live version, or null while the workers decide with their configuration file. */
  async live(): Promise<PublishedRules | null> {
    const v = await this.redis.get(this.keys.rulesLive);
    return v === null ? null : this.version(Number(v));
  }

  async version(version: number): Promise<PublishedRules | null> {
    const json = await this.redis.hget(this.keys.rulesVersions, String(version));
    return json === null ? null : { version, ...(JSON.parse(json) as Omit<PublishedRules, 'version'>) };
  }

  /** Every publish and rollback, oldest first. */
  async history(): Promise<RulesChange[]> {
    const rows = await this.redis.xrange(this.keys.rulesHistory, '-', '+');
    return rows.map(([id, fields]) => ({ at: new Date(Number(id.split('-')[0])).toISOString(), ...(JSON.parse(fields[1]!) as Omit<RulesChange, 'at'>) }));
  }

  private change(action: 'publish' | 'approve' | 'rollback', arg: string, record: Omit<RulesChange, 'at' | 'version' | 'previous'>, extra: string[] = []) {
    return this.run(this.redis, [this.keys.rulesVersions, this.keys.rulesLive, this.keys.rulesHistory], [action, arg, JSON.stringify(record), ...extra]);
  }
}

/** How often a worker looks for a new live version, at most (before a batch). */
export const RULES_CHECK_MS = 1_000;

/**
 * A worker's side: before a batch, at most every checkEveryMs, reads the live version and switches its ChargeRules
 * to it. A version it cannot honour (checked against the configuration it started with) is refused: logged,
 * counted, and the worker keeps deciding with the rules it has.
 */
export class LiveRules {
  private checkedAt = -Infinity;
  private inUse = 0;
  private refused = 0;
  /** The check under way: concurrent batches (one per shard) wait for it rather than start with the old rules. */
  private checking: Promise<void> | undefined;

  constructor(
    private readonly deps: { redis: RedisClient; keys: Keys; started: Settings; rules: ChargeRules; metrics: Metrics; logger: Logger; checkEveryMs?: number },
  ) {}

  /** The published version in use (0: the configuration file's rules). */
  get version(): number {
    return this.inUse;
  }

  refresh(nowMs = Date.now()): Promise<void> {
    if (this.checking) return this.checking;
    if (nowMs - this.checkedAt < (this.deps.checkEveryMs ?? RULES_CHECK_MS)) return Promise.resolve();
    this.checkedAt = nowMs;
    this.checking = this.check()
      .catch((e: unknown) => {
        // Not checked: the next batch checks again (this one fails and is retried).
        this.checkedAt = -Infinity;
        throw e;
      })
      .finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async check(): Promise<void> {
    const { redis, keys, started, rules, metrics, logger } = this.deps;
    const live = await redis.get(keys.rulesLive);
    const version = live === null ? 0 : Number(live);
    if (version === this.inUse || version === this.refused) return;
    const json = version === 0 ? null : await redis.hget(keys.rulesVersions, String(version));
    if (json === null) {
      logger.error({ version }, 'the live rules version has no record: keeping the current rules');
      this.refused = version;
      metrics.rulesRefused.inc();
      return;
    }
    const record = { version, ...(JSON.parse(json) as Omit<PublishedRules, 'version'>) };
    const lineage = lineageProblem(started, record);
    const checked: RulesCheck = lineage ? { ok: false, problems: [lineage] } : checkRulesInput(started, record.rules);
    if (!checked.ok) {
      logger.error({ version, problems: checked.problems }, 'published rules refused: this worker keeps its current rules (restart it with a configuration that allows them)');
      this.refused = version;
      metrics.rulesRefused.inc();
      return;
    }
    rules.use(rules.compile(checked.rules, publishedVersionLabel(started, version)));
    logger.info({ version, previous: this.inUse }, 'switched to published rules');
    this.inUse = version;
    metrics.rulesVersion.set(version);
  }
}
