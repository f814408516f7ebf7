-- wrk script: POST native events; KEYS distinct dedup keys cycle (0 = a new key per request).
local keys = tonumber(os.getenv("BENCH_KEYS") or "0")
-- BENCH_RANDOM=1: pick a random one of the KEYS keys instead of cycling through them
local random_keys = os.getenv("BENCH_RANDOM") == "1"
local counter = 0
local thread_id = tostring(math.random(1, 1e9))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-token"

request = function()
  counter = counter + 1
  local key
  if keys == 0 then
    key = thread_id .. "-" .. counter
  elseif random_keys then
    key = math.random(0, keys - 1)
  else
    key = counter % keys
  end
  local body = string.format(
    '{"status":"firing","summary":"checkout API error rate above 5%% on pod %s",' ..
    '"severity":"critical","labels":{"service":"checkout","env":"prod",' ..
    '"alertname":"HighErrorRate","pod":"checkout-%s","region":"eu-west-1"},' ..
    '"annotations":{"runbook":"https://wiki.example/runbooks/checkout",' ..
    '"dashboard":"https://grafana.example/d/checkout"},"dedup_key":"bench-%s"}',
    key, key, key)
  return wrk.format(nil, "/webhooks/bench", nil, body)
end
