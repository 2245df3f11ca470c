-- Shared by every passerby script: each room event goes through `emit`, inside one script
-- call, so its id, its place in the stream and its publication can never disagree.
--
-- Keys (all under passerby:): room:<r>:seq (last id), room:<r>:stream (the messages'
-- history, entry id <id>-0), room:<r>:presence (`join` and `left`, kept apart under their
-- own bound, so they never push messages out), room:<r>:users (user -> sockets in the
-- cluster), room:<r>:order (arrival order), room:<r>:info (user -> user JSON),
-- room:<r>:left (user -> the data of their `left`, a JSON string), user:<u>:rooms (room ->
-- sockets), room:<r>:epoch (see `raise`), floor (the highest id of any room; see `raise`);
-- the sockets' own entries are in presence.lua.
--
-- An event arrives in pieces, each already JSON as serde writes it: its `type`, the user
-- and the `data` (and, for a whisper, the recipient, from room:<r>:info). `emit` builds the
-- object in the order of `protocol::ServerEvent`, with the id it assigns, the Redis clock
-- and, on presence events, the count:
-- {"id":…,"type":…,"user":…[,"to":…],"data":…,"time":…[,"count":…]}

-- `to`: the recipient's JSON, or nil for an event to the room. `counted` events are presence:
-- they go to the presence stream, and `max` is its bound.
local function emit(room, kind, user, to, data, vis, counted, max)
  local base = 'passerby:room:' .. room
  local id = redis.call('INCR', base .. ':seq')
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local parts = {'{"id":', id, ',"type":', kind, ',"user":', user}
  if to then
    table.insert(parts, ',"to":')
    table.insert(parts, to)
  end
  table.insert(parts, ',"data":')
  table.insert(parts, data)
  table.insert(parts, ',"time":')
  table.insert(parts, string.format('%.0f', ms))
  if counted then
    table.insert(parts, ',"count":')
    table.insert(parts, redis.call('HLEN', base .. ':users'))
  end
  table.insert(parts, '}')
  local json = table.concat(parts)
  if max > 0 then
    if counted then
      -- Exact: a small bound, which `~` would not trim below a whole node (100 entries).
      redis.call('XADD', base .. ':presence', 'MAXLEN', max, id .. '-0', 'v', vis, 'b', json)
    else
      redis.call('XADD', base .. ':stream', 'MAXLEN', '~', max, id .. '-0', 'v', vis, 'b', json)
    end
  end
  redis.call('PUBLISH', base, id .. ' ' .. vis .. ' ' .. json)
  return json
end

-- A Redis that lost its data (restarted without persistence) would start ids again at 1;
-- each instance passes the highest id it has seen in the room, so ids never go back for
-- anyone connected. A room Redis holds no sequence for (new, or lost) starts above
-- passerby:floor, the highest id of any room the instances saw (kept in each one's data dir
-- and raised by position.lua), so ids an instance that did not see this room handed out
-- before are not handed out again. Whichever script first writes a room gives it an epoch,
-- room:<r>:epoch, a token that changes when Redis lost the room: sockets are then told
-- `truncated` (see `gaps.rs`).
local function raise(room, known)
  local base = 'passerby:room:' .. room
  local seq = redis.call('GET', base .. ':seq')
  if not seq then
    known = math.max(known, tonumber(redis.call('GET', 'passerby:floor') or '0'))
  end
  if redis.call('EXISTS', base .. ':epoch') == 0 then
    local t = redis.call('TIME')
    redis.call('SET', base .. ':epoch', t[1] .. '.' .. t[2])
  end
  if tonumber(seq or '0') < known then
    redis.call('SET', base .. ':seq', known)
  end
end

-- The same for user ids: a user still connected keeps theirs to themselves.
local function raise_user(uid)
  if tonumber(redis.call('GET', 'passerby:user_ids') or '0') < tonumber(uid) then
    redis.call('SET', 'passerby:user_ids', uid)
  end
end
