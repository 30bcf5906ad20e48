-- Bulk import: 20 prefixes, at most 3 operations at a time, resumable after a crash.
-- example: runs in make test
--
--   lua5.4 examples/bulk_import.lua WORKDIR
--
-- The first run stages 20 prefixes of generated DICOM files in a bucket, then imports each
-- prefix with a queue capped at K=3 operations in flight, keeping its state in
-- WORKDIR/bulk.jsonl. Kill it at any point and run it again with the same WORKDIR: finished
-- prefixes are skipped, operations still running on the server are re-attached by name, and
-- the end result accounts for every file exactly once. Ctrl-C cancels the running operations.
local dicomgcs = require "dicomgcs"
local testdata = require "dicomgcs.testdata"

local workdir = assert(arg[1], "usage: lua5.4 examples/bulk_import.lua WORKDIR")
local PREFIXES, PER_PREFIX, K = 20, tonumber(os.getenv("BULK_FILES_PER_PREFIX") or "3"), 3

-- Names derived from WORKDIR, so a re-run finds the same dataset, store and bucket.
local tag = 0
for i = 1, #workdir do tag = (tag * 31 + workdir:byte(i)) % 1000000007 end
local dataset, bucket = "bulk-" .. tag, "dicomgcs-bulk-" .. tag

local c = assert(dicomgcs.client{ project = os.getenv("GOOGLE_CLOUD_PROJECT") or "demo-project",
  location = "us-central1", dataset = dataset, dicom_store = "archive" })

local function ensure(ok, err)
  if ok or (err and err.http_status == 409) then return end
  error(err, 2)
end

-- Stage the data once (a marker file says it is done).
local marker = workdir .. "/staged"
local staged = io.open(marker)
if staged then
  staged:close()
else
  ensure(c:create_dataset{})
  ensure(c:create_dicom_store{})
  ensure(c.storage:create_bucket(bucket))
  if c.storage.grant_service_agent then ensure(c.storage:grant_service_agent(bucket, "import")) end
  for p = 1, PREFIXES do
    local dir = ("%s/data/part-%02d"):format(workdir, p)
    assert(testdata.generate{ dir = dir, studies = 1, series = 1, instances = PER_PREFIX, nested = false,
                              prefix = ("p%02d-"):format(p) })
  end
  local up = assert(c.storage:upload(workdir .. "/data", "gs://" .. bucket .. "/archive/"))
  assert(up.failed == 0, "staging failed")
  assert(io.open(marker, "w")):close()
  print(("staged %d files in %d prefixes of gs://%s/archive/"):format(up.ok, PREFIXES, bucket))
end

local q = assert(dicomgcs.queue{
  client = c, max_in_flight = K, manifest = workdir .. "/bulk.jsonl",
  interval = tonumber(os.getenv("BULK_POLL_INTERVAL") or "0.2"), max_interval = 2,
  on_progress = function(t)
    io.write(("\rjobs %d: %d running, %d done, %d failed; files %d ok, %d failed, %d pending   "):format(
      t.jobs, t.running, t.done, t.failed, t.success, t.failure, t.pending))
    io.flush()
  end,
  on_operation_done = function(job, op)
    io.write(("\n%s done by %s: %d ok, %d failed\n"):format(job.key, op:id(), op.counter.success, op.counter.failure))
  end,
})
for p = 1, PREFIXES do
  q:add{ key = ("part-%02d"):format(p), kind = "import", uri = ("gs://%s/archive/part-%02d/**.dcm"):format(bucket, p) }
end
local summary = q:run()
print()
local skipped, reattached = 0, 0
for _, j in ipairs(summary.jobs) do
  if j.skipped then skipped = skipped + 1 end
  if j.reattached then reattached = reattached + 1 end
end
local t = summary.totals
print(("%d jobs: %d done (%d from an earlier run, %d re-attached), %d failed"):format(
  t.jobs, t.done, skipped, reattached, t.failed))
print(("files: %d imported, %d failed, of %d staged"):format(t.success, t.failure, PREFIXES * PER_PREFIX))
assert(t.success + t.failure == PREFIXES * PER_PREFIX, "files not accounted for exactly once")
print("every file accounted for once")
