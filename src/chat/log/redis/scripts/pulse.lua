-- The presence keys that cross rooms, under their own hash tag: KEYS: passerby:{presence}:rooms
-- (room -> when its last entry expires, Redis ms: the rooms that hold entries), :beat (when
-- any instance last beat) and :resumed (when Redis was seen again after a pause: nothing
-- expires until a TTL later, so every live instance has refreshed its entries first).
-- ARGV: what to do, then its arguments:
--   beat, TTL (ms), pause (ms), most rooms, then the rooms the instance has sockets in:
--     records the beat and those rooms' new expiry. Returns whether entries may be reaped
--     now (1 or 0) and, if they may, the rooms whose entries all expired (room, when, …):
--     nobody beats them, so the caller reaps them.
--   enter, TTL (ms), room: a socket is joining the room (before its entry is added, so a
--     join cut short is still looked at).
--   settle, then for each room: when `beat` said it expires and when it does now (0: it
--     holds nothing), as its beat found; a room written since keeps what it was given.
--   leave, then rooms: the instance is stopping; its rooms are looked at by the next beat.
local rooms, beat, resumed_key = KEYS[1], KEYS[2], KEYS[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = ARGV[1]
if op == 'beat' then
  local ttl, pause, most = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  local last = tonumber(redis.call('GET', beat) or '0')
  redis.call('SET', beat, now)
  local resumed = tonumber(redis.call('GET', resumed_key) or '0')
  if now - last > pause then
    resumed = now
    redis.call('SET', resumed_key, now)
  end
  for i = 5, #ARGV do
    redis.call('ZADD', rooms, 'GT', now + ttl, ARGV[i])
  end
  if now - resumed < ttl then
    return {0, {}}
  end
  return {1, redis.call('ZRANGEBYSCORE', rooms, '-inf', now, 'WITHSCORES', 'LIMIT', 0, most)}
elseif op == 'enter' then
  redis.call('ZADD', rooms, 'GT', now + tonumber(ARGV[2]), ARGV[3])
  return 0
elseif op == 'settle' then
  for i = 2, #ARGV, 3 do
    local room = ARGV[i]
    if redis.call('ZSCORE', rooms, room) == ARGV[i + 1] then
      if ARGV[i + 2] == '0' then
        redis.call('ZREM', rooms, room)
      else
        redis.call('ZADD', rooms, ARGV[i + 2], room)
      end
    end
  end
  return 0
elseif op == 'leave' then
  for i = 2, #ARGV do
    redis.call('ZADD', rooms, 0, ARGV[i])
  end
  return 0
end
return redis.error_reply('pulse: unknown ' .. tostring(op))
