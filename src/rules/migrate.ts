/**
 * Moves rule state written before the rule-state hash (`:days` hashes and `:card:<token>` sorted sets) into it.
 * Run it with the risk workers stopped, before starting the new ones (`npm run migrate-rule-state`); it is
 * idempotent per user, so an interrupted run can simply be run again.
 */
import type { Redis } from 'ioredis';
import type { RiskmonConfig } from '../config.ts';
import type { Keys } from '../redis/keys.ts';
import { defineScript, loadScript } from '../redis/scripts.ts';
import { PRUNE_EVERY_DAYS } from './charge-rules.ts';

export const migrateRuleStateScript = loadScript(new URL('./migrateRuleState-n.lua', import.meta.url));

export interface MigrationResult {
  users: number;
  days: number;
  cards: number;
}

/** Old keys: rm:<ns>:u:{<userId>}:days and rm:<ns>:u:{<userId>}:card:<token>. */
const OLD_KEY = /^u:\{(.+)\}:(?:days|card:([A-Za-z0-9_-]+))$/;

export async function migrateRuleState(redis: Redis, keys: Keys, config: RiskmonConfig, onProgress?: (r: MigrationResult) => void): Promise<MigrationResult> {
  const migrate = defineScript(redis, migrateRuleStateScript);
  const ttl = (config.retention.dayTotalsDays + PRUNE_EVERY_DAYS) * 86_400;
  const result: MigrationResult = { users: 0, days: 0, cards: 0 };
  // Collect first (SCAN may return a key twice; deleting while scanning is allowed but would be harder to follow).
  const users = new Map<string, Set<string>>();
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${keys.base}:u:*`, 'COUNT', 1_000);
    cursor = next;
    for (const key of found) {
      const m = OLD_KEY.exec(key.slice(keys.base.length + 1));
      if (!m) continue;
      const tokens = users.get(m[1]!) ?? new Set<string>();
      if (m[2] !== undefined) tokens.add(m[2]);
      users.set(m[1]!, tokens);
    }
  } while (cursor !== '0');

  for (const [userId, tokens] of users) {
    const cards = [...tokens];
    const oldDays = `${keys.base}:u:{${userId}}:days`;
    const cardKeys = cards.map((t) => `${keys.base}:u:{${userId}}:card:${t}`);
    const [days, moved] = (await migrate(redis, [keys.ruleState(userId), oldDays, ...cardKeys], [ttl, ...cards])) as [number, number];
    result.users++;
    result.days += days;
    result.cards += moved;
    if (result.users % 10_000 === 0) onProgress?.(result);
  }
  return result;
}
