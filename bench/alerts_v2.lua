-- wrk script: Alertmanager API v2 bodies (what Prometheus posts), BENCH_BATCH alerts a
-- request, drawn in turn from a pool of BENCH_POOL distinct alerts (mostly repeats, as
-- Prometheus re-sends every firing alert), to the path BENCH_PATH. Each alert ends four
-- minutes after it is sent, as Prometheus' do, so every re-send moves its end.
local batch = tonumber(os.getenv("BENCH_BATCH") or "100")
local pool = tonumber(os.getenv("BENCH_POOL") or "10000")
local path = os.getenv("BENCH_PATH") or "/api/v2/alerts"
local next_alert = math.random(0, pool - 1)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local function alert(n, ends_at)
  return string.format(
    '{"labels":{"alertname":"BenchAlert","instance":"host-%d:9100","job":"node",' ..
    '"severity":"warning"},"annotations":{"summary":"host-%d is unhappy"},' ..
    '"startsAt":"2026-11-28T12:00:00Z","endsAt":"%s",' ..
    '"generatorURL":"http://prometheus.example/graph?g0.expr=up"}', n, n, ends_at)
end

request = function()
  local parts = {}
  local ends_at = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + 240)
  for i = 1, batch do
    parts[i] = alert(next_alert, ends_at)
    next_alert = (next_alert + 1) % pool
  end
  return wrk.format(nil, path, nil, "[" .. table.concat(parts, ",") .. "]")
end
