--[[
  user_frozen: the charge's user has an entry on the frozen-user list covering its occurredAt ([from, until), a
  missing bound open). Keeps no user state: the list (src/lists/lists.ts) is read once per call, for the run's
  users, and only when it exists (an empty list costs one EXISTS per call).
]]
--- @key userList
--- @setup
-- nil while the list is empty: then the check costs each charge one test.
local frozenUsers
if rcall("EXISTS", KEY_userList) == 1 then
  frozenUsers = {}
  local ids, seen = {}, {}
  for c = 1, charges do
    local u = ARGV[firstCharge + (c - 1) * PER_CHARGE + 1]
    if not seen[u] then
      seen[u] = true
      ids[#ids + 1] = u
    end
  end
  local found = rcall("HMGET", KEY_userList, unpack(ids))
  for k = 1, #ids do
    if found[k] then frozenUsers[ids[k]] = cjson.decode(found[k]) end
  end
end

--- @check
local entries = frozenUsers and frozenUsers[ARGV[p + 1]]
if entries then
  local userId = ARGV[p + 1]
  for _, e in ipairs(entries) do
    if (not e.fromMs or t >= e.fromMs) and (not e.untilMs or t < e.untilMs) then
      local reason = ""
      if e.reason then reason = ": " .. e.reason end
      -- Concatenated, not string.format: "%s" would stop at a NUL in an id.
      fire("user_frozen", "user " .. userId .. " is frozen from " .. (e.from or "always") ..
        " until " .. (e["until"] or "removed") .. reason)
      break
    end
  end
end
