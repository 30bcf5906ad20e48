-- Stage a local folder in a bucket, check what the import will read, and import it.
-- example: runs in make test
--
--   eval "$(emulator/start)"          # or real Google Cloud with GOOGLE_CLOUD_PROJECT set
--   lua5.4 examples/stage_and_import.lua [WORKDIR]
--
-- 1. generates DICOM files (dcmtk) in WORKDIR/input, in sub-folders;
-- 2. uploads the folder to gs://BUCKET/staging/ in parallel, each file's CRC32C checked;
--    running it again skips every file (same checksum already there);
-- 3. previews the import with the same wildcard the Healthcare API uses;
-- 4. gives the Cloud Healthcare Service Agent read access (the step new users miss), then
--    imports and waits, showing the counters.
local dicomgcs = require "dicomgcs"
local testdata = require "dicomgcs.testdata"

local run_id = tostring(os.time()) .. tostring(math.random(1000, 9999))
local workdir = arg[1] or ((os.getenv("TMPDIR") or "/tmp") .. "/dicomgcs-stage-" .. run_id)
local project = os.getenv("GOOGLE_CLOUD_PROJECT") or "demo-project"
local bucket = os.getenv("DICOMGCS_DEMO_BUCKET") or ("dicomgcs-stage-" .. run_id)

local function step(fmt, ...) io.write("==> ", fmt:format(...), "\n"); io.flush() end

local c = assert(dicomgcs.client{ project = project, location = os.getenv("DICOMGCS_LOCATION") or "us-central1",
                                  dataset = "stage-" .. run_id, dicom_store = "store" })
assert(c:create_dataset{})
assert(c:create_dicom_store{})

local files = assert(testdata.generate{ dir = workdir .. "/input", studies = 2, series = 2, instances = 3 })
step("generated %d DICOM files in %s/input", #files, workdir)

if not os.getenv("DICOMGCS_DEMO_BUCKET") then assert(c.storage:create_bucket(bucket)) end
local prefix = "gs://" .. bucket .. "/staging/"
local up = assert(c.storage:upload(workdir .. "/input", prefix))
step("uploaded %d of %d files to %s (%d MiB; %d failed)", up.ok - up.skipped, #up.results, prefix,
  up.bytes // 1048576, up.failed)
for _, r in ipairs(up.results) do if not r.ok then print("  " .. tostring(r.err)) end end
assert(up.failed == 0)

local again = assert(c.storage:upload(workdir .. "/input", prefix))
step("again: %d skipped (already there with the same CRC32C), %d uploaded", again.skipped, again.ok - again.skipped)
assert(again.skipped == #files)

local uri = prefix .. "**.dcm"
local selected = assert(c.storage:match(uri))
step("%s selects %d objects, e.g. %s", uri, #selected, selected[1].uri)
assert(#selected == #files)

-- The import runs as the project's Cloud Healthcare Service Agent. dicomgcs looks for its access
-- (bucket policy, then project policy) and, when it cannot see it, says what would grant it:
local access = assert(c.storage:service_agent_access(bucket, "import"))
if not access.granted then
  step("the service agent's access to the bucket is not visible: %s", access.command)
  local _, member, role = assert(c.storage:grant_service_agent(bucket, "import"))
  step("granted %s to %s", role, member)
end

step("importing %s", uri)
local op = assert(c:import{ uri = uri })
local done = assert(op:wait{ interval = 0.2, max_interval = 2, on_progress = function(o)
  io.write(("    success %d  failure %d  pending %d\n"):format(o.counter.success, o.counter.failure, o.counter.pending))
end })
step("imported %d instances (%d failed)", done.counter.success, done.counter.failure)
assert(done.counter.success == #files)
print(("OK: %d files staged and imported"):format(#files))
