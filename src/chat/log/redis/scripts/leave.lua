-- ARGV: room, instance, user id, max presence events, highest id the instance saw in the room.
raise(ARGV[1], tonumber(ARGV[5]))
depart(ARGV[1], ARGV[2], ARGV[3], 1, tonumber(ARGV[4]))
return 1
