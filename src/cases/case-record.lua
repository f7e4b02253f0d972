--[[
  A case (src/cases/case.ts) as the case scripts change it, shared with `--- @include`. K names the keys of the
  case's shard: cases (hash id -> JSON), byCharge (hash chargeId -> open case id), queue (zset id -> deadline ms),
  locks (zset id -> lock expiry ms), approvals (zset id -> asked ms), closed (zset id -> closed ms), log (stream).

  loadCase(K, id): the case, a table, or nil.
  saveCase(K, case, action, actor, atMs, note, logMaxLen): counts the action on the case (seq), stores it, and logs
  the action with the case as it is now (the audit trail, archived into fenfu.case_actions).
  closeCase(K, case, outcome, action, actor, atMs, note, logMaxLen): the case leaves every open index, is closed
  with its outcome (released, cancelled, auto_released) by the action logged, and waits in `closed` for the archive.
]]
local function loadCase(K, id)
  local text = redis.call("HGET", K.cases, id)
  if not text then return nil end
  return cjson.decode(text)
end

local function saveCase(K, case, action, actor, atMs, note, logMaxLen)
  case.seq = (case.seq or 0) + 1
  local text = cjson.encode(case)
  redis.call("HSET", K.cases, case.id, text)
  redis.call("XADD", K.log, "MAXLEN", "~", logMaxLen, "*", "c", case.id, "n", string.format("%d", case.seq), "a", action,
    "by", actor, "at", string.format("%d", atMs), "note", note or "", "case", text)
end

local function closeCase(K, case, outcome, action, actor, atMs, note, logMaxLen)
  redis.call("ZREM", K.queue, case.id)
  redis.call("ZREM", K.locks, case.id)
  redis.call("ZREM", K.approvals, case.id)
  if redis.call("HGET", K.byCharge, case.chargeId) == case.id then redis.call("HDEL", K.byCharge, case.chargeId) end
  redis.call("ZADD", K.closed, atMs, case.id)
  case.status = "closed"
  case.outcome = outcome
  case.closedBy = actor
  case.closedAtMs = atMs
  case.lockedBy = nil
  case.lockedUntilMs = nil
  saveCase(K, case, action, actor, atMs, note, logMaxLen)
end

-- Whether someone other than `actor` holds the case now.
local function heldByAnother(case, actor, nowMs)
  return case.lockedBy ~= nil and case.lockedBy ~= actor and (case.lockedUntilMs or 0) > nowMs
end

-- Why a case cannot be acted on any more, for the 409.
local function closedText(case)
  return "case " .. case.id .. " is closed (" .. case.outcome .. " by " .. case.closedBy .. ")"
end
