-- export a DICOM store transcoded to another transfer syntax (JPEG baseline, explicit VR LE).
-- example: runs in make test
--
--   eval "$(emulator/start)"
--   lua5.4 examples/export_transfer_syntax.lua [WORKDIR]
--
-- Imports generated (uncompressed) DICOM files, then exports the store twice with
-- client:export{ mime_type = "application/dicom", transfer_syntax = ... }: as JPEG baseline
-- (1.2.840.10008.1.2.4.50, lossy) and as explicit VR little endian (1.2.840.10008.1.2.1).
-- transfer_syntax = "*" keeps the stored bytes. Downloads each export and reads the Transfer
-- Syntax UID (0002,0010) of every file with dcmdump to show it is the one asked for.
local dicomgcs = require "dicomgcs"
local testdata = require "dicomgcs.testdata"

local run_id = tostring(os.time()) .. tostring(math.random(1000, 9999))
local workdir = arg[1] or ((os.getenv("TMPDIR") or "/tmp") .. "/dicomgcs-ts-" .. run_id)
local bucket = "dicomgcs-ts-" .. run_id

local function step(fmt, ...) io.write("==> ", fmt:format(...), "\n"); io.flush() end

local client = assert(dicomgcs.client{ project = os.getenv("GOOGLE_CLOUD_PROJECT") or "demo-project",
  location = os.getenv("DICOMGCS_LOCATION") or "us-central1", dataset = "ts-" .. run_id, dicom_store = "store" })
assert(client:create_dataset{})
assert(client:create_dicom_store{})
assert(client.storage:create_bucket(bucket))
-- import and export run as the project's Cloud Healthcare Service Agent: let it read and write
assert(client.storage:grant_service_agent(bucket, "export"))

local files = assert(testdata.generate{ dir = workdir .. "/input", studies = 1, series = 2, instances = 2, rows = 32, cols = 32 })
assert(client.storage:upload(workdir .. "/input", "gs://" .. bucket .. "/in/"))
local imp = assert(assert(client:import{ uri = "gs://" .. bucket .. "/in/**.dcm" }):wait{ interval = 0.2 })
assert(imp.counter.success == #files, "import failed")

local function transfer_syntax(path)
  local p = assert(io.popen(("dcmdump -M -Un +P 0002,0010 '%s' 2>&1"):format(path:gsub("'", "'\\''"))))
  local out = p:read("a"); p:close()
  return out:match("%[([%d%.]+)%]")
end

for _, ts in ipairs{ "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.1" } do
  local prefix = ("gs://%s/ts-%s/"):format(bucket, ts)
  step("exporting as application/dicom; transfer-syntax=%s", ts)
  local op = assert(client:export{ uri_prefix = prefix, mime_type = "application/dicom", transfer_syntax = ts })
  op = assert(op:wait{ interval = 0.2 })
  assert(op.counter.success == #files and op.counter.failure == 0, "export failed")
  local dir = workdir .. "/ts-" .. ts
  local down = assert(client.storage:download(prefix, dir))
  assert(down.ok == #files, "download failed")
  for _, inst in ipairs(files) do
    local rel = ("%s/%s/%s.dcm"):format(inst.study_uid, inst.series_uid, inst.sop_uid)
    local got = transfer_syntax(dir .. "/" .. rel)
    assert(got == ts, ("%s has transfer syntax %s, not %s"):format(rel, tostring(got), ts))
  end
  print(("  %d files in %s, all %s"):format(down.ok, prefix, ts))
end
print("OK: transcoded exports have the transfer syntax asked for")
