--[[
  Files a complaint about a charge, exactly once per eventId: the charge's case is frozen (its settlement, if not
  paid yet, held until a person decides: due score +inf), or, when the charge has no open case, a case is opened
  under the complaint's id, frozen: on a charge not yet paid it holds its settlement; on a paid one its cancel books
  a reversal (cancelCase-13.lua). The archive marks the charge disputed when it archives the action (its records
  then outlive normal retention). The charge is found as a refund finds it (applyRefund-n.lua): its record, of the
  same user, decided within the retention, not declined.

  Input:
    KEYS[1] applied-event marker    rm:<ns>:{s<n>}:ev:<eventId>               (string)
    KEYS[2…8] cases, case of each charge, case queue, case locks, case approvals, closed cases, case log
                                    rm:<ns>:{s<n>}:cases…                      (src/redis/keys.ts)
    KEYS[9] settlement due          rm:<ns>:{s<n>}:settle:due                 (zset member=eventId, score=settleAt ms)
    KEYS[10] settlement info        rm:<ns>:{s<n>}:settle:info                (hash eventId -> "merchant\tamount\tkind")
    KEYS[11] the user's refunds     rm:<ns>:{s<n>}:u:{<userId>}:refunds       (hash chargeId -> fen refunded so far, read only)
    KEYS[12…] the record hashes the charge may be in, newest generation first
                                    rm:<ns>:{s<n>}:rec:<generation>:<part>    (hash eventId -> charge record, read only)

    ARGV[1] eventId   ARGV[2] userId   ARGV[3] chargeId   ARGV[4] the reason (card numbers masked)
    ARGV[5] the complaint's occurredAt, ms   ARGV[6] now, ms (the case opens then)   ARGV[7] marker TTL (s)
    ARGV[8] decision retention (days, for the message)   ARGV[9] the oldest local date (YYYYMMDD) of a charge still
    found   ARGV[10] the hold, ms (a paid charge's case is due for a person this long after it opens)
    ARGV[11] approximate cap of the case log
    ARGV[12…] for each record hash KEYS[12…], in order, the local dates of its generation (YYYYMMDD each, concatenated)

  Output: { 1, case id } filed; { 0 } eventId already applied; { 2, reason, reasonLabel } rejected (nothing written).
]]
--- @include case-record.lua
--- @include ../settlement/take-back.lua
--- @include ../decisions/charge-record.lua
local rcall = redis.call
local K = { cases = KEYS[2], byCharge = KEYS[3], queue = KEYS[4], locks = KEYS[5], approvals = KEYS[6], closed = KEYS[7], log = KEYS[8] }
local dueKey, infoKey = KEYS[9], KEYS[10]
local eventId, userId, chargeId, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local atMs, nowMs, logMaxLen = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[11]

if rcall("EXISTS", KEYS[1]) == 1 then
  return { 0 }
end
local charge = findCharge(12, chargeId, userId, ARGV[9])
if not charge then
  return { 2, "no charge " .. chargeId .. " of user " .. userId .. " to complain about: unknown, of another user, or decided more than " .. ARGV[8] .. " days ago", "unknown_charge" }
end
if charge.outcome == "d" then
  return { 2, "charge " .. chargeId .. " was declined: no money moved, there is nothing to hold", "conflict" }
end

local complaint = { eventId = eventId, reason = reason, atMs = atMs }
local refunded = tonumber(rcall("HGET", KEYS[11], chargeId) or "0")
local paid = settlementPaid(infoKey, chargeId)
-- Not paid yet: held where it is, until a person decides (a release puts its T+1 instant back).
local dueScore = not paid and rcall("ZSCORE", dueKey, chargeId)
local openId = rcall("HGET", K.byCharge, chargeId)
local case = openId and loadCase(K, openId)
if case and case.status ~= "closed" then
  case.frozen = true
  case.complaint = complaint
  case.refundedFen = math.max(case.refundedFen or 0, refunded)
  if dueScore then rcall("ZADD", dueKey, "XX", "+inf", chargeId) end
  local note = reason
  if case.status == "pending_approval" then
    -- The release was asked without the complaint: it goes back to the queue for a person to look again.
    rcall("ZREM", K.approvals, case.id)
    rcall("ZADD", K.queue, case.deadlineMs, case.id)
    note = reason .. " (the release asked by " .. case.releasedBy .. " is withdrawn)"
    case.status = "open"
    case.releasedBy = nil
    case.releaseNote = nil
    case.releaseAskedAtMs = nil
  end
  saveCase(K, case, "complaint", "complaint", nowMs, note, logMaxLen)
else
  if rcall("HEXISTS", K.cases, eventId) == 1 then
    return { 2, "complaint " .. eventId .. " reuses the id of a case: send it with its own eventId", "conflict" }
  end
  local deadline = nowMs + tonumber(ARGV[10])
  local t1 = nowMs
  if dueScore and tonumber(dueScore) then
    t1 = tonumber(dueScore)
    deadline = t1
    rcall("ZADD", dueKey, "XX", "+inf", chargeId)
  end
  case = { id = eventId, chargeId = chargeId, userId = userId, merchantId = charge.merchant, amount = charge.amount,
    credit = charge.credit, localDate = charge.localDate, t1Ms = t1, deadlineMs = deadline, firstDeadlineMs = deadline,
    status = "open", opened = "complaint", openedAtMs = nowMs, rules = {}, paid = paid, frozen = true, extensions = 0,
    seq = 0, complaint = complaint, refundedFen = refunded }
  rcall("HSET", K.byCharge, chargeId, eventId)
  rcall("ZADD", K.queue, deadline, eventId)
  saveCase(K, case, "opened", "complaint", nowMs, reason, logMaxLen)
end
rcall("SET", KEYS[1], "complaint", "EX", ARGV[7])
return { 1, case.id }
