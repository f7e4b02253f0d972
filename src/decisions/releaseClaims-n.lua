--[[
  Gives back claims a round made after the event it stopped at (src/decisions/claims.ts): each key is deleted only
  while it still holds that event's content, so a claim another producer made since is kept.

  Input (the number of keys is the number of claims, all of one bucket):
    KEYS[i]   claim of event i          rm:<ns>:id:{<bucket>}:<eventId>
    ARGV[i]   the content event i claimed it with

  Output: how many claims were given back.
]]
local released = 0
for i = 1, #KEYS do
  if redis.call("GET", KEYS[i]) == ARGV[i] then
    redis.call("DEL", KEYS[i])
    released = released + 1
  end
end
return released
