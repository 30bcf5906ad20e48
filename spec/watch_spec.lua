-- dicomgcs.watch and `dicom-stores import gcs --watch` (issue #19): continuous import of new
-- arrivals. Arrivals, rewrites and failures are injected from the watch's own hooks, so each
-- step happens at a known point of a round, without sleeping to make a race come out right.
local dicomgcs = require "dicomgcs"
local env = require "spec.support.env"
local file = require "spec.support.file"
local json = require "dicomgcs.json"
local manifest = require "dicomgcs.manifest"
local testdata = require "dicomgcs.testdata"

-- DICOM files with distinct SOP Instance UIDs, made once: { bytes, sop } each.
local pool
local function dicoms(n)
  if not pool or #pool < n then
    local dir = env.tmpdir("watchpool")
    local made = assert(testdata.generate{ dir = dir, studies = 1, series = 1, instances = math.max(n, 12), nested = false })
    pool = {}
    for i, inst in ipairs(made) do pool[i] = { bytes = assert(file.read_if_exists(inst.path)), sop = inst.sop_uid } end
  end
  return pool
end

-- A client on a fresh dataset and store, a bucket the import may read, and `n` DICOM files.
local function fresh(n)
  local c = env.store_client()
  return c, env.bucket(c, nil, "import"), dicoms(n)
end

local function put(c, uri, bytes) return assert(c.storage:write(uri, bytes, "application/dicom")) end

local function store_of(c) return assert(c:dicom_store_name{}) end

-- Instances in the store and files imported (the sum of every import's success counter) by the
-- dataset's operations, from the emulator's admin state: a file imported twice adds to the
-- second but not to the first.
local function store_counts(c, emu)
  local st = assert(env.admin("GET", "state", nil, emu))
  local store = store_of(c)
  local instances, imported, ops = 0, 0, 0
  for _, s in ipairs(st.dicomStores) do if s.name == store then instances = s.instances end end
  local ds = store:match("^(.*)/dicomStores/")
  for _, o in ipairs(st.operations) do
    if o.name:sub(1, #ds + 1) == ds .. "/" and (o.metadata.apiMethodName or ""):find("Import") then
      ops = ops + 1
      imported = imported + (tonumber(o.metadata.counter and o.metadata.counter.success) or 0)
    end
  end
  return instances, imported, ops
end

local function names_under(c, uri)
  local objs = assert(c.storage:select(uri))
  local out = {}
  for _, o in ipairs(objs) do out[#out + 1] = o.name end
  table.sort(out)
  return out
end

local function files_in(path)
  local m = assert(manifest.open(path))
  local out = {}
  for key, rec in m:each() do
    local uri = key:match("^file (.+)$")
    if uri then out[uri] = rec end
  end
  m:close()
  return out
end

local function fast(o)
  o.every = o.every or 0.2
  o.settle = o.settle or 0.05
  o.poll = o.poll or 0.05
  o.log = o.log or function() end
  return o
end

describe("dicomgcs.watch", function()
  it("imports arrivals in one operation per round, each file once, and leaves no batch copies", function()
    local c, bucket, d = fresh(7)
    for i = 1, 4 do put(c, ("gs://%s/incoming/a%d.dcm"):format(bucket, i), d[i].bytes) end
    local dir = env.tmpdir("watch1")
    local rounds = {}
    local w = assert(dicomgcs.watch(fast{ client = c, uri = "gs://" .. bucket .. "/incoming/**.dcm",
      manifest = dir .. "/state.jsonl", report = dir .. "/report", rounds = 3, max_in_flight = 2,
      on_round = function(s)
        rounds[#rounds + 1] = s
        -- three more arrive while the first batch is being imported
        if s.round == 1 then for i = 5, 7 do put(c, ("gs://%s/incoming/sub/b%d.dcm"):format(bucket, i), d[i].bytes) end end
      end }))
    local s = w:run()
    assert.are.equal("rounds", s.stopped)
    assert.are.equal(7, s.totals.imported)
    assert.are.equal(2, s.totals.operations)
    assert.are.equal(4, rounds[1].new)
    assert.are.equal(3, rounds[2].new)
    assert.are.equal(0, rounds[3].new)
    local instances, imported, ops = store_counts(c)
    assert.are.same({ 7, 7, 2 }, { instances, imported, ops })
    -- the manifest and the report agree: every file done, once
    local recs = files_in(dir .. "/state.jsonl")
    local n = 0
    for _, rec in pairs(recs) do n = n + 1; assert.are.equal("done", rec.state) end
    assert.are.equal(7, n)
    local r = json.decode(assert(file.read_if_exists(dir .. "/report.json")))
    assert.are.equal(7, r.totals.succeeded)
    assert.is_true(r.complete)
    for _, row in ipairs(r.rows) do assert.are.equal("done", recs[row.input].state) end
    assert.are.same({}, names_under(c, "gs://" .. bucket .. "/.dicomgcs-batches/"))
    assert.are.equal(7, #names_under(c, "gs://" .. bucket .. "/incoming/"))
  end)

  it("takes objects with odd names, moves them, and never re-takes its own copies or moved files", function()
    local c = env.store_client()
    local bucket = env.bucket(c, nil, "import")
    local odd = { "in/a b.dcm", "in/ü/ñ#1?.dcm", "in/100%+[x]{y}.dcm", "in/-dash.dcm", "in/back\\slash.dcm",
                  "in/.dicomgcs-batches/not-ours.dcm", "in/&amp;'\".dcm", "in/\t tab.dcm" }
    local d = dicoms(#odd)
    for i, name in ipairs(odd) do put(c, "gs://" .. bucket .. "/" .. name, d[i].bytes) end
    -- the pattern selects the whole bucket: batch copies and moved files match it too
    local w = assert(dicomgcs.watch(fast{ client = c, uri = "gs://" .. bucket .. "/**.dcm",
      move_to = "gs://" .. bucket .. "/done/", rounds = 3 }))
    local s = w:run()
    assert.are.equal(#odd, s.totals.imported)
    assert.are.equal(#odd, s.totals.moved)
    assert.are.equal(1, s.totals.operations)
    local instances, imported = store_counts(c)
    assert.are.same({ #odd, #odd }, { instances, imported })
    local want = {}
    for i, name in ipairs(odd) do want[i] = "done/" .. name end
    table.sort(want)
    assert.are.same(want, names_under(c, "gs://" .. bucket .. "/done/"))
    assert.are.same({}, names_under(c, "gs://" .. bucket .. "/in/"))
    assert.are.same({}, names_under(c, "gs://" .. bucket .. "/.dicomgcs-batches/"))
  end)

  it("fails a file its batch folder cannot hold (a name too long) once, not every round", function()
    local c, bucket, d = fresh(2)
    local long = "gs://" .. bucket .. "/in/" .. ("n"):rep(1000) .. ".dcm"
    put(c, long, d[1].bytes)
    put(c, "gs://" .. bucket .. "/in/short.dcm", d[2].bytes)
    local failed = {}
    local w = assert(dicomgcs.watch(fast{ client = c, uri = "gs://" .. bucket .. "/in/*.dcm", rounds = 3,
      on_file_failed = function(f, why) failed[#failed + 1] = { f.uri, why.status } end }))
    local s = w:run()
    assert.are.same({ { long, "COPY_FAILED" } }, failed)
    assert.are.same({ 1, 1, 1 }, { s.totals.imported, s.totals.failed, s.totals.operations })
    assert.are.equal("failed", w.files[long].state)
    assert.truthy(w.files[long].reason:find("too long", 1, true), w.files[long].reason)
  end)

  it("takes an object rewritten after its import again, as a new generation", function()
    local c, bucket, d = fresh(2)
    local uri = "gs://" .. bucket .. "/incoming/f.dcm"
    local first = put(c, uri, d[1].bytes)
    local dir = env.tmpdir("watch3")
    local w
    local batches = 0
    w = assert(dicomgcs.watch(fast{ client = c, uri = "gs://" .. bucket .. "/incoming/*.dcm",
      manifest = dir .. "/state.jsonl", rounds = 30,
      on_batch = function()
        batches = batches + 1
        if batches == 1 then put(c, uri, d[2].bytes) else w:stop() end
      end }))
    local s = w:run()
    assert.are.equal(2, batches)
    assert.are.equal(2, s.totals.imported)
    local instances, imported, ops = store_counts(c)
    assert.are.same({ 2, 2, 2 }, { instances, imported, ops })
    local rec = files_in(dir .. "/state.jsonl")[uri]
    assert.are.equal("done", rec.state)
    assert.are_not.equal(first.generation, rec.generation)
    assert.are.equal(assert(c.storage:stat(uri)).generation, rec.generation)
  end)

  it("does not take an object while it keeps changing (generation or size), only once it is still", function()
    local c, bucket, d = fresh(5)
    local busy = "gs://" .. bucket .. "/incoming/busy.dcm"
    put(c, "gs://" .. bucket .. "/incoming/calm.dcm", d[1].bytes)
    put(c, busy, d[2].bytes)
    local taken_at, w
    -- settle = 0: the two listings compared are those of consecutive rounds
    w = assert(dicomgcs.watch(fast{ client = c, uri = "gs://" .. bucket .. "/incoming/*.dcm", settle = 0, rounds = 6,
      on_round = function(s)
        local f = w.files[busy]
        if f and f.state and not taken_at then taken_at = s.round end
        -- rewritten (a new generation) at the end of rounds 1, 2 and 3
        if s.round <= 3 then put(c, busy, d[2 + s.round].bytes) end
      end }))
    local s = w:run()
    assert.are.equal(5, taken_at)
    assert.are.equal(2, s.totals.imported)
    local instances, imported = store_counts(c)
    assert.are.same({ 2, 2 }, { instances, imported })
    -- the version imported is the last one written (d[5]), not a passing one
    local found = assert(c:dicomweb{}:search_all("instances", { filters = { SOPInstanceUID = d[5].sop } }))
    assert.are.equal(1, #found)
  end)

  it("lists a file that fails with its reason, and does not import it again until it changes", function()
    local c, bucket, d = fresh(2)
    local bad = "gs://" .. bucket .. "/incoming/bad.dcm"
    put(c, bad, "this is not a DICOM file")
    put(c, "gs://" .. bucket .. "/incoming/good.dcm", d[1].bytes)
    local dir = env.tmpdir("watch5")
    local function run(rounds)
      local failed = {}
      local w = assert(dicomgcs.watch(fast{ client = c, uri = "gs://" .. bucket .. "/incoming/*.dcm",
        manifest = dir .. "/state.jsonl", report = dir .. "/report", rounds = rounds,
        on_file_failed = function(f, why) failed[#failed + 1] = { f = f, why = why } end }))
      return w:run(), failed
    end
    local s, failed = run(3)
    assert.are.equal(1, #failed)
    assert.are.equal(bad, failed[1].f.uri)
    assert.are.equal("INVALID_ARGUMENT", failed[1].why.status)
    assert.are.same({ 1, 1, 1 }, { s.totals.imported, s.totals.failed, s.totals.operations })
    local rec = files_in(dir .. "/state.jsonl")[bad]
    assert.are.equal("failed", rec.state)
    assert.truthy(rec.reason and rec.reason ~= "")
    local r = json.decode(assert(file.read_if_exists(dir .. "/report.json")))
    assert.are.equal(1, r.totals.failed)
    -- a restart leaves it alone
    s = run(2)
    assert.are.equal(0, s.totals.operations)
    -- until the object changes
    put(c, bad, d[2].bytes)
    s = run(2)
    assert.are.same({ 1, 0, 1 }, { s.totals.imported, s.totals.failed, s.totals.operations })
    assert.are.equal("done", files_in(dir .. "/state.jsonl")[bad].state)
    local instances, imported = store_counts(c)
    assert.are.same({ 2, 2 }, { instances, imported })
  end)

  it("a listing that fails with a message saying \"interrupted\" is a failed round, not Ctrl-C", function()
    -- hostile: the server's words must not be taken for the user's Ctrl-C (which stops the watch)
    local c, bucket, d = fresh(1)
    put(c, ("gs://%s/in/1.dcm"):format(bucket), d[1].bytes)
    assert(env.admin("POST", "faults", { path = "/storage/v1/b/" .. bucket .. "/o$", method = "GET", count = 1,
      status = 400, message = "Listing interrupted: the backend restarted" }))
    local lines = {}
    local w = assert(dicomgcs.watch(fast{ client = c, uri = "gs://" .. bucket .. "/in/*.dcm", rounds = 4,
      log = function(l) lines[#lines + 1] = l end }))
    local s = w:run()
    env.admin("DELETE", "faults")
    assert.are.equal("rounds", s.stopped)
    assert.truthy(table.concat(lines, "\n"):find("round failed: .*interrupted: the backend restarted"))
    assert.are.equal(1, s.totals.imported)
  end)

  it("backs off while the project's operation limit refuses imports, then imports #slow", function()
    local emu = env.start_emulator{ "--max-concurrent-operations", "0" }
    -- the engine waits out a 429 within the client's retry_budget; past it, the watch backs off
    -- by itself and goes on polling and listing
    local c = env.store_client{ emulator = emu.host, retry_budget = 1 }
    local bucket = env.bucket(c, nil, "import")
    local d = dicoms(3)
    for i = 1, 3 do put(c, ("gs://%s/in/%d.dcm"):format(bucket, i), d[i].bytes) end
    local lines, w = {}, nil
    w = assert(dicomgcs.watch(fast{ client = c, uri = "gs://" .. bucket .. "/in/*.dcm", rounds = 40,
      log = function(l) lines[#lines + 1] = l end,
      on_round = function(s)
        if s.round == 2 then assert(env.admin("POST", "config", { maxConcurrentOperations = 5 }, emu)) end
      end,
      on_batch = function() w:stop() end }))
    local s = w:run()
    assert.is_true(s.totals.throttled >= 1)
    assert.are.same({ 3, 1 }, { s.totals.imported, s.totals.operations })
    assert.truthy(table.concat(lines, "\n"):find("import refused", 1, true))
    local instances, imported = store_counts(c, emu)
    assert.are.same({ 3, 3 }, { instances, imported })
  end)

  it("a manifest naming an operation that is not one, or one the server does not know, imports again", function()
    local c, bucket, d = fresh(2)
    local dir = env.tmpdir("watchbadop")
    local lines = {}
    for i, op in ipairs{ "projects/x/../../../evil", c:dataset_name{} .. "/operations/123456789" } do
      local uri = ("gs://%s/in/%d.dcm"):format(bucket, i)
      local o = put(c, uri, d[i].bytes)
      lines[#lines + 1] = json.encode{ key = "file " .. uri, uri = uri, name = o.name, state = "batched",
        generation = o.generation, size = o.size, batch = "B" .. i }
      lines[#lines + 1] = json.encode{ key = "batch B" .. i, state = "running", operation = op,
        uri = ("gs://%s/.dicomgcs-batches/B%d/**"):format(bucket, i) }
    end
    local f = assert(io.open(dir .. "/state.jsonl", "wb"))
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
    local log = {}
    local w = assert(dicomgcs.watch(fast{ client = c, uri = "gs://" .. bucket .. "/in/*.dcm", rounds = 4,
      manifest = dir .. "/state.jsonl", max_in_flight = 2, log = function(l) log[#log + 1] = l end }))
    local s = w:run()
    local text = table.concat(log, "\n")
    assert.are.equal(2, select(2, text:gsub("importing it again", "")), text)
    assert.are.same({ 2, 0 }, { s.totals.imported, s.totals.failed }, text)
    local instances, imported = store_counts(c)
    assert.are.same({ 2, 2 }, { instances, imported })
    for _, rec in pairs(files_in(dir .. "/state.jsonl")) do assert.are.equal("done", rec.state) end
  end)

  it("a Ctrl-C between its waits (here: as a round ends) stops it at the next turn, not lost", function()
    local core = require "dicomgcs.core"
    local c, bucket, d = fresh(2)
    put(c, ("gs://%s/incoming/a.dcm"):format(bucket), d[1].bytes)
    local rounds = 0
    local w = assert(dicomgcs.watch(fast{ client = c, uri = "gs://" .. bucket .. "/incoming/**.dcm", rounds = 4,
      on_round = function()
        rounds = rounds + 1
        if rounds == 1 then
          local g = core.sigint_guard()   -- as if Ctrl-C were pressed now, outside any wait
          g:raise_for_test()
          g:close()
        end
      end }))
    local s = w:run()
    assert.are.equal("interrupted", s.stopped)
    assert.are.equal(1, s.totals.rounds)
    assert.are.equal(0, c.transport.engine:pending())
  end)

  it("rejects bad options", function()
    local c = env.client()
    assert.has_error(function() dicomgcs.watch{ client = c, uri = "gs://b/x/*.dcm", colour = 1 } end)
    assert.is_nil((dicomgcs.watch{ client = c, uri = "gs://b/x/**/y" }))
    assert.is_nil((dicomgcs.watch{ client = c, uri = "gs://b/x/*.dcm", move_to = "gs://b/d*/" }))
    assert.is_nil((dicomgcs.watch{ client = c, uri = "gs://b/x/*.dcm", every = 0 }))
  end)
end)

describe("dicom-stores import gcs --watch", function()
  local loc = "--project=spec-project --location=us-central1"

  -- A watch in a child process on a private emulator whose imports take 300 ms a file, over
  -- `n` of `pool_n` files named by `fmt`; returns once the manifest says an import runs (or 60 s):
  -- { c, emu, bucket, d, dir, state, cmd (to start it again), pid, running }. The child's exit
  -- code lands in DIR/rc.
  local function slow_watch(tag, n, pool_n, fmt, pattern)
    local t = { emu = env.start_emulator{ "--op-delay-ms", "300" } }
    t.c = env.store_client{ emulator = t.emu.host }
    t.bucket = env.bucket(t.c, nil, "import")
    t.d = dicoms(pool_n)
    for i = 1, n do put(t.c, ("gs://%s/" .. fmt):format(t.bucket, i), t.d[i].bytes) end
    t.dir = env.tmpdir(tag)
    t.state = t.dir .. "/state.jsonl"
    local q = env.quote
    t.cmd = ("DICOMGCS_EMULATOR_HOST=%s DICOMGCS_POLL_INTERVAL=0.05 bin/dicomgcs dicom-stores import gcs store " ..
      "--gcs-uri='gs://%s/%s' --watch --every=0.5s --manifest=%s --report=%s --dataset=%s %s"):format(
      t.emu.host, t.bucket, pattern, q(t.state), q(t.dir .. "/report.html"), t.c.dataset, loc)
    os.execute(("(%s >%s 2>&1 & echo $! >%s; wait $!; echo $? >%s) &"):format(t.cmd, q(t.dir .. "/run1.log"),
      q(t.dir .. "/pid"), q(t.dir .. "/rc")))
    assert.is_true(env.wait_until(function() return (file.read_if_exists(t.dir .. "/pid") or ""):find("%d") ~= nil end, 10))
    t.pid = file.read_if_exists(t.dir .. "/pid"):match("%d+")
    t.running = env.wait_until(function()
      return (file.read_if_exists(t.state) or ""):find('"state":"running"', 1, true) ~= nil
    end, 60)
    return t
  end

  it("exits 2 naming a bad --every or --batch-size", function()
    local _, code, err = env.dicomgcs("dicom-stores import gcs st --gcs-uri='gs://b/in/*.dcm' --watch --every=soon --dataset=d " .. loc)
    assert.are.equal(2, code)
    assert.truthy(err:find("--every=soon", 1, true), err)
    _, code, err = env.dicomgcs("dicom-stores import gcs st --gcs-uri='gs://b/in/*.dcm' --watch --batch-size=0 --dataset=d " .. loc)
    assert.are.equal(2, code)
    assert.truthy(err:find("--batch-size", 1, true), err)
  end)

  it("killed mid-batch and restarted, imports every arrival exactly once; manifest and report agree #slow", function()
    local t = slow_watch("watchkill", 8, 12, "incoming/x%02d.dcm", "incoming/**.dcm")
    local c, emu, state, dir, d, bucket, cmd = t.c, t.emu, t.state, t.dir, t.d, t.bucket, t.cmd
    os.execute("kill -9 " .. t.pid)
    assert.is_true(t.running, file.read_if_exists(dir .. "/run1.log"))
    -- the operation was still running when the watch died
    local _, imported_before = store_counts(c, emu)
    assert.is_true(imported_before < 8, "killed too late to prove anything")
    -- more arrive while no watch runs
    for i = 9, 12 do put(c, ("gs://%s/incoming/later/x%02d.dcm"):format(bucket, i), d[i].bytes) end

    local out, code = env.run(cmd .. " --rounds=2", true)
    assert.are.equal(0, code, out)
    assert.truthy(out:find("re-attached batch", 1, true), out)
    local instances, imported, ops = store_counts(c, emu)
    assert.are.same({ 12, 12, 2 }, { instances, imported, ops })
    local recs = files_in(state)
    -- the HTML run report of the whole watch, and the same report from the manifest in Lua
    local page = assert(file.read_if_exists(dir .. "/report.html"))
    assert.truthy(page:find("<html", 1, true))
    assert.truthy(page:find("Watch of gs://" .. bucket, 1, true))
    local again = assert(dicomgcs.watch{ client = c, uri = ("gs://%s/incoming/**.dcm"):format(bucket), manifest = state })
    local r = again:report()
    again.manifest:close()
    assert.are.equal(12, r.totals.matched)
    assert.are.equal(12, r.totals.succeeded)
    for _, row in ipairs(r.rows) do
      assert.are.equal("succeeded", row.outcome)
      assert.are.equal("done", recs[row.input].state)
    end
    local n = 0
    for _ in pairs(recs) do n = n + 1 end
    assert.are.equal(12, n)
    assert.are.same({}, names_under(c, "gs://" .. bucket .. "/.dicomgcs-batches/"))
  end)

  it("stops cleanly on Ctrl-C, the operation going on in the server, re-attached on the next start #slow", function()
    local t = slow_watch("watchint", 6, 6, "in/y%d.dcm", "in/*.dcm")
    local c, emu, dir, cmd = t.c, t.emu, t.dir, t.cmd
    os.execute("kill -INT " .. t.pid)
    assert.is_true(t.running, file.read_if_exists(dir .. "/run1.log"))
    assert.is_true(env.wait_until(function() return (file.read_if_exists(dir .. "/rc") or ""):find("%d") ~= nil end, 30))
    local log = file.read_if_exists(dir .. "/run1.log")
    assert.are.equal("130", file.read_if_exists(dir .. "/rc"):match("%d+"), log)
    assert.truthy(log:find("1 operation(s) go on in the server", 1, true), log)
    assert.falsy(log:find("traceback", 1, true), log)
    -- nothing was cancelled: the operation is still the one running, and the restart waits for it
    local out, code = env.run(cmd .. " --rounds=1", true)
    assert.are.equal(0, code, out)
    assert.truthy(out:find("re-attached batch", 1, true), out)
    local instances, imported, ops = store_counts(c, emu)
    assert.are.same({ 6, 6, 1 }, { instances, imported, ops })
  end)
end)
