local dicomgcs = require "dicomgcs"
local env = require "spec.support.env"
local file = require "spec.support.file"

describe("dicomgcs.client", function()
  it("raises on an unknown option, naming it", function()
    local ok, err = pcall(dicomgcs.client, { project = "spec-project", colour = "blue" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("unknown option 'colour'", 1, true))
  end)

  it("rejects a bad dataset name before sending anything", function()
    local c, err = dicomgcs.client{ project = "spec-project", location = "us-central1", dataset = "my dataset",
                                    token = "t", emulator = "127.0.0.1:9" }
    assert.is_nil(c)
    assert.are.equal("input", err.kind)
    assert.truthy(err.message:find("'my dataset'", 1, true))
  end)

  it("rejects a DICOM store id with a slash, naming it", function()
    local c = env.client()
    local ok, err = c:get_dicom_store{ dataset = "d", dicom_store = "a/b" }
    assert.is_nil(ok)
    assert.are.equal("input", err.kind)
    assert.truthy(err.message:find("'a/b'", 1, true))
  end)

  it("says what to do when no project is given anywhere, before sending anything", function()
    -- A child process with no project in its environment and an empty gcloud configuration; the
    -- emulator address is a closed port, so an error of any kind but "input" means a request went out.
    local dir = env.tmpdir("noproject")
    local script = dir .. "/probe.lua"
    file.write(script, [[
      package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
      package.cpath = (os.getenv("DICOMGCS_BUILD") or "build") .. "/?.so;" .. package.cpath
      local c = assert(require("dicomgcs").client{ location = "us-central1", emulator = "127.0.0.1:9", token = "t",
                                                  retry = { max_attempts = 1 } })
      local ok, err = c:get_dataset{ dataset = "d" }
      io.write(tostring(c.project), "\n", tostring(ok), "\n", err.kind, "\n", err.message, "\n", tostring(err.hint))
    ]])
    local clean = "env -u GOOGLE_CLOUD_PROJECT -u CLOUDSDK_CORE_PROJECT -u GCLOUD_PROJECT -u DICOMGCS_EMULATOR_HOST "
      .. "CLOUDSDK_CONFIG=" .. env.quote(dir .. "/gcloud") .. " HOME=" .. env.quote(dir) .. " "
    local out, code = env.run(clean .. "lua5.4 " .. env.quote(script), true)
    assert.are.equal(0, code, out)
    local project, ok, kind, message, hint = out:match("^(.-)\n(.-)\n(.-)\n(.-)\n(.*)$")
    assert.are.equal("nil", project, out)
    assert.are.equal("nil", ok)
    assert.are.equal("input", kind)
    assert.are.equal("no project given", message)
    assert.truthy(hint:find("GOOGLE_CLOUD_PROJECT", 1, true), hint)
    -- the same child with a project in its environment gets past the check (and to the closed port)
    out = env.run(clean .. "GOOGLE_CLOUD_PROJECT=env-project lua5.4 " .. env.quote(script), true)
    project, ok, kind = out:match("^(.-)\n(.-)\n(.-)\n")
    assert.are.equal("env-project", project, out)
    assert.are.equal("nil", ok)
    assert.are.equal("transport", kind)
  end)

  it("rejects an emulator address that is not HOST:PORT", function()
    local c, err = dicomgcs.client{ project = "spec-project", emulator = "localhost", token = "t" }
    assert.is_nil(c)
    assert.truthy(err.message:find("'localhost'", 1, true))
  end)

  it("reports an emulator that is not running with the address and what to do", function()
    -- a port nobody listens on: bind-free port 1 on loopback is refused at once
    local c = env.client{ emulator = "127.0.0.1:1", retry = { max_attempts = 1 } }
    local ok, err = c:get_dataset{ dataset = "d" }
    assert.is_nil(ok)
    assert.are.equal("transport", err.kind)
    assert.truthy(tostring(err):find("127.0.0.1:1", 1, true))
    assert.truthy(tostring(err):find("emulator/start", 1, true))
  end)
end)

describe("datasets and DICOM stores", function()
  it("creates, gets, lists and deletes a dataset", function()
    local c = env.client()
    local id = env.unique("ds")
    local ds = assert(c:create_dataset{ dataset = id })
    assert.are.equal("projects/spec-project/locations/us-central1/datasets/" .. id, ds.name)
    assert.are.equal(ds.name, assert(c:get_dataset{ dataset = id }).name)
    local found = false
    for _, d in ipairs(assert(c:list_datasets())) do if d.name == ds.name then found = true end end
    assert.is_true(found)
    assert.is_true(assert(c:delete_dataset{ dataset = id }))
    local gone, err = c:get_dataset{ dataset = id }
    assert.is_nil(gone)
    assert.are.equal(404, err.http_status)
    assert.are.equal("NOT_FOUND", err.status)
  end)

  it("answers 409 ALREADY_EXISTS for a dataset that exists", function()
    local c = env.client()
    local id = env.unique("ds")
    assert(c:create_dataset{ dataset = id })
    local again, err = c:create_dataset{ dataset = id }
    assert.is_nil(again)
    assert.are.equal(409, err.http_status)
    assert.are.equal("ALREADY_EXISTS", err.status)
  end)

  it("creates, gets, lists and deletes a DICOM store", function()
    local c = env.store_client()
    local st = assert(c:get_dicom_store{})
    assert.truthy(st.name:find("/dicomStores/store$"))
    assert.are.equal(1, #assert(c:list_dicom_stores()))
    assert.is_true(assert(c:delete_dicom_store{}))
    local _, err = c:get_dicom_store{}
    assert.are.equal(404, err.http_status)
    assert.truthy(err.hint:find("names", 1, true))
  end)
end)

describe("import and export", function()
  local c, bucket, files

  setup(function()
    c = env.store_client()
    bucket = env.bucket(c)
    local _, up
    files, _, up = env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 2, series = 2, instances = 2 }, "import")
    assert.are.equal(#files, up.ok)
  end)

  it("rejects a malformed gs:// URI, naming it", function()
    local op, err = c:import{ uri = "gs:/" .. bucket .. "/in/**.dcm" }
    assert.is_nil(op)
    assert.are.equal("input", err.kind)
    assert.truthy(err.message:find("gs:/" .. bucket, 1, true))
  end)

  it("rejects '**' that is not at the end of the path", function()
    local op, err = c:import{ uri = "gs://" .. bucket .. "/in/**/x.dcm" }
    assert.is_nil(op)
    assert.truthy(err.message:find("must be at the end", 1, true))
  end)

  it("reports a missing store with the store's name", function()
    local op, err = c:import{ uri = "gs://" .. bucket .. "/in/**.dcm", dicom_store = "no-such-store" }
    assert.is_nil(op)
    assert.are.equal(404, err.http_status)
    assert.truthy(err.message:find("no-such-store", 1, true))
  end)

  it("imports with a wildcard, shows moving counters, and exports every instance", function()
    local seen = {}
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/**.dcm" })
    assert.truthy(op.name:match("/operations/%d+$"))
    local done = assert(op:wait{ interval = 0.05, on_progress = function(o) seen[#seen + 1] = o.counter.success end })
    assert.are.equal(#files, done.counter.success)
    assert.are.equal(0, done.counter.failure)
    assert.is_true(#seen >= 1)
    assert.are.equal(#files, seen[#seen])

    local exp = assert(c:export{ uri_prefix = "gs://" .. bucket .. "/out/", mime_type = "application/dicom",
                                 wait = true, interval = 0.05 })
    assert.are.equal(#files, exp.counter.success)
    local objects = assert(c.storage:match("gs://" .. bucket .. "/out/**.dcm"))
    assert.are.equal(#files, #objects)
    local want = {}
    for _, f in ipairs(files) do want[("out/%s/%s/%s.dcm"):format(f.study_uid, f.series_uid, f.sop_uid)] = true end
    for _, o in ipairs(objects) do assert.is_true(want[o.name], o.name) end
  end)

  it("counts a file that is not DICOM as a failure: the operation ends with an error, a partial result", function()
    assert(c.storage:write("gs://" .. bucket .. "/mixed/bad.dcm", "this is not DICOM"))
    assert(c.storage:upload(files[1].path, "gs://" .. bucket .. "/mixed/good.dcm"))
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/mixed/*.dcm" })
    local done, err = op:wait{ interval = 0.05 }
    assert.is_nil(err)
    assert.are.equal(op, done)
    assert.is_true(done.done and done.partial)
    assert.is_table(done.error)                 -- Google's shape: error, not response
    local ferr = done:failure()
    assert.are.equal("operation", ferr.kind)
    assert.are.equal(1, ferr.operation.counter.failure)
    assert.are.equal(1, ferr.operation.counter.success)
    assert.are.equal(1, done.history[#done.history].failure)
  end)

  it("keeps a hard error for an operation that failed as a whole", function()
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/nothing-here/*.dcm" })
    local done, err = op:wait{ interval = 0.05 }
    assert.is_nil(done)
    assert.are.equal("operation", err.kind)
    assert.are.equal(0, err.operation.counter.success + err.operation.counter.failure)
    assert.is_false(err.operation.partial)
  end)

  it("finds an operation by id and by full name", function()
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm" })
    local by_id = assert(c:operation(op:id()))
    assert.are.equal(op.name, by_id.name)
    assert(by_id:wait{ interval = 0.05 })
    local by_name = assert(c:operation(op.name))
    assert.is_true(assert(by_name:get()).done)
  end)

  it("rejects an operation name of the wrong shape", function()
    local op, err = c:operation("projects/p/operations/1")
    assert.is_nil(op)
    assert.truthy(err.message:find("projects/p/operations/1", 1, true))
  end)
end)
