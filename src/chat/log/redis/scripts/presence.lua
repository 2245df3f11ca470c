-- Presence, shared by join, leave and beat (after the prelude): one entry per socket, with
-- its own expiry, never a counter bumped blindly, so a script that runs twice or late
-- counts nothing twice.
--
-- Keys (all under passerby:): presence:sockets (socket -> "<room> <user>"), presence:expiry
-- (socket -> when it expires, Redis ms), instance:<i>:gone (socket number -> until when,
-- the sockets that left: a late join or beat does not bring them back), presence:reaped
-- (socket -> when, the sockets taken for dead: a beat that brings one back announces it),
-- presence:beat (when any instance last beat) and presence:resumed (when Redis was seen
-- again after a pause: nothing expires until a TTL later, so every live instance has
-- refreshed its entries first). A socket is "<instance>:<number>".
--
-- The counts derived from the entries, each changed in the same script as the entry it
-- counts: room:<r>:users (user -> entries), user:<u>:rooms (room -> entries); room:<r>:order
-- (arrival), room:<r>:info (user -> user JSON) and room:<r>:left (user -> `left` data) for
-- the users in the room.

local SOCKETS = 'passerby:presence:sockets'
local EXPIRY = 'passerby:presence:expiry'
local REAPED = 'passerby:presence:reaped'

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function gone_key(inst)
  return 'passerby:instance:' .. inst .. ':gone'
end

-- Whether the socket left already (its entry must not come back).
local function is_gone(inst, socket)
  return redis.call('ZSCORE', gone_key(inst), socket) ~= false
end

-- Marks the socket as left until `until_ms`.
local function mark_gone(inst, socket, until_ms)
  local key = gone_key(inst)
  redis.call('ZADD', key, until_ms, socket)
  redis.call('PEXPIREAT', key, until_ms)
end

-- Adds the socket's entry, expiring at `expires`. Returns nil if it left already, 0 if its
-- entry was there (its expiry is moved on), 1 if it added it to a user already in the room,
-- 2 if its user just came into the room (the caller announces it, or not).
local function add_entry(inst, socket, room, uid, user, left, expires)
  if is_gone(inst, socket) then
    return nil
  end
  local sid = inst .. ':' .. socket
  if redis.call('HSETNX', SOCKETS, sid, room .. ' ' .. uid) == 0 then
    redis.call('ZADD', EXPIRY, expires, sid)
    return 0
  end
  redis.call('ZADD', EXPIRY, expires, sid)
  redis.call('HINCRBY', 'passerby:user:' .. uid .. ':rooms', room, 1)
  local base = room_base(room)
  local n = redis.call('HINCRBY', base .. ':users', uid, 1)
  redis.call('HSET', base .. ':info', uid, user)
  redis.call('HSET', base .. ':left', uid, left)
  if n == 1 then
    redis.call('ZADD', base .. ':order', redis.call('INCR', base .. ':arrivals'), uid)
    return 2
  end
  return 1
end

-- The user is out of the room: sends `left` with what the room kept of them, or with
-- `user` and `left` if it kept nothing (Redis forgot them).
local function let_go(room, uid, max, user, left)
  local base = room_base(room)
  redis.call('HDEL', base .. ':users', uid)
  redis.call('ZREM', base .. ':order', uid)
  user = redis.call('HGET', base .. ':info', uid) or user
  left = redis.call('HGET', base .. ':left', uid) or left
  redis.call('HDEL', base .. ':info', uid)
  redis.call('HDEL', base .. ':left', uid)
  if user and left then
    emit(room, '"left"', user, nil, left, '0 0', true, max)
  end
end

-- Removes the socket's entry if it is there; the user's last entry in the room sends
-- `left`. Returns the room, or nil if there was no entry.
local function remove_entry(sid, max)
  local where = redis.call('HGET', SOCKETS, sid)
  if not where then
    return nil
  end
  redis.call('HDEL', SOCKETS, sid)
  redis.call('ZREM', EXPIRY, sid)
  local room, uid = string.match(where, '^(%S+) (%d+)$')
  if not room then
    return nil
  end
  local rooms = 'passerby:user:' .. uid .. ':rooms'
  if redis.call('HINCRBY', rooms, room, -1) <= 0 then
    redis.call('HDEL', rooms, room)
  end
  if redis.call('HINCRBY', room_base(room) .. ':users', uid, -1) <= 0 then
    let_go(room, uid, max, false, false)
  end
  return room
end
