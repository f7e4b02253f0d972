--[[
  Marks a running calibration run failed (a chunk ran out of attempts). Starting the run again resumes it. A chunk
  job of an earlier attempt changes nothing: the run was started again and that attempt has jobs of its own.

  Input:
    KEYS[1] run                     rm:<ns>:{cal}:run:<D>             (hash)

    ARGV[1] error message           ARGV[2] the failed job's attempt ("" when it does not say)

  Output:
    1 when the run was running and is now failed, else 0.
]]
local run = redis.call("HMGET", KEYS[1], "status", "attempts")
if run[1] ~= "running" then return 0 end
if ARGV[2] ~= "" and tonumber(ARGV[2]) < tonumber(run[2] or "1") then return 0 end
redis.call("HSET", KEYS[1], "status", "failed", "error", ARGV[1])
return 1
