--[[
  Records one repayment, asset snapshot or social snapshot in the user's time-ordered activity set, which the
  calibration reads by event time. Exactly once per eventId (an eventId already decided as a charge also counts
  as seen). The set's TTL is refreshed on every write; calibration prunes what earlier runs consumed.

  Input:
    KEYS[1] activity set            rm:<ns>:u:{<userId>}:repay|assets|social   (zset score=event time ms)
    KEYS[2] applied-event marker    rm:<ns>:ev:<eventId>                        (string)
    KEYS[3] charge decision         rm:<ns>:dec:<eventId>                       (string, read only)

    ARGV[1] eventId                 ARGV[2] event type            ARGV[3] score (event time, ms)
    ARGV[4] member (JSON array starting with the eventId)        ARGV[5] marker TTL (s)
    ARGV[6] activity set TTL (s)

  Output:
    { 1 } recorded; { 0 } eventId already applied.
]]
local rcall = redis.call

if rcall("EXISTS", KEYS[2], KEYS[3]) > 0 then
  return { 0 }
end
rcall("ZADD", KEYS[1], ARGV[3], ARGV[4])
rcall("EXPIRE", KEYS[1], ARGV[6])
rcall("SET", KEYS[2], ARGV[2], "EX", ARGV[5])
return { 1 }
