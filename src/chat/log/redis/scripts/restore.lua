-- KEYS: the room's seq. ARGV: room, instance, TTL (ms), max presence events, highest id the
-- instance saw in the room, then for each socket: its number, user id, user JSON, `join`
-- data, `left` data; then the prelude's three.
-- Puts back the entries of live sockets in the room that Redis does not have. Forgotten
-- (Redis restarted empty): silently, since nobody was told they left. Reaped while alive
-- (the instance could not reach Redis for a TTL): with a `join`, since everyone saw `left`.
-- A socket that left meanwhile stays out. Returns how many it put back, and the arrival of
-- each user it brought back into the room (user id, arrival, …).
local room, inst, ttl, max = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local base = room_base(room)
raise(room, tonumber(ARGV[5]))
local expires = now_ms() + ttl
local restored, entered = 0, {}
for i = 6, LAST, 5 do
  local sid, uid, user = inst .. ':' .. ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local added = add_entry(room, sid, uid, user, ARGV[i + 4], expires)
  if added and added > 0 then
    restored = restored + 1
  end
  if added == 2 then
    table.insert(entered, uid)
    table.insert(entered, arrival(room, uid))
  end
  if redis.call('ZREM', base .. ':reaped', sid) == 1 and added == 2 then
    emit(room, '"join"', user, nil, ARGV[i + 3], '0 0', true, max)
  end
end
touch(room)
return {restored, entered}
