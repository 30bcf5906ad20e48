-- import → wait → export → download, end to end.
-- example: runs in make test
--
--   eval "$(emulator/start)"            # or point it at Google: see README "Real Google Cloud"
--   lua5.4 examples/import_export.lua [WORKDIR]
--
-- Makes a dataset and a DICOM store, generates DICOM files with dcmtk (several studies and
-- series, some in sub-folders), uploads them to a bucket, imports them with a `**.dcm`
-- wildcard while showing the operation's counters, exports the store back to the bucket as
-- application/dicom, downloads the export and checks that every instance came back.
-- Last, it writes the import's HTML run report (totals, counters over time, failures) to
-- WORKDIR/import-report.html: one self-contained page to open in a browser or send.
local dicomgcs = require "dicomgcs"
local testdata = require "dicomgcs.testdata"

local run_id = tostring(os.time()) .. tostring(math.random(1000, 9999))
local workdir = arg[1] or ((os.getenv("TMPDIR") or "/tmp") .. "/dicomgcs-demo-" .. run_id)

local project = os.getenv("GOOGLE_CLOUD_PROJECT") or "demo-project"
local location = os.getenv("DICOMGCS_LOCATION") or "us-central1"
local bucket = os.getenv("DICOMGCS_DEMO_BUCKET") or ("dicomgcs-demo-" .. run_id)
local dataset = "demo-" .. run_id
local store = "demo-store"

local function step(fmt, ...) io.write("==> ", fmt:format(...), "\n"); io.flush() end

local client = assert(dicomgcs.client{ project = project, location = location,
                                        dataset = dataset, dicom_store = store })
step("using %s", tostring(client))

step("creating dataset %s and DICOM store %s", dataset, store)
assert(client:create_dataset{})
assert(client:create_dicom_store{})

step("generating DICOM files in %s", workdir .. "/input")
local files = assert(testdata.generate{ dir = workdir .. "/input", studies = 3, series = 2, instances = 4 })
step("  %d files, %d studies, some in sub-folders", #files, 3)

if not os.getenv("DICOMGCS_DEMO_BUCKET") then
  step("creating bucket gs://%s", bucket)
  assert(client.storage:create_bucket(bucket))
  -- import and export run as the project's Cloud Healthcare Service Agent: let it read and write
  step("granting the Cloud Healthcare Service Agent roles/storage.objectAdmin on gs://%s", bucket)
  assert(client.storage:grant_service_agent(bucket, "export"))
end
local up = assert(client.storage:upload(workdir .. "/input", "gs://" .. bucket .. "/incoming/"))
step("uploaded %d files to gs://%s/incoming/ (%d failed)", up.ok, bucket, up.failed)
assert(up.failed == 0, "some uploads failed")

local uri = "gs://" .. bucket .. "/incoming/**.dcm"
step("the wildcard %s selects %d objects", uri, #assert(client.storage:match(uri)))

local function show(op)
  local c = op.counter
  io.write(("    %-8s success %3d  failure %3d  pending %3d\n"):format(
    op.done and "done" or "running", c.success, c.failure, c.pending))
  io.flush()
end

step("importing %s", uri)
local op = assert(client:import{ uri = uri })
step("  operation %s", op.name)
local imported = assert(op:wait{ on_progress = show, interval = 0.2, max_interval = 2 })

local prefix = "gs://" .. bucket .. "/export/"
step("exporting the store to %s as application/dicom", prefix)
local exp = assert(client:export{ uri_prefix = prefix, mime_type = "application/dicom" })
local exported = assert(exp:wait{ on_progress = show, interval = 0.2, max_interval = 2 })

local down = assert(client.storage:download(prefix, workdir .. "/export"))
step("downloaded %d exported objects to %s (%d failed)", down.ok, workdir .. "/export", down.failed)

print()
print(("imported: %d instances (%d failed) by %s"):format(imported.counter.success, imported.counter.failure, imported:id()))
print(("exported: %d instances by %s to %s"):format(exported.counter.success, exported:id(), prefix))
for i = 1, math.min(3, #down.results) do print("  " .. down.results[i].source) end
if #down.results > 3 then print(("  … and %d more"):format(#down.results - 3)) end
assert(imported.counter.success == #files, "not every generated file was imported")
assert(down.ok == #files, "not every instance came back from the export")
print(("OK: %d files in, %d instances out"):format(#files, down.ok))

-- the import's run report: every matched file with its outcome, and the polls op:wait recorded
local report = require "dicomgcs.report"
local r = assert(client:import_report(imported, uri))
local html_path = workdir .. "/import-report.html"
assert(report.write(report.from_operation(r, imported), html_path,
  { format = "html", kind = "import", source = uri, store = client.dicom_store }))
step("wrote the import's run report %s (%d matched, %d succeeded)", html_path, r.totals.matched, r.totals.succeeded)
