-- Shared by every scenario: one machine-readable line with the figures, read by bench/run.
local common = {}

-- Form-encodes a value.
function common.encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

-- The request headers: wrk's own (Host, which HTTP/1.1 requires; wrk sets it before a script's
-- init runs) with `extra` added. wrk.format drops wrk's headers when given a table of its own.
function common.headers(extra)
  local headers = {}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  for k, v in pairs(extra or {}) do headers[k] = v end
  return headers
end

-- Sums a per-thread counter (set with thread:set in setup, updated in the thread).
function common.sum(threads, name)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get(name) or 0) end
  return total
end

function common.report(summary, latency, checked_ok, checked_failed)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "errors_connect=%d errors_read=%d errors_write=%d errors_timeout=%d errors_status=%d " ..
    "checked_ok=%d checked_failed=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, e.status,
    checked_ok, checked_failed))
end

return common
