-- STOW a folder, search it, retrieve a study, over DICOMweb.
-- example: runs in make test
--
--   lua5.4 examples/stow_and_retrieve.lua WORKDIR
--
-- Stores a generated folder of DICOM files (one of them not DICOM, to show a per-file failure)
-- with STOW-RS at concurrency 8, lists the studies with QIDO-RS, retrieves one study with
-- WADO-RS into WORKDIR/retrieved/STUDY/SERIES/SOP.dcm, and fetches its metadata.
local dicomgcs = require "dicomgcs"
local testdata = require "dicomgcs.testdata"
local dicomweb = require "dicomgcs.dicomweb"

local workdir = assert(arg[1], "usage: lua5.4 examples/stow_and_retrieve.lua WORKDIR")
local run = tostring(os.time() % 100000) .. tostring(math.random(100, 999))
local c = assert(dicomgcs.client{ project = os.getenv("GOOGLE_CLOUD_PROJECT") or "demo-project",
  location = "us-central1", dataset = "dicomweb-" .. run, dicom_store = "store" })
assert(c:create_dataset{})
assert(c:create_dicom_store{})
local dw = assert(c:dicomweb())

local files = assert(testdata.generate{ dir = workdir .. "/input", studies = 2, series = 2, instances = 3 })
local junk = assert(io.open(workdir .. "/input/README.dcm", "w"))
junk:write("not a DICOM file\n")
junk:close()

local summary = assert(dw:store(workdir .. "/input", { concurrency = 8, on_progress = function(p)
  if p.result then io.write(("\r  stored %d/%d files, %d bytes"):format(p.files_done, p.files_total, p.bytes_done)) end
end }))
print()
print(("STOW: %d stored, %d already present, %d failed, of %d files"):format(
  summary.stored, summary.already_present, summary.failed, summary.total))
for _, r in ipairs(summary.results) do
  if r.status == "failed" then print("  failed: " .. r.path .. ": " .. tostring(r.reason or r.err)) end
end
assert(summary.stored == #files and summary.failed == 1 and summary.total == #files + 1)

print("QIDO: studies in the store")
for study in assert(dw:search("studies", { include_fields = { "PatientName", "StudyDate" } })) do
  print(("  %s  %s  %s"):format(dicomweb.value(study, "StudyInstanceUID"), dicomweb.value(study, "PatientName"),
    dicomweb.value(study, "StudyDate") or ""))
end

local study = files[1].study_uid
local got = assert(dw:retrieve{ study = study, dest = workdir .. "/retrieved" })
print(("WADO: retrieved %d instances (%d bytes) of study %s into %s"):format(
  got.instances, got.bytes, study, workdir .. "/retrieved"))
assert(got.instances == 6 and got.failed == 0)
local meta = assert(dw:metadata{ study = study })
print(("metadata: %d instance records, no bulk data"):format(#meta))
print("OK")
