-- KEYS: the room's seq. ARGV: the room, the highest id the instance saw there, and the id
-- its sockets are known to have had everything up to; then the prelude's three.
-- The room is touched: its keys live while it has sockets anywhere. Raises its sequence as
-- any script would (`raise`: a room Redis lost comes back with a new epoch). Returns its
-- last id, its epoch, and if the last id is past what the sockets had, the newest id
-- trimmed from the messages' stream (0 if none was, or no stream is kept), so what is
-- missing and no longer kept can be told apart from what can be sent.
local room, known, had = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
raise(room, known)
local base = room_base(room)
trim_age(base)
local seq = tonumber(redis.call('GET', base .. ':seq') or '0')
local pruned = 0
-- As join.lua reckons it: a stream that holds fewer than it was given, less what moderators
-- deleted, was trimmed up to just below its first entry.
if seq > had and redis.call('EXISTS', base .. ':stream') == 1 then
  local info = redis.call('XINFO', 'STREAM', base .. ':stream')
  local fields = {}
  for i = 1, #info, 2 do
    fields[info[i]] = info[i + 1]
  end
  local deleted = tonumber(redis.call('GET', base .. ':deleted') or '0')
  local length = tonumber(fields['length'])
  if tonumber(fields['entries-added']) - deleted > length then
    if length == 0 then
      pruned = tonumber(string.match(fields['last-generated-id'], '^(%d+)'))
    else
      pruned = tonumber(string.match(fields['recorded-first-entry-id'], '^(%d+)')) - 1
    end
  end
end
return {seq, redis.call('GET', base .. ':epoch'), pruned}
