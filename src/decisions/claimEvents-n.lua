--[[
  Claims the eventIds of one round of events, in order (src/decisions/claims.ts): an id not yet claimed takes the
  event's canonical content; a claimed one answers the content that holds it. One call per round instead of a
  command per event: a round of hundreds of events costs one command on both sides of the connection.

  Input (the number of keys is the number of events):
    KEYS[i]   claim of event i          rm:<ns>:id:{<bucket>}:<eventId>     (string, the canonical content)
    ARGV[1]   claim TTL (s)
    ARGV[2]   stop marks: character i is "1" when a conflict at event i must end the call ("" for none)
    ARGV[2+i] canonical content of event i

  Output, one per event, in order: 0 when this event claimed its id, else the content that holds it (its own
  content when an earlier event of this call claimed the id with the same content). At a conflict on a stop mark
  the output ends with that event's answer: the events after it claimed nothing.
]]
local ttl = ARGV[1]
local stops = ARGV[2]
local out = {}
for i = 1, #KEYS do
  local content = ARGV[i + 2]
  local held = redis.call("SET", KEYS[i], content, "EX", ttl, "NX", "GET")
  if held then
    out[i] = held
    if held ~= content and string.byte(stops, i) == 49 then return out end
  else
    out[i] = 0
  end
end
return out
