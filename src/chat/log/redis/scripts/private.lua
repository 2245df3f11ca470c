-- ARGV: sender id, recipient id, type JSON, sender JSON, data JSON, max events.
-- The whisper goes into every room either of the two is in. Returns 0 if the recipient is
-- offline everywhere.
local from, to = ARGV[1], ARGV[2]
local to_rooms = redis.call('HKEYS', 'passerby:user:' .. to .. ':rooms')
if #to_rooms == 0 then
  return 0
end
local to_json = redis.call('HGET', 'passerby:room:' .. to_rooms[1] .. ':info', to)
local rooms = {}
for _, r in ipairs(to_rooms) do rooms[r] = true end
for _, r in ipairs(redis.call('HKEYS', 'passerby:user:' .. from .. ':rooms')) do rooms[r] = true end
for r in pairs(rooms) do
  emit(r, ARGV[3], ARGV[4], to_json, ARGV[5], from .. ' ' .. to, false, tonumber(ARGV[6]))
end
return 1
