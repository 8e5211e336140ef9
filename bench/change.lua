-- The change-password POST, not logged in: username, current password, new password twice.
-- Run with as many threads as connections, so each connection is one thread with a user of its
-- own (BENCH_USER_PREFIX followed by the thread number, 01, 02, ...) whose requests never overlap.
-- Each user switches between two passwords; the switch happens only when the answer is the
-- "password changed" page, so a refused change is counted and tried again the same way.
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
  user = string.format("%s%02d", os.getenv("BENCH_USER_PREFIX"), number)
  passwords = { os.getenv("BENCH_PASSWORD_A"), os.getenv("BENCH_PASSWORD_B") }
  current = 1
  headers = common.headers({
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = os.getenv("BENCH_COOKIE"),
  })
  csrf = os.getenv("BENCH_CSRF")
end

function request()
  local new = common.encode(passwords[3 - current])
  local body = "csrf=" .. csrf .. "&username=" .. user .. "&current=" .. common.encode(passwords[current]) ..
    "&password=" .. new .. "&repeat=" .. new
  return wrk.format("POST", "/change", headers, body)
end

function response(status, headers, body)
  -- A change that went through redirects to the page that shows it (post/redirect/get).
  local location = headers["Location"] or headers["location"] or ""
  if status == 303 and location:find("/change?done=", 1, true) == 1 then
    ok = ok + 1
    current = 3 - current
  else
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  common.report(summary, latency, common.sum(threads, "ok"), common.sum(threads, "failed"))
end
