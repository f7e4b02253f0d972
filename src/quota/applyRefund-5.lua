--[[
  Applies one refund of a charge, exactly once per eventId: at most what is left of the charge (its amount less the
  refunds before), and only a charge of the same user that was not declined: the charge's record in the user's
  charges hash (src/decisions/charge-record.ts). When credit_limit counted the charge (its record's flag "c"), the
  refund gives its amount back to the available credit: what is
  owed goes down by it, never below zero, and so do the credit totals; and the refund that completes a charge's
  refunds takes it out of its day's charge count (so refunded charges earn no "frequent use"), unless a calibration
  has counted that day already. (The merchant side of a refund is settlement's.)

  Input:
    KEYS[1] refunds                 rm:<ns>:{s<n>}:u:{<userId>}:refunds       (hash: chargeId -> fen refunded so far)
    KEYS[2] account                 rm:<ns>:{s<n>}:u:{<userId>}:acct          (hash: src/quota/credit-account.ts)
    KEYS[3] the user's charges      rm:<ns>:{s<n>}:u:{<userId>}:charges       (hash eventId -> charge record, read only:
                                                                               the charge's, and an eventId decided as a charge)
    KEYS[4] applied-event marker    rm:<ns>:{s<n>}:ev:<eventId>               (string)
    KEYS[5] credit totals           rm:<ns>:{s<n>}:credit:totals              (hash: owed)

    ARGV[1] eventId                 ARGV[2] userId                ARGV[3] chargeId
    ARGV[4] amount (fen)            ARGV[5] marker TTL (s)        ARGV[6] refunds TTL (s)
    ARGV[7] decision retention (days, for the message)

  Output:
    { 1, given back to the credit (fen), refunded so far (fen) } applied; { 0 } eventId already applied;
    { 2, reason, reasonLabel } rejected (nothing written).
]]
local rcall = redis.call

if rcall("EXISTS", KEYS[4]) == 1 or rcall("HEXISTS", KEYS[3], ARGV[1]) == 1 then
  return { 0 }
end
local chargeId = ARGV[3]
local stored = rcall("HGET", KEYS[3], chargeId)
if not stored then
  return { 2, "no charge " .. chargeId .. " of user " .. ARGV[2] .. " to refund: unknown, of another user, or decided more than " .. ARGV[7] .. " days ago", "unknown_charge" }
end
-- The charge record: "<outcome><amount> <settleAt> <YYYYMMDD> <flags> <rules>".
local o, amountText, y, m, d, flags = string.match(stored, "^(%a)(%d+) %S+ (%d%d%d%d)(%d%d)(%d%d) (%S+) %S+$")
if not o then
  return { 2, "the record of charge " .. chargeId .. " is unreadable", "conflict" }
end
local charge = { outcome = o, amount = tonumber(amountText), localDate = y .. "-" .. m .. "-" .. d, credit = string.find(flags, "c", 1, true) ~= nil }
if charge.outcome == "d" then
  return { 2, "charge " .. chargeId .. " was declined: there is nothing to refund", "conflict" }
end
local amount = tonumber(ARGV[4])
local before = tonumber(rcall("HGET", KEYS[1], chargeId) or "0")
if before + amount > charge.amount then
  -- Concatenated, not string.format: "%s" would stop at a NUL in an id.
  return { 2, "refund of " .. string.format("%d", amount) .. " fen is more than what is left of charge " .. chargeId ..
    " (" .. string.format("%d of its %d", charge.amount - before, charge.amount) .. " fen)", "conflict" }
end

rcall("HSET", KEYS[1], chargeId, string.format("%d", before + amount))
rcall("EXPIRE", KEYS[1], ARGV[6])
local givenBack = 0
if charge.credit then
  local acct = rcall("HMGET", KEYS[2], "owed", "seq", "lastRun")
  local owed = tonumber(acct[1] or "0")
  givenBack = math.min(amount, owed)
  rcall("HSET", KEYS[2], "owed", string.format("%d", owed - givenBack), "seq", string.format("%d", tonumber(acct[2] or "0") + 1))
  local day = charge.localDate
  if before + amount == charge.amount and (not acct[3] or day >= acct[3]) then
    local field = "n:" .. day
    local n = tonumber(rcall("HGET", KEYS[2], field) or "0")
    if n > 0 then rcall("HSET", KEYS[2], field, string.format("%d", n - 1)) end
  end
  if givenBack > 0 then rcall("HINCRBY", KEYS[5], "owed", string.format("%d", -givenBack)) end
end
rcall("SET", KEYS[4], "refund", "EX", ARGV[5])
return { 1, givenBack, before + amount }
