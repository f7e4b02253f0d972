/**
 * A user's rule state, one Redis hash (Keys.ruleState) written by evaluateCharges-n.lua: each rule's fields (card
 * windows: same-card-burst.ts; day totals: user-daily-cap.ts) and the date of the last prune. This reads it for
 * tools and tests, and writes the same format where state is seeded (benchmark).
 */
import { CARD_FIELD_PREFIX, decodeWindow, encodeWindow } from './same-card-burst.ts';

export interface RuleState {
  /** Local date → fen of its charges not declined. */
  days: Map<string, number>;
  /** Card token → charge times (ms) kept in the window, in time order. */
  cards: Map<string, number[]>;
  /** Local date of the last prune (field "p"). */
  prunedOn?: string;
}

const PRUNED_ON_FIELD = 'p';

export function parseRuleState(hash: Record<string, string>): RuleState {
  const days = new Map<string, number>();
  const cards = new Map<string, number[]>();
  let prunedOn: string | undefined;
  for (const [field, value] of Object.entries(hash)) {
    if (field === PRUNED_ON_FIELD) {
      prunedOn = value;
      continue;
    }
    if (field.startsWith(CARD_FIELD_PREFIX)) {
      cards.set(field.slice(CARD_FIELD_PREFIX.length), decodeWindow(value));
      continue;
    }
    // A day's charge count ("<date>#n") of earlier versions is no state any rule reads now.
    if (/^\d{4}-\d{2}-\d{2}$/.test(field)) days.set(field, Number(value));
  }
  return { days, cards, ...(prunedOn === undefined ? {} : { prunedOn }) };
}

/** The hash fields of a rule state, as the script writes them. */
export function ruleStateFields(state: RuleState): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [date, fen] of state.days) out[date] = String(fen);
  for (const [token, times] of state.cards) out[CARD_FIELD_PREFIX + token] = encodeWindow(times);
  if (state.prunedOn !== undefined) out[PRUNED_ON_FIELD] = state.prunedOn;
  return out;
}
