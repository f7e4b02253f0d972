--[[
  The merchant side of giving a charge's money back (a refund, a cancelled case), shared with `--- @include`.

  settlementPaid(infoKey, chargeId): whether the charge was paid to its merchant already: its settlement info went
  with the payment, or a reversal that reused the charge's eventId sits there (a charge not yet paid has its
  "merchant\tamount\tscheduled|held" info until it is).

  takeBack(dueKey, infoKey, statsKey, chargeId, paid, reversalId, merchant, amount, atMs): `amount` fen of the charge
  is not the merchant's. Not paid yet: it is paid what is left, nothing once all is taken back (its due entry and
  info go). Paid: a reversal of `amount` under `reversalId`, due at `atMs`, gives it and its fees back in the
  merchant's next ledger (src/settlement/releaseSettlement-15.lua). The caller refuses a reversalId that names a
  settlement still due before anything is written.
]]
local function settlementPaid(infoKey, chargeId)
  local info = redis.call("HGET", infoKey, chargeId)
  return not info or not string.match(info, "^.*\t%d+\t%a+$") or string.match(info, "\t(%a+)$") == "reversal"
end

local function takeBack(dueKey, infoKey, statsKey, chargeId, paid, reversalId, merchant, amount, atMs)
  if paid then
    redis.call("ZADD", dueKey, atMs, reversalId)
    redis.call("HSET", infoKey, reversalId, merchant .. "\t" .. string.format("%d", amount) .. "\treversal")
    redis.call("HINCRBY", statsKey, "reversalCount", 1)
    redis.call("HINCRBY", statsKey, "reversalAmount", string.format("%d", amount))
    return
  end
  local infoMerchant, dueText, kind = string.match(redis.call("HGET", infoKey, chargeId), "^(.*)\t(%d+)\t(%a+)$")
  local left = tonumber(dueText) - amount
  if left > 0 then
    redis.call("HSET", infoKey, chargeId, infoMerchant .. "\t" .. string.format("%d", left) .. "\t" .. kind)
  else
    redis.call("ZREM", dueKey, chargeId)
    redis.call("HDEL", infoKey, chargeId)
    redis.call("HINCRBY", statsKey, kind .. "Count", -1)
  end
  redis.call("HINCRBY", statsKey, kind .. "Amount", string.format("%d", -math.min(amount, tonumber(dueText))))
end
