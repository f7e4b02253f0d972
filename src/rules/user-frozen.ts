/**
 * user_frozen: the charge's user has an entry on the frozen-user list at its occurredAt (账户冻结 / 异常账户). The
 * list is kept by src/lists/lists.ts (`npm run lists -- add user …`) and read in the same script call that decides,
 * so the live service decides exactly as a replay with the same list would.
 */
import { z } from 'zod';
import { defineRule } from './rule.ts';

export const userFrozen = defineRule({
  name: 'user_frozen',
  configKey: 'userFrozen',
  outcome: 'decline',
  config: z.strictObject({}),
  defaults: {},
  firesWhen: () => "the charge's user is on the frozen-user list at its `occurredAt` (`npm run lists`)",
  lua: new URL('./user-frozen.lua', import.meta.url),
  keys: (keys, shard) => ({ userList: keys.listCopy(shard, 'user') }),
});
