-- sessio-redis load: the remaining time to live and every field of the session hash
-- KEYS[1], read atomically. Returns nil when the session does not exist (Redis has
-- already dropped expired keys), else {pttl, field1, value1, ...} with pttl -1 when the
-- session has no expiry.
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return nil end
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, ttl)
return out
