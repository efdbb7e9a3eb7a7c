-- wrk script for bench/scale.ts: create streams 0 .. count-1, each with its first message in the
-- creating PUT, then stop.
--   wrk -t1 ... -s bench/lib/scale-create.lua <url> -- <count> <bodyBytes> <pathPrefix> <firstIndex>
-- Request k (k = 0 .. count-1) is `PUT <pathPrefix><firstIndex + k>` (application/octet-stream)
-- whose body is "scale:<index>:" padded with "x" to bodyBytes (bench/scale.ts builds the same
-- bytes to verify reads). Run with one thread (-t1): the counter lives in the thread's Lua state.
--
-- wrk has no request limit, so: once every PUT is sent, further requests are a cheap
-- `GET <pathPrefix><firstIndex>` (answered 200) that keeps connections busy for the few
-- milliseconds until the last PUTs are answered. response() counts statuses (201 = created,
-- 200 = filler or already existed, anything else = failed); when created + failed reaches count,
-- it stops the thread and sends SIGINT to wrk itself, because wrk's main thread otherwise sleeps
-- for the whole -d duration (which is the creation time limit).
-- done() prints one line `WRK_RESULT_JSON {...}` (the shape bench/lib/wrk.ts parses, with
-- statusCounts), plus createElapsedS: first PUT sent to the last one answered, from /proc/uptime
-- (10 ms steps); -1 when the time limit came first.

local write_result = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk-result.lua")

local threads = {}
local count = 0
local body_bytes = 0
local prefix = ""
local first_index = 0
local sent = 0
-- wrk calls request() once before the run to check the script (script_verify_request): that call gets the filler.
local verified = false
local created = 0
local failed = 0
local stopping = false
local filler = nil
local headers = { ["Content-Type"] = "application/octet-stream" }
statuses = {}
-- /proc/uptime at the first PUT and when the last was answered, for done(): wrk's own duration
-- also counts the moment it takes the SIGINT to arrive.
start_uptime_s = 0
stop_uptime_s = 0

-- Seconds since boot with 10 ms resolution (LuaJIT has no finer wall clock).
local function uptime_s()
  local file = io.open("/proc/uptime", "r")
  local seconds = file:read("*n")
  file:close()
  return seconds
end

-- setup() runs in wrk's main Lua state once per thread, before the threads start.
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  count = tonumber(args[1])
  body_bytes = tonumber(args[2])
  prefix = args[3]
  first_index = tonumber(args[4])
  filler = wrk.format("GET", prefix .. first_index)
end

function request()
  if not verified or sent >= count then
    verified = true
    return filler
  end
  local index = first_index + sent
  if sent == 0 then
    start_uptime_s = uptime_s()
  end
  sent = sent + 1
  local head = "scale:" .. index .. ":"
  return wrk.format("PUT", prefix .. index, headers, head .. string.rep("x", body_bytes - #head))
end

local function stop_wrk()
  stopping = true
  stop_uptime_s = uptime_s()
  wrk.thread:stop()
  local stat = io.open("/proc/self/stat", "r")
  local pid = stat:read("*n")
  stat:close()
  -- Not os.execute (system() ignores SIGINT in the whole process while it waits), and not a
  -- plain io.popen("kill ...") either: a signal sent while popen is still running was lost in
  -- about one run of ten. A detached shell that signals a moment later always arrived.
  io.popen("(sleep 0.01; kill -INT " .. pid .. ") >/dev/null 2>&1 &"):close()
end

function response(status, _, _)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 201 then
    created = created + 1
  elseif status ~= 200 then
    failed = failed + 1
  end
  if not stopping and created + failed >= count then
    stop_wrk()
  end
end

function done(summary, latency, _)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      totals[status] = (totals[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(totals) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  local elapsed_s = -1
  for _, thread in ipairs(threads) do
    local started, stopped = thread:get("start_uptime_s"), thread:get("stop_uptime_s")
    if started > 0 and stopped > 0 then
      elapsed_s = stopped - started
    end
  end
  write_result(summary, latency, string.format(',"statusCounts":{%s},"createElapsedS":%.2f', table.concat(parts, ","), elapsed_s))
end
