-- ARGV: room, instance, user id, max events.
depart(ARGV[1], ARGV[2], ARGV[3], 1, tonumber(ARGV[4]))
return 1
