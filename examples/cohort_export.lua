-- Cohort export: pick studies by a QIDO query and export exactly those.
-- example: runs in make test
--
--   lua5.4 examples/cohort_export.lua WORKDIR
--
-- Stores four patients' studies over DICOMweb, then exports only patient PID0002's study by a
-- QIDO query (PatientID=PID0002) and only the CT studies dated 2026 by a Lua predicate. Each
-- selection becomes a filterConfig file sent with the v1beta1 export; afterwards the objects
-- under the prefix are checked to be exactly the selected instances.
local dicomgcs = require "dicomgcs"
local testdata = require "dicomgcs.testdata"
local dicomweb = require "dicomgcs.dicomweb"

local workdir = assert(arg[1], "usage: lua5.4 examples/cohort_export.lua WORKDIR")
local run = tostring(os.time() % 100000) .. tostring(math.random(100, 999))
local c = assert(dicomgcs.client{ project = os.getenv("GOOGLE_CLOUD_PROJECT") or "demo-project",
  location = "us-central1", dataset = "cohort-" .. run, dicom_store = "archive" })
assert(c:create_dataset{})
assert(c:create_dicom_store{})
local bucket = "dicomgcs-cohort-" .. run
assert(c.storage:create_bucket(bucket))
assert(c.storage:grant_service_agent(bucket, "export"))

local files = assert(testdata.generate{ dir = workdir .. "/input", studies = 4, series = 2, instances = 2 })
local dw = assert(c:dicomweb())
local stored = assert(dw:store(workdir .. "/input", { concurrency = 8 }))
print(("stored %d instances of 4 patients over DICOMweb (%d failed)"):format(stored.stored, stored.failed))
assert(stored.failed == 0)

local by_query = assert(c:export_cohort{
  uri_prefix = "gs://" .. bucket .. "/by-query/",
  query = { level = "studies", filters = { PatientID = "PID0002" } },
  interval = 0.2,
})
print(("query PatientID=PID0002: %d resource line(s) → %d of %d expected instances written, exact=%s"):format(
  #by_query.selected, by_query.written, by_query.expected, tostring(by_query.exact)))
assert(by_query.exact and by_query.expected == 4, "the query export is not exactly the selected instances")

local by_predicate = assert(c:export_cohort{
  uri_prefix = "gs://" .. bucket .. "/by-predicate/",
  predicate = function(study)
    local pid = dicomweb.value(study, "PatientID")
    return pid == "PID0001" or pid == "PID0003"
  end,
  interval = 0.2,
})
print(("predicate PID0001|PID0003: %d of %d expected instances written, exact=%s"):format(
  by_predicate.written, by_predicate.expected, tostring(by_predicate.exact)))
assert(by_predicate.exact and by_predicate.expected == 8)
print(("OK: %d files stored, cohorts exported exactly (filter files: %s, %s)"):format(
  #files, by_query.filter_uri, by_predicate.filter_uri))
