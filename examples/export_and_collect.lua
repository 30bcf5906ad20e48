-- Export a DICOM store to a bucket, download the export, and check that every instance came back.
-- example: runs in make test
--
--   eval "$(emulator/start)"          # or real Google Cloud with GOOGLE_CLOUD_PROJECT set
--   lua5.4 examples/export_and_collect.lua [WORKDIR]
--
-- Fills a new store first (generate → upload → import), then: grants the Cloud Healthcare Service
-- Agent write access to the destination bucket, exports as application/dicom, downloads the
-- prefix in parallel (every file's CRC32C checked; names mapped to paths that cannot leave the
-- folder), counts the files, and previews removing the export with a dry run.
local dicomgcs = require "dicomgcs"
local testdata = require "dicomgcs.testdata"

local run_id = tostring(os.time()) .. tostring(math.random(1000, 9999))
local workdir = arg[1] or ((os.getenv("TMPDIR") or "/tmp") .. "/dicomgcs-collect-" .. run_id)
local project = os.getenv("GOOGLE_CLOUD_PROJECT") or "demo-project"
local bucket = os.getenv("DICOMGCS_DEMO_BUCKET") or ("dicomgcs-collect-" .. run_id)

local function step(fmt, ...) io.write("==> ", fmt:format(...), "\n"); io.flush() end

local c = assert(dicomgcs.client{ project = project, location = os.getenv("DICOMGCS_LOCATION") or "us-central1",
                                  dataset = "collect-" .. run_id, dicom_store = "store" })
assert(c:create_dataset{})
assert(c:create_dicom_store{})
if not os.getenv("DICOMGCS_DEMO_BUCKET") then assert(c.storage:create_bucket(bucket)) end

-- export needs roles/storage.objectAdmin, which also covers the import below
local _, member, role = assert(c.storage:grant_service_agent(bucket, "export"))
step("%s has %s on gs://%s", member, role, bucket)

local files = assert(testdata.generate{ dir = workdir .. "/input", studies = 2, series = 1, instances = 4 })
assert(c.storage:upload(workdir .. "/input", "gs://" .. bucket .. "/in/"))
local imported = assert(c:import{ uri = "gs://" .. bucket .. "/in/**.dcm", wait = true, interval = 0.2 })
step("store holds %d instances", imported.counter.success)

local prefix = "gs://" .. bucket .. "/export-" .. run_id .. "/"
step("exporting to %s", prefix)
local exp = assert(c:export{ uri_prefix = prefix, mime_type = "application/dicom", wait = true, interval = 0.2 })
step("exported %d instances", exp.counter.success)

local dest = workdir .. "/export"
local got = assert(c.storage:download(prefix, dest, {
  on_progress = function(_, s, total) if s.ok + s.failed == total then step("downloaded %d/%d", s.ok, total) end end }))
for _, r in ipairs(got.results) do if not r.ok then print("  " .. tostring(r.err)) end end

local p = assert(io.popen("find '" .. dest .. "' -type f -name '*.dcm' | wc -l"))
local on_disk = tonumber(p:read("a")); p:close()
step("%d files on disk under %s (%d bytes), study/series/instance.dcm", on_disk, dest, got.bytes)
assert(got.failed == 0 and got.ok == exp.counter.success and on_disk == #files,
  ("expected %d instances, downloaded %d, %d on disk"):format(#files, got.ok, on_disk))

local preview = assert(c.storage:delete_prefix(prefix, { dry_run = true }))
step("`dicomgcs storage rm -r %s` would delete %d objects (dry run; nothing deleted)", prefix, #preview.results)
print(("OK: %d instances exported, %d collected"):format(exp.counter.success, on_disk))
