--[[
  Records a rejected event once. A redelivered job rejects the same payload again; the set of recent sources makes
  the second attempt a no-op, so the dead-letter store never counts a rejection twice. The set keeps the newest
  `maxSources` sources (score: when each was recorded) and is trimmed here, in the same call: the bookkeeping is
  two keys whatever the number of rejections, as the stream itself is capped. A source that has left the set (more
  than `maxSources` rejections later) would be recorded again; by then the stream has dropped its first record too.

  Input:
    KEYS[1] dead-letter stream    rm:<ns>:{dl}:deadletter
    KEYS[2] recent sources        rm:<ns>:{dl}:deadletter:seen    sorted set, member: source, score: recorded-at ms,
                                  raised past the newest score when not above it, so ties keep insertion order
    ARGV[1] source (where it came from: "replay:<file>:<line>", "queue:<queue>/<job>#<index>", ...)
    ARGV[2] reason
    ARGV[3] raw payload (truncated, card numbers masked)
    ARGV[4] rejected-at ISO instant
    ARGV[5] approximate max stream length
    ARGV[6] recorded-at, epoch ms (the score)
    ARGV[7] maxSources: sources kept for the redelivery check

  Output: 1 when recorded, 0 when this source was already recorded.
]]
if redis.call("ZSCORE", KEYS[2], ARGV[1]) then
  return 0
end
redis.call("XADD", KEYS[1], "MAXLEN", "~", ARGV[5], "*",
  "source", ARGV[1], "reason", ARGV[2], "raw", ARGV[3], "at", ARGV[4])
local score = tonumber(ARGV[6])
local newest = redis.call("ZRANGE", KEYS[2], -1, -1, "WITHSCORES")
if newest[2] and tonumber(newest[2]) >= score then
  score = tonumber(newest[2]) + 1
end
redis.call("ZADD", KEYS[2], score, ARGV[1])
local excess = redis.call("ZCARD", KEYS[2]) - tonumber(ARGV[7])
if excess > 0 then
  -- Oldest first (lowest score); one member per call in the steady state.
  redis.call("ZREMRANGEBYRANK", KEYS[2], 0, excess - 1)
end
return 1
