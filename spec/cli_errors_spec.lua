-- #14 §6: no Lua traceback ever reaches a command-line user. Bad usage exits 2 naming the flag
-- (with "did you mean" for a misspelt flag or command), failures exit 1 with the cause, internal
-- errors exit 1 with a hint (the traceback only with DICOMGCS_DEBUG=1 or --verbosity=debug),
-- Ctrl-C while waiting exits 130 and says how to wait again.
local env = require "spec.support.env"

local loc = "--project=spec-project --location=us-central1"
local store = "--dicom-store=st --dataset=ds " .. loc

-- { command line, exit code, text stderr must hold (plain) }
local cases = {
  { "datasets frobnicate", 2, "unknown command" },
  { "datasets lst " .. loc, 2, "did you mean `dicomgcs datasets list`" },
  { "dataset lsit " .. loc, 2, "did you mean `dicomgcs datasets list`" },
  { "operations wiat 1 " .. loc, 2, "did you mean `dicomgcs operations wait`" },
  { "storage cpp a b", 2, "did you mean `dicomgcs storage cp`" },
  { "datasets list --colour=blue " .. loc, 2, "--colour" },
  { "datasets list --projetc=x " .. loc, 2, "did you mean --project?" },
  { "dicom-stores import gcs st --gcs-url=gs://b/x --dataset=ds " .. loc, 2, "did you mean --gcs-uri?" },
  { "datasets list --format=xml " .. loc, 2, "--format=xml" },
  { "datasets list --format='table(name' " .. loc, 2, "--format" },
  { "datasets list --format " .. loc, 2, "--format needs a value" },
  { "storage rm -rx gs://b/x " .. loc, 2, "unknown flag -x" },
  { "operations describe 1 --format=table --dataset=ds " .. loc, 2, "table(FIELD" },
  { "datasets list --verbosity=loud " .. loc, 2, "--verbosity" },
  { "datasets list --limit=0 " .. loc, 2, "--limit" },
  { "datasets list --limit=1.5 " .. loc, 2, "--limit" },
  { "datasets list --page-size=abc " .. loc, 2, "--page-size" },
  { "datasets list --filter='name:a OR name:b' " .. loc, 2, "--filter" },
  { "datasets list --filter='=x' " .. loc, 2, "--filter" },
  { "datasets list --sort-by= " .. loc, 2, "--sort-by" },
  { "datasets describe " .. loc, 2, "argument" },
  { "datasets describe a b " .. loc, 2, "argument" },
  { "datasets describe projects/spec-project/locations/us-central1/datasets/ds --location=europe-west4 --project=spec-project", 2, "--location" },
  { "dicom-stores describe projects/spec-project/locations/us-central1/datasets/ds " .. loc, 2, "not a DICOM store name" },
  { "dicom-stores list --dataset=projects/x " .. loc, 2, "--dataset" },
  { "dicom-stores import gcs st --dataset=ds " .. loc, 2, "--gcs-uri is required" },
  { "dicom-stores import gcs st --gcs-uri=gs://b/x --plan --partition --dataset=ds " .. loc, 2, "--partition" },
  { "dicom-stores import gcs st --gcs-uri=gs://b/x --partition --max-in-flight=0 --dataset=ds " .. loc, 2, "--max-in-flight" },
  { "dicom-stores export gcs st --dataset=ds " .. loc, 2, "--gcs-uri-prefix is required" },
  { "dicom-stores export gcs st --gcs-uri-prefix=gs://b/x/ --filter=PatientID=1 --dataset=ds " .. loc, 2, "--query" },
  { "dicom-stores export gcs st --gcs-uri-prefix=gs://b/x/ --query=PatientID --dataset=ds " .. loc, 2, "--query=PatientID" },
  { "dicom-stores export bq st --dataset=ds " .. loc, 2, "--bq-table is required" },
  { "operations retry-failed 1 --dataset=ds " .. loc, 2, "--dicom-store is required" },
  { "operations retry-failed 1 --dicom-store=st --concurrency=0 --dataset=ds " .. loc, 2, "--concurrency" },
  { "operations retry-failed 1 --dicom-store=st --concurrency=1.5 --dataset=ds " .. loc, 2, "--concurrency" },
  { "operations wait 1 --timeout=-3 --dataset=ds " .. loc, 2, "--timeout" },
  { "operations report 1 --dataset=ds " .. loc, 2, "--gcs-uri is required" },
  { "dicomweb store x --concurrency=0 " .. store, 2, "--concurrency" },
  { "dicomweb store x --batch=-1 " .. store, 2, "--batch" },
  { "dicomweb store " .. store, 2, "argument" },
  { "dicomweb search patients " .. store, 2, "studies, series or instances" },
  { "dicomweb search studies --filter=PatientID=1 " .. store, 2, "--query" },
  { "dicomweb search studies --query=PatientID " .. store, 2, "--query=PatientID" },
  { "dicomweb search studies --limit=0 " .. store, 2, "--limit" },
  { "dicomweb search studies " .. loc, 2, "--dicom-store" },
  { "dicomweb search studies --dicomweb-url=ftp://x/dicom-web", 2, "--dicomweb-url" },
  { "dicomweb retrieve studies/1/frames/2 --dest=x " .. store, 2, "studies/UID" },
  { "dicomweb retrieve studies/1 " .. store, 2, "--dest" },
  { "dicomweb retrieve studies/1 --rendered=gif --dest=x " .. store, 2, "--rendered" },
  { "storage ls gs:// " .. loc, 2, "gs://" },
  { "storage cp /tmp /tmp " .. loc, 2, "gs://" },
  { "storage rm gs://b/x/ " .. loc, 2, "-r" },
  { "storage buckets create bucket " .. loc, 2, "gs://BUCKET" },
  { "storage grant-service-agent gs://b " .. loc, 2, "--for" },
  { "completion fish", 2, "bash or zsh" },
  { [[datasets list --project "$(printf 'a\r\nb')" --location=us-central1]], 2, "--project" },
  -- failures: exit 1 with the cause
  { "datasets describe no-such-dataset " .. loc, 1, "NOT_FOUND" },
  { "operations describe 123 --dataset=no-such-dataset " .. loc, 1, "ERROR:" },
}

describe("dicomgcs on bad command lines", function()
  it("names the problem, exits with the documented code, never prints a traceback (" .. #cases .. " cases)", function()
    assert.is_true(#cases >= 40)
    for _, case in ipairs(cases) do
      local out, code, err = env.dicomgcs(case[1])
      local all = out .. err
      assert.is_nil(all:find("stack traceback", 1, true), case[1] .. "\n" .. all)
      assert.is_nil(all:find("%.lua:%d+:"), case[1] .. "\n" .. all)
      assert.are.equal(case[2], code, case[1] .. "\n" .. all)
      assert.truthy(err:find(case[3], 1, true), case[1] .. ": stderr lacks '" .. case[3] .. "'\n" .. err)
      assert.truthy(err:find("ERROR", 1, true), case[1])
    end
  end)

  it("refuses a control character in a variable that would reach a header, naming it", function()
    local _, code, err = env.run_split(([[GOOGLE_CLOUD_QUOTA_PROJECT="$(printf 'spec\r\nX-Evil: 1')" DICOMGCS_EMULATOR_HOST=%s ]] ..
      "bin/dicomgcs datasets list %s"):format(env.emulator().host, loc))
    assert.are.equal(2, code, err)
    assert.truthy(err:find("GOOGLE_CLOUD_QUOTA_PROJECT", 1, true), err)
    assert.is_nil(err:find("traceback", 1, true), err)
  end)

  it("names gcloud's variable when its value is wrong", function()
    local _, code, err = env.run_split("CLOUDSDK_CORE_VERBOSITY=loud bin/dicomgcs config list")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("CLOUDSDK_CORE_VERBOSITY", 1, true), err)
  end)

  it("turns an internal error into a hint, with the traceback only when debugging", function()
    -- a fault planted in the output layer, as a bug would be
    local plant = env.lua_paths() .. " LUA_INIT_5_4=" ..
      env.quote('require("dicomgcs.cli.output").table = function() local x; return x.y end') .. " "
    local out, code, err = env.run_split(plant .. "bin/dicomgcs config list")
    assert.are.equal(1, code)
    assert.truthy(err:find("internal error: attempt to index a nil value", 1, true), err)
    assert.truthy(err:find("--verbosity=debug", 1, true), err)
    assert.is_nil((out .. err):find("stack traceback", 1, true), err)
    local _, dcode, derr = env.run_split(plant .. "DICOMGCS_DEBUG=1 bin/dicomgcs config list")
    assert.are.equal(1, dcode)
    assert.truthy(derr:find("stack traceback", 1, true), derr)
    local _, vcode, verr = env.run_split(plant .. "bin/dicomgcs config list --verbosity=debug")
    assert.are.equal(1, vcode)
    assert.truthy(verr:find("stack traceback", 1, true), verr)
  end)

  it("--verbosity=none keeps even the error line quiet, the exit code says it", function()
    local _, code, err = env.dicomgcs("datasets describe no-such-dataset --verbosity=none " .. loc)
    assert.are.equal(1, code)
    assert.are.equal("", err)
  end)
end)

describe("Ctrl-C while waiting on an operation", function()
  it("stops waiting, says the operation goes on and how to wait again, exits 130", function()
    local emu = env.start_emulator{ "--op-delay-ms", "400" }
    local c = env.client{ emulator = emu.host, token = "t", dataset = env.unique("ds"), dicom_store = "st" }
    assert(c:create_dataset{}); assert(c:create_dicom_store{})
    local bucket = env.bucket(c, nil, "import")
    env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 1, series = 2, instances = 10 }, "cli-int")
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/**.dcm" })
    local dir = env.tmpdir("cli-int-run")
    -- the waiter runs in the background; its pid and, once it ends, its exit code go to files
    os.execute(("(DICOMGCS_EMULATOR_HOST=%s DICOMGCS_POLL_INTERVAL=0.05 bin/dicomgcs operations wait %s %s " ..
      ">%s/out 2>%s/err & echo $! >%s/pid; wait $!; echo $? >%s/rc) >/dev/null 2>&1 &"):format(
      emu.host, op.name, loc, dir, dir, dir, dir))
    local function read(name)
      local f = io.open(dir .. "/" .. name)
      if not f then return nil end
      local t = f:read("a"); f:close()
      return t
    end
    -- waiting has begun once a progress line with a counter is out
    assert.is_true(env.wait_until(function() return (read("err") or ""):find("succeeded", 1, true) ~= nil end, 60))
    local pid = assert(tonumber((read("pid") or ""):match("%d+")))
    os.execute("kill -INT " .. pid)
    assert.is_true(env.wait_until(function() return (read("rc") or ""):match("%d+") ~= nil end, 60))
    local err = read("err")
    assert.are.equal("130", read("rc"):match("%d+"), err)
    assert.is_nil(err:find("traceback", 1, true), err)
    assert.is_nil(err:find("interrupted!", 1, true), err)
    assert.truthy(err:find("goes on in the server", 1, true), err)
    assert.truthy(err:find("dicomgcs operations wait " .. op.name, 1, true), err)
    -- it did go on: waiting again sees it through
    local _, code = env.dicomgcs("operations wait " .. op.name .. " " .. loc, emu.host)
    assert.are.equal(0, code)
    c:close()
  end)
end)
