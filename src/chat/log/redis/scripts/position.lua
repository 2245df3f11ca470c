-- ARGV: the instance's floor for room ids and for user ids (see `store::Floor`), then for
-- each room with sockets on the instance: the room, the highest id the instance saw there,
-- and the id its sockets are known to have had everything up to; then the prelude's two.
-- Each room listed is touched: its keys live while it has sockets anywhere.
-- Raises passerby:floor and the user counter to the instance's floor, and each room's
-- sequence as any script would (`raise`: a room Redis lost comes back with a new epoch).
-- Returns, per room: its last id, its epoch, and if the last id is past what the sockets
-- had, the newest id trimmed from the messages' stream (0 if none was, or no stream is
-- kept), so what is missing and no longer kept can be told apart from what can be sent.
-- Also returns the user counter, for the instance's floor.
local rooms_floor = tonumber(ARGV[1])
if tonumber(redis.call('GET', 'passerby:floor') or '0') < rooms_floor then
  -- The argument as given: a Lua number would be written as 1e+14 past 14 digits.
  redis.call('SET', 'passerby:floor', ARGV[1])
end
raise_user(ARGV[2])

-- As join.lua reckons it: a stream that holds fewer than it was given, less what moderators
-- deleted, was trimmed up to just below its first entry.
local function trimmed(base)
  if redis.call('EXISTS', base .. ':stream') == 0 then
    return 0
  end
  local info = redis.call('XINFO', 'STREAM', base .. ':stream')
  local fields = {}
  for i = 1, #info, 2 do
    fields[info[i]] = info[i + 1]
  end
  local deleted = tonumber(redis.call('GET', base .. ':deleted') or '0')
  local length = tonumber(fields['length'])
  if tonumber(fields['entries-added']) - deleted <= length then
    return 0
  end
  if length == 0 then
    return tonumber(string.match(fields['last-generated-id'], '^(%d+)'))
  end
  return tonumber(string.match(fields['recorded-first-entry-id'], '^(%d+)')) - 1
end

local out = {}
for i = 3, LAST, 3 do
  local room, known, had = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  raise(room, known)
  local base = room_base(room)
  trim_age(base)
  local seq = tonumber(redis.call('GET', base .. ':seq') or '0')
  local pruned = 0
  if seq > had then
    pruned = trimmed(base)
  end
  table.insert(out, {seq, redis.call('GET', base .. ':epoch'), pruned})
end
return {tonumber(redis.call('GET', 'passerby:user_ids') or '0'), out}
