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
    -- misuse raises a message naming the call and the offending option, field or key
    assert.has_error(function() dicomgcs.queue{ client = {}, colour = 1 } end,
      "dicomgcs.queue: unknown option 'colour'")
    local q = dicomgcs.queue{ client = {} }
    assert.has_error(function() q:add{ key = "a", kind = "import", url = "x" } end,
      "queue:add: unknown field 'url'")
    q:add{ key = "a", kind = "import", uri = "gs://b/x" }
    assert.has_error(function() q:add{ key = "a", kind = "import", uri = "gs://b/y" } end,
      "queue:add: duplicate key 'a'")
    assert.error_matches(function() q:add{ key = "b", kind = "copy", uri = "gs://b/y" } end,
      "queue:add: kind must be 'import' or 'export'", nil, true)
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
    -- no transport-level retries (nor quota waits) there, so that the queue itself meets the 429
    local emu, c, bucket = env.limited_store(2, "limit")
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

describe("dicomgcs.queue poll history and Ctrl-C", function()
  local core = require "dicomgcs.core"

  it("re-attaches to a running operation and keeps its poll history across runs", function()
    local c = env.store_client()
    local bucket = env.bucket(c, nil, "import")
    env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 1, series = 1, instances = 2, nested = false }, "qh")
    local path = env.tmpdir("qh") .. "/state.jsonl"
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm" })
    -- what a first run that died while waiting left: a running record with two polls
    local m = assert(manifest.open(path))
    assert(m:record("top", { state = "running", operation = op.name, poll = { history = {
      { t = 1, success = 0, failure = 0, pending = 2 }, { t = 2, success = 1, failure = 0, pending = 1 } } } }))
    m:close()
    local q = assert(dicomgcs.queue{ client = c, manifest = path, interval = 0.05, log = function() end })
    q:add{ key = "top", kind = "import", uri = "gs://" .. bucket .. "/in/*.dcm" }
    local summary = q:run()
    local j = summary.jobs[1]
    assert.is_true(j.reattached)
    assert.are.equal("done", j.state)
    assert.are.equal(op.name, j.operation)
    local h = j.poll.history
    assert.is_true(#h >= 3)
    assert.are.same({ 1, 2 }, { h[1].t, h[2].t })           -- the first run's polls come first
    assert.are.equal(2, h[#h].success)
    assert.is_true(h[3].t > 1e9)                            -- then this run's, in unix seconds
    assert.are.equal("restart", j.poll.events[1].kind)
    local again = assert(manifest.open(path))
    local rec = again:get("top")
    again:close()
    assert.are.equal("done", rec.state)
    assert.are.equal(#h, #rec.poll.history)
    assert.are.equal(1, rec.poll.history[1].t)
  end)

  it("Ctrl-C while it waits cancels the running operations and raises kind interrupted", function()
    local emu = env.start_emulator{ "--op-delay-ms", "400" }
    local c = assert(dicomgcs.client{ project = "spec-project", location = "us-central1", emulator = emu.host,
      token = "t", dataset = "qi", dicom_store = "st" })
    assert(c:create_dataset{}); assert(c:create_dicom_store{})
    local bucket = env.bucket(c, nil, "import")
    env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 3, series = 1, instances = 2, nested = true }, "qi")
    local path = env.tmpdir("qi") .. "/state.jsonl"
    local fired = false
    local q = assert(dicomgcs.queue{ client = c, manifest = path, max_in_flight = 2, interval = 0.05,
      log = function() end,
      on_progress = function(t)
        if fired or t.running == 0 then return end
        fired = true
        local g = core.sigint_guard()   -- as if Ctrl-C were pressed while the queue waits
        g:raise_for_test()
        g:close()
      end })
    q:add{ key = "s2", kind = "import", uri = "gs://" .. bucket .. "/in/study-2/**.dcm" }
    q:add{ key = "s3", kind = "import", uri = "gs://" .. bucket .. "/in/study-3/**.dcm" }
    q:add{ key = "top", kind = "import", uri = "gs://" .. bucket .. "/in/*.dcm" }
    local ok, err = pcall(q.run, q)
    assert.is_false(ok)
    assert.are.equal("interrupted", err.kind)
    local m = assert(manifest.open(path))
    local cancelled = 0
    for _, rec in m:each() do
      assert.are_not.equal("running", rec.state)         -- nothing started is left running
      if rec.state == "cancelled" then
        cancelled = cancelled + 1
        assert.is_table(rec.poll.history)                -- the history stays with the record
      end
    end
    m:close()
    assert.is_true(cancelled >= 1)
    assert.is_nil(m.entries.top)                        -- never started
    assert.are.equal(0, c.transport.engine:pending())
    emu.stop()
  end)
end)
