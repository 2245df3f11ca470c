-- Messages of one room (chat, images, whispers), in one call: a lane of the worker sends what
-- it holds for the room at once, and every instance hears them in one published message.
--
-- KEYS: the room's seq, the calling instance's applied:<instance> key, then the
-- cid:<sender>:<cid> key of each message with a `cid`, in order (the caller builds them,
-- all under the room's hash tag). ARGV: room, max events, highest id the instance saw in the room, the calling instance,
-- the call's number (increasing per instance and room), seconds a `cid` is remembered, the
-- number of messages, then for each seven: sender id, `cid` ('' for none), recipient id (0
-- for the room), type JSON, sender JSON, data JSON, and the recipient's JSON as the rooms
-- they are in have it ('' if they are in none: the caller looked, `send.rs`); then the
-- prelude's three.
--
-- Returns each message's id; the first id of a `cid` the sender already stored here (that
-- message is not stored again); 0 for a whisper whose recipient is offline everywhere.
--
-- A call whose answer was lost (a timeout, a dropped connection) is sent again with the same
-- number: it returns what it returned then and stores nothing; an older call run late (a
-- copy stuck in a frozen Redis's buffers) does nothing. So a retry is never a duplicate.
--
-- The event JSON is built as `emit` in the prelude builds it; published messages are one
-- `<id> <a> <b> <json>` line per event (`wire::parse_published`).
local room = ARGV[1]
local base = room_base(room)
local calls = KEYS[2]
local next_cid = 3
local call = tonumber(ARGV[5])
local window = tonumber(ARGV[6])
local applied = redis.call('GET', calls)
if applied then
  local last = tonumber(string.match(applied, '^%d+'))
  if last == call then
    local ids = {}
    for id in string.gmatch(string.sub(applied, #tostring(last) + 1), '%d+') do
      table.insert(ids, tonumber(id))
    end
    return ids
  elseif last > call then
    return {}
  end
end
raise(room, tonumber(ARGV[3]))
local max, n = tonumber(ARGV[2]), tonumber(ARGV[7])
local t = redis.call('TIME')
local ms = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local ids, published = {}, {}
local trimmed = false
for i = 0, n - 1 do
  local a = 8 + i * 7
  local from, cid, to = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local id, cid_key = 0, nil
  if cid ~= '' then
    cid_key = KEYS[next_cid]
    next_cid = next_cid + 1
    id = tonumber(redis.call('GET', cid_key) or '0')
  end
  if id == 0 then
    local to_json, vis = nil, '0 0'
    if to ~= '0' and ARGV[a + 6] ~= '' then
      to_json = ARGV[a + 6]
      vis = from .. ' ' .. to
    end
    if to == '0' or to_json then
      id = redis.call('INCR', base .. ':seq')
      local parts = {'{"id":', id, ',"type":', ARGV[a + 3], ',"user":', ARGV[a + 4]}
      if to_json then
        table.insert(parts, ',"to":')
        table.insert(parts, to_json)
      end
      table.insert(parts, ',"data":')
      table.insert(parts, ARGV[a + 5])
      table.insert(parts, ',"time":')
      table.insert(parts, ms)
      table.insert(parts, '}')
      local json = table.concat(parts)
      if max > 0 then
        redis.call('XADD', base .. ':stream', 'MAXLEN', '~', max, id .. '-0', 'v', vis, 'b', json)
        trimmed = true
      end
      table.insert(published, id .. ' ' .. vis .. ' ' .. json)
      if cid_key then
        redis.call('SET', cid_key, id, 'EX', window)
      end
    end
  end
  ids[i + 1] = id
end
if trimmed then
  trim_age(base)
end
if #published > 0 then
  touch(room)
  redis.call('PUBLISH', channel(room), table.concat(published, '\n'))
end
redis.call('SET', calls, call .. ' ' .. table.concat(ids, ' '), 'EX', window)
return ids
