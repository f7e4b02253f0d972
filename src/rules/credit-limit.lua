--[[
  credit_limit: the charge's amount is more than the user's available credit at its occurredAt.

  State: the user's credit account (KEY_account, its fields are described in src/quota/credit-account.ts). A charge
  counts when the account was open at its occurredAt and it is not declined: "owed" grows by its amount, its local
  day's charge count "n:<date>" by one (what calibration reads), "late" by one when its period was already
  calibrated (its local date is before "lastRun"), and "seq" (calibration's check-and-set) by one. The run's added
  debt goes to the credit totals once per call.
]]
--- @key creditTotals
--- @userkey account
--- @setup
local credit = cfg.rules.creditLimit
local requireAccount, creditBandMax, creditRound = credit.requireAccount == 1, credit.bandMax, credit.roundDownToFen
-- The holiday uplift of each group's local date: the largest window containing it, once per call.
for g = 1, #groups do
  local date, percent, name = groups[g].date, 0, nil
  for _, w in ipairs(credit.uplifts) do
    if date >= w[1] and date < w[2] and w[3] > percent then percent, name = w[3], w[4] end
  end
  groups[g].uplift, groups[g].upliftName = percent, name
end
local owedAdded = 0

--- @keeps creditAccount creditAvailable
--- @check
local acct = rcall("HMGET", KEY_account, "quota", "openedAt", "channel", "owed", "lastRun", "n:" .. localDate, "late", "seq")
if acct[1] and t >= tonumber(acct[2]) then
  local base = tonumber(acct[1])
  local quota, quotaText = base, cny(base) .. " CNY"
  if day.uplift > 0 then
    -- As Calibrator.effectiveQuota: raised, rounded down, within the band, never below the base.
    local raised = math.floor(base * (100 + day.uplift) / 100)
    raised = raised - raised % creditRound
    quota = math.max(base, math.min(raised, creditBandMax[acct[3]]))
    quotaText = cny(quota) .. " CNY (" .. cny(base) .. " CNY + " .. day.uplift .. "% " .. day.upliftName .. " uplift)"
  end
  local owed = tonumber(acct[4] or "0")
  -- A calibration may lower the quota below what is owed: nothing is available then.
  creditAvailable = math.max(0, quota - owed)
  creditAccount = acct
  if amount > creditAvailable then
    fire("credit_limit", "amount " .. cny(amount) .. " CNY is more than the available credit " .. cny(creditAvailable) ..
      " CNY: quota " .. quotaText .. ", outstanding " .. cny(owed) .. " CNY")
  end
elseif requireAccount then
  fire("credit_limit", "no_credit_account: the user had no credit account open at " .. occurredAt)
end
--- @counted
if creditAccount then
  local owed = tonumber(creditAccount[4] or "0") + amount
  local seq = string.format("%d", tonumber(creditAccount[8] or "0") + 1)
  local count = string.format("%d", tonumber(creditAccount[6] or "0") + 1)
  if creditAccount[5] and localDate < creditAccount[5] then
    rcall("HSET", KEY_account, "owed", string.format("%d", owed), "n:" .. localDate, count, "seq", seq,
      "late", string.format("%d", tonumber(creditAccount[7] or "0") + 1))
  else
    rcall("HSET", KEY_account, "owed", string.format("%d", owed), "n:" .. localDate, count, "seq", seq)
  end
  owedAdded = owedAdded + amount
end
--- @observed creditAvailable creditAvailable and string.format("%d", creditAvailable) or "null"
--- @finish
if owedAdded > 0 then rcall("HINCRBY", KEY_creditTotals, "owed", string.format("%d", owedAdded)) end
