-- ARGV: the sender's room, sender id, recipient id, type JSON, sender JSON, data JSON, max
-- events, highest id the instance saw in the room.
-- One event, kept in the sender's room with its next id and visible to the two (`<a> <b>`);
-- every instance's hub also hands it to the pair's sockets in other rooms (see `chat::hub`),
-- so nothing here looks at the rooms either of them is in. Returns 0 if the recipient is
-- offline everywhere.
local room, from, to = ARGV[1], ARGV[2], ARGV[3]
-- Any one of the recipient's rooms holds their JSON; HRANDFIELD picks one without listing.
local some_room = redis.call('HRANDFIELD', 'passerby:user:' .. to .. ':rooms')
if not some_room then
  return 0
end
local to_json = redis.call('HGET', 'passerby:room:' .. some_room .. ':info', to)
if not to_json then
  return 0
end
raise(room, tonumber(ARGV[8]))
raise_user(from)
emit(room, ARGV[4], ARGV[5], to_json, ARGV[6], from .. ' ' .. to, false, tonumber(ARGV[7]))
return 1
