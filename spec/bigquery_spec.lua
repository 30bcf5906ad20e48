local dicomgcs = require "dicomgcs"
local env = require "spec.support.env"
local testdata = require "dicomgcs.testdata"

describe("export to BigQuery", function()
  local emu, c, files

  setup(function()
    emu = env.start_emulator()
    c = assert(dicomgcs.client{ project = "spec-project", location = "us-central1", emulator = emu.host,
      token = "t", dataset = "bq", dicom_store = "st" })
    assert(c:create_dataset{}); assert(c:create_dicom_store{})
    local dir = env.tmpdir("bq")
    files = assert(testdata.generate{ dir = dir, studies = 1, series = 2, instances = 2 })
    assert(assert(c:dicomweb()):store(dir))
  end)

  teardown(function() c:close(); emu.stop() end)

  local function rows(table_name)
    local f = io.open(emu.data .. "/bigquery/spec-project/cohort/" .. table_name .. ".jsonl")
    if not f then return 0 end
    local n = 0
    for line in f:lines() do if line ~= "" then n = n + 1 end end
    f:close()
    return n
  end

  it("sends bigqueryDestination as Google documents it, and one row per instance arrives", function()
    local op = assert(c:export_bigquery{ table_uri = "bq://spec-project.cohort.instances", wait = true, interval = 0.05 })
    assert.is_true(op.done)
    assert.are.equal(#files, rows("instances"))
  end)

  it("honours the write disposition", function()
    assert(c:export_bigquery{ table_uri = "bq://spec-project.cohort.t2", wait = true, interval = 0.05 })
    local _, err = c:export_bigquery{ table_uri = "bq://spec-project.cohort.t2", write_disposition = "WRITE_EMPTY",
      wait = true, interval = 0.05 }
    assert.are.equal("operation", err.kind)
    assert.are.equal(9, err.code)
    assert(c:export_bigquery{ table_uri = "bq://spec-project.cohort.t2", write_disposition = "WRITE_APPEND",
      wait = true, interval = 0.05 })
    assert.are.equal(2 * #files, rows("t2"))
  end)

  it("rejects a malformed table URI and disposition before sending", function()
    local op, err = c:export_bigquery{ table_uri = "spec-project.cohort.t" }
    assert.is_nil(op)
    assert.truthy(err.message:find("'spec-project.cohort.t'", 1, true))
    local op2, err2 = c:export_bigquery{ table_uri = "bq://p.d.t", write_disposition = "SOMETIMES" }
    assert.is_nil(op2)
    assert.truthy(err2.message:find("SOMETIMES", 1, true))
  end)

  it("is a command: dicom-stores export bq", function()
    local out, code, err = env.dicomgcs("dicom-stores export bq st --bq-table=bq://spec-project.cohort.cli " ..
      "--dataset=bq --project=spec-project --location=us-central1 --format=json", emu.host)
    assert.are.equal(0, code, err)
    assert.is_true(require("dicomgcs.json").decode(out).done)
    assert.are.equal(#files, rows("cli"))
  end)
end)
