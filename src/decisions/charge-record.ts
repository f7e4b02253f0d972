/**
 * The charge record: what Redis keeps of a decided charge once its whole decision has gone to the archive, one
 * field of its user's `charges` hash (src/redis/keys.ts), for retention.decisionDays from its local date. It is the
 * charge's dedupe (a redelivered or resent charge gets this back, never a second decision), what a refund checks
 * (src/quota/applyRefund-5.lua) and what tells an eventId decided as a charge. The rules script writes it
 * (evaluateCharges-n.lua); this module reads it.
 *
 * Format, one short line (a user's hash of them stays a compact listpack):
 *   "<outcome><amount> <settleAt> <localDate> <flags> <rules>"
 *   outcome    a (approve), r (review), d (decline)
 *   amount     fen, decimal
 *   settleAt   the settlement instant in ms, base 36, or "-" when declined
 *   localDate  the charge's local date, YYYYMMDD
 *   flags      what the rules' fragments add (@record), "-" for none: "c" when credit_limit counted the charge
 *              against the user's credit account
 *   rules      the rules it fired, in rule order, each as its index in the registry (base 36), "-" for none
 */
import type { Outcome } from './decision.ts';
import { RULE_NAMES, type RuleName } from '../rules/registry.ts';

export interface ChargeRecord {
  outcome: Outcome;
  /** fen */
  amount: number;
  /** ISO instant, or null when declined. */
  settleAt: string | null;
  /** YYYY-MM-DD */
  localDate: string;
  /** credit_limit counted the charge against the user's credit account. */
  creditCounted: boolean;
  /** Every rule it fired, in rule order. */
  rules: RuleName[];
}

const OUTCOMES: Record<string, Outcome> = { a: 'approve', r: 'review', d: 'decline' };
const RECORD = /^([ard])(\d+) (-|[0-9a-z]+) (\d{4})(\d{2})(\d{2}) (\S+) (-|[0-9a-z]+)$/;

export function parseChargeRecord(text: string): ChargeRecord {
  const m = RECORD.exec(text);
  if (!m) throw new Error(`not a charge record: ${JSON.stringify(text.slice(0, 80))}`);
  const [, o, amount, settle, y, mo, d, flags, codes] = m;
  const rules = codes === '-' ? [] : [...codes!].map((c) => RULE_NAMES[parseInt(c, 36)] ?? fail(`rule code ${c}`));
  return {
    outcome: OUTCOMES[o!]!,
    amount: Number(amount),
    settleAt: settle === '-' ? null : new Date(parseInt(settle!, 36)).toISOString(),
    localDate: `${y}-${mo}-${d}`,
    creditCounted: flags!.includes('c'),
    rules,
  };

  function fail(what: string): never {
    throw new Error(`not a charge record (unknown ${what}): ${JSON.stringify(text.slice(0, 80))}`);
  }
}
