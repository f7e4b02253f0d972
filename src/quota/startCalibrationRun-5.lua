--[[
  Starts (or restarts) calibration run D. The first start fixes the run's accounts: every account opened before R,
  copied from the account index, so chunk k means the same accounts in every attempt. A restart keeps that set,
  counts a new attempt and clears the chunks done; accounts already calibrated are skipped by the chunks.
  Runs never go back in time: a date before the latest run started is refused.

  Input:
    KEYS[1] run                     rm:<ns>:cal:run:<D>               (hash)
    KEYS[2] run accounts            rm:<ns>:cal:run:<D>:accounts      (zset member=userId, score=openedAt ms)
    KEYS[3] account index           rm:<ns>:accounts                  (zset member=userId, score=openedAt ms)
    KEYS[4] latest run              rm:<ns>:cal:latest                (string "YYYY-MM-DD")
    KEYS[5] chunks done             rm:<ns>:cal:run:<D>:done          (set of chunk indexes)

    ARGV[1] runId (date D)          ARGV[2] R (ms)                ARGV[3] R (ISO)
    ARGV[4] chunk size              ARGV[5] now (ISO)             ARGV[6] run record TTL (s)

  Output:
    { 1, chunks, accounts, attempt, status } started; { -1, latestRunId } refused.
]]
local rcall = redis.call

local latest = rcall("GET", KEYS[4])
if latest and latest > ARGV[1] then
  return { -1, latest }
end

local chunks, accounts, attempt
if rcall("EXISTS", KEYS[1]) == 0 then
  accounts = rcall("ZRANGESTORE", KEYS[2], KEYS[3], "-inf", "(" .. ARGV[2], "BYSCORE")
  local size = tonumber(ARGV[4])
  chunks = math.floor((accounts + size - 1) / size)
  attempt = 1
  rcall("HSET", KEYS[1],
    "runId", ARGV[1], "at", ARGV[2], "atIso", ARGV[3], "chunkSize", ARGV[4], "chunks", chunks,
    "accounts", accounts, "attempts", 1, "status", "running", "startedAt", ARGV[5],
    "calibrated", 0, "up", 0, "down", 0, "unchanged", 0, "warnings", 0, "skipped", 0, "refused", 0)
  rcall("SET", KEYS[4], ARGV[1])
else
  local run = rcall("HMGET", KEYS[1], "chunks", "accounts")
  chunks = tonumber(run[1])
  accounts = tonumber(run[2])
  attempt = rcall("HINCRBY", KEYS[1], "attempts", 1)
  rcall("HSET", KEYS[1], "status", "running", "restartedAt", ARGV[5], "skipped", 0, "refused", 0)
  rcall("HDEL", KEYS[1], "finishedAt", "error")
  rcall("DEL", KEYS[5])
end

local status = "running"
if chunks == 0 then
  status = "done"
  rcall("HSET", KEYS[1], "status", "done", "finishedAt", ARGV[5])
end
rcall("EXPIRE", KEYS[1], ARGV[6])
rcall("EXPIRE", KEYS[2], ARGV[6])
return { 1, chunks, accounts, attempt, status }
