local env = require "spec.support.env"
local file = require "spec.support.file"
local failures = require "dicomgcs.failures"
local manifest = require "dicomgcs.manifest"
local report = require "dicomgcs.report"
local testdata = require "dicomgcs.testdata"
local timestamp = require "dicomgcs.timestamp"

describe("failures of an import", function()
  local c, bucket, good, op, err
  local broken = {}

  setup(function()
    c = env.store_client()
    bucket = env.bucket(c)
    good = env.upload_testdata(c, "gs://" .. bucket .. "/mix/", { studies = 1, series = 1, instances = 4, nested = false },
      "fail")
    local bytes = file.read(good[1].path)
    broken.text = "gs://" .. bucket .. "/mix/notes.dcm"
    broken.truncated = "gs://" .. bucket .. "/mix/truncated.dcm"
    broken.nopreamble = "gs://" .. bucket .. "/mix/nopreamble.dcm"
    assert(c.storage:write(broken.text, "these are notes, not DICOM"))
    assert(c.storage:write(broken.truncated, bytes:sub(1, 200)))
    assert(c.storage:write(broken.nopreamble, bytes:sub(129)))
    op = assert(c:import{ uri = "gs://" .. bucket .. "/mix/*.dcm" })
    local done
    done, err = op:wait{ interval = 0.05 }
    assert.are.equal(op, done)
    assert.is_true(op.partial)
    err = op:failure()
    -- the logs land after the operation ends: c:failures waits for them, failures.each does not
    assert.is_true(assert(c:failures(op)).complete)
  end)

  it("ends the operation with an error and both counters", function()
    assert.are.equal("operation", err.kind)
    assert.are.equal(#good, op.counter.success)
    assert.are.equal(3, op.counter.failure)
  end)

  it("lists every failed file with its reason from the logs", function()
    local seen = {}
    for f in failures.each(c, op) do
      seen[f.uri] = f
      assert.is_string(f.message)
      assert.are.equal("number", math.type(f.code) and "number")
    end
    for _, uri in pairs(broken) do assert.truthy(seen[uri], uri) end
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.are.equal(3, n)
  end)

  it("pages through the logs one entry at a time", function()
    local n = 0
    for _ in failures.each(c, op, { page_size = 1 }) do n = n + 1 end
    assert.are.equal(3, n)
  end)

  it("reads the sample errors carried by the operation", function()
    local samples = failures.samples(op)
    assert.is_true(#samples >= 1)
    for _, s in ipairs(samples) do assert.truthy(s.uri:find("gs://" .. bucket, 1, true)) end
  end)

  it("reports every matched file with an outcome, and the totals add up", function()
    local r = assert(c:import_report(op, "gs://" .. bucket .. "/mix/*.dcm"))
    assert.is_true(r.complete)
    assert.are.equal(#good + 3, r.totals.matched)
    assert.are.equal(#good, r.totals.succeeded)
    assert.are.equal(3, r.totals.failed)
    assert.are.equal(r.totals.matched, r.totals.succeeded + r.totals.failed + r.totals.skipped)
    local base = env.tmpdir("report") .. "/import"
    assert(report.write(r, base))
    local csv = file.read(base .. ".csv")
    for _, uri in pairs(broken) do assert.truthy(csv:find(uri .. ",failed,", 1, true), uri) end
    assert.truthy(file.read(base .. ".json"):find('"complete":true', 1, true))
  end)

  it("re-imports only the files that were made good", function()
    -- repair one broken file; leave the others as they are
    assert(c.storage:upload(good[1].path:gsub("i1", "i2"), broken.truncated))
    local summary = assert(c:retry_failed(op, { interval = 0.05 }))
    assert.are.equal(1, #summary.retried)
    assert.are.equal(broken.truncated, summary.retried[1].failure.uri)
    assert.are.equal(2, #summary.skipped)
    assert.are.equal(1, summary.succeeded)
    assert.are.equal(0, summary.failed)
    assert.are.equal(3, #summary.retried + #summary.skipped)
    for _, s in ipairs(summary.skipped) do assert.truthy(s.reason:find("unchanged", 1, true)) end
  end)
end)

describe("manifest", function()
  it("keeps the last outcome per key and survives a torn last line", function()
    local path = env.tmpdir("manifest") .. "/m.jsonl"
    local m = assert(manifest.open(path))
    assert(m:record("a", { state = "running" }))
    assert(m:record("b", { state = "done" }))
    assert(m:record("a", { state = "done", n = 3 }))
    m:close()
    local f = assert(io.open(path, "ab")); f:write('{"key":"c","sta'); f:close()
    local again = assert(manifest.open(path))
    assert.is_true(again:finished("a"))
    assert.are.equal(3, again:get("a").n)
    assert.is_false(again:finished("c"))
    assert.are.equal(#'{"key":"c","sta', again.dropped)   -- the torn tail is cut, not counted in torn
    assert.are.equal(0, again.torn)
    assert.are.same({ done = 2 }, again:counts())
    again:close()
  end)
end)

describe("report", function()
  it("marks inputs without an outcome as unknown and the report as incomplete", function()
    local r = report.build({ "a", "b", "c" }, { a = { outcome = "succeeded" }, b = { outcome = "failed", reason = "x,\"y\"" } })
    assert.is_false(r.complete)
    assert.are.equal(1, r.totals.unknown)
    assert.truthy(report.csv(r):find('b,failed,,"x,""y"""', 1, true))
  end)
end)

describe("timestamp.parse", function()
  it("reads Google's RFC 3339 forms", function()
    assert.are.equal(0, timestamp.parse("1970-01-01T00:00:00Z"))
    assert.are.equal(1.5, timestamp.parse("1970-01-01T00:00:01.500000000Z"))
    assert.are.equal(3600, timestamp.parse("1970-01-01T02:00:00+01:00"))
    assert.are.equal(1795525340, timestamp.parse("2026-11-24T13:02:20Z"))
    assert.is_nil(timestamp.parse("yesterday"))
  end)
end)

describe("reconciliation", function()
  it("settles every matched file by looking at the store when the logs say nothing", function()
    local c = env.store_client()
    local bucket = env.bucket(c, nil, "import")
    local good = env.upload_testdata(c, "gs://" .. bucket .. "/r/", { studies = 1, series = 1, instances = 3, nested = false },
      "reconcile")
    assert(c.storage:write("gs://" .. bucket .. "/r/junk.dcm", "junk, not DICOM"))
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/r/*.dcm" })
    op:wait{ interval = 0.05 }
    -- pretend Cloud Logging kept nothing: reconcile from the store alone
    local outcomes = assert(c:reconcile("gs://" .. bucket .. "/r/*.dcm"))
    local n, failed = 0, 0
    for uri, o in pairs(outcomes) do
      n = n + 1
      if o.outcome == "failed" then
        failed = failed + 1
        assert.are.equal("gs://" .. bucket .. "/r/junk.dcm", uri)
      end
    end
    assert.are.equal(#good + 1, n)
    assert.are.equal(1, failed)
    -- a file whose instance never reached the store is named as missing
    local extra = env.tmpdir("reconcile-extra")
    local more = assert(testdata.generate{ dir = extra, studies = 1, series = 1, instances = 1, nested = false })
    assert(c.storage:upload(more[1].path, "gs://" .. bucket .. "/r/late.dcm"))
    local again = assert(c:reconcile("gs://" .. bucket .. "/r/*.dcm"))
    assert.are.equal("MISSING", again["gs://" .. bucket .. "/r/late.dcm"].code)
  end)
end)
