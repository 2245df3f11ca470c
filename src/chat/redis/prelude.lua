-- Shared by every passerby script: each room event goes through `emit`, inside one script
-- call, so its id, its place in the stream and its publication can never disagree.
--
-- Keys (all under passerby:): room:<r>:seq (last id), room:<r>:stream (history, entry id
-- <id>-0), room:<r>:users (user -> sockets in the cluster), room:<r>:order (arrival order),
-- room:<r>:info (user -> user JSON), room:<r>:left (user -> `left` template),
-- user:<u>:rooms (room -> sockets), instance:<i> (alive while refreshed),
-- instance:<i>:sockets ("<room> <user>" -> sockets on that instance), instances (set).
--
-- An event body arrives serialized with id 0 and time 0: `{"id":0` ... `,"time":0}`. The
-- script splices in the id it assigns, the Redis clock and, on presence events, the count.

local function emit(room, body, vis, counted, max)
  local base = 'passerby:room:' .. room
  local id = redis.call('INCR', base .. ':seq')
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local tail = ',"time":' .. string.format('%.0f', ms)
  if counted then
    tail = tail .. ',"count":' .. redis.call('HLEN', base .. ':users')
  end
  local json = '{"id":' .. id .. string.sub(body, 8, -11) .. tail .. '}'
  if max > 0 then
    redis.call('XADD', base .. ':stream', 'MAXLEN', '~', max, id .. '-0', 'v', vis, 'b', json)
  end
  redis.call('PUBLISH', base, id .. ' ' .. vis .. ' ' .. json)
  return json
end

-- Takes `k` sockets of `uid` in `room` off instance `inst`; the user's last one across the
-- cluster sends `left`.
local function depart(room, inst, uid, k, max)
  local base = 'passerby:room:' .. room
  local field = room .. ' ' .. uid
  local sockets = 'passerby:instance:' .. inst .. ':sockets'
  if redis.call('HINCRBY', sockets, field, -k) <= 0 then
    redis.call('HDEL', sockets, field)
  end
  local rooms = 'passerby:user:' .. uid .. ':rooms'
  if redis.call('HINCRBY', rooms, room, -k) <= 0 then
    redis.call('HDEL', rooms, room)
  end
  if redis.call('HINCRBY', base .. ':users', uid, -k) <= 0 then
    redis.call('HDEL', base .. ':users', uid)
    redis.call('ZREM', base .. ':order', uid)
    redis.call('HDEL', base .. ':info', uid)
    local left = redis.call('HGET', base .. ':left', uid)
    redis.call('HDEL', base .. ':left', uid)
    if left then
      emit(room, left, '0 0', true, max)
    end
  end
end

-- A Redis that lost its data (restarted without persistence) would start ids again at 1;
-- each instance passes the highest id it has seen in the room, so ids never go back for
-- anyone connected.
local function raise(room, known)
  local key = 'passerby:room:' .. room .. ':seq'
  if tonumber(redis.call('GET', key) or '0') < known then
    redis.call('SET', key, known)
  end
end

-- The same for user ids: a user still connected keeps theirs to themselves.
local function raise_user(uid)
  if tonumber(redis.call('GET', 'passerby:user_ids') or '0') < tonumber(uid) then
    redis.call('SET', 'passerby:user_ids', uid)
  end
end
