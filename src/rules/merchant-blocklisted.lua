--[[
  merchant_blocklisted: the charge's merchant has an entry on the admission list covering its occurredAt
  ([from, until), a missing bound open). Keeps no user state: the list (src/lists/lists.ts) is read once per
  call, for the run's merchants, and only when it exists.
]]
--- @key merchantList
--- @setup
local blocklisted = {}
if rcall("EXISTS", KEY_merchantList) == 1 then
  local ids, seen = {}, {}
  for c = 1, charges do
    local m = ARGV[firstCharge + (c - 1) * PER_CHARGE + 2]
    if not seen[m] then
      seen[m] = true
      ids[#ids + 1] = m
    end
  end
  local found = rcall("HMGET", KEY_merchantList, unpack(ids))
  for k = 1, #ids do
    if found[k] then blocklisted[ids[k]] = cjson.decode(found[k]) end
  end
end

--- @check
local entries = blocklisted[merchantId]
if entries then
  for _, e in ipairs(entries) do
    if (not e.fromMs or t >= e.fromMs) and (not e.untilMs or t < e.untilMs) then
      local reason = ""
      if e.reason then reason = ": " .. e.reason end
      -- Concatenated, not string.format: "%s" would stop at a NUL in an id.
      fire("merchant_blocklisted", "merchant " .. merchantId .. " is on the admission list from " .. (e.from or "always") ..
        " until " .. (e["until"] or "removed") .. reason)
      break
    end
  end
end
