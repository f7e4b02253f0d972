--[[
  card_blocklisted: the charge's card token has an entry on the card blocklist covering its occurredAt ([from,
  until), a missing bound open), whichever user presents the card. Keeps no user state: the list
  (src/lists/lists.ts, card token -> entries) is read once per call, for the run's cards, and only when it exists
  (an empty list costs one EXISTS per call). The reason shows the card's label ("****1234"), never more.
]]
--- @key cardList
--- @setup
-- nil while the list is empty: then the check costs each charge one test.
local blockedCards
if rcall("EXISTS", KEY_cardList) == 1 then
  blockedCards = {}
  local tokens, seen = {}, {}
  for c = 1, charges do
    -- The token is the 7th of the charge's space-separated fields (the core's header).
    local token = string.match(ARGV[firstCharge + (c - 1) * PER_CHARGE + 4], "^%S+ %S+ %S+ %S+ %S+ %S+ (%S+)")
    if token and not seen[token] then
      seen[token] = true
      tokens[#tokens + 1] = token
    end
  end
  if #tokens > 0 then
    local found = rcall("HMGET", KEY_cardList, unpack(tokens))
    for k = 1, #tokens do
      if found[k] then blockedCards[tokens[k]] = cjson.decode(found[k]) end
    end
  end
end

--- @check
local entries = blockedCards and blockedCards[cardToken]
if entries then
  for _, e in ipairs(entries) do
    if (not e.fromMs or t >= e.fromMs) and (not e.untilMs or t < e.untilMs) then
      local reason = ""
      if e.reason then reason = ": " .. e.reason end
      fire("card_blocklisted", "card " .. cardLabel .. " is on the card blocklist from " .. (e.from or "always") ..
        " until " .. (e["until"] or "removed") .. reason)
      break
    end
  end
end
