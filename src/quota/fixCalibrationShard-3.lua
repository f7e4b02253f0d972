--[[
  Fixes one shard's accounts of calibration run D when the run first starts there: every account of the shard
  opened before R, copied from its account index, so chunk k means the same accounts in every attempt. The shard's
  counters of the run live beside them; a new attempt resets what a restart recounts (skipped, refused).

  Input:
    KEYS[1] run accounts            rm:<ns>:{s<n>}:cal:run:<D>:accounts   (zset member=userId, score=openedAt ms)
    KEYS[2] account index           rm:<ns>:{s<n>}:accounts               (zset member=userId, score=openedAt ms)
    KEYS[3] run counters            rm:<ns>:{s<n>}:cal:run:<D>            (hash)

    ARGV[1] R (ms)                  ARGV[2] attempt               ARGV[3] run record TTL (s)

  Output: the number of the shard's accounts in the run.
]]
local rcall = redis.call

local accounts
if rcall("EXISTS", KEYS[3]) == 0 then
  -- The counters hash marks the shard fixed (an empty account set leaves no key).
  accounts = rcall("ZRANGESTORE", KEYS[1], KEYS[2], "-inf", "(" .. ARGV[1], "BYSCORE")
  rcall("HSET", KEYS[3], "accounts", accounts, "attempt", ARGV[2],
    "calibrated", 0, "up", 0, "down", 0, "unchanged", 0, "warnings", 0, "skipped", 0, "refused", 0)
else
  local state = rcall("HMGET", KEYS[3], "accounts", "attempt")
  accounts = tonumber(state[1])
  if tonumber(state[2]) < tonumber(ARGV[2]) then
    rcall("HSET", KEYS[3], "attempt", ARGV[2], "skipped", 0, "refused", 0)
  end
end
rcall("EXPIRE", KEYS[1], ARGV[3])
rcall("EXPIRE", KEYS[3], ARGV[3])
return accounts
