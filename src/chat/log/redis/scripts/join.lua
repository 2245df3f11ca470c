-- ARGV: room, instance, user id, user JSON, `join` data, `left` data (JSON strings), max
-- presence events, highest id the instance saw in the room.
-- Returns: last id before, the `join` JSON or '', list id, history id, users JSON, the
-- oldest id still in the stream (0 if none).
local room, inst, uid = ARGV[1], ARGV[2], ARGV[3]
local max = tonumber(ARGV[7])
local base = 'passerby:room:' .. room
raise_user(uid)
raise(room, tonumber(ARGV[8]))
local before = tonumber(redis.call('GET', base .. ':seq') or '0')
redis.call('HINCRBY', 'passerby:instance:' .. inst .. ':sockets', room .. ' ' .. uid, 1)
redis.call('HINCRBY', 'passerby:user:' .. uid .. ':rooms', room, 1)
local n = redis.call('HINCRBY', base .. ':users', uid, 1)
redis.call('HSET', base .. ':info', uid, ARGV[4])
redis.call('HSET', base .. ':left', uid, ARGV[6])
local joined = ''
if n == 1 then
  redis.call('ZADD', base .. ':order', redis.call('INCR', base .. ':arrivals'), uid)
  joined = emit(room, '"join"', ARGV[4], nil, ARGV[5], '0 0', true, max)
end
local list_id = redis.call('INCR', base .. ':seq')
local history_id = redis.call('INCR', base .. ':seq')
local uids = redis.call('ZRANGE', base .. ':order', 0, -1)
local users = {}
if #uids > 0 then
  users = redis.call('HMGET', base .. ':info', unpack(uids))
end
local first = redis.call('XRANGE', base .. ':stream', '-', '+', 'COUNT', 1)
local first_id = 0
if #first > 0 then
  first_id = tonumber(string.match(first[1][1], '^(%d+)'))
end
return {before, joined, list_id, history_id, '[' .. table.concat(users, ',') .. ']', first_id}
