-- Issue #15 §2, §5, §8 on the client side: late logs are waited for (and a short read is never
-- taken as complete), empty log pages with a token are paged on, no pageSize over 1,000 is sent,
-- and a file whose SOP Instance UID the store holds with other bytes is a "conflict" that
-- retry_failed skips unless replace=true.
local env = require "spec.support.env"
local failures = require "dicomgcs.failures"

-- A client with a fresh store and a bucket on emulator `emu`, files under in/ (some broken).
local function failed_import(emu, n_bad)
  local c = env.client{ emulator = emu.host, dataset = env.unique("late"), dicom_store = "st" }
  assert(c:create_dataset{}); assert(c:create_dicom_store{})
  local bucket = env.bucket(c, nil, "import")
  local good = env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 1, series = 1, instances = 2, nested = false }, "late")
  for i = 1, n_bad do assert(c.storage:write(("gs://%s/in/bad%d.dcm"):format(bucket, i), "not DICOM " .. i)) end
  local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm" })
  op:wait{ interval = 0.05 }
  assert.are.equal(n_bad, op.counter.failure)
  return c, bucket, op, good
end

describe("logs that arrive after the operation ends", function()
  local emu
  setup(function()
    -- the logs land 2 s after `done`, behind two empty pages that carry a token
    emu = env.start_emulator{ "--log-delay-ms", "2000", "--log-empty-pages", "2" }
  end)
  teardown(function() emu.stop() end)

  it("failures() reads again until the logged failures reach the counter", function()
    local c, bucket, op = failed_import(emu, 3)
    local waits = 0
    local found = assert(c:failures(op, { on_wait = function(logged, expected)
      waits = waits + 1
      assert.are.equal(3, expected)
      assert.is_true(logged < expected)
    end }))
    assert.is_true(waits >= 1)
    assert.is_true(found.complete)
    assert.are.equal(3, found.logged)
    local uris = {}
    for _, f in ipairs(found.failures) do uris[f.uri] = true end
    for i = 1, 3 do assert.truthy(uris[("gs://%s/in/bad%d.dcm"):format(bucket, i)]) end
  end)

  it("a short read is not taken as the whole story: the report reconciles", function()
    -- 12 failures: the operation carries at most 10 samples, and the logs are not there yet
    local c, bucket, op = failed_import(emu, 12)
    local found = assert(c:failures(op, { logs_wait = 0 }))
    assert.are.equal(0, found.logged)
    assert.is_false(found.complete)
    local r = assert(c:import_report(op, "gs://" .. bucket .. "/in/*.dcm", { logs_wait = 0, dicom_store = "st" }))
    assert.is_true(r.reconciled)
    assert.are.equal(14, r.totals.matched)
    assert.are.equal(2, r.totals.succeeded)
    assert.are.equal(12, r.totals.failed)
    assert.is_true(r.complete)
  end)

  it("pages on past empty pages, and never asks for more than 1,000 entries a page", function()
    local c, _, op = failed_import(emu, 1)
    assert(c:failures(op)) -- wait for the logs
    env.admin("DELETE", "requests", nil, emu)
    local n = 0
    for _ in failures.each(c, op, { page_size = 5000 }) do n = n + 1 end
    assert.are.equal(1, n)
    local calls = assert(env.admin("GET", "requests?path=entries:list", nil, emu)).requests
    assert.are.equal(3, #calls) -- two empty pages, then the entry
    for _, r in ipairs(calls) do assert.are.equal(200, r.status) end
  end)
end)

describe("the same instance, different bytes", function()
  local c, bucket, seed

  -- Generate one instance with uid seed `seed`; `modality` changes its bytes, not its UIDs.
  local function instance(modality, name)
    local dir = env.tmpdir("conf")
    local files = assert(require("dicomgcs.testdata").generate{ dir = dir, studies = 1, series = 1, instances = 1,
      nested = false, uid_seed = seed, modality = modality })
    assert(c.storage:upload(files[1].path, "gs://" .. bucket .. "/" .. name))
    return files[1]
  end

  setup(function()
    c = env.store_client()
    bucket = env.bucket(c, nil, "import")
    seed = tostring(math.random(100000, 999999))
  end)

  it("is a conflict: reported apart, skipped by retry_failed, replaced with replace=true", function()
    local first = instance("CT", "a/first.dcm")
    assert(c:import{ uri = "gs://" .. bucket .. "/a/*.dcm", wait = true, interval = 0.05 })
    instance("CT", "b/same.dcm")
    local other = instance("MR", "b/other.dcm")
    assert.are.equal(first.sop_uid, other.sop_uid)
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/b/*.dcm" })
    op:wait{ interval = 0.05 }
    assert.are.equal(1, op.counter.success)
    assert.are.equal(1, op.counter.failure)

    local found = assert(c:failures(op))
    assert.are.equal(1, #found.failures)
    assert.are.equal("conflict", found.failures[1].kind)
    assert.are.equal("gs://" .. bucket .. "/b/other.dcm", found.failures[1].uri)

    local r = assert(c:import_report(op, "gs://" .. bucket .. "/b/*.dcm"))
    assert.are.equal(1, r.totals.conflict)
    assert.are.equal(1, r.totals.succeeded)
    assert.are.equal(0, r.totals.failed)
    assert.are.equal(r.totals.matched, r.totals.succeeded + r.totals.failed + r.totals.skipped + r.totals.conflict)
    assert.is_true(r.complete)

    local s = assert(c:retry_failed(op, { dicom_store = "store", interval = 0.05 }))
    assert.are.equal(0, #s.retried)
    assert.are.equal(1, s.conflicts)
    assert.truthy(s.skipped[1].reason:find("conflict", 1, true))

    s = assert(c:retry_failed(op, { dicom_store = "store", interval = 0.05, replace = true }))
    assert.are.equal(1, #s.retried)
    assert.are.equal(1, s.succeeded)
    -- the store now holds the new bytes
    local dw = assert(c:dicomweb())
    local stored = assert(c.storage:read("gs://" .. bucket .. "/b/other.dcm"))
    local got = assert(dw:retrieve{ study = other.study_uid, series = other.series_uid, instance = other.sop_uid,
      dest = env.tmpdir("conf-get") })
    assert.are.equal(1, got.instances)
    assert.are.equal(stored, require("spec.support.file").read(got.results[1].path))
  end)

  it("on the command line: report lists the conflict apart, retry-failed skips it, --replace replaces it", function()
    seed = tostring(math.random(100000, 999999))
    instance("CT", "c/first.dcm")
    assert(c:import{ uri = "gs://" .. bucket .. "/c/*.dcm", wait = true, interval = 0.05 })
    instance("MR", "d/other.dcm")
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/d/*.dcm" })
    op:wait{ interval = 0.05 }
    local loc = ("--project=spec-project --location=%s --dataset=%s"):format(c.location, c.dataset)
    local function cli(args) return env.run(("DICOMGCS_EMULATOR_HOST=%s bin/dicomgcs %s %s"):format(
      env.emulator().host, args, loc), true) end
    local out, code = cli("operations report " .. op.name .. " --gcs-uri='gs://" .. bucket .. "/d/*.dcm'")
    assert.are.equal(3, code, out)
    assert.truthy(out:find("/d/other.dcm\tconflict\t", 1, true), out)
    assert.truthy(out:find("1 conflict", 1, true), out)
    out, code = cli("operations retry-failed " .. op.name .. " --dicom-store=store --logs-wait=5")
    assert.are.equal(0, code, out)
    assert.truthy(out:find("/d/other.dcm\tskipped\t-\tconflict", 1, true), out)  -- URI, action, new operation, reason
    out, code = cli("operations retry-failed " .. op.name .. " --dicom-store=store --replace")
    assert.are.equal(0, code, out)
    assert.truthy(out:find("/d/other.dcm\tretried ok", 1, true), out)
  end)
end)
