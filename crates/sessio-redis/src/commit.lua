-- sessio-redis commit: applies one Patch to the session hash KEYS[1], atomically.
--
-- ARGV[1] the header: its first byte '1' if the patch may create the session, else
--         '0'; its second '1' to clear the session first, else '0'; the rest the time
--         to live in milliseconds, or nothing for no expiry (PERSIST)
-- then one pair per change: the op ('s' set, 'r' remove, 'i' increment) followed by
--         the field, in one argument; the value (or the increment; '' for a removal)
--
-- (Few arguments on purpose: every argument costs the client an encoded frame.)
--
-- Returns {0} when the session is missing and may not be created, {1, c1, c2, ...} when
-- applied (the new counters, as decimal strings: Lua numbers are doubles and would
-- round an i64), or {-1, 'nan'|'ovf', field} when an increment fails. A failure is
-- detected before anything is written, so a failed patch changes nothing (Redis does
-- not roll back the writes of a script that errors half-way).
--
-- Counters follow Rust's `str::parse::<i64>` exactly (optional '+' or '-', decimal
-- digits, leading zeros allowed) and are stored as Rust's `i64::to_string`. They are
-- computed as two exact doubles (hi * 1e9 + lo), never as one double.

local key = KEYS[1]
local exists = redis.call('EXISTS', key) == 1
local head = ARGV[1]
if string.sub(head, 1, 1) ~= '1' and not exists then
  return {0}
end
local clear = string.sub(head, 2, 2) == '1'
local ttl = string.sub(head, 3)

local B = 1000000000
local MAX_HI, MAX_LO, MIN_LO = 9223372036, 854775807, 854775808

-- Returns hi, lo (both carrying the sign), or nil if `s` is not a decimal i64.
local function parse(s)
  local sign, digits = string.match(s, '^([+-]?)(%d+)$')
  if not digits then return nil end
  digits = string.gsub(digits, '^0+', '')
  if #digits > 19 then return nil end
  local hi, lo = 0, 0
  if #digits > 9 then
    hi = tonumber(string.sub(digits, 1, #digits - 9))
    lo = tonumber(string.sub(digits, -9))
  elseif #digits > 0 then
    lo = tonumber(digits)
  end
  local neg = sign == '-'
  if hi > MAX_HI or (hi == MAX_HI and lo > (neg and MIN_LO or MAX_LO)) then return nil end
  if neg then return -hi, -lo end
  return hi, lo
end

local function add(ah, al, bh, bl)
  local hi, lo = ah + bh, al + bl
  if lo >= B then hi = hi + 1; lo = lo - B elseif lo <= -B then hi = hi - 1; lo = lo + B end
  if hi > 0 and lo < 0 then hi = hi - 1; lo = lo + B
  elseif hi < 0 and lo > 0 then hi = hi + 1; lo = lo - B end
  return hi, lo
end

local function in_range(hi, lo)
  if hi > MAX_HI or (hi == MAX_HI and lo > MAX_LO) then return false end
  if hi < -MAX_HI or (hi == -MAX_HI and lo < -MIN_LO) then return false end
  return true
end

local function format(hi, lo)
  if hi == 0 then return string.format('%d', lo) end
  local s = string.format('%d%09d', math.abs(hi), math.abs(lo))
  if hi < 0 then return '-' .. s end
  return s
end

-- Pass 1: compute the final value of every touched field (false = removed) and every
-- counter, reading only the fields that increments need. Nothing is written yet.
local final, order, counters = {}, {}, {}
for i = 2, #ARGV - 1, 2 do
  local tagged, value = ARGV[i], ARGV[i + 1]
  local op, field = string.sub(tagged, 1, 1), string.sub(tagged, 2)
  if final[field] == nil then order[#order + 1] = field end
  if op == 's' then
    final[field] = value
  elseif op == 'r' then
    final[field] = false
  else
    local current = final[field]
    if current == nil then
      if clear or not exists then current = false else current = redis.call('HGET', key, field) end
    end
    local hi, lo = 0, 0
    if current then
      hi, lo = parse(current)
      if hi == nil then return {-1, 'nan', field} end
    end
    local bh, bl = parse(value)
    if bh == nil then return {-1, 'nan', field} end
    hi, lo = add(hi, lo, bh, bl)
    if not in_range(hi, lo) then return {-1, 'ovf', field} end
    local v = format(hi, lo)
    final[field] = v
    counters[#counters + 1] = v
  end
end

-- Pass 2: write. The marker field "\0" (session keys never hold NUL) keeps a session
-- with no keys alive as a hash, and records the format version.
if clear and exists then redis.call('DEL', key) end
if clear or not exists then redis.call('HSET', key, '\0', '1') end
for _, field in ipairs(order) do
  local v = final[field]
  if v then redis.call('HSET', key, field, v) else redis.call('HDEL', key, field) end
end
if ttl == '' then
  redis.call('PERSIST', key)
else
  redis.call('PEXPIRE', key, ttl)
end

-- Read the key once more: Redis forgets a tracked key when it is written, even for
-- the client whose write NOLOOP keeps from being reported (client tracking, feature
-- `tracking`). The read tracks it again for this connection, so that a later write by
-- anyone else is reported.
redis.call('EXISTS', key)

local out = {1}
for _, c in ipairs(counters) do out[#out + 1] = c end
return out
