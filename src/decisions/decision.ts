/** The decision record: what every charge gets, stored by eventId and appended to the decision stream. */
import type { RuleName } from '../rules/registry.ts';

export type Outcome = 'approve' | 'review' | 'decline';

export interface Decision {
  eventId: string;
  userId: string;
  merchantId: string;
  /** fen */
  amount: number;
  /** "****1234" at most. */
  card: string;
  occurredAt: string;
  outcome: Outcome;
  /** Every rule that fired, in rule order, even when another decided the outcome. */
  rules: RuleName[];
  /** One readable sentence per fired rule, with what it observed. */
  reasons: string[];
  observed: {
    /** Charges on the card in the burst window, this one included. */
    cardCount: number;
    /** The user's local-day total (fen, not declined) before this charge. */
    dayTotalBefore: number;
    /** The available credit before this charge (fen); null when credit_limit did not check it (no account open then). */
    creditAvailable: number | null;
    localDate: string;
    localTime: string;
  };
  /** ISO instant, or null when declined. */
  settleAt: string | null;
  decidedAt: string;
  configVersion: string;
}

export function parseDecision(json: string): Decision {
  return JSON.parse(json) as Decision;
}
