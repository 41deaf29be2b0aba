-- wrk's side of the benchmarks (bench/common/wrk.py): one request shape, each request a different
-- user of the pool, as the Python clients send it.
--
--   wrk -t T -c C -d Ns --timeout 30s -s bench/pool.wrk.lua URL -- TOKENS FIRST T NONCE OK METHOD PATH [BODY]
--
-- TOKENS: a file of "<user id> <access token>" lines, in pool order. FIRST: the 0-based index of
-- the first unused user. Thread k takes users FIRST + k, FIRST + k + T, ... so the threads never
-- share one. NONCE: a string new to every wrk run; when given a BODY, each request carries an
-- Idempotency-Key built from it, so a key never repeats across runs. OK: the status that counts
-- as success. BODY: JSON, "{uid}" in it replaced by the user's id.
-- done() prints one line "WRKJSON {...}" that bench/common/wrk.py reads.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path, first, nthreads = args[1], tonumber(args[2]), tonumber(args[3])
  nonce, ok_status, method, url_path, body = args[4], tonumber(args[5]), args[6], args[7], args[8]
  uids, tokens = {}, {}
  for line in io.lines(path) do
    local uid, token = line:match("^(%d+) (%S+)$")
    uids[#uids + 1] = uid
    tokens[#tokens + 1] = token
  end
  pos = first + tid
  step = nthreads
  ok, other, exhausted, sent = 0, 0, 0, 0
end

function request()
  if pos >= #uids then
    -- Out of users: re-sending the last one answers an error, which the report flags.
    exhausted = 1
    pos = #uids - 1
  end
  local i = pos + 1
  pos = pos + step
  sent = sent + 1
  local headers = { ["Authorization"] = "Bearer " .. tokens[i] }
  if body == nil then
    headers["Content-Length"] = "0"
    return wrk.format(method, url_path, headers, "")
  end
  headers["Idempotency-Key"] = "wrk-" .. nonce .. "-" .. uids[i] .. "-" .. sent
  headers["Content-Type"] = "application/json"
  return wrk.format(method, url_path, headers, (body:gsub("{uid}", uids[i])))
end

function response(status, headers, body)
  if status == ok_status then
    ok = ok + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local ok_total, other_total, sent_total, exhausted_any, next_index = 0, 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    ok_total = ok_total + thread:get("ok")
    sent_total = sent_total + thread:get("sent")
    other_total = other_total + thread:get("other")
    exhausted_any = math.max(exhausted_any, thread:get("exhausted"))
    next_index = math.max(next_index, thread:get("pos"))
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"ok": %d, "other_status": %d, "sent": %d, "exhausted": %d, "next_index": %d, "duration_us": %d, '
      .. '"p50_us": %d, "p99_us": %d, "max_us": %d, "transport_errors": %d}\n',
    ok_total, other_total, sent_total, exhausted_any, next_index, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout))
end
