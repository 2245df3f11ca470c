-- KEYS: the room's seq. ARGV: room, instance, user id, user JSON, `join` data, `left` data (JSON strings), max
-- presence events, highest id the instance saw in the room, socket number, TTL (ms), the
-- size above which a room is big (0: none is), a big room's list page, the prelude's three.
-- Returns: last id before, the `join` JSON or '', list id, history id, users JSON, the
-- newest id trimmed from the messages' stream, or just below the oldest kept (what a
-- recovery cannot have any more), the room's count, and the cursor after the users listed
-- (0 if none follow), and the joiner's arrival in the room (see `presence.rs`).
-- A big room's joiner gets its first page only, so a join costs a page, not the room: a
-- room of n users that fills would otherwise cost O(n^2) in Redis and on the wire.
-- Adds the socket's entry (see presence.lua): run twice, or after the socket already left
-- (its join timed out), it counts and announces nothing again.
local room, inst, uid = ARGV[1], ARGV[2], ARGV[3]
local max = tonumber(ARGV[7])
local base = room_base(room)
raise(room, tonumber(ARGV[8]))
local before = tonumber(redis.call('GET', base .. ':seq') or '0')
local expires = now_ms() + tonumber(ARGV[10])
local joined = ''
if add_entry(room, inst .. ':' .. ARGV[9], uid, ARGV[4], ARGV[6], expires) == 2 then
  joined = emit(room, '"join"', ARGV[4], nil, ARGV[5], '0 0', true, max)
end
local list_id = redis.call('INCR', base .. ':seq')
local history_id = redis.call('INCR', base .. ':seq')
local big, page = tonumber(ARGV[11]), tonumber(ARGV[12])
local count = redis.call('ZCARD', base .. ':order')
local last = -1
if big > 0 and count > big then
  last = math.max(page, 1) - 1
end
local ranked = redis.call('ZRANGE', base .. ':order', 0, last, 'WITHSCORES')
local users = {}
-- In slices: unpack has a limit on how many values it spreads (LUAI_MAXCSTACK).
for i = 1, #ranked, 2000 do
  local uids = {}
  for j = i, math.min(i + 1999, #ranked), 2 do
    table.insert(uids, ranked[j])
  end
  for _, json in ipairs(redis.call('HMGET', base .. ':info', unpack(uids))) do
    if json then
      table.insert(users, json)
    end
  end
end
local cursor = 0
if #ranked > 0 and #ranked / 2 < count then
  cursor = tonumber(ranked[#ranked]) + 1
end
-- Messages past the age go before the joiner reads its history.
trim_age(base)
-- Not the oldest id kept: presence lives apart, so the first message may well come after
-- ids that were never trimmed. No streams at all: history is off, or Redis lost it.
local pruned = before
if redis.call('EXISTS', base .. ':stream') == 1 then
  local below = trimmed(base)
  pruned = 0
  if below == -1 then
    pruned = before
  elseif below then
    pruned = below
  end
elseif redis.call('EXISTS', base .. ':presence') == 1 then
  pruned = 0
end
-- Its keys made here (seq, the entry's counts) live as long as the rest.
touch(room)
local listed = '[' .. table.concat(users, ',') .. ']'
return {before, joined, list_id, history_id, listed, pruned, count, cursor, arrival(room, uid)}
