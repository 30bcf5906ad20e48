local env = require "spec.support.env"
local file = require "spec.support.file"
local json = require "dicomgcs.json"
local testdata = require "dicomgcs.testdata"

local function dicomgcs(args) return env.dicomgcs(args) end

describe("bin/dicomgcs", function()
  local loc = "--project=spec-project --location=us-central1"

  it("prints help with every command and exits 0", function()
    local out, code = dicomgcs("--help")
    assert.are.equal(0, code)
    for _, verb in ipairs{ "datasets create", "dicom-stores import gcs", "dicom-stores export gcs",
                           "operations wait", "storage cp", "storage ls", "storage buckets create" } do
      assert.truthy(out:find(verb, 1, true), verb)
    end
  end)

  it("exits 2 on an unknown command or flag", function()
    local _, code = dicomgcs("datasets frobnicate")
    assert.are.equal(2, code)
    local _, code2, err = dicomgcs("datasets list --colour=blue " .. loc)
    assert.are.equal(2, code2)
    assert.truthy(err:find("--colour", 1, true))
  end)

  it("runs a whole pipeline: bucket, cp, ls, dataset, store, import, export, operations", function()
    local ds, bucket = env.unique("ds"), env.unique("bkt")
    local dir = env.tmpdir("cli")
    local files = assert(testdata.generate{ dir = dir, studies = 1, series = 2, instances = 2 })

    local _, code = dicomgcs("storage buckets create gs://" .. bucket .. " " .. loc)
    assert.are.equal(0, code)
    assert.are.equal(0, select(2, dicomgcs("storage grant-service-agent gs://" .. bucket .. " --for=export " .. loc)))
    local _, cp_code = dicomgcs("storage cp -r " .. env.quote(dir) .. " gs://" .. bucket .. "/in " .. loc)
    assert.are.equal(0, cp_code)
    local ls = dicomgcs("storage ls 'gs://" .. bucket .. "/in/**.dcm' " .. loc)
    local n = 0
    for line in ls:gmatch("[^\n]+") do
      assert.truthy(line:match("^gs://" .. bucket:gsub("%-", "%%-") .. "/in/"))
      n = n + 1
    end
    assert.are.equal(#files, n)

    assert.are.equal(0, select(2, dicomgcs("datasets create " .. ds .. " " .. loc)))
    local desc = dicomgcs("datasets describe " .. ds .. " --format=json " .. loc)
    assert.truthy(json.decode(desc).name:find(ds, 1, true))
    assert.are.equal(0, select(2, dicomgcs("dicom-stores create st --dataset=" .. ds .. " " .. loc)))

    local out, icode = dicomgcs("dicom-stores import gcs st --gcs-uri='gs://" .. bucket ..
      "/in/**.dcm' --format=json --dataset=" .. ds .. " " .. loc)
    assert.are.equal(0, icode)
    local op = json.decode(out)
    assert.is_true(op.done)
    assert.are.equal(tostring(#files), op.metadata.counter.success)

    local name = dicomgcs("dicom-stores export gcs st --gcs-uri-prefix=gs://" .. bucket ..
      "/out/ --async --dataset=" .. ds .. " " .. loc):gsub("%s+$", "")
    assert.truthy(name:match("/operations/%d+$"), name)
    local waited, wcode = dicomgcs("operations wait " .. name .. " --format=json " .. loc)
    assert.are.equal(0, wcode)
    assert.are.equal(tostring(#files), json.decode(waited).metadata.counter.success)
    local described = json.decode((dicomgcs("operations describe " .. name:match("(%d+)$") ..
      " --dataset=" .. ds .. " --format=json " .. loc)))
    assert.are.equal(name, described.name)

    local listed = json.decode((dicomgcs("operations list --dataset=" .. ds .. " --format=json " .. loc)))
    assert.is_true(#listed >= 2)

    local down = env.tmpdir("cli-down")
    assert.are.equal(0, select(2, dicomgcs("storage cp -r gs://" .. bucket .. "/out/ " .. env.quote(down) .. " " .. loc)))
    local count = env.run("find " .. env.quote(down) .. " -name '*.dcm' | wc -l"):gsub("%s", "")
    assert.are.equal(tostring(#files), count)
    assert.are.equal(0, select(2, dicomgcs("datasets delete " .. ds .. " " .. loc)))
  end)

  it("exits 3 when an import finishes with some files failed, and 1 when the input is wrong", function()
    local ds, bucket = env.unique("ds"), env.unique("bkt")
    local dir = env.tmpdir("cli-bad")
    assert(testdata.generate{ dir = dir, studies = 1, series = 1, instances = 1, nested = false })
    file.write(dir .. "/junk.dcm", "not dicom")
    dicomgcs("storage buckets create gs://" .. bucket .. " " .. loc)
    dicomgcs("storage grant-service-agent gs://" .. bucket .. " --for=import " .. loc)
    dicomgcs("storage cp -r " .. env.quote(dir) .. " gs://" .. bucket .. "/in " .. loc)
    dicomgcs("datasets create " .. ds .. " " .. loc)
    dicomgcs("dicom-stores create st --dataset=" .. ds .. " " .. loc)
    local _, code, err = dicomgcs("dicom-stores import gcs st --gcs-uri='gs://" .. bucket ..
      "/in/*.dcm' --dataset=" .. ds .. " " .. loc)
    assert.are.equal(3, code)
    assert.truthy(err:find("failure 1", 1, true))
    local _, code2, err2 = dicomgcs("dicom-stores import gcs st --gcs-uri='gs://" .. bucket ..
      "/in/**/x' --dataset=" .. ds .. " " .. loc)
    assert.are.equal(1, code2)
    assert.truthy(err2:find("must be at the end", 1, true))
  end)
end)

describe("bin/dicomgcs dicom-stores import gcs --plan / --partition", function()
  it("shows the plan, then runs it with a cap and a manifest", function()
    local loc = "--project=spec-project --location=us-central1"
    local ds, bucket = env.unique("ds"), env.unique("bkt")
    local dir = env.tmpdir("cli-plan")
    assert(testdata.generate{ dir = dir, studies = 3, series = 1, instances = 2, nested = true })
    dicomgcs("storage buckets create gs://" .. bucket .. " " .. loc)
    dicomgcs("storage cp -r " .. env.quote(dir) .. " gs://" .. bucket .. "/in " .. loc)
    dicomgcs("datasets create " .. ds .. " " .. loc)
    dicomgcs("dicom-stores create st --dataset=" .. ds .. " " .. loc)
    local grant = "storage grant-service-agent gs://" .. bucket .. " --for=import " .. loc
    dicomgcs(grant)
    local _, code, err = dicomgcs("dicom-stores import gcs st --plan --gcs-uri='gs://" .. bucket ..
      "/in/**.dcm' --dataset=" .. ds .. " " .. loc)
    assert.are.equal(0, code)
    assert.truthy(err:find("6 file(s)", 1, true), err)
    local m = env.tmpdir("cli-plan-m") .. "/state.jsonl"
    local _, pcode, perr = dicomgcs("dicom-stores import gcs st --partition --max-in-flight=2 --manifest=" ..
      env.quote(m) .. " --gcs-uri='gs://" .. bucket .. "/in/**.dcm' --dataset=" .. ds .. " " .. loc)
    assert.are.equal(0, pcode, perr)
    assert.truthy(perr:find("3 import(s): 3 done, 0 failed; 6 files imported, 0 failed.", 1, true), perr)
  end)
end)
