/**
 * What a rule is (issue 12, step one): a module that declares its name, the outcome it forces, its configuration
 * (schema and defaults, under `rules.<configKey>`), the checks that configuration needs, and what it fires on, in a
 * sentence. The registry (registry.ts) lists the rules; the configuration schema, the decision vocabulary, the
 * metric labels and the README's rule table derive from it. The evaluation itself is still one block per rule in
 * evaluateCharges-n.lua.
 */
import type { z } from 'zod';

export interface RuleModule<Name extends string = string, Key extends string = string, Schema extends z.ZodObject = z.ZodObject> {
  /** As decisions, metrics and dashboards show it: snake_case. */
  name: Name;
  /** Its configuration's key under `rules` in the configuration: camelCase. */
  configKey: Key;
  /** What it forces when it fires (decline wins over review, review over approve); the script applies it. */
  outcome: 'review' | 'decline';
  config: Schema;
  defaults: z.input<Schema>;
  /** When it fires, for a configuration (the README's rule table shows it for the defaults). */
  firesWhen(config: z.output<Schema>): string;
  /** What is wrong with a configuration beyond its fields' own bounds (paths relative to the rule's). */
  check?(config: z.output<Schema>): { path: string[]; message: string }[];
}

/** Keeps a module's literal name and key in its type, so the registry can derive typed configuration from it. */
export function defineRule<const Name extends string, const Key extends string, Schema extends z.ZodObject>(rule: RuleModule<Name, Key, Schema>): RuleModule<Name, Key, Schema> {
  return rule;
}
