-- ARGV: room, instance, user id, sockets, user JSON, `join` data, `left` data (JSON
-- strings), max presence events, highest id the instance saw in the room.
-- Puts back a user's sockets on an instance whose presence Redis lost (it restarted empty,
-- or reaped the instance while it was alive). Returns 1 if it did.
local room, inst, uid, k = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
raise(room, tonumber(ARGV[9]))
local base = 'passerby:room:' .. room
raise_user(uid)
local sockets = 'passerby:instance:' .. inst .. ':sockets'
if redis.call('HEXISTS', sockets, room .. ' ' .. uid) == 1 then
  return 0
end
redis.call('HINCRBY', sockets, room .. ' ' .. uid, k)
redis.call('HINCRBY', 'passerby:user:' .. uid .. ':rooms', room, k)
local n = redis.call('HINCRBY', base .. ':users', uid, k)
redis.call('HSET', base .. ':info', uid, ARGV[5])
redis.call('HSET', base .. ':left', uid, ARGV[7])
if n == k then
  redis.call('ZADD', base .. ':order', redis.call('INCR', base .. ':arrivals'), uid)
  emit(room, '"join"', ARGV[5], nil, ARGV[6], '0 0', true, tonumber(ARGV[8]))
end
return 1
