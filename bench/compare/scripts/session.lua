-- wrk script for bench/compare/run.sh: every request carries a live session cookie.
--
--   wrk -tT -cC -s session.lua URL -- MODE COOKIE_FILE
--
-- COOKIE_FILE holds one "name=value" line per session, made by run.sh before the run
-- (one request without a cookie per session). A bare server sets no cookie: the file is
-- empty and every request goes out without one.
--
-- MODE
--   conn  one connection per wrk thread (run.sh passes -tC -cC): thread i takes line i
--         and keeps its own cookie jar, replaced by every Set-Cookie that comes back, so
--         each connection is one session whose state advances (also with cookie stores,
--         whose cookie changes on every write). Costs a Lua response() per response.
--   pool  one wrk thread (-t1) for all connections: wrk does not say which connection a
--         response belongs to, so the sessions are used round-robin and their cookies are
--         never updated (same cost for server-side stores, whose cookie does not change;
--         a cookie store keeps receiving the same state). No Lua runs per response.
--
-- done() prints one line that run.sh parses:
--   RESULT rps=.. lat_p99_us=.. lat_mean_us=.. requests=.. non2xx=.. sock_errors=..
--          sessions=.. max_counter=..

local threads = {}
local counter = 1

function setup(thread)
   thread:set("index", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local mode = "pool"
local reqs = {}
local n = 0
local cookie = nil
sessions = 0
bad = 0
maxc = 0

local function read_lines(path)
   local lines = {}
   local f = assert(io.open(path, "r"))
   for line in f:lines() do
      if #line > 0 then
         table.insert(lines, line)
      end
   end
   f:close()
   return lines
end

function init(args)
   mode = args[1] or "pool"
   local lines = read_lines(assert(args[2], "cookie file missing"))
   if mode == "pool" then
      for _, line in ipairs(lines) do
         table.insert(reqs, wrk.format(nil, nil, { ["Cookie"] = line }))
      end
      if #reqs == 0 then
         table.insert(reqs, wrk.format())
      end
      sessions = #lines
      response = nil
   elseif mode == "conn" then
      if #lines > 0 then
         cookie = lines[(index - 1) % #lines + 1]
         sessions = 1
      end
   else
      error("unknown mode " .. mode)
   end
end

function request()
   if mode == "pool" then
      n = n % #reqs + 1
      return reqs[n]
   end
   if cookie then
      return wrk.format(nil, nil, { ["Cookie"] = cookie })
   end
   return wrk.format()
end

function response(status, headers, body)
   if status ~= 200 then
      bad = bad + 1
   end
   local c = tonumber(body)
   if c and c > maxc then
      maxc = c
   end
   local sc = headers["set-cookie"] or headers["Set-Cookie"]
   if sc and cookie then
      cookie = sc:gsub(";.*$", "")
   end
end

function done(summary, latency, requests)
   local s, b, mx = 0, 0, 0
   for _, t in ipairs(threads) do
      s = s + (tonumber(t:get("sessions")) or 0)
      b = b + (tonumber(t:get("bad")) or 0)
      mx = math.max(mx, tonumber(t:get("maxc")) or 0)
   end
   local e = summary.errors
   io.write(string.format(
      "RESULT rps=%.1f lat_p99_us=%d lat_mean_us=%.1f requests=%d non2xx=%d sock_errors=%d sessions=%d bad=%d max_counter=%d\n",
      summary.requests / (summary.duration / 1e6), latency:percentile(99), latency.mean,
      summary.requests, e.status, e.connect + e.read + e.write + e.timeout, s, b, mx))
end
