//! The moderation store's writes as Lua scripts: each step over several keys (all under the
//! `{moderation}` tag, passed through KEYS so a cluster routes it) and its publication at once.

/// KEYS: moderators, their added times. ARGV: name, token hash, now. 1 if added.
pub(super) const ADD_MODERATOR: &str = r"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
";

/// KEYS: moderators, their added times. ARGV: name. 1 if there was one.
pub(super) const REMOVE_MODERATOR: &str = r"
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return removed
";

/// KEYS: a hash of timed entries, its index by end. ARGV: now, field, JSON, end (a score,
/// `+inf` for never), channel, message.
pub(super) const PUT_TIMED: &str = r"
for _, ended in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])) do
  redis.call('HDEL', KEYS[1], ended)
  redis.call('ZREM', KEYS[2], ended)
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
redis.call('PUBLISH', ARGV[5], ARGV[6])
";

/// KEYS: a hash of timed entries, its index by end. ARGV: field, channel, message. 1 if
/// the entry was there.
pub(super) const REMOVE_TIMED: &str = r"
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return removed
";

/// KEYS: a hash of timed entries, its index by end. ARGV: the fields that ended. One call
/// each, as a long list would not fit Lua's stack through `unpack`.
pub(super) const FORGET: &str = r"
for _, field in ipairs(ARGV) do
  redis.call('HDEL', KEYS[1], field)
  redis.call('ZREM', KEYS[2], field)
end
";

/// KEYS: the room settings. ARGV: room, JSON (empty to clear), channel, message.
pub(super) const PUT_ROOM: &str = r"
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
";

/// KEYS: the word filter. ARGV: JSON, channel, message.
pub(super) const PUT_WORD_FILTER: &str = r"
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
";
