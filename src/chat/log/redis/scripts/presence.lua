-- Presence, shared by join, leave, beat and restore (after the prelude): one entry per
-- socket, with its own expiry, never a counter bumped blindly, so a script that runs twice
-- or late counts nothing twice.
--
-- Each entry lives in its socket's room, under the room's hash tag, so every presence
-- script keeps to one slot: sockets (socket -> user id), expiry (socket -> when it
-- expires, Redis ms), gone (socket -> until when: the sockets that left, so a late join or
-- beat does not bring them back) and reaped (socket -> when: taken for dead, so a restore
-- that brings one back announces it). A socket is "<instance>:<number>".
--
-- The counts derived from the entries, each changed in the same script as the entry it
-- counts: users (user -> entries), order (arrival), info (user -> user JSON) and left (user
-- -> `left` data) for the users in the room. Where each user is (passerby:user:<u>:rooms)
-- and which rooms hold entries (passerby:{presence}:rooms) are other slots: scripts return
-- what changed and the instance tells them (`presence.rs`, `heartbeat.rs`).

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Whether the socket left already (its entry must not come back).
local function is_gone(base, sid)
  return redis.call('ZSCORE', base .. ':gone', sid) ~= false
end

-- Marks the socket as left until `until_ms`.
local function mark_gone(base, sid, until_ms)
  redis.call('ZADD', base .. ':gone', until_ms, sid)
end

-- Adds the socket's entry, expiring at `expires`. Returns nil if it left already, 0 if its
-- entry was there (its expiry is moved on), 1 if it added it to a user already in the room,
-- 2 if its user just came into the room (the caller announces it, or not).
local function add_entry(room, sid, uid, user, left, expires)
  local base = room_base(room)
  if is_gone(base, sid) then
    return nil
  end
  redis.call('ZADD', base .. ':expiry', expires, sid)
  if redis.call('HSETNX', base .. ':sockets', sid, uid) == 0 then
    return 0
  end
  local n = redis.call('HINCRBY', base .. ':users', uid, 1)
  redis.call('HSET', base .. ':info', uid, user)
  redis.call('HSET', base .. ':left', uid, left)
  if n == 1 then
    redis.call('ZADD', base .. ':order', redis.call('INCR', base .. ':arrivals'), uid)
    return 2
  end
  return 1
end

-- The user's arrival in the room (what passerby:user:<u>:rooms records), or 0.
local function arrival(room, uid)
  return tonumber(redis.call('ZSCORE', room_base(room) .. ':order', uid) or '0')
end

-- The user is out of the room: sends `left` with what the room kept of them, or with
-- `user` and `left` if it kept nothing (Redis forgot them). Returns their arrival, or 0.
local function let_go(room, uid, max, user, left)
  local base = room_base(room)
  local came = arrival(room, uid)
  redis.call('HDEL', base .. ':users', uid)
  redis.call('ZREM', base .. ':order', uid)
  user = redis.call('HGET', base .. ':info', uid) or user
  left = redis.call('HGET', base .. ':left', uid) or left
  redis.call('HDEL', base .. ':info', uid)
  redis.call('HDEL', base .. ':left', uid)
  if user and left then
    emit(room, '"left"', user, nil, left, '0 0', true, max)
  end
  return came
end

-- Removes the socket's entry if it is there; the user's last entry in the room sends
-- `left`. Returns nil if there was no entry, else the user id and, if the user left the
-- room, their arrival (0 if they are still in it).
local function remove_entry(room, sid, max)
  local base = room_base(room)
  local uid = redis.call('HGET', base .. ':sockets', sid)
  redis.call('ZREM', base .. ':expiry', sid)
  if not uid then
    return nil
  end
  redis.call('HDEL', base .. ':sockets', sid)
  if redis.call('HINCRBY', base .. ':users', uid, -1) <= 0 then
    return uid, let_go(room, uid, max, false, false)
  end
  return uid, 0
end
