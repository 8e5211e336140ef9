-- The login POST: the right password, again and again. Each answer must be the redirect to the
-- home page that a successful login gives (303, Location: /).
-- Run with as many threads as connections: each connection is one thread with a user of its own
-- (BENCH_USER_PREFIX followed by the thread number, 01, 02, ...). Parallel logins of one account
-- would be refused beyond the lockout margin: an attempt counts from before the bind until its
-- answer, whatever the password turns out to be.
local common = dofile(os.getenv("BENCH_DIR") .. "/common.lua")

local threads = {}
local n = 0
function setup(thread)
  n = n + 1
  thread:set("number", n)
  table.insert(threads, thread)
end

function init(args)
  ok, failed = 0, 0
  local user = string.format("%s%02d", os.getenv("BENCH_USER_PREFIX"), number)
  local body = "csrf=" .. os.getenv("BENCH_CSRF") .. "&username=" .. common.encode(user) ..
    "&password=" .. common.encode(os.getenv("BENCH_PASSWORD"))
  req = wrk.format("POST", "/login", common.headers({
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = os.getenv("BENCH_COOKIE"),
  }), body)
end

function request()
  return req
end

-- BENCH_DELAY_MS: a pause before each request of a connection (the paced scenario: about as few
-- logins a second as the change scenario gets changes, to show what a request costs the portal
-- when it sits idle between requests).
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
function delay()
  return pause
end

function response(status, headers, body)
  -- actix-web sends header names in lower case.
  local location = headers["location"] or headers["Location"]
  if status == 303 and location == "/" then ok = ok + 1 else failed = failed + 1 end
end

function done(summary, latency, requests)
  common.report(summary, latency, common.sum(threads, "ok"), common.sum(threads, "failed"))
end
