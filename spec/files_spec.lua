-- Files we write are complete or absent, and names from servers are safe (issue #14 §2, §3,
-- §5, §7): temporary names no object can take, no symlink followed (temporary name, final
-- name, sub-folder, upload source), atomic reports under a file-size limit, a manifest that
-- survives a writer killed mid-line, sources that match nothing, resumable sessions that never
-- progress.
local core = require "dicomgcs.core"
local env = require "spec.support.env"
local file = require "spec.support.file"

local bytes = file.bytes

local function ls(dir)
  local out = {}
  for _, e in ipairs(assert(core.listdir(dir))) do out[#out + 1] = e.name end
  table.sort(out)
  return out
end

local function symlink(target, at) assert(os.execute("ln -s " .. env.quote(target) .. " " .. env.quote(at))) end

-- Run a Lua chunk in a child lua5.4 with this tree's modules; `prefix` is shell put before it.
local function child(code, prefix)
  return env.run_split(("%s %s lua5.4 -e %s"):format(prefix or "", env.lua_paths(), env.quote(code)))
end

describe("files we write", function()
  local c, bucket
  local KIB = 1024

  setup(function()
    c = env.client()
    bucket = env.unique("files")
    assert(c.storage:create_bucket(bucket))
  end)
  after_each(function() env.admin("DELETE", "faults") end)

  describe("temporary names (§2)", function()
    it("objects named like our temporary files download beside them, each with its own bytes", function()
      -- `a` is held back by the server so that `a.part` (and the others) finish around it; the
      -- old names (`a.part`, `r.dgpart`, `x.part.part`) were exactly these objects' names.
      local objs = {
        ["t/a"] = bytes(200 * KIB, 1), ["t/a.part"] = "the 19 bytes of a.p", ["t/a.part.part"] = "pp",
        ["t/r"] = bytes(400 * KIB, 2), ["t/r.dgpart"] = "twenty bytes of .dgp", ["t/r.part"] = "rp",
      }
      for name, data in pairs(objs) do assert(c.storage:write("gs://" .. bucket .. "/" .. name, data)) end
      assert(env.admin("POST", "faults", { path = "/o/t%2F[ar]$", method = "GET", stallMs = 300 }))
      for _ = 1, 2 do
        local out = env.tmpdir("collide")
        local s = assert(c.storage:download("gs://" .. bucket .. "/t/", out,
          { ranged_threshold = 256 * KIB, range_size = 100 * KIB }))
        assert.are.equal(0, s.failed)
        assert.are.equal(6, s.ok)
        for name, data in pairs(objs) do
          local got = file.read_if_exists(out .. "/" .. name:sub(3))
          assert.is_true(got == data, name .. " does not hold its own bytes (" .. tostring(got and #got) .. ")")
        end
        assert.are.same({ "a", "a.part", "a.part.part", "r", "r.dgpart", "r.part" }, ls(out))
      end
      -- the issue's probe, through the command line
      local out = env.tmpdir("collide-cli")
      local _, code, err = env.dicomgcs("storage cp -r gs://" .. bucket .. "/t/ " .. env.quote(out))
      assert.are.equal(0, code, err)
      for name, data in pairs(objs) do  -- gcloud's layout: the prefix's own name under DIR
        assert.is_true(file.read_if_exists(out .. "/" .. name) == data, name .. " (command line)")
      end
    end)

    it("the engine's output_file streams to a hidden temporary file created afresh, never a planted one", function()
      local dir = env.tmpdir("engine-tmp")
      local outside = env.tmpdir("engine-outside") .. "/victim"
      file.write(outside, "keep me")
      symlink(outside, dir .. "/f.part")   -- the old temporary name
      local url = env.emulator().url .. "/_emulator/health"
      local res = assert(core.fetch{ url = url, output_file = dir .. "/f" })
      assert.are.equal(200, res.status)
      assert.are.equal("keep me", file.read(outside))
      assert.matches('"status"', file.read(dir .. "/f"))
      assert.are.same({ "f", "f.part" }, ls(dir))
      -- writing in place (output_offset) into a link is refused, the link's target untouched
      symlink(outside, dir .. "/g")
      assert.has_error(function() core.fetch{ url = url, output_file = dir .. "/g", output_offset = 0 } end)
      assert.are.equal("keep me", file.read(outside))
    end)
  end)

  describe("symlinks (§3)", function()
    it("a link planted at a temporary or final name is replaced, never written through", function()
      assert(c.storage:write("gs://" .. bucket .. "/l/a", "object a"))
      assert(c.storage:write("gs://" .. bucket .. "/l/b", "object b"))
      local out, outside = env.tmpdir("links"), env.tmpdir("links-outside")
      file.write(outside .. "/victim", "keep me")
      for _, n in ipairs{ "a.part", "a.dgpart", "b" } do symlink(outside .. "/victim", out .. "/" .. n) end
      local s = assert(c.storage:download("gs://" .. bucket .. "/l/", out))
      assert.are.equal(2, s.ok)
      assert.are.equal("keep me", file.read(outside .. "/victim"))
      assert.are.same({ "victim" }, ls(outside))
      assert.are.equal("object a", file.read(out .. "/a"))
      assert.are.equal("object b", file.read(out .. "/b"))
      assert.are.equal("file", core.stat(out .. "/b").type)
    end)

    it("a symlinked sub-folder in the destination is not descended into: that object fails, saying why", function()
      assert(c.storage:write("gs://" .. bucket .. "/s/sub/c", "object c"))
      assert(c.storage:write("gs://" .. bucket .. "/s/d", "object d"))
      local out, outside = env.tmpdir("sublink"), env.tmpdir("sublink-outside")
      symlink(outside, out .. "/sub")
      local s = assert(c.storage:download("gs://" .. bucket .. "/s/", out))
      assert.are.equal(1, s.ok)
      assert.are.equal(1, s.failed)
      assert.are.same({}, ls(outside))
      local failed
      for _, r in ipairs(s.results) do if not r.ok then failed = r end end
      assert.matches("symbolic link", tostring(failed.err))
      assert.are.equal("object d", file.read(out .. "/d"))
    end)

    it("WADO retrieve: a symlinked study folder in the destination is not written through", function()
      local sc = env.store_client()
      local dw = assert(sc:dicomweb())
      local dir, outside = env.tmpdir("wado-link"), env.tmpdir("wado-outside")
      local files = assert(require("dicomgcs.testdata").generate{ dir = dir .. "/in", studies = 1, series = 1, instances = 2 })
      assert.are.equal(2, assert(dw:store(dir .. "/in")).stored)
      assert(core.mkdir_p(dir .. "/out"))
      symlink(outside, dir .. "/out/" .. files[1].study_uid)
      local s = assert(dw:retrieve{ study = files[1].study_uid, dest = dir .. "/out" })
      assert.are.equal(0, s.instances)
      assert.are.equal(2, s.failed)
      assert.matches("symbolic link", tostring(s.results[1].err))
      assert.are.same({}, ls(outside))
      assert.are.same({ files[1].study_uid }, ls(dir .. "/out"))
    end)

    it("an upload source's symlinked file and sub-folder are reported as failed, not followed", function()
      local src, outside = env.tmpdir("up-links"), env.tmpdir("up-outside")
      file.write(src .. "/real.txt", "real")
      file.write(outside .. "/secret.txt", "secret")
      symlink(outside, src .. "/linkdir")
      symlink(outside .. "/secret.txt", src .. "/link.txt")
      local s = assert(c.storage:upload(src, "gs://" .. bucket .. "/up/"))
      assert.are.equal(1, s.ok)
      assert.are.equal(2, s.failed)
      for _, r in ipairs(s.results) do
        if not r.ok then assert.matches("symbolic link", tostring(r.err)) end
      end
      assert.is_nil(c.storage:stat("gs://" .. bucket .. "/up/linkdir/secret.txt"))
      assert.is_nil(c.storage:stat("gs://" .. bucket .. "/up/link.txt"))
    end)
  end)

  describe("atomic files and reports (§5)", function()
    local atomicfile = setmetatable({}, { __index = function(_, k) return require("dicomgcs.atomicfile")[k] end })

    it("write replaces a file whole, through no link, and leaves no temporary file", function()
      local dir, outside = env.tmpdir("atomic"), env.tmpdir("atomic-outside")
      file.write(outside .. "/victim", "keep me")
      symlink(outside .. "/victim", dir .. "/out.json")
      assert.is_true(atomicfile.write(dir .. "/out.json", "{}\n"))
      assert.are.equal("keep me", file.read(outside .. "/victim"))
      assert.are.equal("{}\n", file.read(dir .. "/out.json"))
      assert.are.same({ "out.json" }, ls(dir))
      local ok, err = atomicfile.write(dir .. "/missing/x", "y")
      assert.is_nil(ok)
      assert.matches("missing/x", tostring(err))
    end)

    it("the streaming form commits only what was written, and abort leaves nothing", function()
      local dir = env.tmpdir("atomic-stream")
      local f = assert(atomicfile.open(dir .. "/s.csv"))
      assert(f:write("a,b\r\n")); assert(f:write("1,2\r\n"))
      assert.is_nil(file.read_if_exists(dir .. "/s.csv"))
      assert(f:commit())
      assert.are.equal("a,b\r\n1,2\r\n", file.read(dir .. "/s.csv"))
      local g = assert(atomicfile.open(dir .. "/t.csv"))
      assert(g:write("x"))
      g:abort()
      assert.are.same({ "s.csv" }, ls(dir))
    end)

    it("under ulimit -f a report fails instead of returning true over a cut file", function()
      local dir = env.tmpdir("ulimit")
      file.write(dir .. "/r.json", "old")
      local code = [[
        local report = require "dicomgcs.report"
        local rows = {}
        for i = 1, 2000 do rows[i] = "gs://b/some/long/object/name/" .. i end
        local ok, err = report.write(report.build(rows, {}), "]] .. dir .. [[/r")
        print(ok, err)
        local atomicfile = setmetatable({}, { __index = function(_, k) return require("dicomgcs.atomicfile")[k] end })
        print(atomicfile.write("]] .. dir .. [[/big", string.rep("x", 100000)))
      ]]
      local out = child(code, "ulimit -f 1;")
      assert.matches("^nil\t.*File too large", out)
      assert.matches("\nnil\t.*File too large", out)
      assert.are.equal("old", file.read(dir .. "/r.json"))
      assert.is_nil(file.read_if_exists(dir .. "/r.csv"))
      assert.is_nil(file.read_if_exists(dir .. "/big"))
      assert.are.same({ "r.json" }, ls(dir))
    end)

    it("report.write creates the report's folder", function()
      local report = require "dicomgcs.report"
      local base = env.tmpdir("report") .. "/new/sub/r"
      assert.is_true(report.write(report.build({ "x" }, { x = { outcome = "succeeded" } }), base))
      assert.matches('"complete":true', file.read(base .. ".json"))
      assert.matches("x,succeeded", file.read(base .. ".csv"))
    end)
  end)

  describe("downloads reach the disk before their names do", function()
    -- Run CODE in a child under strace; every .dgtmp file it renamed, each { from=, synced= }
    -- (an fsync of it returned 0 before the rename), and whether any fsync ran on the thread
    -- that renames (the loop's: one there stops every other transfer until the disk answers).
    local function traced(code, dir)
      local out, rc, err = child(code, "strace -f -e trace=openat,fsync,rename,renameat,renameat2 -o " ..
        env.quote(dir .. "/trace") .. " env")
      assert.are.equal(0, rc, tostring(out) .. tostring(err))
      -- strace -f: "PID call(...) = R", or, when threads interleave, "PID fsync(7 <unfinished ...>"
      -- and later "PID <... fsync resumed>) = 0"; an fsync counts once it has returned 0
      local fd_of, synced, order, started, sync_pids = {}, {}, {}, {}, {}
      local function synced_fd(pid, fd)
        if fd and fd_of[fd] then synced[fd_of[fd]] = true; sync_pids[pid] = true end
      end
      local rename_pid
      for line in file.read(dir .. "/trace"):gmatch("[^\n]+") do
        local pid = line:match("^(%d+)")
        local path, fd = line:match('openat%(AT_FDCWD, "([^"]*%.dgtmp)", [^)]*%)%s+= (%d+)$')
        if path then fd_of[fd] = path end
        synced_fd(pid, line:match("fsync%((%d+)%)%s+= 0"))
        started[pid] = line:match("fsync%((%d+) <unfinished") or started[pid]
        if line:match("<%.%.%. fsync resumed>.*= 0") then synced_fd(pid, started[pid]) end
        local from = line:match('rename%a*%(.-"([^"]*%.dgtmp)"')
        if from then order[#order + 1] = { from = from, synced = synced[from] == true }; rename_pid = pid end
      end
      local trace = file.read(dir .. "/trace"):gsub("[^\n]*ENOENT[^\n]*\n", "")
      return order, sync_pids[rename_pid] ~= nil, trace
    end
    local function has_strace() return env.run("command -v strace"):match("strace") ~= nil end

    it("fsyncs every downloaded file (whole and in ranges) before renaming it into place, on a worker thread", function()
      if not has_strace() then pending("strace is not installed") return end
      assert(c.storage:write("gs://" .. bucket .. "/sync/small", bytes(10 * KIB, 3)))
      assert(c.storage:write("gs://" .. bucket .. "/sync/big", bytes(300 * KIB, 4)))
      local dir = env.tmpdir("sync")
      local order, on_loop, trace = traced(([[
        local c = assert(require("dicomgcs").client{ emulator = %q, project = "spec-project", location = "us-central1", token = "spec-token" })
        local s = assert(c.storage:download("gs://%s/sync/", %q, { ranged_threshold = 256 * 1024, range_size = 100 * 1024 }))
        assert(s.ok == 2 and s.failed == 0)]]):format(env.emulator().host, bucket, dir .. "/out"), dir)
      assert.are.equal(2, #order, trace)
      for _, r in ipairs(order) do assert.is_true(r.synced, r.from .. " was renamed before an fsync:\n" .. trace) end
      assert.is_false(on_loop, "the loop's thread fsync'ed a download itself:\n" .. trace)
      assert.are.equal(bytes(300 * KIB, 4), file.read(dir .. "/out/big"))
    end)

    it("fsyncs every instance of a WADO retrieval (a multipart answer) before naming it, on a worker thread", function()
      if not has_strace() then pending("strace is not installed") return end
      local sc = env.store_client()
      local dw = assert(sc:dicomweb())
      local dir = env.tmpdir("sync-wado")
      local files = assert(require("dicomgcs.testdata").generate{ dir = dir .. "/in", studies = 1, series = 1, instances = 5 })
      assert.are.equal(5, assert(dw:store(dir .. "/in")).stored)
      local order, on_loop, trace = traced(([[
        local dw = require("dicomgcs.dicomweb").new{ base_url = %q, token = "spec-token" }
        local s = assert(dw:retrieve{ study = %q, dest = %q })
        assert(s.instances == 5 and s.failed == 0, s.failed)]]):format(dw.base_url, files[1].study_uid, dir .. "/out"), dir)
      assert.are.equal(5, #order, trace)
      for _, r in ipairs(order) do assert.is_true(r.synced, r.from .. " was renamed before an fsync:\n" .. trace) end
      assert.is_false(on_loop, "the loop's thread fsync'ed a part itself:\n" .. trace)
    end)
  end)

  describe("an interrupted download leaves only complete files (§5)", function()
    local function temporaries(dir)
      return (env.run("find " .. env.quote(dir) .. " -name '*.dgtmp' 2>/dev/null"))
    end
    -- `bin/dicomgcs ARGS` in the background against the shared emulator: its output goes to
    -- DIR/log, its pid to DIR/pid and, once it ends, its exit code to DIR/rc.
    local function start_cli(dir, args)
      os.execute(("(DICOMGCS_EMULATOR_HOST=%s bin/dicomgcs %s >%s/log 2>&1 & echo $! >%s/pid; wait $!; " ..
        "echo $? >%s/rc) >/dev/null 2>&1 &"):format(env.emulator().host, args, dir, dir, dir))
    end
    -- Ctrl-C (a real SIGINT) the command start_cli started in DIR: it ends within `seconds`
    -- (well before the answers it waits for could), exits 130, says so, shows no traceback.
    local function interrupt(dir, seconds)
      local pid = assert(tonumber((file.read_if_exists(dir .. "/pid") or ""):match("%d+")))
      os.execute("kill -INT " .. pid)
      assert.is_true(env.wait_until(function() return (file.read_if_exists(dir .. "/rc") or ""):match("%d") ~= nil end, seconds))
      local log = file.read(dir .. "/log")
      assert.are.equal("130", file.read(dir .. "/rc"):match("%d+"), log)
      assert.truthy(log:find("Interrupted.", 1, true), log)
      assert.is_nil(log:find("traceback", 1, true), log)
    end
    -- `n` objects under PREFIX/held* whose answers the server holds back, and PREFIX/quick
    local function held_objects(prefix, n)
      assert(c.storage:write(("gs://%s/%s/quick"):format(bucket, prefix), bytes(KIB, 5)))
      for i = 1, n do assert(c.storage:write(("gs://%s/%s/held%d"):format(bucket, prefix, i), bytes(64 * KIB, 10 + i))) end
      assert(env.admin("POST", "faults", { path = "/o/" .. prefix .. "%2Fheld", method = "GET", stallMs = 30000 }))
    end

    it("a hook that raises mid-run: the downloads in flight remove their temporary files", function()
      held_objects("hook", 4)
      local dir = env.tmpdir("int-hook")
      local ok, err = pcall(c.storage.download, c.storage, "gs://" .. bucket .. "/hook/", dir,
        { on_progress = function() error("stop here", 0) end })
      assert.is_false(ok)
      assert.are.equal("stop here", err)
      assert.are.equal("", temporaries(dir))
      assert.are.same({ "quick" }, ls(dir))
      assert.are.equal(bytes(KIB, 5), file.read(dir .. "/quick"))
      assert.are.equal(0, c.transport.engine:pending())
    end)

    it("Ctrl-C (a real SIGINT) during storage cp -r: exit 130 at once, no temporary file left", function()
      held_objects("sigint", 6)
      local dir = env.tmpdir("int-cli")
      local out = dir .. "/out"
      start_cli(dir, ("storage cp -r gs://%s/sigint/ %s"):format(bucket, env.quote(out)))
      -- the downloads have started (each holds its temporary file) once six are there
      local function started() return select(2, temporaries(out):gsub("\n", "")) end
      assert.is_true(env.wait_until(function() return started() >= 6 end, 30), temporaries(out))
      -- the answers are held for 30 s: ending sooner means Ctrl-C woke the wait
      interrupt(dir, 20)
      assert.are.equal("", temporaries(out))
      -- the held ones never came; the quick one, queued behind them or not, is whole or absent
      local left = ls(out)
      assert.is_true(#left == 0 or (#left == 1 and left[1] == "quick"), table.concat(left, " "))
      if left[1] then assert.are.equal(bytes(KIB, 5), file.read(out .. "/quick")) end
    end)

    it("Ctrl-C during a WADO retrieval (one blocking request): exit 130 at once, no part left behind", function()
      local sc = env.store_client()
      local dw = assert(sc:dicomweb())
      local dir = env.tmpdir("int-wado")
      local files = assert(require("dicomgcs.testdata").generate{ dir = dir .. "/in", studies = 1, series = 1, instances = 3 })
      assert.are.equal(3, assert(dw:store(dir .. "/in")).stored)
      -- the answer trickles: parts are being written when the signal comes
      assert(env.admin("POST", "faults", { path = "/studies/" .. files[1].study_uid .. "$", method = "GET",
        throttleBytesPerSec = 1000 }))
      local out = dir .. "/out"
      start_cli(dir, ("dicomweb retrieve studies/%s --dest=%s --dicom-store=%s --dataset=%s " ..
        "--project=spec-project --location=us-central1"):format(files[1].study_uid, env.quote(out), sc.dicom_store, sc.dataset))
      assert.is_true(env.wait_until(function() return temporaries(out) ~= "" end, 30), "no part was started")
      -- ~40 KB at 1 KB/s is 40 s: ending sooner means Ctrl-C woke the wait (lua.c's hook alone
      -- would run only once the one request had ended)
      interrupt(dir, 20)
      assert.are.equal("", temporaries(out))
    end)
  end)

  describe("the manifest (§5)", function()
    local manifest = require "dicomgcs.manifest"

    it("cuts the tail torn by a writer killed mid-line, says how much, and loses no later record", function()
      local path = env.tmpdir("manifest") .. "/m.jsonl"
      -- the writer records one job, then dies (SIGKILL) halfway through the next line
      local _, code = child(([[
        local m = assert(require("dicomgcs.manifest").open(%q))
        assert(m:record("a", { state = "done" }))
        local f = io.open(%q, "ab"); f:write('{"key":"b","state":"runn'); f:flush()
        os.execute("kill -KILL " .. io.open("/proc/self/stat"):read("l"):match("^%%d+ %%b() %%a (%%d+)"))
      ]]):format(path, path))
      assert.are_not.equal(0, code)
      assert.matches('"runn$', file.read(path))
      local m = assert(manifest.open(path))
      assert.are.equal(#'{"key":"b","state":"runn', m.dropped)
      assert.is_true(m:finished("a"))
      assert(m:record("b", { state = "running", operation = "op-b" }))
      m:close()
      local again = assert(manifest.open(path))
      assert.are.equal(0, again.dropped)
      assert.are.equal(0, again.torn)
      assert.are.equal("running", again:get("b").state)
      assert.are.equal("op-b", again:get("b").operation)
      again:close()
    end)

    it("writes each record in one write and fsyncs the records a resume depends on", function()
      if not env.run("command -v strace"):match("strace") then
        pending("strace is not installed")
        return
      end
      local dir = env.tmpdir("manifest-sync")
      local out, code = env.run(("%s strace -f -s 4096 -e trace=fsync,write -o %s lua5.4 -e %s"):format(env.lua_paths(),
        env.quote(dir .. "/trace"), env.quote(([[
        local m = assert(require("dicomgcs.manifest").open(%q))
        assert(m:record("a", { state = "progress" }))
        assert(m:record("b", { state = "running", operation = "op" }))
        assert(m:record("c", { state = "done" }))
        m:close()]]):format(dir .. "/m.jsonl"))), true)
      assert.are.equal(0, code, out)
      local calls = {}
      for line in file.read(dir .. "/trace"):gmatch("[^\n]+") do
        -- a whole record, its newline included, in one write(2)
        local what = line:match('^%d+%s+write%(%d+, "{.*}\\n", %d+%) = %d+$') and line:match('state\\":\\"(%a+)')
        if what then calls[#calls + 1] = "write " .. what
        elseif line:match("^%d+%s+fsync%(") then calls[#calls + 1] = "fsync" end
      end
      assert.are.same({ "write progress", "write running", "fsync", "write done", "fsync" }, calls)
    end)

    it("a manifest that is a symlink is refused", function()
      local dir, outside = env.tmpdir("manifest-link"), env.tmpdir("manifest-outside")
      file.write(outside .. "/victim", "keep me\n")
      symlink(outside .. "/victim", dir .. "/m.jsonl")
      local m, err = manifest.open(dir .. "/m.jsonl")
      assert.is_nil(m)
      assert.matches("m.jsonl", tostring(err))
      assert.are.equal("keep me\n", file.read(outside .. "/victim"))
    end)
  end)

  describe("sources that match nothing, sessions that never progress (§7)", function()
    it("cp, rm and check of a URL that matches no objects fail, saying so", function()
      local dir = env.tmpdir("nomatch")
      local _, code, err = env.dicomgcs("storage cp gs://" .. bucket .. "/nothing " .. env.quote(dir))
      assert.are.equal(1, code)
      assert.matches("matched no objects", err)
      _, code, err = env.dicomgcs("storage cp -r gs://" .. bucket .. "/nothing/ " .. env.quote(dir))
      assert.are.equal(1, code)
      assert.matches("matched no objects", err)
      _, code, err = env.dicomgcs("check gs://" .. bucket .. "/nothing")
      assert.are.equal(1, code)
      assert.matches("matched no objects", err)
      _, code, err = env.dicomgcs("storage rm -r --quiet gs://" .. bucket .. "/nothing/")
      assert.are.equal(1, code)
      assert.matches("matched no objects", err)
      local empty = env.tmpdir("empty-src")
      _, code, err = env.dicomgcs("storage cp -r " .. env.quote(empty) .. " gs://" .. bucket .. "/x/")
      assert.are.equal(1, code)
      assert.matches("matched no files", err)
      _, code, err = env.dicomgcs("check " .. env.quote(empty))
      assert.are.equal(1, code)
      assert.matches("matched no files", err)
      assert.is_nil(c.storage:download("gs://" .. bucket .. "/nothing", dir))
      assert.are.same({}, ls(dir))
    end)

    it("a resumable upload whose server answers 308 without progress gives up with a clear error", function()
      local srv = env.start_server("node spec/support/http_server.js")
      local dir = env.tmpdir("stuck")
      file.write(dir .. "/big.bin", bytes(300 * KIB, 3))
      -- the server gives in after 40 answers without progress: a client that waits that long fails here
      local key = env.unique("stuck")
      local sc = env.client{ storage_endpoint = ("http://127.0.0.1:%d/stuck308/%s/40"):format(srv.port, key) }
      local s = assert(sc.storage:upload(dir .. "/big.bin", "gs://bkt/stuck/big.bin",
        { resumable_threshold = 1, skip_same = false }))
      assert.are.equal(1, s.failed)
      assert.matches("no progress", tostring(s.results[1].err))
      local res = assert(core.fetch{ url = ("http://127.0.0.1:%d/_log?key=%s"):format(srv.port, key) })
      local puts = #require("dicomgcs.json").decode(res.body)
      assert.is_true(puts > 1 and puts < 40, "PUTs sent: " .. puts)
    end)
  end)
end)
