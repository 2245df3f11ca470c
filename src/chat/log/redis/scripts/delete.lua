-- KEYS: the room's seq, stream and deleted keys. ARGV: room, the messages' author (user
-- JSON), max events, highest id the instance saw in the room, then the ids to delete (which
-- the caller read as messages of that author), then the prelude's three.
-- Removes those still in the stream and, if any were, sends the room one `delete` event
-- listing them (`protocol::DeleteEvent`: `data` names a lone id in `id` too). Returns the
-- ids it removed, oldest first.
local room = ARGV[1]
raise(room, tonumber(ARGV[4]))
local stream = KEYS[2]
local gone = {}
for i = 5, LAST do
  if redis.call('XDEL', stream, ARGV[i] .. '-0') == 1 then
    table.insert(gone, ARGV[i])
  end
end
if #gone == 0 then
  return gone
end
-- join.lua tells trimming from deletion by this count.
redis.call('INCRBY', KEYS[3], #gone)
local data
if #gone == 1 then
  data = '{"id":' .. gone[1] .. ',"ids":[' .. gone[1] .. ']}'
else
  data = '{"ids":[' .. table.concat(gone, ',') .. ']}'
end
emit(room, '"delete"', ARGV[2], nil, data, '0 0', false, tonumber(ARGV[3]))
return gone
