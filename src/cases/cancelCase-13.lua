--[[
  A person's cancellation of a case: its charge is never paid (or, paid already, reversed), and what is left of it
  goes back to the user, atomically with the settlement. What is left is the charge less its refunds; it is then
  all refunded (a later refund is refused). Its credit is given back when credit_limit counted it
  (src/quota/credit-give-back.lua); the merchant side is take-back.lua: not paid yet, its due entry goes; paid, a
  reversal under the case's id gives the amount and its fees back in the merchant's next ledger. The case log's
  "cancelled" entry is the record the payment system reverses the charge from.

  Input:
    KEYS[1] cases   KEYS[2] case of each charge   KEYS[3] case queue   KEYS[4] case locks   KEYS[5] case approvals
    KEYS[6] closed cases   KEYS[7] case log        (rm:<ns>:{s<n>}:cases…, src/redis/keys.ts)
    KEYS[8] settlement due   KEYS[9] settlement info   KEYS[10] settlement stats
    KEYS[11] the user's refunds   KEYS[12] the user's credit account   KEYS[13] credit totals
    ARGV[1] case id   ARGV[2] the person   ARGV[3] 1 when a supervisor (or above) asks   ARGV[4] now, ms
    ARGV[5] the reason   ARGV[6] the case's userId (KEYS[11], KEYS[12] are its)   ARGV[7] refunds TTL, s
    ARGV[8] approximate cap of the case log   ARGV[9] the four-eyes amount, fen (a reversal above it needs a supervisor)

  Output: {200, case JSON}; {404|409|403, reason} refused, nothing written.
]]
--- @include case-record.lua
--- @include ../settlement/take-back.lua
--- @include ../quota/credit-give-back.lua
local K = { cases = KEYS[1], byCharge = KEYS[2], queue = KEYS[3], locks = KEYS[4], approvals = KEYS[5], closed = KEYS[6], log = KEYS[7] }
local dueKey, infoKey, statsKey, refundsKey, accountKey, totalsKey = KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13]
local id, actor, supervisor, nowMs, reason, logMaxLen = ARGV[1], ARGV[2], ARGV[3] == "1", tonumber(ARGV[4]), ARGV[5], ARGV[8]

local case = loadCase(K, id)
if not case then return { 404, "no open case " .. id } end
if case.status == "closed" then return { 409, closedText(case) } end
if case.userId ~= ARGV[6] then return redis.error_reply("cancelCase: the keys given are not of the case's user") end
if case.status == "pending_approval" and not supervisor then
  return { 403, "case " .. id .. " waits for a supervisor's approval of its release: only a supervisor cancels it now" }
end
if heldByAnother(case, actor, nowMs) then return { 409, "case " .. id .. " is held by " .. case.lockedBy } end

local chargeId = case.chargeId
-- Refunded so far: the refunds hash, or what the case kept of the refunds since it opened (the hash may have
-- expired meanwhile: a frozen case can wait long).
local refunded = math.max(tonumber(redis.call("HGET", refundsKey, chargeId) or "0"), case.refundedFen or 0)
local left = case.amount - refunded
local paid = settlementPaid(infoKey, chargeId)
if paid and left > 0 and (redis.call("HEXISTS", infoKey, id) == 1 or redis.call("ZSCORE", dueKey, id)) then
  return { 409, "case " .. id .. " cannot book its reversal: a settlement under its id is still due" }
end
if paid and left > tonumber(ARGV[9]) and not supervisor then
  return { 403, "cancelling case " .. id .. " books a reversal of " .. string.format("%d", left) .. " fen taken back from the merchant, above the four-eyes amount: a supervisor cancels it" }
end
local givenBack = 0
if left > 0 then
  redis.call("HSET", refundsKey, chargeId, string.format("%d", case.amount))
  redis.call("EXPIRE", refundsKey, ARGV[7])
  if case.credit then givenBack = giveBackCredit(accountKey, totalsKey, left, true, case.localDate) end
  takeBack(dueKey, infoKey, statsKey, chargeId, paid, id, case.merchantId, left, nowMs)
end
case.cancelledFen = left
case.creditGivenBackFen = givenBack
case.reversed = paid and left > 0
closeCase(K, case, "cancelled", "cancelled", actor, nowMs, reason, logMaxLen)
return { 200, cjson.encode(case) }
