--[[
  same_card_burst: charges on this card with occurredAt in (t - window, t], this one included, every outcome.

  State: "c:<card token>" -> the card's charge times in time order, base-36 ms separated by spaces: those within
  the card retention (window + late tolerance + future skew) of the card's newest charge, so a charge up to the
  tolerance behind the clock sees its whole window; thinned above thinAbove entries to the window-long buckets'
  oldest and newest minCount - 1 (see thinAbove in same-card-burst.ts), so a card's cost per charge is bounded
  whatever its traffic and the outcome is unchanged (9 bytes each: up to 7 fit Redis's 64-byte listpack value
  limit; a busier card makes the hash a hashtable, still correct).
]]
--- @setup
local burst = cfg.rules.sameCardBurst
local burstWindow, burstMinCount, cardRetention, burstThinAbove = burst.windowMs, burst.minCount, burst.retentionMs, burst.thinAbove
local thinBucket, thinKeep, cardPrefix = burst.thinBucketMs, burst.thinKeep, burst.fieldPrefix

-- Keeps, per bucket as long as the window the workers started with, that configuration's minCount - 1 oldest and
-- newest of a card's times (base-36 texts, in time order): what any burst window no longer than that, counting to
-- no more than that, can need (see the header).
local function thin(texts)
  local times = {}
  local sorted = true
  for j = 1, #texts do
    times[j] = tonumber(texts[j], 36)
    if j > 1 and times[j] < times[j - 1] then sorted = false end
  end
  if not sorted then
    -- A window an earlier version wrote in arrival order.
    local order = {}
    for j = 1, #texts do order[j] = j end
    table.sort(order, function(x, y) return times[x] < times[y] end)
    local t2, s2 = {}, {}
    for j = 1, #order do t2[j], s2[j] = texts[order[j]], times[order[j]] end
    texts, times = t2, s2
  end
  local out = {}
  local j = 1
  while j <= #texts do
    local bucket = math.floor(times[j] / thinBucket)
    local k = j
    while k < #texts and math.floor(times[k + 1] / thinBucket) == bucket do k = k + 1 end
    for q = j, k do
      if q - j < thinKeep or k - q < thinKeep then out[#out + 1] = texts[q] end
    end
    j = k + 1
  end
  return out
end

--- @read cardTimes cardPrefix .. cardToken
--- @keeps window cardCount
--- @check
-- The window keeps what the retention keeps of the card's newest charge (older ones can only matter to charges
-- later than the tolerance), thinned when it grows past thinAbove.
local windowFrom = t - burstWindow
window = t36
cardCount = 1
local tooLate = nil
if cardTimes then
  -- Times are kept in time order (this one goes in its place), so the newest is the last: one pass, one table.
  -- A window written in arrival order by an earlier version only makes keepFrom earlier (more kept, never less).
  local last = string.match(cardTimes, "(%w+)$")
  local newest = t
  if last and tonumber(last, 36) > t then newest = tonumber(last, 36) end
  local keepFrom = newest - cardRetention
  -- Older than the window keeps behind the card's newest charge: its burst cannot be counted, so it is held.
  if t < keepFrom then tooLate = newest - t end
  local kept = {}
  local n = 0
  local placed = t < keepFrom
  for s in string.gmatch(cardTimes, "%S+") do
    local at = tonumber(s, 36)
    if at >= keepFrom then
      if not placed and at > t then
        n = n + 1
        kept[n] = t36
        placed = true
      end
      n = n + 1
      kept[n] = s
      if at > windowFrom and at <= t then cardCount = cardCount + 1 end
    end
  end
  if not placed then
    n = n + 1
    kept[n] = t36
  end
  if n > burstThinAbove then kept = thin(kept) end
  window = table.concat(kept, " ")
end
if cardCount >= burstMinCount then
  fire("same_card_burst", string.format("%d charges on card %s within %s (review at %s or more)", cardCount, cardLabel, burst.windowLabel, burstMinCount))
elseif tooLate then
  fire("same_card_burst", string.format("charge %d min behind the newest charge on card %s, older than its window is kept: reviewed, its burst cannot be counted",
    math.floor(tooLate / 60000), cardLabel))
end
--- @write all cardTimes = window
--- @observed cardCount string.format("%d", cardCount)
--- @prune string.sub(f, 1, #cardPrefix) == cardPrefix
-- A card window whose newest charge is past the retention of the clock.
local newest = -1
for s in string.gmatch(v, "%S+") do
  local at = tonumber(s, 36)
  if at > newest then newest = at end
end
if newest < clock - cardRetention then stale[#stale + 1] = f end
