local dicomgcs = require "dicomgcs"
local env = require "spec.support.env"
local file = require "spec.support.file"
local manifest = require "dicomgcs.manifest"
local plan = require "dicomgcs.plan"

local function read(path) return file.read_if_exists(path) or "" end

local function count_done(path)
  local n = 0
  for line in read(path):gmatch("[^\n]+") do if line:find('"state":"done"', 1, true) then n = n + 1 end end
  return n
end

local function example_cmd(dir)
  return ("%s DICOMGCS_EMULATOR_HOST=%s BULK_POLL_INTERVAL=0.05 lua5.4 examples/bulk_import.lua %s"):format(
    env.lua_paths(), env.emulator().host, env.quote(dir))
end

describe("dicomgcs.queue", function()
  it("never has more than K operations in flight, and runs several at once", function()
    local c = env.store_client()
    local bucket = env.bucket(c, nil, "import")
    env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 6, series = 1, instances = 2, nested = true }, "q")
    local most = 0
    local q = assert(dicomgcs.queue{ client = c, max_in_flight = 2, interval = 0.02, max_interval = 0.1,
      on_progress = function(t) most = math.max(most, t.running) end })
    q:add{ key = "top", kind = "import", uri = "gs://" .. bucket .. "/in/*.dcm" }
    for s = 2, 6 do
      q:add{ key = "study-" .. s, kind = "import", uri = ("gs://%s/in/study-%d/**.dcm"):format(bucket, s) }
    end
    local done_hook = 0
    q.hooks.on_operation_done = function() done_hook = done_hook + 1 end
    local summary = q:run()
    assert.is_true(summary.ok)
    assert.are.equal(12, summary.totals.success)
    assert.are.equal(6, done_hook)
    assert.are.equal(2, most)
  end)

  it("rejects unknown options and job fields", function()
    assert.has_error(function() dicomgcs.queue{ client = {}, colour = 1 } end)
    local q = dicomgcs.queue{ client = {} }
    assert.has_error(function() q:add{ key = "a", kind = "import", url = "x" } end)
    q:add{ key = "a", kind = "import", uri = "gs://b/x" }
    assert.has_error(function() q:add{ key = "a", kind = "import", uri = "gs://b/y" } end)
  end)

  it("resumes after being killed: finished prefixes are skipped, every file counted once #slow", function()
    local dir = env.tmpdir("bulk")
    -- first run, killed once a few prefixes are done
    local pidfile = dir .. "/pid"
    os.execute(example_cmd(dir) .. " >" .. env.quote(dir .. "/run1.log") .. " 2>&1 & echo $! >" .. env.quote(pidfile))
    local pid = read(pidfile):match("%d+")
    assert.truthy(pid)
    local progressed = env.wait_until(function() return count_done(dir .. "/bulk.jsonl") >= 4 end, 120)
    os.execute("kill -9 " .. pid .. " 2>/dev/null")
    assert.is_true(progressed, "the first run made no progress: " .. read(dir .. "/run1.log"))
    local m = assert(manifest.open(dir .. "/bulk.jsonl"))
    local before = m:counts()
    m:close()
    assert.is_true((before.done or 0) >= 4)
    assert.is_true((before.done or 0) < 20, "killed too late to prove anything")

    -- second run finishes the rest
    local out, code = env.run(example_cmd(dir), true)
    assert.are.equal(0, code, out)
    assert.truthy(out:find("every file accounted for once", 1, true), out)
    local earlier = tonumber(out:match("%((%d+) from an earlier run"))
    assert.is_true(earlier >= before.done, out)
    -- operations left running by the killed run are re-attached by name, not started again
    local reattached = tonumber(out:match("(%d+) re%-attached"))
    assert.are.equal(before.running or 0, reattached, out)
    assert.truthy(out:find("files: 60 imported, 0 failed, of 60 staged", 1, true), out)
  end)
end)

describe("dicomgcs.plan", function()
  it("proposes one import per sub-folder and covers every file exactly once", function()
    local c = env.client()
    local bucket = env.unique("bkt")
    assert(c.storage:create_bucket(bucket))
    for _, name in ipairs{ "d/a/1.dcm", "d/a/2.dcm", "d/b/x/3.dcm", "d/4.dcm", "d/c/5.txt" } do
      assert(c.storage:write("gs://" .. bucket .. "/" .. name, "x"))
    end
    local p = assert(plan.imports(c.storage, "gs://" .. bucket .. "/d/**.dcm", { min_files = 1 }))
    assert.are.equal(4, p.files)
    local covered = 0
    for _, imp in ipairs(p.imports) do
      local objs = assert(c.storage:match(imp.uri))
      assert.are.equal(imp.files, #objs)
      covered = covered + #objs
    end
    assert.are.equal(4, covered)
    assert.are.equal(3, #p.imports)
    assert.truthy(plan.describe(p):find("3 import(s)", 1, true))
    local one = assert(plan.imports(c.storage, "gs://" .. bucket .. "/d/**.dcm"))
    assert.are.equal(1, #one.imports)
  end)
end)

describe("dicomgcs.queue hooks and the server's operation limit", function()
  it("retries operations the server refuses for its concurrent-operation limit, and calls every hook", function()
    local emu = env.start_emulator{ "--max-concurrent-operations", "1", "--op-delay-ms", "30" }
    local c = assert(dicomgcs.client{ project = "spec-project", location = "us-central1", emulator = emu.host,
      token = "t", dataset = "limit", dicom_store = "st",
      -- no transport-level retries (nor quota waits) here, so that the queue itself meets the 429
      retry = { max_attempts = 1, quota_budget_ms = 0 } })
    assert(c:create_dataset{}); assert(c:create_dicom_store{})
    local bucket = env.bucket(c, nil, "import")
    env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 3, series = 1, instances = 2, nested = true }, "limit")
    assert(c.storage:write("gs://" .. bucket .. "/in/study-2/junk.dcm", "junk"))
    local classified, done_ops, failed_files = {}, 0, {}
    local q = assert(dicomgcs.queue{ client = c, max_in_flight = 3, interval = 0.02, max_interval = 0.2,
      log = function() end,
      classify_error = function(err, job)
        classified[#classified + 1] = err.status
        return require("dicomgcs.queue").classify_error(err, job)
      end,
      on_operation_done = function() done_ops = done_ops + 1 end,
      on_file_failed = function(job, f) failed_files[#failed_files + 1] = job.key .. " " .. f.uri end })
    q:add{ key = "top", kind = "import", uri = "gs://" .. bucket .. "/in/*.dcm" }
    q:add{ key = "s2", kind = "import", uri = "gs://" .. bucket .. "/in/study-2/**.dcm" }
    q:add{ key = "s3", kind = "import", uri = "gs://" .. bucket .. "/in/study-3/**.dcm" }
    local summary = q:run()
    assert.are.equal(3, summary.totals.done)
    assert.are.equal(6, summary.totals.success)
    assert.are.equal(1, summary.totals.failure)
    assert.are.equal(3, done_ops)
    assert.are.same({ "s2 gs://" .. bucket .. "/in/study-2/junk.dcm" }, failed_files)
    -- with K=3 against a limit of 1, the server refused some starts and the queue retried them
    assert.is_true(#classified >= 1)
    for _, s in ipairs(classified) do assert.are.equal("RESOURCE_EXHAUSTED", s) end
    emu.stop()
  end)
end)
