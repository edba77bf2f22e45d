-- sessio-redis index_user: records session ARGV[1] in the user index KEYS[1], a sorted
-- set of store keys scored by each session's deadline in milliseconds since the epoch
-- on Redis's clock ('inf' for a session with no deadline).
--
-- ARGV[1] the session's store key
-- ARGV[2] the session's time to live in milliseconds, or '' for no deadline
-- ARGV[3] grace in milliseconds: how long past its score a member is kept, and the
--         index past its latest score, to absorb the few milliseconds between the
--         commit that set the session's TTL and this call
--
-- A score only ever grows: if two requests' commits and index calls interleave, the
-- index keeps the later deadline, never one shorter than the session's real TTL (a
-- member dropped while its session lives would survive "log out everywhere").
--
-- Drops the members whose score passed more than grace ago (sessions that ended), then
-- sets the index's own expiry to its latest score plus grace, or PERSIST when a session
-- has no deadline. Returns how many members have no deadline: those never age out, so
-- the caller checks them for existence when there are many.
--
-- Only KEYS[1] is touched (the sessions live on other cluster slots); the time comes
-- from Redis (TIME), so clock skew between app servers and Redis does not move scores.

local key, member, ttl = KEYS[1], ARGV[1], ARGV[2]
local grace = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. string.format('%d', now - grace))

local score
if ttl == '' then score = math.huge else score = now + tonumber(ttl) end
local old = redis.call('ZSCORE', key, member)
if not old or tonumber(old) < score then
  local text = score == math.huge and 'inf' or string.format('%d', score)
  redis.call('ZADD', key, text, member)
end

local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
local latest = tonumber(last[2])
if latest == math.huge then
  redis.call('PERSIST', key)
else
  redis.call('PEXPIREAT', key, string.format('%d', latest + grace))
end
return redis.call('ZCOUNT', key, 'inf', 'inf')
