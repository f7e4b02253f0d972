--[[
  Applies one account's calibration for a run, atomically and at most once: the new base quota, the run marker,
  the audit record, the run's counters, and the pruning of activity the run consumed. The caller computed the
  result from the state it read; if that state changed since (another run got there first, or a charge, repayment
  or snapshot was applied: the account's "seq"), nothing is written and the caller reads and computes again.

  Input:
    KEYS[1] account                 rm:<ns>:{s<n>}:u:{<userId>}:acct          (hash: src/quota/credit-account.ts)
    KEYS[2] audit list              rm:<ns>:{s<n>}:u:{<userId>}:quota:audit   (list of JSON, newest first)
    KEYS[3] run counters            rm:<ns>:{s<n>}:cal:run:<runId>     (hash: the shard's counters of the run)
    KEYS[4] repayments              rm:<ns>:{s<n>}:u:{<userId>}:repay         (zset score=paidAt ms)
    KEYS[5] asset snapshots         rm:<ns>:{s<n>}:u:{<userId>}:assets        (zset score=occurredAt ms)
    KEYS[6] social snapshots        rm:<ns>:{s<n>}:u:{<userId>}:social        (zset score=occurredAt ms)

    ARGV[1] runId (date D)          ARGV[2] R (ms)                ARGV[3] lastRun read ("" for none)
    ARGV[4] quota read (fen)        ARGV[5] new quota (fen)       ARGV[6] change ("up" | "down" | "unchanged")
    ARGV[7] audit record JSON       ARGV[8] audit records kept    ARGV[9] number of warnings
    ARGV[10] seq read               ARGV[11] the run's idle-window start date (day counts before it are dropped)

  Output:
    { 1 } applied; { 0 } already calibrated by this run (skipped); { -1, lastRun } a later run calibrated it
    (refused); { 2 } the account changed since it was read (compute again); { 3 } no such account.
]]
local rcall = redis.call

local state = rcall("HMGET", KEYS[1], "quota", "lastRun", "seq")
if not state[1] then
  return { 3 }
end
local lastRun = state[2] or ""
if lastRun == ARGV[1] then
  rcall("HINCRBY", KEYS[3], "skipped", 1)
  return { 0 }
end
if lastRun > ARGV[1] then
  rcall("HINCRBY", KEYS[3], "refused", 1)
  return { -1, lastRun }
end
if lastRun ~= ARGV[3] or state[1] ~= ARGV[4] or (state[3] or "0") ~= ARGV[10] then
  return { 2 }
end

-- The late charges are counted now; day counts before the idle window matter to no later run.
rcall("HSET", KEYS[1], "quota", ARGV[5], "lastRun", ARGV[1], "lastRunAt", ARGV[2], "late", "0")
local stale = {}
for _, f in ipairs(rcall("HKEYS", KEYS[1])) do
  if string.sub(f, 1, 2) == "n:" and string.sub(f, 3) < ARGV[11] then stale[#stale + 1] = f end
end
for s = 1, #stale, 1000 do
  rcall("HDEL", KEYS[1], unpack(stale, s, math.min(s + 999, #stale)))
end
rcall("LPUSH", KEYS[2], ARGV[7])
rcall("LTRIM", KEYS[2], 0, tonumber(ARGV[8]) - 1)
rcall("HINCRBY", KEYS[3], "calibrated", 1)
rcall("HINCRBY", KEYS[3], ARGV[6], 1)
if ARGV[9] ~= "0" then rcall("HINCRBY", KEYS[3], "warnings", ARGV[9]) end

-- Later periods start at R: repayments before it are spent; of the snapshots before it only the latest still
-- matters (the "latest snapshot before R" of a later run may be it).
local before = "(" .. ARGV[2]
rcall("ZREMRANGEBYSCORE", KEYS[4], "-inf", before)
for k = 5, 6 do
  local latest = rcall("ZREVRANGEBYSCORE", KEYS[k], before, "-inf", "LIMIT", 0, 1)[1]
  if latest then
    local rank = rcall("ZRANK", KEYS[k], latest)
    if rank > 0 then rcall("ZREMRANGEBYRANK", KEYS[k], 0, rank - 1) end
  end
end
return { 1 }
