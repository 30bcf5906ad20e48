-- Writes the HTML run report of a made-up 100,000-file import (bench/report.sh times it and
-- opens it in headless Chromium): 10% failed under 20 reasons, 2% skipped, 1,440 polls (a
-- 4-hour import polled every 10 s) and 30 throttle/retry events.
--   lua5.4 bench/report_100k.lua OUT.html [FILES]
local report = require "dicomgcs.report"
local out, n = assert(arg[1], "usage: report_100k.lua OUT.html [FILES]"), tonumber(arg[2] or "100000")
local inputs, outcomes = {}, {}
local codes = { "INVALID_ARGUMENT", "ALREADY_EXISTS", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED" }
for i = 1, n do
  local uri = ("gs://bench-bucket/archive/batch-%03d/study-%05d/series-%02d/instance-%06d.dcm"):format(
    i // 10000, i // 40, (i % 40) // 8, i)
  inputs[i] = uri
  if i % 10 == 3 then
    local k = (i // 10) % 20
    outcomes[uri] = { outcome = "failed", code = codes[k % #codes + 1],
      reason = ("reason %d: failed to parse DICOM: missing DICM prefix at offset 128 (not a DICOM Part 10 file)"):format(k) }
  elseif i % 50 == 7 then
    outcomes[uri] = { outcome = "skipped", reason = "already in the store with the same SOP Instance UID" }
  else
    outcomes[uri] = { outcome = "succeeded" }
  end
end
local r = report.build(inputs, outcomes)
local t0, polls = 1796400000, 1440
local history, events = {}, {}
for i = 0, polls - 1 do
  local done = math.floor(n * i / (polls - 1))
  local failed = math.floor(done * r.totals.failed / n)
  history[#history + 1] = { t = t0 + i * 10, success = done - failed, failure = failed, pending = n - done }
end
for i = 1, 30 do events[i] = { t = t0 + i * 470, kind = i % 3 == 0 and "retry" or "throttle", detail = "429 RESOURCE_EXHAUSTED" } end
assert(report.write(r, out, { format = "html", kind = "import", source = "gs://bench-bucket/archive/**.dcm",
  store = "projects/bench/locations/us-central1/datasets/bench/dicomStores/archive", started = t0,
  ended = t0 + polls * 10, history = history, events = events }))
