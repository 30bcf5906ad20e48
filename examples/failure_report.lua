-- Which files failed, and why; a report; re-import only the repaired ones.
-- example: runs in make test
--
--   lua5.4 examples/failure_report.lua WORKDIR
--
-- Checks a folder before import (dicomgcs.check), imports good and broken files anyway, lists
-- every failed file with its reason from the logs, writes WORKDIR/report.json and .csv
-- (every matched file with its outcome; the totals add up), repairs one broken file and
-- re-imports only that one with retry_failed — the three-line recovery.
local dicomgcs = require "dicomgcs"
local check = require "dicomgcs.check"
local testdata = require "dicomgcs.testdata"

local workdir = assert(arg[1], "usage: lua5.4 examples/failure_report.lua WORKDIR")
local run = tostring(os.time() % 100000) .. tostring(math.random(100, 999))
local c = assert(dicomgcs.client{ project = os.getenv("GOOGLE_CLOUD_PROJECT") or "demo-project",
  location = "us-central1", dataset = "failures-" .. run, dicom_store = "store" })
assert(c:create_dataset{})
assert(c:create_dicom_store{})
local bucket = "dicomgcs-failures-" .. run
assert(c.storage:create_bucket(bucket))
assert(c.storage:grant_service_agent(bucket, "import"))

local files = assert(testdata.generate{ dir = workdir .. "/input", studies = 1, series = 2, instances = 3, nested = false })
local f = assert(io.open(files[1].path, "rb")); local bytes = f:read("a"); f:close()
for name, content in pairs{ ["notes.dcm"] = "meeting notes, not DICOM", ["cut.dcm"] = bytes:sub(1, 400) } do
  local out = assert(io.open(workdir .. "/input/" .. name, "wb")); out:write(content); out:close()
end

print("pre-flight check:")
local pre = assert(check.local_files(workdir .. "/input"))
for _, r in ipairs(pre.results) do if not r.ok then print(("  would be rejected: %s (%s)"):format(r.source, r.reason)) end end

assert(c.storage:upload(workdir .. "/input", "gs://" .. bucket .. "/in/"))
local uri = "gs://" .. bucket .. "/in/*.dcm"
local op = assert(c:import{ uri = uri })
assert(op:wait{ interval = 0.2 })   -- failed files are a partial result, not an error
print(("import: %d succeeded, %d failed (%s)"):format(op.counter.success, op.counter.failure,
  op.partial and "partial" or "ok"))

print("failed files, from the logs (written after the operation ends: c:failures waits for them):")
for _, failure in ipairs(assert(c:failures(op)).failures) do
  print(("  %s  %s  %s"):format(failure.uri, failure.status, failure.message))
end

local report = assert(c:import_report(op, uri))
assert(dicomgcs.report.write(report, workdir .. "/report"))
local t = report.totals
print(("report: %d matched = %d succeeded + %d failed + %d skipped → %s.json/.csv"):format(
  t.matched, t.succeeded, t.failed, t.skipped, workdir .. "/report"))
assert(report.complete and t.matched == t.succeeded + t.failed + t.skipped)

-- repair cut.dcm (upload a good file in its place), then the three-line recovery:
assert(c.storage:upload(files[2].path, "gs://" .. bucket .. "/in/cut.dcm"))
local retried = assert(c:retry_failed(op, { interval = 0.2 }))
for _, r in ipairs(retried.retried) do print(("retried %s: %s"):format(r.failure.uri, r.ok and "imported" or tostring(r.err))) end
for _, s in ipairs(retried.skipped) do print(("skipped %s: %s"):format(s.failure.uri, s.reason)) end
assert(#retried.retried == 1 and retried.succeeded == 1 and #retried.skipped == 1)
print("OK")
