-- KEYS: the room's seq. ARGV: room, instance, socket number, user id, user JSON, `left` data, max presence
-- events, highest id the instance saw in the room, how long the socket stays marked as
-- left (ms), announced (1 if its join script answered), the prelude's two.
-- Takes the socket's entry out, once: a copy run again, or late, finds it gone. An entry
-- Redis forgot (it restarted empty) of an announced socket still sends its `left`, once,
-- if the user has no other entry in the room. Returns 1 if it took an entry out.
local room, inst, socket, uid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
raise(room, tonumber(ARGV[8]))
local max = tonumber(ARGV[7])
if is_gone(inst, socket) then
  return 0
end
mark_gone(inst, socket, now_ms() + tonumber(ARGV[9]))
if remove_entry(inst .. ':' .. socket, max) then
  return 1
end
if ARGV[10] == '1' and redis.call('HEXISTS', room_base(room) .. ':users', uid) == 0 then
  let_go(room, uid, max, ARGV[5], ARGV[6])
end
return 0
