/**
 * The rules, in the order they are evaluated and listed in a decision. Everything that names rules derives from
 * this list: the configuration's `rules` part (schema, defaults, checks), the decision vocabulary (RuleName),
 * the metric labels, and the README's rule table (a test compares it). A charge record names the rules a charge
 * fired by their index here (src/decisions/charge-record.ts): add a rule at the end, or the duplicates of charges
 * decided before the change name the wrong rules for retention.decisionDays.
 */
import { z } from 'zod';
import { cardBlocklisted } from './card-blocklisted.ts';
import { creditLimit } from './credit-limit.ts';
import { merchantBlocklisted } from './merchant-blocklisted.ts';
import { nightLargeAmount } from './night-large-amount.ts';
import { sameCardBurst } from './same-card-burst.ts';
import { userDailyCap } from './user-daily-cap.ts';
import { userFrozen } from './user-frozen.ts';

export const RULES = [sameCardBurst, nightLargeAmount, userDailyCap, creditLimit, merchantBlocklisted, userFrozen, cardBlocklisted] as const;

type Rule = (typeof RULES)[number];
export type RuleName = Rule['name'];
export const RULE_NAMES: readonly RuleName[] = RULES.map((r) => r.name);

type RulesShape = { [R in Rule as R['configKey']]: R['config'] };

/** The configuration's `rules` part: one object per rule, under its configKey, with its checks. */
export const rulesConfigSchema = z.strictObject(Object.fromEntries(RULES.map((r) => [r.configKey, r.config])) as unknown as RulesShape).superRefine((rules, ctx) => {
  for (const rule of RULES) {
    for (const problem of ruleProblems(rule, (rules as Record<string, unknown>)[rule.configKey])) {
      ctx.addIssue({ code: 'custom', path: [rule.configKey, ...problem.path], message: problem.message });
    }
  }
});

export type RulesConfig = z.output<typeof rulesConfigSchema>;

/** A rule's own checks of its (parsed) configuration; the rules' types differ, so the registry holds them apart. */
export function ruleProblems(rule: Rule, config: unknown): { path: string[]; message: string }[] {
  const check = rule.check as ((c: unknown) => { path: string[]; message: string }[]) | undefined;
  return check?.(config) ?? [];
}

/** Every rule's defaults, as the configuration file would write them. */
export function ruleDefaults(): Record<string, unknown> {
  return Object.fromEntries(RULES.map((r) => [r.configKey, { ...r.defaults }]));
}

/** The README's rule table for a configuration's `rules` part: `| rule | fires when | outcome |` rows. */
export function ruleTable(rules: z.output<typeof rulesConfigSchema>): string[] {
  return RULES.map((r) => `| \`${r.name}\` | ${(r.firesWhen as (c: unknown) => string)((rules as Record<string, unknown>)[r.configKey])} | ${r.outcome} |`);
}
