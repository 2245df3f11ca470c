-- Shared by every passerby script: each room event goes through `emit`, inside one script
-- call, so its id, its place in the stream and its publication can never disagree.
--
-- Keys: a room's are all under its hash tag, passerby:{<r>}:…, so they hash to one slot (see
-- README, "Keys and Redis Cluster"): seq (last id), stream (the messages' history, entry id
-- <id>-0), presence (`join` and `left`, kept apart under their own bound, so they never push
-- messages out), the sockets' entries (see presence.lua), users (user -> sockets in the
-- cluster), order (arrival order), arrivals, info (user -> user JSON), left (user -> the
-- data of their `left`, a JSON string), epoch (see `raise`), deleted (see join.lua),
-- applied:<instance> and cid:<sender>:<cid> (see emit.lua). Every script takes its room's
-- seq key first, so a cluster sends it to the room's node, and touches no key of another
-- slot: what crosses rooms (where a user is, the floor, the user counter, which rooms have
-- entries) is the instance's to call apart. A room's channel stays passerby:room:<r>
-- (channels are not keys).
--
-- Every script's last three arguments are the same: the instance's floor for room ids (see
-- `raise`), the age past which messages go (ms, 0 keeps them) and how long an idle room's
-- keys live (ms); loops over ARGV stop before them.
local FLOOR = tonumber(ARGV[#ARGV - 2])
local MAX_AGE = tonumber(ARGV[#ARGV - 1])
local ROOM_TTL = tonumber(ARGV[#ARGV])
local LAST = #ARGV - 3

-- A room's key prefix, under its hash tag.
local function room_base(room)
  return 'passerby:{' .. room .. '}'
end

-- The room's channel (`wire::CHANNELS`).
local function channel(room)
  return 'passerby:room:' .. room
end

local ROOM_KEYS = {':seq', ':stream', ':presence', ':users', ':order', ':arrivals', ':info',
  ':left', ':epoch', ':deleted', ':sockets', ':expiry', ':gone', ':reaped'}

-- Activity: the room's keys live another ROOM_TTL. A room nobody is in and nobody writes to
-- goes away whole (`position.lua` touches the rooms with sockets, however quiet).
local function touch(room)
  local base = room_base(room)
  for _, suffix in ipairs(ROOM_KEYS) do
    redis.call('PEXPIRE', base .. suffix, ROOM_TTL)
  end
end

-- Retention by age: the stream's entries older than MAX_AGE go, oldest first, at most 128 a
-- call (each write, join and position check trims what aged since the one before). Entry
-- ids are room ids, not times, so the age is read from each entry's JSON (its top-level
-- "time", which serde and `emit` write once, unescaped).
local function trim_age(base)
  if MAX_AGE <= 0 then
    return
  end
  local t = redis.call('TIME')
  local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - MAX_AGE
  local stream = base .. ':stream'
  local from, first_kept, last_old = '-', nil, nil
  for _ = 1, 8 do
    local slice = redis.call('XRANGE', stream, from, '+', 'COUNT', 16)
    for _, entry in ipairs(slice) do
      local fields, body = entry[2], nil
      for i = 1, #fields, 2 do
        if fields[i] == 'b' then
          body = fields[i + 1]
        end
      end
      local time = body and tonumber(string.match(body, ',"time":(%d+)'))
      if time and time >= cutoff then
        first_kept = entry[1]
        break
      end
      last_old = entry[1]
    end
    if first_kept or #slice < 16 then
      break
    end
    from = '(' .. last_old
  end
  if first_kept then
    redis.call('XTRIM', stream, 'MINID', first_kept)
  elseif last_old then
    redis.call('XTRIM', stream, 'MINID', (tonumber(string.match(last_old, '^(%d+)')) + 1) .. '-0')
  end
end

-- Trimming leaves no mark of what went (max-deleted-entry-id is for XDEL), but a stream
-- that holds fewer than it was given, less what moderators deleted (delete.lua counts
-- those), was trimmed up to just below its first entry. Returns nil if the room's stream
-- is whole (or there is none), -1 if it was trimmed empty, else the id just below its
-- first entry; and the last id the stream was given.
local function trimmed(base)
  if redis.call('EXISTS', base .. ':stream') == 0 then
    return nil
  end
  local info = redis.call('XINFO', 'STREAM', base .. ':stream')
  local fields = {}
  for i = 1, #info, 2 do
    fields[info[i]] = info[i + 1]
  end
  local deleted = tonumber(redis.call('GET', base .. ':deleted') or '0')
  local length = tonumber(fields['length'])
  if tonumber(fields['entries-added']) - deleted <= length then
    return nil
  end
  local last = tonumber(string.match(fields['last-generated-id'], '^(%d+)'))
  if length == 0 then
    return -1, last
  end
  return tonumber(string.match(fields['recorded-first-entry-id'], '^(%d+)')) - 1, last
end

-- An event arrives in pieces, each already JSON as serde writes it: its `type`, the user
-- and the `data` (and, for a whisper, the recipient, from room:<r>:info). `emit` builds the
-- object in the order of `protocol::ServerEvent`, with the id it assigns, the Redis clock
-- and, on presence events, the count:
-- {"id":…,"type":…,"user":…[,"to":…],"data":…,"time":…[,"count":…]}

-- `to`: the recipient's JSON, or nil for an event to the room. `counted` events are presence:
-- they go to the presence stream, and `max` is its bound.
local function emit(room, kind, user, to, data, vis, counted, max)
  local base = room_base(room)
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
      trim_age(base)
    end
  end
  touch(room)
  redis.call('PUBLISH', channel(room), id .. ' ' .. vis .. ' ' .. json)
  return json
end

-- A Redis that lost its data (restarted without persistence) would start ids again at 1;
-- each instance passes the highest id it has seen in the room, so ids never go back for
-- anyone connected. A room Redis holds no sequence for (new, or lost) starts above FLOOR,
-- the highest id of any room the instances saw (each keeps it in its data dir and learns
-- the others' through passerby:floor, see `gaps.rs`), so ids an instance that did not see
-- this room handed out before are not handed out again. Whichever script first writes a
-- room gives it an epoch, room:<r>:epoch, a token that changes when Redis lost the room:
-- sockets are then told `truncated` (see `gaps.rs`).
local function raise(room, known)
  local base = room_base(room)
  local seq = redis.call('GET', base .. ':seq')
  if not seq then
    known = math.max(known, FLOOR)
  end
  if redis.call('EXISTS', base .. ':epoch') == 0 then
    local t = redis.call('TIME')
    redis.call('SET', base .. ':epoch', t[1] .. '.' .. t[2])
  end
  if tonumber(seq or '0') < known then
    redis.call('SET', base .. ':seq', string.format('%.0f', known))
  end
  touch(room)
end
