-- wrk script for bench/cluster.ts: catch-up reads from the start (GET <path>?offset=-1), rotating over N stream paths.
--   wrk ... -s bench/lib/catch-up.lua <url> -- <streamCount> <pathPrefix>
-- Stream i is at <pathPrefix><i>, i = 0 .. streamCount-1. Each stream is expected to fit one
-- response (a closed stream smaller than the server's chunk limit), so one request is one whole
-- catch-up. done() prints the same `WRK_RESULT_JSON {...}` line as append.lua (bench/lib/wrk.ts).

local write_result = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk-result.lua")

local requests = {}
local count = 0
local index = 0

function init(args)
  local stream_count = tonumber(args[1])
  local prefix = args[2]
  for i = 0, stream_count - 1 do
    requests[i + 1] = wrk.format("GET", prefix .. i .. "?offset=-1")
  end
  count = stream_count
  index = 0
end

function request()
  index = index % count + 1
  return requests[index]
end

function done(summary, latency, _)
  write_result(summary, latency)
end
