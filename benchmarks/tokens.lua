-- wrk script for benchmarks/hot_path.py.
-- Every request is a GET of the URL's path with `Authorization: Bearer <token>`, the tokens
-- read from the file named by $BENCH_TOKENS (one a line) and used in turn, each thread
-- starting at its own offset. done() prints one line "BENCH_JSON {...}" for the script.

local reqs = {}
local counter = 1
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  local path = os.getenv("BENCH_TOKENS")
  if path == nil or path == "" then
    error("BENCH_TOKENS is not set")
  end
  for line in io.lines(path) do
    if #line > 0 then
      reqs[#reqs + 1] = wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. line })
    end
  end
  assert(#reqs > 0, "no tokens")
  counter = ((tid or 0) * math.floor(#reqs / 2 + 1)) % #reqs + 1
end

function request()
  local r = reqs[counter]
  counter = counter % #reqs + 1
  return r
end

function done(summary, latency, requests)
  local e = summary.errors
  local socket = e.connect + e.read + e.write + e.timeout
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "seconds": %.3f, "rps": %.1f, '
      .. '"p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "mean_ms": %.3f, '
      .. '"errors": %d, "non_2xx": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000,
    socket + e.status, e.status, e.connect, e.read, e.write, e.timeout
  ))
end
