-- ARGV: room, body, max events, whether to count, highest id the instance saw, sender id.
raise(ARGV[1], tonumber(ARGV[5]))
raise_user(ARGV[6])
return emit(ARGV[1], ARGV[2], '0 0', ARGV[4] == '1', tonumber(ARGV[3]))
