--[[
  A person's release of a case, or a supervisor's approval of one (four eyes), atomically with the settlement it
  holds. A release is paid at the later of its T+1 instant and the next settlement run (its due score becomes the
  T+1 instant); one above the four-eyes amount waits in pending_approval, its settlement held (due score +inf), for a
  supervisor other than the releaser. A case whose charge has nothing left to pay (paid already, a complaint's, or
  wholly refunded) closes at once and moves no money.

  Input:
    KEYS[1] cases   KEYS[2] case of each charge   KEYS[3] case queue   KEYS[4] case locks   KEYS[5] case approvals
    KEYS[6] closed cases   KEYS[7] case log        (rm:<ns>:{s<n>}:cases…, src/redis/keys.ts)
    KEYS[8] settlement due   KEYS[9] settlement info
    ARGV[1] case id   ARGV[2] "release" or "approve"   ARGV[3] the person   ARGV[4] now, ms   ARGV[5] the note
    ARGV[6] four-eyes amount, fen (a release above it waits for approval)   ARGV[7] approximate cap of the case log

  Output: {200, case JSON} done (the case's status says whether it closed or waits for approval);
          {404|409|403, reason} refused, nothing written.
]]
--- @include case-record.lua
--- @include ../settlement/take-back.lua
local K = { cases = KEYS[1], byCharge = KEYS[2], queue = KEYS[3], locks = KEYS[4], approvals = KEYS[5], closed = KEYS[6], log = KEYS[7] }
local dueKey, infoKey = KEYS[8], KEYS[9]
local id, action, actor, nowMs, note, logMaxLen = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[7]

local case = loadCase(K, id)
if not case then return { 404, "no open case " .. id } end
if case.status == "closed" then return { 409, closedText(case) } end

-- The held settlement is paid from its T+1 instant on (now or at the next run, whichever is later).
local function payFromT1()
  if not settlementPaid(infoKey, case.chargeId) then redis.call("ZADD", dueKey, "XX", case.t1Ms, case.chargeId) end
end

if action == "approve" then
  if case.status ~= "pending_approval" then return { 409, "case " .. id .. " has no release waiting for approval" } end
  if case.releasedBy == actor then
    return { 403, "the release of case " .. id .. " was asked by " .. actor .. ": another supervisor approves it" }
  end
  case.approvedBy = actor
  payFromT1()
  closeCase(K, case, "released", "approved", actor, nowMs, note, logMaxLen)
  return { 200, cjson.encode(case) }
end

if case.status == "pending_approval" then
  return { 409, "case " .. id .. " was released by " .. case.releasedBy .. " and waits for a supervisor's approval" }
end
if heldByAnother(case, actor, nowMs) then return { 409, "case " .. id .. " is held by " .. case.lockedBy } end
-- Four eyes guard money leaving: a charge paid already (or wholly refunded) has nothing for a release to pay.
if case.amount > tonumber(ARGV[6]) and not settlementPaid(infoKey, case.chargeId) then
  redis.call("ZREM", K.queue, id)
  redis.call("ZREM", K.locks, id)
  redis.call("ZADD", K.approvals, nowMs, id)
  case.status = "pending_approval"
  case.releasedBy = actor
  case.releaseNote = note
  case.releaseAskedAtMs = nowMs
  case.lockedBy = nil
  case.lockedUntilMs = nil
  redis.call("ZADD", dueKey, "XX", "+inf", case.chargeId)
  saveCase(K, case, "release_requested", actor, nowMs, note, logMaxLen)
  return { 200, cjson.encode(case) }
end
payFromT1()
closeCase(K, case, "released", "released", actor, nowMs, note, logMaxLen)
return { 200, cjson.encode(case) }
