/**
 * What a rule is: a module that declares its name, the outcome it forces, its configuration (schema and defaults,
 * under `rules.<configKey>`), the checks that configuration needs, and what it fires on, in a sentence. The registry
 * (registry.ts) lists the rules; the configuration schema, the decision vocabulary, the metric labels, the README's
 * rule table and the rules script derive from it.
 *
 * A rule is decided in one of two places:
 * - before the script call (`decide`), when it needs nothing but the charge and its configuration (the night
 *   window): plain TypeScript, its reason passed into the call;
 * - inside the one atomic script call (`lua`), when it reads state kept in Redis (card windows, day totals, lists):
 *   a Lua fragment that script.ts splices into evaluateCharges-n.lua (its sections are described there).
 */
import type { z } from 'zod';
import type { Keys } from '../redis/keys.ts';

/** What a rule decided before the call sees of a charge: validated fields and its local facts in the zone. */
export interface ChargeFacts {
  amount: number;
  merchantId: string;
  occurredAtMs: number;
  /** Local time "HH:MM:SS" and second of day in the configured zone. */
  localTime: string;
  secondOfDay: number;
}

/** What a rule's script configuration may depend on besides its own configuration. */
export interface ScriptEnv {
  /** How far ahead of the producer's clock a charge may be dated (events.maxFutureSkewSeconds). */
  maxFutureSkewSeconds: number;
  /**
   * What an effective credit quota needs of the calibration configuration: bands, rounding, holiday uplifts
   * (spelled out: the configuration's type derives from the rules, so it cannot be named here).
   */
  calibration: {
    bands: Record<'invited' | 'applied', { minFen: number; maxFen: number }>;
    roundDownToFen: number;
    holidayUplifts: readonly { name: string; from: string; to: string; percent: number }[];
  };
}

/** A field a rule keeps in the user's rule-state hash, as docs/architecture.md's key table lists it. */
export interface StateField {
  field: string;
  value: string;
}

export interface RuleModule<Name extends string = string, Key extends string = string, Schema extends z.ZodObject = z.ZodObject> {
  /** As decisions, metrics and dashboards show it: snake_case. */
  name: Name;
  /** Its configuration's key under `rules` in the configuration: camelCase. */
  configKey: Key;
  /** What it forces when it fires (decline wins over review, review over approve). */
  outcome: 'review' | 'decline';
  config: Schema;
  defaults: z.input<Schema>;
  /** When it fires, for a configuration (the README's rule table shows it for the defaults). */
  firesWhen(config: z.output<Schema>): string;
  /** What is wrong with a configuration beyond its fields' own bounds (paths relative to the rule's). */
  check?(config: z.output<Schema>): { path: string[]; message: string }[];
  /**
   * What a configuration needs that cannot change while workers run (the state kept for it would not fit), for a
   * published one: the live configuration and the candidate. Paths relative to the rule's.
   */
  liveCheck?(live: z.output<Schema>, candidate: z.output<Schema>): { path: string[]; message: string }[];
  /** Decided before the call: the reason it fires for, or null. */
  decide?(charge: ChargeFacts, config: z.output<Schema>): string | null;
  /** Decided in the call: its Lua fragment (see evaluateCharges-n.lua for the sections a fragment may have). */
  lua?: URL;
  /**
   * What its fragment reads as `cfg.rules.<configKey>`: numbers and texts, encoded once per configuration version.
   * `started` is its configuration when the workers started (what the state it keeps is sized for).
   */
  scriptConfig?(config: z.output<Schema>, started: z.output<Schema>, env: ScriptEnv): Record<string, unknown>;
  /**
   * Keys its fragment reads besides the user's rule state, once per call, by the names its `@key` lines use: keys
   * of `shard`, the call's (every charge of a call is of one shard, and every key of the call in its slot).
   */
  keys?(keys: Keys, shard: number): Record<string, string>;
  /**
   * Keys of the charge's user its fragment reads, per charge, by the names its `@userkey` lines use (all in the
   * user's shard, like the rule state).
   */
  userKeys?(keys: Keys): Record<string, (userId: string) => string>;
  /** The fields it keeps in the user's rule-state hash. */
  state?: StateField[];
}

/** Keeps a module's literal name and key in its type, so the registry can derive typed configuration from it. */
export function defineRule<const Name extends string, const Key extends string, Schema extends z.ZodObject>(rule: RuleModule<Name, Key, Schema>): RuleModule<Name, Key, Schema> {
  return rule;
}
