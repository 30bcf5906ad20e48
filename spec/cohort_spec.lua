local env = require "spec.support.env"
local testdata = require "dicomgcs.testdata"

describe("client:export_cohort", function()
  local c, bucket, files

  setup(function()
    c = env.store_client()
    bucket = env.bucket(c)
    local dir = env.tmpdir("cohort")
    files = assert(testdata.generate{ dir = dir, studies = 3, series = 2, instances = 2 })
    local dw = assert(c:dicomweb())
    local s = assert(dw:store(dir))
    assert.are.equal(#files, s.stored)
  end)

  local function prefix() return "gs://" .. bucket .. "/" .. env.unique("out") .. "/" end

  it("exports the studies of a UID list, exactly, through the v1beta1 export", function()
    local r = assert(c:export_cohort{ uri_prefix = prefix(), studies = { files[1].study_uid }, interval = 0.05 })
    assert.is_true(r.exact)
    assert.are.equal(4, r.expected)
    assert.are.equal(4, r.written)
    local log = assert(env.admin("GET", "requests"))
    local beta, v1_export = false, false
    for _, q in ipairs(log.requests or log) do
      local path = q.path or q.url or ""
      if path:find("^/v1beta1/.*:export") then beta = true end
      if path:find("^/v1/.*" .. c.dataset .. ".*:export") then v1_export = true end
    end
    assert.is_true(beta)
    assert.is_false(v1_export)
  end)

  it("exports a series and single instances", function()
    local f = files[#files]
    local r = assert(c:export_cohort{ uri_prefix = prefix(), interval = 0.05,
      series = { { study = files[1].study_uid, series = files[1].series_uid } },
      instances = { { f.study_uid, f.series_uid, f.sop_uid } } })
    assert.is_true(r.exact)
    assert.are.equal(3, r.expected)
    assert.are.equal(2, #r.selected)
  end)

  it("exports what a QIDO query selects", function()
    local r = assert(c:export_cohort{ uri_prefix = prefix(), interval = 0.05,
      query = { level = "studies", filters = { PatientID = "PID0003" } } })
    assert.is_true(r.exact)
    assert.are.equal(4, r.expected)
    assert.are.equal("/studies/" .. files[#files].study_uid, r.selected[1].path)
  end)

  it("exports what a Lua predicate over study metadata selects", function()
    local dicomweb = require "dicomgcs.dicomweb"
    local r = assert(c:export_cohort{ uri_prefix = prefix(), interval = 0.05,
      predicate = function(study) return dicomweb.value(study, "PatientID") ~= "PID0002" end })
    assert.is_true(r.exact)
    assert.are.equal(8, r.expected)
  end)

  it("says when the prefix holds objects that were not asked for", function()
    local p = prefix()
    assert(c.storage:write(p .. "stray.txt", "x"))
    local r = assert(c:export_cohort{ uri_prefix = p, studies = { files[1].study_uid }, interval = 0.05 })
    assert.is_false(r.exact)
    assert.are.equal(1, #r.unexpected)
    assert.are.equal(0, #r.missing)
  end)

  it("rejects a malformed UID and an empty selection, naming them", function()
    local r, err = c:export_cohort{ uri_prefix = prefix(), studies = { "1.2.x" } }
    assert.is_nil(r)
    assert.truthy(err.message:find("'1.2.x'", 1, true))
    local r2, err2 = c:export_cohort{ uri_prefix = prefix(), query = { filters = { PatientID = "NOBODY" } } }
    assert.is_nil(r2)
    assert.truthy(err2.message:find("empty", 1, true))
    assert.has_error(function() c:export_cohort{ uri_prefix = prefix(), colour = "red" } end)
  end)
end)

describe("dicomgcs dicom-stores export gcs --query", function()
  it("exports the cohort a QIDO filter selects and checks it", function()
    local c = env.store_client()
    local bucket = env.bucket(c)
    local dir = env.tmpdir("cohort-cli")
    assert(testdata.generate{ dir = dir, studies = 2, series = 1, instances = 2 })
    assert((c:dicomweb()):store(dir))
    local out, code = env.dicomgcs(("dicom-stores export gcs store --gcs-uri-prefix=gs://%s/cli/ " ..
      "--query=PatientID=PID0001 --format=json --project=spec-project --location=us-central1 --dataset=%s"):format(
      bucket, c.dataset))
    assert.are.equal(0, code, out)
    local doc = require("dicomgcs.json").decode(out)
    assert.is_true(doc.exact)
    assert.are.equal(2, doc.written)
  end)
end)
