-- Sends pre-signed, unique deliveries from a pool file (one "signature<TAB>body" per line).
-- Each wrk thread takes every Nth line, so no two requests carry the same event id.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local pool = os.getenv("POOL_FILE")
  local nthreads = tonumber(os.getenv("WRK_THREADS"))
  -- Several wrk processes (one per instance) each take their own shard of the pool.
  local shards = tonumber(os.getenv("POOL_SHARDS") or "1")
  local shard = tonumber(os.getenv("POOL_SHARD") or "0")
  local slot = shard * nthreads + id
  requests = {}
  local i = 0
  for line in io.lines(pool) do
    if i % (nthreads * shards) == slot then
      local tab = line:find("\t", 1, true)
      local sig = line:sub(1, tab - 1)
      local body = line:sub(tab + 1)
      requests[#requests + 1] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["X-ProcureIQ-Signature"] = sig,
      }, body)
    end
    i = i + 1
  end
  index = 0
end

function request()
  index = index + 1
  if index > #requests then index = 1 end
  return requests[index]
end

function done(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
