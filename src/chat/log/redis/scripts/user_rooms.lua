-- KEYS: passerby:user:<u>:rooms (room -> the user's arrival there): where a user is, for
-- whispers, under the user's own slot. ARGV: in or out, the room, the arrival, and for
-- `in` how long the key lives (ms). Presence scripts change a room, not this key, so the
-- instance tells it what they answered, and two instances' calls may arrive out of order:
-- `in` keeps the latest arrival, `out` removes only an arrival as old as its own, so a
-- late `out` never hides a user who came back. Whoever reads it checks the room still has
-- the user (`send.rs`), so one that was never told `out` misleads nobody.
local now = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0')
local came = tonumber(ARGV[3])
if ARGV[1] == 'in' then
  if came > now then
    redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
elseif now > 0 and now <= came then
  redis.call('HDEL', KEYS[1], ARGV[2])
end
return 0
