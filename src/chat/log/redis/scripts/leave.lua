-- KEYS: the room's seq. ARGV: room, instance, socket number, user id, user JSON, `left`
-- data, max presence events, highest id the instance saw in the room, how long the socket
-- stays marked as left (ms), announced (1 if its join script answered), the prelude's three.
-- Takes the socket's entry out, once: a copy run again, or late, finds it gone. An entry
-- Redis forgot (it restarted empty) of an announced socket still sends its `left`, once,
-- if the user has no other entry in the room. Returns 1 if it took an entry out, and the
-- user's arrival if they left the room (0 if not).
local room, sid, uid = ARGV[1], ARGV[2] .. ':' .. ARGV[3], ARGV[4]
local base = room_base(room)
raise(room, tonumber(ARGV[8]))
local max = tonumber(ARGV[7])
if is_gone(base, sid) then
  return {0, 0}
end
mark_gone(base, sid, now_ms() + tonumber(ARGV[9]))
local had, came = remove_entry(room, sid, max)
if had then
  return {1, came}
end
if ARGV[10] == '1' and redis.call('HEXISTS', base .. ':users', uid) == 0 then
  return {0, let_go(room, uid, max, ARGV[5], ARGV[6])}
end
return {0, 0}
