-- GET of one path (BENCH_PATH), with the browser's cookies (BENCH_COOKIE) when given.
-- Every answer must be 200; wrk counts any other status in errors_status.
local common = dofile(os.getenv("BENCH_DIR") .. "/common.lua")

local path = os.getenv("BENCH_PATH") or "/"
local cookie = os.getenv("BENCH_COOKIE")
local req

function init(args)
  local extra = {}
  if cookie and cookie ~= "" then extra["Cookie"] = cookie end
  req = wrk.format("GET", path, common.headers(extra))
end

function request()
  return req
end

function done(summary, latency, requests)
  -- Status codes other than 2xx/3xx are wrk's errors_status; a 3xx here would be a failure too,
  -- so scenarios that must answer 200 are checked again by bench/run with one request.
  common.report(summary, latency, summary.requests - summary.errors.status, summary.errors.status)
end
