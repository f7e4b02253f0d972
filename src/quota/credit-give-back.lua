--[[
  giveBackCredit(accountKey, totalsKey, amount, complete, localDate): gives `amount` (fen) of a charge credit_limit
  counted back to the user's available credit: what is owed goes down by it, never below zero, and so do the credit
  totals. `complete`: the charge is now wholly given back (refunded or cancelled), so it leaves its day's charge count
  (a refunded charge earns no "frequent use"), unless a calibration has counted that day already. Returns the fen
  given back. Shared by the refund and the case cancellation scripts (`--- @include`).
]]
local function giveBackCredit(accountKey, totalsKey, amount, complete, localDate)
  local acct = redis.call("HMGET", accountKey, "owed", "seq", "lastRun")
  local owed = tonumber(acct[1] or "0")
  local givenBack = math.min(amount, owed)
  redis.call("HSET", accountKey, "owed", string.format("%d", owed - givenBack), "seq", string.format("%d", tonumber(acct[2] or "0") + 1))
  if complete and (not acct[3] or localDate >= acct[3]) then
    local field = "n:" .. localDate
    local n = tonumber(redis.call("HGET", accountKey, field) or "0")
    if n > 0 then redis.call("HSET", accountKey, field, string.format("%d", n - 1)) end
  end
  if givenBack > 0 then redis.call("HINCRBY", totalsKey, "owed", string.format("%d", -givenBack)) end
  return givenBack
end
