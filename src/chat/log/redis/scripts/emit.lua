-- ARGV: room, type JSON, user JSON, data JSON, max events, highest id the instance saw,
-- sender id.
raise(ARGV[1], tonumber(ARGV[6]))
raise_user(ARGV[7])
emit(ARGV[1], ARGV[2], ARGV[3], nil, ARGV[4], '0 0', false, tonumber(ARGV[5]))
return 1
