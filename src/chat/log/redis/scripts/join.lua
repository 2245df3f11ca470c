-- ARGV: room, instance, user id, user JSON, `join` data, `left` data (JSON strings), max
-- presence events, highest id the instance saw in the room, socket number, TTL (ms).
-- Returns: last id before, the `join` JSON or '', list id, history id, users JSON, the
-- newest id trimmed from the messages' stream, or just below the oldest kept (what a
-- recovery cannot have any more).
-- Adds the socket's entry (see presence.lua): run twice, or after the socket already left
-- (its join timed out), it counts and announces nothing again.
local room, inst, uid = ARGV[1], ARGV[2], ARGV[3]
local max = tonumber(ARGV[7])
local base = 'passerby:room:' .. room
raise_user(uid)
raise(room, tonumber(ARGV[8]))
local before = tonumber(redis.call('GET', base .. ':seq') or '0')
local expires = now_ms() + tonumber(ARGV[10])
local joined = ''
if add_entry(inst, ARGV[9], room, uid, ARGV[4], ARGV[6], expires) == 2 then
  joined = emit(room, '"join"', ARGV[4], nil, ARGV[5], '0 0', true, max)
end
local list_id = redis.call('INCR', base .. ':seq')
local history_id = redis.call('INCR', base .. ':seq')
local uids = redis.call('ZRANGE', base .. ':order', 0, -1)
local users = {}
if #uids > 0 then
  users = redis.call('HMGET', base .. ':info', unpack(uids))
end
-- Not the oldest id kept: presence lives apart, so the first message may well come after
-- ids that were never trimmed. No streams at all: history is off, or Redis lost it.
local pruned = before
if redis.call('EXISTS', base .. ':stream') == 1 then
  -- Trimming leaves no mark of what went (max-deleted-entry-id is for XDEL), but a stream
  -- that holds fewer than it was given, less what moderators deleted (delete.lua counts
  -- those), was trimmed up to just below its first entry.
  pruned = 0
  local info = redis.call('XINFO', 'STREAM', base .. ':stream')
  local fields = {}
  for i = 1, #info, 2 do
    fields[info[i]] = info[i + 1]
  end
  local deleted = tonumber(redis.call('GET', base .. ':deleted') or '0')
  local length = tonumber(fields['length'])
  if tonumber(fields['entries-added']) - deleted > length then
    if length == 0 then
      pruned = before
    else
      pruned = tonumber(string.match(fields['recorded-first-entry-id'], '^(%d+)')) - 1
    end
  end
elseif redis.call('EXISTS', base .. ':presence') == 1 then
  pruned = 0
end
return {before, joined, list_id, history_id, '[' .. table.concat(users, ',') .. ']', pruned}
