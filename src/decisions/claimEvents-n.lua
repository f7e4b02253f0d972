--[[
  Claims the eventIds of one round of events, in order (src/decisions/claims.ts): an id not yet claimed takes the
  event's digest; a claimed one answers the digest that holds it. One call per round instead of commands per event:
  a round of hundreds of events costs one command on both sides of the connection.

  A claim is a field of a small hash of its bucket, generation and part: looked for in the generation of the
  event's clock, the one before and the one after (clocks need not rise: an event may come with a clock earlier than
  the one its id was claimed with), written into the first, whose hash expires two windows after its creation.

  Input (three keys per event, all of one bucket):
    KEYS[3i-2] claims of event i's generation        rm:<ns>:id:{<bucket>}:<generation>:<part>   (hash field -> digest)
    KEYS[3i-1] the generation before's               rm:<ns>:id:{<bucket>}:<generation - 1>:<part>
    KEYS[3i]   the generation after's                rm:<ns>:id:{<bucket>}:<generation + 1>:<part>
    ARGV[1]    a generation hash's TTL (s), from its creation
    ARGV[2]    stop marks: character i is "1" when a conflict at event i must end the call ("" for none)
    ARGV[1+2i] event i's field (its eventId's hash)    ARGV[2+2i] its digest

  Output, one per event, in order: 0 when this event claimed its id, else the digest that holds it (its own when an
  earlier event of this call claimed the id with the same content). At a conflict on a stop mark the output ends
  with that event's answer: the events after it claimed nothing.
]]
local rcall = redis.call
local ttl = ARGV[1]
local stops = ARGV[2]
local out = {}
local expiring = {}
for i = 1, #KEYS / 3 do
  local current = KEYS[3 * i - 2]
  local field, digest = ARGV[1 + 2 * i], ARGV[2 + 2 * i]
  local held = rcall("HGET", current, field) or rcall("HGET", KEYS[3 * i - 1], field) or rcall("HGET", KEYS[3 * i], field)
  if held then
    out[i] = held
    if held ~= digest and string.byte(stops, i) == 49 then return out end
  else
    rcall("HSET", current, field, digest)
    if not expiring[current] then
      -- NX: set once, when the hash is created; later writes do not push it out.
      rcall("EXPIRE", current, ttl, "NX")
      expiring[current] = true
    end
    out[i] = 0
  end
end
return out
