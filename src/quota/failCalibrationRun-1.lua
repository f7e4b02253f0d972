--[[
  Marks a running calibration run failed (a chunk ran out of attempts). Starting the run again resumes it.

  Input:
    KEYS[1] run                     rm:<ns>:cal:run:<D>               (hash)

    ARGV[1] error message

  Output:
    1 when the run was running and is now failed, else 0.
]]
if redis.call("HGET", KEYS[1], "status") == "running" then
  redis.call("HSET", KEYS[1], "status", "failed", "error", ARGV[1])
  return 1
end
return 0
