--[[
  Records one finished chunk of a run's current attempt; the chunk that completes the set marks the run done
  (exactly once per attempt, so the caller can count completed runs).

  Input:
    KEYS[1] run                     rm:<ns>:{cal}:run:<D>             (hash)
    KEYS[2] chunks done             rm:<ns>:{cal}:run:<D>:done         (set of chunk indexes)

    ARGV[1] chunk index             ARGV[2] now (ISO)             ARGV[3] run record TTL (s)

  Output:
    { 1 } this chunk completed the run; { 0 } recorded (or already recorded); { -1 } no such run.
]]
local rcall = redis.call

local run = rcall("HMGET", KEYS[1], "chunks", "status")
if not run[1] then
  return { -1 }
end
rcall("SADD", KEYS[2], ARGV[1])
rcall("EXPIRE", KEYS[2], ARGV[3])
if run[2] == "running" and rcall("SCARD", KEYS[2]) >= tonumber(run[1]) then
  rcall("HSET", KEYS[1], "status", "done", "finishedAt", ARGV[2])
  return { 1 }
end
return { 0 }
