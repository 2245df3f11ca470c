-- ARGV: instance, TTL (ms), max presence events, then for each socket: its number, room,
-- user id, user JSON, `join` data, `left` data, highest id the instance saw in the room;
-- then the prelude's two.
-- Puts back the entries of live sockets that Redis does not have. Forgotten (Redis
-- restarted empty): silently, since nobody was told they left. Reaped while alive (the
-- instance could not reach Redis for a TTL): with a `join`, since everyone saw `left`.
-- A socket that left meanwhile stays out. Returns how many it put back.
local inst, ttl, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local expires = now_ms() + ttl
local restored = 0
for i = 4, LAST, 7 do
  local socket, room, uid, user = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local sid = inst .. ':' .. socket
  raise_user(uid)
  raise(room, tonumber(ARGV[i + 6]))
  local added = add_entry(inst, socket, room, uid, user, ARGV[i + 5], expires)
  if added and added > 0 then
    restored = restored + 1
  end
  if redis.call('ZREM', REAPED, sid) == 1 and added == 2 then
    emit(room, '"join"', user, nil, ARGV[i + 4], '0 0', true, max)
  end
  touch(room)
end
return restored
