-- wrk script for scripts/bench/soak.sh: new and returning sessions, mixed.
--
-- usage: wrk ... -s scripts/bench/soak.lua URL -- [NEW_PERCENT] [READ_PERCENT] [POOL]
--
-- Each thread keeps a pool of up to POOL (default 2048) session cookies. Every request:
--   NEW_PERCENT  (default 20) of the time: GET /hit with no cookie: a new session,
--                whose cookie replaces a random slot of the pool (the old session is
--                abandoned and left to expire in the store: expiry churns all the time);
--   READ_PERCENT (default 10): GET /all with a pooled cookie (a read, no write);
--   otherwise:   GET /hit with a pooled cookie (a returning session: read + write).
-- A pooled session that expired meanwhile answers as a new one ("1" and a new cookie),
-- which then takes its slot.
--
-- done() prints one machine-readable line:
--   RESULT requests=.. rps=.. non2xx=.. sock_errors=.. timeouts=.. new=.. lat_p99_us=..

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

local pool = {}       -- "name=value" cookies
local pool_max = 2048
local new_pct, read_pct = 20, 10
bad = 0               -- responses whose status was not 2xx (read back via thread:get)
created = 0           -- new sessions seen

local function strip(setcookie)
   return (setcookie:gsub(";.*$", ""))
end

function init(args)
   new_pct = tonumber(args[1] or "20")
   read_pct = tonumber(args[2] or "10")
   pool_max = tonumber(args[3] or "2048")
   -- one seed per thread: each thread's state lives at its own address
   math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 1000003))
end

function request()
   local r = math.random(100)
   if #pool == 0 or r <= new_pct then
      return wrk.format("GET", "/hit")
   end
   local slot = math.random(#pool)
   local path = "/hit"
   if r <= new_pct + read_pct then
      path = "/all"
   end
   return wrk.format("GET", path, { ["Cookie"] = pool[slot] })
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      bad = bad + 1
      return
   end
   local sc = headers["set-cookie"] or headers["Set-Cookie"]
   if sc and body == "1" then
      -- a brand-new session (no cookie sent, or the pooled one had expired)
      created = created + 1
      local cookie = strip(sc)
      if #pool < pool_max then
         table.insert(pool, cookie)
      else
         pool[math.random(#pool)] = cookie
      end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local b, c = 0, 0
   for _, t in ipairs(threads) do
      b = b + (tonumber(t:get("bad")) or 0)
      c = c + (tonumber(t:get("created")) or 0)
   end
   io.write(string.format(
      "RESULT requests=%d rps=%.1f non2xx=%d sock_errors=%d timeouts=%d new=%d lat_p99_us=%d\n",
      summary.requests, summary.requests / (summary.duration / 1e6), b,
      e.connect + e.read + e.write, e.timeout, c, latency:percentile(99)))
end
