--[[
  Claims the eventIds of one round of events, in order (src/decisions/claims.ts): an id not yet claimed takes the
  event's canonical content; a claimed one answers the content that holds it. One call per round instead of a
  command per event: a round of hundreds of events costs one command on both sides of the connection.

  Input (the number of keys is the number of events):
    KEYS[i]   claim of event i          rm:<ns>:id:{<bucket>}:<eventId>     (string, the canonical content)
    ARGV[1]   claim TTL (s)
    ARGV[1+i] canonical content of event i

  Output, one per event, in order: 0 when this event claimed its id (or an earlier event of this call with the same
  content did), else the content that holds the id.
]]
local ttl = ARGV[1]
local out = {}
for i = 1, #KEYS do
  local held = redis.call("SET", KEYS[i], ARGV[i + 1], "EX", ttl, "NX", "GET")
  if held then out[i] = held else out[i] = 0 end
end
return out
