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
if seq > had then
  local below, last = trimmed(base)
  if below == -1 then
    pruned = last
  elseif below then
    pruned = below
  end
end
return {seq, redis.call('GET', base .. ':epoch'), pruned}
