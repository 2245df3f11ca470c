-- KEYS: one counter that ids must never go back below (passerby:floor, passerby:user_ids).
-- ARGV: the instance's floor for it. Raises the counter to the floor; returns the counter.
local now = redis.call('GET', KEYS[1])
if tonumber(now or '0') < tonumber(ARGV[1]) then
  -- The argument as given: a Lua number would be written as 1e+14 past 14 digits.
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return now or '0'
