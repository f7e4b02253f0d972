/**
 * card_blocklisted: the charge's card has an entry on the card blocklist at its occurredAt, whichever user
 * presents it. The list is kept by src/lists/lists.ts (`npm run lists -- add card …`) under the card's token, the
 * keyed hash the producer puts on every charge, so the card number never reaches Redis; the reason names the card
 * by its last four only.
 */
import { z } from 'zod';
import { defineRule } from './rule.ts';

export const cardBlocklisted = defineRule({
  name: 'card_blocklisted',
  configKey: 'cardBlocklisted',
  outcome: 'decline',
  config: z.strictObject({}),
  defaults: {},
  firesWhen: () => "the charge's card is on the card blocklist at its `occurredAt`, whoever uses it (`npm run lists`)",
  lua: new URL('./card-blocklisted.lua', import.meta.url),
  keys: (keys, shard) => ({ cardList: keys.listCopy(shard, 'card') }),
});
