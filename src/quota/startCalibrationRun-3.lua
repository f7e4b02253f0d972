--[[
  Starts (or restarts) calibration run D: the run's record, in the calibration slot. Each shard then fixes its
  accounts of the run (fixCalibrationShard-3.lua), and the caller records the chunks they make. A restart counts a
  new attempt and clears the chunks done; accounts already calibrated are skipped by the chunks.
  Runs never go back in time: a date before the latest run started is refused.

  Input:
    KEYS[1] run                     rm:<ns>:{cal}:run:<D>             (hash)
    KEYS[2] latest run              rm:<ns>:{cal}:latest              (string "YYYY-MM-DD")
    KEYS[3] chunks done             rm:<ns>:{cal}:run:<D>:done        (set of chunk indexes)

    ARGV[1] runId (date D)          ARGV[2] R (ms)                ARGV[3] R (ISO)
    ARGV[4] chunk size              ARGV[5] now (ISO)             ARGV[6] run record TTL (s)

  Output:
    { 1, attempt, chunkSize } started; { -1, latestRunId } refused.
]]
local rcall = redis.call

local latest = rcall("GET", KEYS[2])
if latest and latest > ARGV[1] then
  return { -1, latest }
end

local attempt, chunkSize
if rcall("EXISTS", KEYS[1]) == 0 then
  attempt = 1
  chunkSize = ARGV[4]
  rcall("HSET", KEYS[1],
    "runId", ARGV[1], "at", ARGV[2], "atIso", ARGV[3], "chunkSize", chunkSize, "attempts", 1,
    "status", "starting", "startedAt", ARGV[5])
  rcall("SET", KEYS[2], ARGV[1])
else
  -- The chunk size stays the first start's: chunk k means the same accounts in every attempt.
  chunkSize = rcall("HGET", KEYS[1], "chunkSize")
  attempt = rcall("HINCRBY", KEYS[1], "attempts", 1)
  rcall("HSET", KEYS[1], "status", "starting", "restartedAt", ARGV[5])
  rcall("HDEL", KEYS[1], "finishedAt", "error")
  rcall("DEL", KEYS[3])
end
rcall("EXPIRE", KEYS[1], ARGV[6])
return { 1, attempt, tonumber(chunkSize) }
