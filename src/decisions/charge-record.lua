--[[
  findCharge(firstKey, chargeId, userId, oldestDate): the charge a refund or a complaint names, as its record says
  (src/decisions/charge-record.ts), shared with `--- @include`: looked for in the record hashes KEYS[firstKey…]
  (newest generation first), ARGV[k] holding the local dates of KEYS[k]'s generation (YYYYMMDD each, concatenated).
  Only a record of `userId` whose local date is `oldestDate` (YYYYMMDD) or later counts. Returns nil, or
  { outcome = "a"|"r"|"d", amount, credit (credit_limit counted it), localDate = "YYYY-MM-DD", merchant }.
]]
local function findCharge(firstKey, chargeId, userId, oldestDate)
  for k = firstKey, #KEYS do
    local stored = redis.call("HGET", KEYS[k], chargeId)
    if stored then
      -- "<outcome><amount> <settleAt> <day> <flags> <rules> <merchant> <userId>", fields split on single spaces.
      local o, amountText, day, flags, merchant, owner = string.match(stored, "^(%a)(%d+) [^ ]+ (%d) ([^ ]+) [^ ]+ ([^ ]+) (.*)$")
      -- The record's day within its hash's generation.
      local date = day and string.sub(ARGV[k], tonumber(day) * 8 + 1, tonumber(day) * 8 + 8)
      if o and owner == userId and date >= oldestDate then
        return { outcome = o, amount = tonumber(amountText), credit = string.find(flags, "c", 1, true) ~= nil,
          localDate = string.sub(date, 1, 4) .. "-" .. string.sub(date, 5, 6) .. "-" .. string.sub(date, 7, 8),
          merchant = string.gsub(merchant, "%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end) }
      end
    end
  end
  return nil
end
