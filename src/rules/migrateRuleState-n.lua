--[[
  Moves one user's rule state from the layout before the rule-state hash (a day-totals hash and a sorted set per
  card) into the hash, atomically, and deletes the old keys, so running it again changes nothing. Totals the new
  workers already wrote for a day are added to, not replaced (old and new workers counted different charges).

  Input:
    KEYS[1] rule state (new)        rm:<ns>:u:{<userId>}:rules         (hash)
    KEYS[2] day totals (old)        rm:<ns>:u:{<userId>}:days          (hash "<date>" -> fen, "<date>#n" -> count)
    KEYS[3..] card windows (old)    rm:<ns>:u:{<userId>}:card:<token>  (zset member=event hash, score=occurredAt ms)
    ARGV[1] rule state TTL (s); ARGV[2..] the card tokens of KEYS[3..], in order

  Output: { days moved, cards moved }
]]
local rcall = redis.call
local days = rcall("HGETALL", KEYS[2])
for j = 1, #days, 2 do
  rcall("HINCRBY", KEYS[1], days[j], days[j + 1])
end
local cards = 0
for k = 3, #KEYS do
  local times = rcall("ZRANGE", KEYS[k], 0, -1, "WITHSCORES")
  if #times > 0 then
    local field = "c:" .. ARGV[k - 1]
    local window = {}
    local existing = rcall("HGET", KEYS[1], field)
    if existing then window[1] = existing end
    for j = 2, #times, 2 do
      -- base 36, as the rules script keeps them
      local n = tonumber(times[j])
      local digits = ""
      repeat
        local d = n % 36
        digits = string.sub("0123456789abcdefghijklmnopqrstuvwxyz", d + 1, d + 1) .. digits
        n = math.floor(n / 36)
      until n == 0
      window[#window + 1] = digits
    end
    rcall("HSET", KEYS[1], field, table.concat(window, " "))
    cards = cards + 1
  end
  rcall("DEL", KEYS[k])
end
rcall("DEL", KEYS[2])
if rcall("EXISTS", KEYS[1]) == 1 and rcall("TTL", KEYS[1]) < tonumber(ARGV[1]) then
  rcall("EXPIRE", KEYS[1], ARGV[1])
end
return { #days / 2, cards }
