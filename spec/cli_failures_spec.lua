local env = require "spec.support.env"
local file = require "spec.support.file"
local json = require "dicomgcs.json"

local function cli(host, args) return env.dicomgcs(args, host) end

-- A client on the emulator at `host` with dataset `dataset`, its store "st", and a bucket that the
-- store may import from, holding generated files (`series` x `instances`) under in/: returns
-- client, bucket, files.
local function store_and_files(host, dataset, series, instances)
  local c = env.client{ emulator = host, token = "t", dataset = dataset, dicom_store = "st" }
  assert(c:create_dataset{}); assert(c:create_dicom_store{})
  local bucket = env.bucket(c, nil, "import")
  local files = env.upload_testdata(c, "gs://" .. bucket .. "/in/",
    { studies = 1, series = series, instances = instances, nested = false }, "clif")
  return c, bucket, files
end

-- A store with good and broken files imported into it: returns client, bucket, op, good files.
local function failed_import(host)
  local c, bucket, good = store_and_files(host, env.unique("ds"), 1, 3)
  assert(c.storage:write("gs://" .. bucket .. "/in/bad1.dcm", "not dicom"))
  assert(c.storage:write("gs://" .. bucket .. "/in/bad2.dcm", "not dicom either"))
  local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm" })
  op:wait{ interval = 0.05 }
  return c, bucket, op, good
end

describe("dicomgcs operations failures / retry-failed / cancel", function()
  local loc = "--project=spec-project --location=us-central1"

  it("prints every failed file with its reason, as text, JSON and CSV", function()
    local host = env.emulator().host
    local c, bucket, op = failed_import(host)
    local text, code = cli(host, "operations failures " .. op.name .. " " .. loc)
    assert.are.equal(0, code)
    assert.truthy(text:find("gs://" .. bucket .. "/in/bad1.dcm\t", 1, true))
    assert.truthy(text:find("gs://" .. bucket .. "/in/bad2.dcm\t", 1, true))
    local doc = json.decode((cli(host, "operations failures " .. op.name .. " --format=json " .. loc)))
    assert.are.equal(2, #doc.failures)
    assert.is_true(doc.complete)
    local csv = cli(host, "operations failures " .. op.name .. " --format=csv " .. loc)
    assert.truthy(csv:find("^input,outcome,code,reason\r\n"))
    assert.truthy(csv:find("gs://" .. bucket .. "/in/bad1.dcm,failed,INVALID_ARGUMENT,", 1, true)
                  or csv:find("gs://" .. bucket .. "/in/bad1.dcm,failed,", 1, true))
    c:close()
  end)

  it("retries only the files made good", function()
    local host = env.emulator().host
    local c, bucket, op, good = failed_import(host)
    assert(c.storage:upload(good[1].path, "gs://" .. bucket .. "/in/bad2.dcm"))
    local out, code, err = cli(host, "operations retry-failed " .. op.name .. " --dicom-store=st --dataset=" ..
      c.dataset .. " " .. loc)
    assert.are.equal(0, code, err)
    assert.truthy(out:find("bad2.dcm\tretried ok", 1, true), out)
    assert.truthy(out:find("bad1.dcm\tskipped", 1, true), out)
    assert.truthy(err:find("Retried 1 file(s): 1 ok, 0 failed; skipped 1.", 1, true), err)
    c:close()
  end)

  it("cancels a running import and reports what it did before it stopped", function()
    local emu = env.start_emulator{ "--op-delay-ms", "150" }
    local c, bucket, files = store_and_files(emu.host, "cancel", 2, 10)
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm" })
    local out, code, err = cli(emu.host, "operations cancel " .. op.name .. " --format=json " .. loc)
    assert.are.equal(0, code, err)
    local doc = json.decode(out)
    assert.is_true(doc.done)
    assert.are.equal(1, doc.error.code)
    assert.is_true(doc.metadata.cancelRequested)
    local c2 = doc.metadata.counter or {}
    local ok_n = tonumber(c2.success or "0")
    assert.is_true(ok_n < #files, "the import finished before the cancel took effect")
    assert.truthy(err:find("Stopped " .. op.name, 1, true), err)
    c:close()
  end)
end)

describe("dicomgcs operations report", function()
  it("lists every matched file with its outcome and writes JSON and CSV", function()
    local host = env.emulator().host
    local c, bucket, op, good = failed_import(host)
    local base = env.tmpdir("clirep") .. "/rep"
    local out, code, err = cli(host, "operations report " .. op.name .. " --gcs-uri='gs://" .. bucket ..
      "/in/*.dcm' --output=" .. env.quote(base) .. " --project=spec-project --location=us-central1")
    assert.are.equal(3, code, err)
    local n = 0
    for _ in out:gmatch("[^\n]+") do n = n + 1 end
    assert.are.equal(#good + 2, n)
    assert.truthy(err:find(("%d matched: %d succeeded, 2 failed, 0 skipped."):format(#good + 2, #good), 1, true), err)
    local csv = file.read(base .. ".csv")
    assert.truthy(csv:find("/in/bad1.dcm,failed,", 1, true))
    c:close()
  end)
end)
