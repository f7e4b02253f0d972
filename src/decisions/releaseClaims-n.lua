--[[
  Gives back claims a round made after the event it stopped at (src/decisions/claims.ts): each is deleted only while
  it still holds that event's digest, so a claim another producer made since is kept.

  Input (the number of keys is the number of claims, all of one bucket):
    KEYS[i]      the hash event i claimed in         rm:<ns>:id:{<bucket>}:<generation>:<part>
    ARGV[2i-1]   event i's field                     ARGV[2i] the digest it claimed with

  Output: how many claims were given back.
]]
local released = 0
for i = 1, #KEYS do
  if redis.call("HGET", KEYS[i], ARGV[2 * i - 1]) == ARGV[2 * i] then
    redis.call("HDEL", KEYS[i], ARGV[2 * i - 1])
    released = released + 1
  end
end
return released
