-- ARGV: an instance, max presence events. If its liveness key expired, its users leave everywhere:
-- whichever survivor runs this first does it, once.
local dead = ARGV[1]
if redis.call('EXISTS', 'passerby:instance:' .. dead) == 1 then
  return 0
end
local key = 'passerby:instance:' .. dead .. ':sockets'
local entries = redis.call('HGETALL', key)
for i = 1, #entries, 2 do
  local room, uid = string.match(entries[i], '^(%S+) (%d+)$')
  if room then
    depart(room, dead, uid, tonumber(entries[i + 1]), tonumber(ARGV[2]))
  end
end
redis.call('DEL', key)
redis.call('SREM', 'passerby:instances', dead)
return 1
