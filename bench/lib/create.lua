-- wrk script for bench/create.ts: every request creates a new stream.
--   wrk ... -s bench/lib/create.lua <url> -- <pathPrefix>
-- Request k of thread t is `PUT <pathPrefix><t>-<k>` with Content-Type application/octet-stream and
-- no body, so every path is new as long as each wrk run uses its own prefix. response() counts
-- statuses (201 = created, 200 = already existed, anything else is a failure); done() prints one
-- line `WRK_RESULT_JSON {...}` that bench/lib/wrk.ts parses, with the counts of every thread.

local write_result = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk-result.lua")

local threads = {}
local prefix = ""
local counter = 0
local headers = { ["Content-Type"] = "application/octet-stream", ["Content-Length"] = "0" }
statuses = {}

-- setup() runs in wrk's main Lua state once per thread, before the threads start.
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

function init(args)
  prefix = args[1] .. thread_id .. "-"
end

function request()
  counter = counter + 1
  return wrk.format("PUT", prefix .. counter, headers)
end

function response(status, _, _)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, _)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(totals) do
    table.insert(parts, string.format('"%d":%d', status, count))
  end
  write_result(summary, latency, string.format(',"statusCounts":{%s}', table.concat(parts, ",")))
end
