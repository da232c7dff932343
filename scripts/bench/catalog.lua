-- wrk script: a mix of product pages and searches, and percentiles as JSON at the end.
-- The paths come from the file named by the BENCH_PATHS environment variable, one a line.
local paths = {}
local counter = 0

function init(args)
  local file = io.open(os.getenv("BENCH_PATHS"), "r")
  for line in file:lines() do
    paths[#paths + 1] = line
  end
  file:close()
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1])
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "errors": %d, "non2xx": %d, '
    .. '"p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, errors, summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
