--[[
  Records a rejected event once. A redelivered job rejects the same payload again; the marker key makes the
  second attempt a no-op, so the dead-letter store never counts a rejection twice.

  Input:
    KEYS[1] dead-letter stream    rm:<ns>:deadletter
    KEYS[2] marker                rm:<ns>:deadletter:seen:<sourceId>
    ARGV[1] source (where it came from: "replay:<file>:<line>", "queue:<queue>/<job>#<index>", ...)
    ARGV[2] reason
    ARGV[3] raw payload (truncated, card numbers masked)
    ARGV[4] rejected-at ISO instant
    ARGV[5] approximate max stream length
    ARGV[6] marker TTL (s)

  Output: 1 when recorded, 0 when this source was already recorded.
]]
if redis.call("SET", KEYS[2], "1", "NX", "EX", ARGV[6]) == false then
  return 0
end
redis.call("XADD", KEYS[1], "MAXLEN", "~", ARGV[5], "*",
  "source", ARGV[1], "reason", ARGV[2], "raw", ARGV[3], "at", ARGV[4])
return 1
