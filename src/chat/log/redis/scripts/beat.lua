-- KEYS: the room's seq. ARGV: room, instance, TTL (ms), whether entries may be reaped now
-- (1: every live instance had a TTL to refresh its own since Redis was last away, see
-- `pulse.lua`), max presence events, most entries reaped at once, then the numbers of the
-- instance's sockets in the room, then the prelude's three.
-- One instance's beat of one room: moves its entries' expiry on, forgets marks of sockets
-- that left long ago, and reaps the room's entries nobody refreshed. Returns how many it
-- reaped, the sockets whose entry Redis does not have (it forgot them, or took them for
-- dead: the instance restores them, restore.lua), the users who left the room, each with
-- their arrival, and when the room's last entry expires (0: it holds none).
local room, inst, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local may_reap, max, most = ARGV[4] == '1', tonumber(ARGV[5]), tonumber(ARGV[6])
local base = room_base(room)
local expiry = base .. ':expiry'
local now = now_ms()
local missing = {}
local expires = now + ttl
for i = 7, LAST do
  local sid = inst .. ':' .. ARGV[i]
  if redis.call('ZADD', expiry, 'XX', 'CH', expires, sid) == 0
    and redis.call('ZSCORE', expiry, sid) == false then
    table.insert(missing, ARGV[i])
  end
end
redis.call('ZREMRANGEBYSCORE', base .. ':gone', '-inf', now)
local reaped, departed = 0, {}
if may_reap then
  local dead = redis.call('ZRANGEBYSCORE', expiry, '-inf', now, 'LIMIT', 0, most)
  for _, sid in ipairs(dead) do
    local uid, came = remove_entry(room, sid, max)
    if uid then
      redis.call('ZADD', base .. ':reaped', now, sid)
      reaped = reaped + 1
      if came > 0 then
        table.insert(departed, uid)
        table.insert(departed, came)
      end
    end
  end
  -- A socket reaped an hour ago and back now is as good as new.
  redis.call('ZREMRANGEBYSCORE', base .. ':reaped', '-inf', now - 3600000)
end
local last = redis.call('ZRANGE', expiry, -1, -1, 'WITHSCORES')
local until_ms = 0
if #last == 2 then
  until_ms = tonumber(last[2])
end
return {reaped, missing, departed, string.format('%.0f', until_ms)}
