-- The login POST: one user's right password, again and again. Each answer must be the redirect
-- to the home page that a successful login gives (303, Location: /).
local common = dofile(os.getenv("BENCH_DIR") .. "/common.lua")

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, failed = 0, 0
  local body = "csrf=" .. os.getenv("BENCH_CSRF") .. "&username=" .. common.encode(os.getenv("BENCH_USER")) ..
    "&password=" .. common.encode(os.getenv("BENCH_PASSWORD"))
  req = wrk.format("POST", "/login", common.headers({
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = os.getenv("BENCH_COOKIE"),
  }), body)
end

function request()
  return req
end

function response(status, headers, body)
  -- actix-web sends header names in lower case.
  local location = headers["location"] or headers["Location"]
  if status == 303 and location == "/" then ok = ok + 1 else failed = failed + 1 end
end

function done(summary, latency, requests)
  common.report(summary, latency, common.sum(threads, "ok"), common.sum(threads, "failed"))
end
