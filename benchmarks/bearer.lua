-- wrk script for benchmarks/hot_path.py.
-- Every request is a GET of the URL's path with `Authorization: Bearer $BENCH_TOKEN`
-- (built once per thread); done() prints one line "BENCH_JSON {...}" for the script to parse.

local req

function init(args)
  local token = os.getenv("BENCH_TOKEN")
  if token == nil or token == "" then
    error("BENCH_TOKEN is not set")
  end
  req = wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. token })
end

function request()
  return req
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
