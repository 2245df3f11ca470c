-- ARGV: instance, TTL (ms), pause (ms), max presence events, most entries reaped at once,
-- then the numbers of the instance's sockets in Redis, then the prelude's two.
-- One instance's beat: moves its entries' expiry on, forgets its marks of sockets that left
-- long ago, and reaps the entries of every instance that stopped beating. Returns how many
-- entries it reaped, and the sockets whose entry Redis does not have (it forgot them, or
-- took them for dead): the instance restores them (restore.lua).
local inst, ttl, pause = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local max, most = tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()
-- Nobody beat for a while: Redis was stopped, unreachable or restarted. Entries are not
-- judged until every live instance has had a TTL to refresh its own.
local last = tonumber(redis.call('GET', 'passerby:presence:beat') or '0')
redis.call('SET', 'passerby:presence:beat', now)
local resumed = tonumber(redis.call('GET', 'passerby:presence:resumed') or '0')
if now - last > pause then
  resumed = now
  redis.call('SET', 'passerby:presence:resumed', now)
end
local missing = {}
local expires = now + ttl
for i = 6, LAST do
  local sid = inst .. ':' .. ARGV[i]
  if redis.call('ZADD', EXPIRY, 'XX', 'CH', expires, sid) == 0
    and redis.call('ZSCORE', EXPIRY, sid) == false then
    table.insert(missing, ARGV[i])
  end
end
redis.call('ZREMRANGEBYSCORE', gone_key(inst), '-inf', now)
local reaped = 0
if now - resumed >= ttl then
  local dead = redis.call('ZRANGEBYSCORE', EXPIRY, '-inf', now, 'LIMIT', 0, most)
  for _, sid in ipairs(dead) do
    if remove_entry(sid, max) then
      redis.call('ZADD', REAPED, now, sid)
      reaped = reaped + 1
    end
  end
  -- A socket reaped an hour ago and back now is as good as new.
  redis.call('ZREMRANGEBYSCORE', REAPED, '-inf', now - 3600000)
end
return {reaped, missing}
