-- The result line every wrk script here prints from done(), loaded by each with dofile() from
-- its own directory:
--   local write_result = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk-result.lua")
--   function done(summary, latency, _) write_result(summary, latency) end
-- write_result(summary, latency[, extra]) prints one line `WRK_RESULT_JSON {...}` that
-- bench/lib/wrk.ts parses: latencies in microseconds, cpuSeconds wrk's own CPU time; `extra`, if
-- given, is more JSON members appended inside the object, starting with a comma.

return function(summary, latency, extra)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT_JSON {"durationUs":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latencyUs":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d},' ..
    '"cpuSeconds":%.4f%s}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max,
    os.clock(), extra or ""))
end
