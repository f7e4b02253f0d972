/**
 * merchant_blocklisted: the charge's merchant is on the admission list at its occurredAt (seed 002: 准入筛查，过滤黑名单
 * 商户). The list is kept by src/lists/lists.ts (`npm run lists`) and read in the same script call that
 * decides, so the live service decides exactly as a replay with the same list would.
 */
import { z } from 'zod';
import { defineRule } from './rule.ts';

export const merchantBlocklisted = defineRule({
  name: 'merchant_blocklisted',
  configKey: 'merchantBlocklisted',
  outcome: 'decline',
  config: z.strictObject({}),
  defaults: {},
  firesWhen: () => "the charge's merchant is on the admission list at its `occurredAt` (`npm run lists`)",
  lua: new URL('./merchant-blocklisted.lua', import.meta.url),
  keys: (keys, shard) => ({ merchantList: keys.listCopy(shard, 'merchant') }),
});
