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
-- The holiday uplift of each group, once per call: the largest window containing the charges' local date, and only
-- as far as one contains the clock's local date too (a charge dated back into an ended window gets no uplift).
local function upliftOn(date)
  local percent, name = 0, nil
  for _, w in ipairs(credit.uplifts) do
    if date >= w[1] and date < w[2] and w[3] > percent then percent, name = w[3], w[4] end
  end
  return percent, name
end
for g = 1, #groups do
  local percent, name = upliftOn(groups[g].date)
  if percent > 0 then
    local now = upliftOn(groups[g].clockDate)
    if now < percent then percent = now end
  end
  groups[g].uplift, groups[g].upliftName = percent, name
end
local owedAdded = 0

--- @keeps creditAccount creditAvailable
--- @check
local acct = rcall("HMGET", KEY_account, "quota", "openedAt", "channel", "owed", "lastRun", "n:" .. localDate, "late", "seq", "openedAtIso")
if acct[1] and t < tonumber(acct[2]) then
  -- Dated before the opening: no credit to check it against, and never counted. Allowed, it would spend without
  -- a limit (a charge may be dated days back).
  fire("credit_limit", "the charge at " .. occurredAt .. " is dated before the credit account opened (" .. acct[9] ..
    "): it cannot be checked against the credit")
elseif acct[1] then
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
--- @record creditAccount and "c" or ""
--- @observed creditAvailable creditAvailable and string.format("%d", creditAvailable) or "null"
--- @finish
if owedAdded > 0 then rcall("HINCRBY", KEY_creditTotals, "owed", string.format("%d", owedAdded)) end
