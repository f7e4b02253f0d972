--[[
  user_daily_cap: charges of this local day not declined and evaluated before this one, plus this one, over the cap.

  State: "<YYYY-MM-DD>" -> fen of that local day's charges not declined. Days before the retention of the clock's
  date are pruned (with them the "<YYYY-MM-DD>#n" counts earlier versions kept).
]]
--- @setup
local dailyCap = cfg.rules.userDailyCap.capFen

--- @read dayTotal localDate
--- @keeps dayTotalBefore
--- @check
dayTotalBefore = tonumber(dayTotal or "0")
if dayTotalBefore + amount > dailyCap then
  fire("user_daily_cap", string.format("day total on %s would be %s CNY (%s CNY before this charge), over the cap of %s CNY",
    localDate, cny(dayTotalBefore + amount), cny(dayTotalBefore), cny(dailyCap)))
end
--- @write counted dayTotal = string.format("%d", dayTotalBefore + amount)
--- @observed dayTotalBefore dayTotal or "0"
--- @prune string.byte(f, 1) >= 48 and string.byte(f, 1) <= 57
if f < day.oldestDay then stale[#stale + 1] = f end
