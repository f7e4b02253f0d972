--[[
  Takes the open case with the earliest deadline in one shard for an analyst: it leaves the queue for the locks
  until `lockMs` from now, so no two analysts hold one case (an analyst may hold several). Locks that expired first
  go back to the queue, each logged. Atomic per shard; src/cases/case-queue.ts asks the shards in deadline order.

  Input:
    KEYS[1] cases        rm:<ns>:{s<n>}:cases            KEYS[2] case queue   rm:<ns>:{s<n>}:cases:queue
    KEYS[3] case locks   rm:<ns>:{s<n>}:cases:locks      KEYS[4] case log     rm:<ns>:{s<n>}:cases:log
    ARGV[1] the analyst  ARGV[2] now, ms  ARGV[3] lock duration, ms  ARGV[4] approximate cap of the case log

  Output: the case taken, JSON, or false when the shard has none open.
]]
--- @include case-record.lua
local K = { cases = KEYS[1], queue = KEYS[2], locks = KEYS[3], log = KEYS[4] }
local actor, nowMs, lockMs, logMaxLen = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]

for _, id in ipairs(redis.call("ZRANGEBYSCORE", K.locks, "-inf", nowMs, "LIMIT", 0, 100)) do
  redis.call("ZREM", K.locks, id)
  local case = loadCase(K, id)
  if case and case.status == "open" then
    local holder = case.lockedBy
    case.lockedBy = nil
    case.lockedUntilMs = nil
    redis.call("ZADD", K.queue, case.deadlineMs, id)
    saveCase(K, case, "lock_expired", "system", nowMs, holder and ("held by " .. holder) or "", logMaxLen)
  end
end

while true do
  local first = redis.call("ZRANGE", K.queue, 0, 0)[1]
  if not first then return false end
  redis.call("ZREM", K.queue, first)
  local case = loadCase(K, first)
  -- A queue entry without an open case (it cannot happen through these scripts) is dropped, not handed out.
  if case and case.status == "open" then
    case.lockedBy = actor
    case.lockedUntilMs = nowMs + lockMs
    redis.call("ZADD", K.locks, case.lockedUntilMs, first)
    saveCase(K, case, "taken", actor, nowMs, "", logMaxLen)
    return cjson.encode(case)
  end
end
