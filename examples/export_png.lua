-- export a DICOM store as PNG images: one {study}/{series}/{instance}.png per instance.
-- example: runs in make test
--
--   eval "$(emulator/start)"
--   lua5.4 examples/export_png.lua [WORKDIR]
--
-- Makes a dataset and a store, imports a few generated DICOM files, exports the store with
-- mime_type = "image/png" (Google renders each frame; multi-frame instances get
-- {instance}/{frame}.png, frames from 1), downloads the images and checks that each one is a
-- real PNG (its 8-byte signature) named after the instance's UIDs.
local dicomgcs = require "dicomgcs"
local testdata = require "dicomgcs.testdata"

local run_id = tostring(os.time()) .. tostring(math.random(1000, 9999))
local workdir = arg[1] or ((os.getenv("TMPDIR") or "/tmp") .. "/dicomgcs-png-" .. run_id)
local bucket = "dicomgcs-png-" .. run_id

local function step(fmt, ...) io.write("==> ", fmt:format(...), "\n"); io.flush() end

local client = assert(dicomgcs.client{ project = os.getenv("GOOGLE_CLOUD_PROJECT") or "demo-project",
  location = os.getenv("DICOMGCS_LOCATION") or "us-central1", dataset = "png-" .. run_id, dicom_store = "store" })
assert(client:create_dataset{})
assert(client:create_dicom_store{})
assert(client.storage:create_bucket(bucket))
-- import and export run as the project's Cloud Healthcare Service Agent: let it read and write
assert(client.storage:grant_service_agent(bucket, "export"))

local files = assert(testdata.generate{ dir = workdir .. "/input", studies = 2, series = 1, instances = 2, rows = 32, cols = 32 })
assert(client.storage:upload(workdir .. "/input", "gs://" .. bucket .. "/in/"))
step("importing %d generated files", #files)
local imp = assert(assert(client:import{ uri = "gs://" .. bucket .. "/in/**.dcm" }):wait{ interval = 0.2 })
assert(imp.counter.success == #files, "import failed")

local prefix = "gs://" .. bucket .. "/png/"
step("exporting the store to %s as image/png", prefix)
local exp = assert(assert(client:export{ uri_prefix = prefix, mime_type = "image/png" }):wait{ interval = 0.2 })
assert(exp.counter.success == #files and exp.counter.failure == 0, "export failed")

local down = assert(client.storage:download(prefix, workdir .. "/png"))
assert(down.ok == #files and down.failed == 0, "download failed")
for _, inst in ipairs(files) do
  local rel = ("%s/%s/%s.png"):format(inst.study_uid, inst.series_uid, inst.sop_uid)
  local f = assert(io.open(workdir .. "/png/" .. rel, "rb"), "missing " .. rel)
  local magic = f:read(8); f:close()
  assert(magic == "\137PNG\r\n\26\n", rel .. " is not a PNG image")
  print("  " .. prefix .. rel)
end
print(("OK: %d PNG images exported by %s"):format(#files, exp:id()))
