-- ARGV: sender id, recipient id, head (up to `"to":`), tail (from `,"data"`), max events.
-- The whisper goes into every room either of the two is in. Returns 0 if the recipient is
-- offline everywhere.
local from, to = ARGV[1], ARGV[2]
local to_rooms = redis.call('HKEYS', 'passerby:user:' .. to .. ':rooms')
if #to_rooms == 0 then
  return 0
end
local to_json = redis.call('HGET', 'passerby:room:' .. to_rooms[1] .. ':info', to)
local body = ARGV[3] .. to_json .. ARGV[4]
local rooms = {}
for _, r in ipairs(to_rooms) do rooms[r] = true end
for _, r in ipairs(redis.call('HKEYS', 'passerby:user:' .. from .. ':rooms')) do rooms[r] = true end
for r in pairs(rooms) do
  emit(r, body, from .. ' ' .. to, false, tonumber(ARGV[5]))
end
return 1
