-- wrk script for bench/append.ts: POST appends of a fixed-size body, rotating over N stream paths.
--   wrk ... -s bench/lib/append.lua <url> -- <bodyBytes> <streamCount> <pathPrefix> [<indices>]
-- Stream i is at <pathPrefix><i>, i = 0 .. streamCount-1, or, with <indices> (comma-separated,
-- e.g. `0,3,7`), i runs over those indices only (streamCount is then ignored). Requests are formatted once in init()
-- so request() costs one table lookup. done() prints one line `WRK_RESULT_JSON {...}` that
-- bench/lib/wrk.ts parses; latencies are in microseconds, cpuSeconds is wrk's own CPU time.

local write_result = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk-result.lua")

local requests = {}
local count = 0
local index = 0

function init(args)
  local body_bytes = tonumber(args[1])
  local stream_count = tonumber(args[2])
  local prefix = args[3]
  local body = string.rep("x", body_bytes)
  local headers = { ["Content-Type"] = "application/octet-stream" }
  count = 0
  if args[4] ~= nil then
    for i in string.gmatch(args[4], "%d+") do
      count = count + 1
      requests[count] = wrk.format("POST", prefix .. i, headers, body)
    end
  else
    for i = 0, stream_count - 1 do
      requests[i + 1] = wrk.format("POST", prefix .. i, headers, body)
    end
    count = stream_count
  end
  index = 0
end

function request()
  index = index % count + 1
  return requests[index]
end

function done(summary, latency, _)
  write_result(summary, latency)
end
