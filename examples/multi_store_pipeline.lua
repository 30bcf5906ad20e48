-- A long pipeline over several stores, with retries: stage, import into three stores through
-- one capped queue, export each store in a different format, collect the results.
-- example: runs in make test
--
--   lua5.4 examples/multi_store_pipeline.lua WORKDIR
--
-- The client retries throttled and failed calls itself (exponential backoff with jitter,
-- Retry-After honoured); the queue retries operations refused for quota (429) later and keeps
-- its state in WORKDIR/imports.jsonl and exports.jsonl, so the script can be re-run after a crash.
local dicomgcs = require "dicomgcs"
local testdata = require "dicomgcs.testdata"

local workdir = assert(arg[1], "usage: lua5.4 examples/multi_store_pipeline.lua WORKDIR")
local run = tostring(os.time() % 100000) .. tostring(math.random(100, 999))
local c = assert(dicomgcs.client{ project = os.getenv("GOOGLE_CLOUD_PROJECT") or "demo-project",
  location = "us-central1", dataset = "pipeline-" .. run,
  retry = { max_attempts = 8, base_delay_ms = 200, max_delay_ms = 10000 } })
assert(c:create_dataset{})
local stores = { "ct", "mr", "archive" }
for _, s in ipairs(stores) do assert(c:create_dicom_store{ dicom_store = s }) end
local bucket = "dicomgcs-pipeline-" .. run
assert(c.storage:create_bucket(bucket))
assert(c.storage:grant_service_agent(bucket, "import"))
assert(c.storage:grant_service_agent(bucket, "export"))

for i, s in ipairs(stores) do
  assert(testdata.generate{ dir = ("%s/input/%s"):format(workdir, s), studies = i, series = 1, instances = 2,
                            modality = s == "mr" and "MR" or "CT", nested = false })
end
local up = assert(c.storage:upload(workdir .. "/input", "gs://" .. bucket .. "/incoming/"))
print(("staged %d files for %d stores"):format(up.ok, #stores))

local function progress(t)
  io.write(("\r%d/%d operations done, %d running; %d files ok, %d failed   "):format(
    t.done, t.jobs, t.running, t.success, t.failure))
  io.flush()
end
local function queue(name)
  return assert(dicomgcs.queue{ client = c, max_in_flight = 2, manifest = ("%s/%s.jsonl"):format(workdir, name),
    interval = 0.2, max_interval = 2, on_progress = progress })
end

local imports = queue("imports")
for _, s in ipairs(stores) do
  imports:add{ key = "import " .. s, kind = "import", dicom_store = s,
               uri = ("gs://%s/incoming/%s/*.dcm"):format(bucket, s) }
end
local summary = imports:run()
print()
assert(summary.ok, "some imports failed")

-- exports only once every import is done: a second queue
local formats = { ct = "application/dicom", mr = "image/png", archive = "application/dicom" }
local exports = queue("exports")
for _, s in ipairs(stores) do
  exports:add{ key = "export " .. s, kind = "export", dicom_store = s, mime_type = formats[s],
               uri_prefix = ("gs://%s/exports/%s/"):format(bucket, s) }
end
summary = exports:run()
print()
assert(summary.ok, "some exports failed")
for _, s in ipairs(stores) do
  local got = assert(c.storage:download(("gs://%s/exports/%s/"):format(bucket, s), ("%s/exports/%s"):format(workdir, s)))
  print(("%-8s exported as %-18s → %d file(s) collected"):format(s, formats[s], got.ok))
end
print("OK")
