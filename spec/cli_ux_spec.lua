-- The command line as a gcloud user expects it (issue 17): `storage cp -r` layout both ways,
-- `storage ls` one level / -r / -l / -L, a missing bucket failing once, long operations told
-- truthfully (cancel's counts, retry-failed's ids, progress bars on a terminal), STOW's
-- "already present", and server names that cannot drive the terminal.
local env = require "spec.support.env"
local json = require "dicomgcs.json"
local testdata = require "dicomgcs.testdata"

local loc = "--project=spec-project --location=us-central1"
local function cli(args, host) return env.dicomgcs(args .. " " .. loc, host) end

-- Run `bin/dicomgcs ARGS` under a pseudo-terminal (util-linux `script`); returns what the
-- terminal showed (stdout and stderr together) and the exit code.
local function under_pty(args, host)
  local cmd = ("DICOMGCS_EMULATOR_HOST=%s DICOMGCS_POLL_INTERVAL=0.05 bin/dicomgcs %s %s"):format(
    host or env.emulator().host, args, loc)
  local out = env.run("script -qefc " .. env.quote(cmd) .. " /dev/null </dev/null")
  local code = tonumber(env.run("script -qefc " .. env.quote(cmd .. " >/dev/null 2>&1; echo rc=$?") ..
    " /dev/null </dev/null"):match("rc=(%d+)"))
  return out, code
end

local function tree(dir)
  local out = env.run("cd " .. env.quote(dir) .. " && find . -type f | sort")
  local list = {}
  for line in out:gmatch("[^\r\n]+") do list[#list + 1] = line:sub(3) end
  return table.concat(list, " ")
end

-- A local folder NAME holding a.txt and sub/b.txt.
local function folder(name)
  local root = env.tmpdir("ux")
  local dir = root .. "/" .. name
  assert(os.execute("mkdir -p " .. env.quote(dir .. "/sub")))
  assert(io.open(dir .. "/a.txt", "wb")):write("aaa"):close()
  assert(io.open(dir .. "/sub/b.txt", "wb")):write("bb"):close()
  return dir
end

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

-- A client with a fresh dataset, its store "st" and a bucket the store may import from.
-- `o` overrides client options (emulator=, dataset=).
local function store_and_bucket(o)
  local opts = { token = "t", dataset = env.unique("ds"), dicom_store = "st" }
  for k, v in pairs(o or {}) do opts[k] = v end
  local c = env.client(opts)
  assert(c:create_dataset{}); assert(c:create_dicom_store{})
  return c, env.bucket(c, nil, "import")
end

describe("dicomgcs storage cp: gcloud's layout", function()
  it("puts a folder under its own name in a bucket, a '/' URI or an existing prefix; its contents in a new prefix", function()
    local c = env.client{ token = "t" }
    local bucket = env.unique("bkt")
    assert(c.storage:create_bucket(bucket))
    local dir = folder("scans")
    local g = "gs://" .. bucket
    assert.are.equal(0, select(2, cli("storage cp -r " .. env.quote(dir) .. " " .. g .. "/")))
    assert.are.equal(0, select(2, cli("storage cp -r " .. env.quote(dir) .. " " .. g .. "/new")))        -- does not exist
    assert.are.equal(0, select(2, cli("storage cp -r " .. env.quote(dir) .. " " .. g .. "/new")))        -- exists now
    assert.are.equal(0, select(2, cli("storage cp -r " .. env.quote(dir .. "/") .. " " .. g .. "/slash/"))) -- '/' URI
    -- one file: into a folder (existing prefix or '/') it keeps its name, else the URI names it
    assert.are.equal(0, select(2, cli("storage cp " .. env.quote(dir .. "/a.txt") .. " " .. g .. "/new")))
    assert.are.equal(0, select(2, cli("storage cp " .. env.quote(dir .. "/a.txt") .. " " .. g .. "/one.txt")))
    local names = {}
    for _, o in ipairs(assert(c.storage:match(g .. "/**"))) do names[#names + 1] = o.name end
    table.sort(names)
    assert.are.same({ "new/a.txt", "new/scans/a.txt", "new/scans/sub/b.txt", "new/sub/b.txt", "one.txt",
                      "scans/a.txt", "scans/sub/b.txt", "slash/scans/a.txt", "slash/scans/sub/b.txt" }, names)
    c:close()
  end)

  it("downloads a prefix under its own name into an existing folder, as its contents into a new one", function()
    local c = env.client{ token = "t" }
    local bucket = env.unique("bkt")
    assert(c.storage:create_bucket(bucket))
    assert(c.storage:upload(folder("x"), "gs://" .. bucket .. "/study/"))
    local existing = env.tmpdir("ux-down")
    local _, code, err = cli("storage cp -r gs://" .. bucket .. "/study " .. env.quote(existing))
    assert.are.equal(0, code, err)
    assert.are.equal("study/a.txt study/sub/b.txt", tree(existing))
    local fresh = existing .. "/../" .. env.unique("fresh")
    assert.are.equal(0, select(2, cli("storage cp -r gs://" .. bucket .. "/study/ " .. env.quote(fresh))))
    assert.are.equal("a.txt sub/b.txt", tree(fresh))
    os.execute("rm -rf " .. env.quote(fresh))
    -- a prefix without -r is refused, as gcloud does
    local _, code2, err2 = cli("storage cp gs://" .. bucket .. "/study " .. env.quote(existing))
    assert.are.equal(2, code2)  -- bad usage: the command line lacks -r
    assert.truthy(err2:find("use -r", 1, true), err2)
    c:close()
  end)

  it("fails once, up front, with exit 1, when the bucket does not exist (both ways)", function()
    local dir = folder("many")
    local missing = env.unique("nobkt")
    local _, code, err = cli("storage cp -r " .. env.quote(dir) .. " gs://" .. missing .. "/in/")
    assert.are.equal(1, code)
    local errs = select(2, err:gsub("ERROR:", ""))
    assert.are.equal(1, errs, err)
    assert.truthy(err:find("bucket gs://" .. missing .. " does not exist", 1, true), err)
    assert.truthy(err:find("dicomgcs storage buckets create gs://" .. missing, 1, true), err)
    local _, dcode, derr = cli("storage cp -r gs://" .. missing .. "/in " .. env.quote(env.tmpdir("ux-nb")))
    assert.are.equal(1, dcode)
    assert.are.equal(1, select(2, derr:gsub("ERROR:", "")), derr)
    assert.truthy(derr:find("does not exist", 1, true), derr)
    local _, lcode, lerr = cli("storage ls gs://" .. missing .. "/x")
    assert.are.equal(1, lcode)
    assert.truthy(lerr:find("does not exist", 1, true), lerr)
  end)

  it("shows a bar with files, bytes, rate and ETA on a terminal, and a summary line when piped", function()
    local c = env.client{ token = "t" }
    local bucket = env.unique("bkt")
    assert(c.storage:create_bucket(bucket))
    local dir = folder("bar")
    local shown, code = under_pty("storage cp -r " .. env.quote(dir) .. " gs://" .. bucket .. "/")
    assert.are.equal(0, code, shown)
    assert.truthy(shown:find("\r\27[K[", 1, true), shown)                 -- redrawn in place
    assert.truthy(shown:find("%[#+%-*%] +%d+%%  %d+/2 files  "), shown)  -- bar, %, files
    assert.truthy(shown:find("/s  ETA ", 1, true), shown)                 -- rate and ETA
    local out, pcode, err = cli("storage cp -r --no-skip-same " .. env.quote(dir) .. " gs://" .. bucket .. "/")
    assert.are.equal(0, pcode)
    assert.are.equal("", out)
    assert.is_nil(err:find("\r", 1, true))
    assert.truthy(err:find("^Uploaded 2 of 2 file%(s%) %(5 B in [%d.]+s, [%d.]+ [KMG]?i?B/s%); 0 failed%.\n$"), err)
    c:close()
  end)
end)

describe("dicomgcs storage ls", function()
  it("lists one level with prefixes, everything with -r or '**', sizes and a total with -l, metadata with -L", function()
    local c = env.client{ token = "t" }
    local bucket = env.unique("bkt")
    assert(c.storage:create_bucket(bucket))
    assert(c.storage:upload(folder("x"), "gs://" .. bucket .. "/p/"))
    local g = "gs://" .. bucket
    assert.are.same({ g .. "/p/sub/", g .. "/p/a.txt" }, lines((cli("storage ls " .. g .. "/p"))))
    assert.are.same({ g .. "/p/" }, lines((cli("storage ls " .. g))))
    assert.are.same({ g .. "/p/a.txt", g .. "/p/sub/b.txt" }, lines((cli("storage ls -r " .. g .. "/p"))))
    assert.are.same({ g .. "/p/a.txt", g .. "/p/sub/b.txt" }, lines((cli("storage ls '" .. g .. "/p/**'"))))
    local long = lines((cli("storage ls -l " .. g .. "/p/")))
    assert.truthy(long[1]:find("^%s+" .. g:gsub("%p", "%%%0") .. "/p/sub/$"), long[1])
    assert.truthy(long[2]:find("^%s+3  %d%d%d%d%-%d%d%-%d%dT[%d:.]+Z  " .. g:gsub("%p", "%%%0") .. "/p/a.txt$"), long[2])
    assert.are.equal("TOTAL: 1 objects, 3 bytes (3 B)", long[3])
    local full = cli("storage ls -L " .. g .. "/p/a.txt")
    assert.truthy(full:find("^" .. g:gsub("%p", "%%%0") .. "/p/a.txt:\n"), full)
    assert.truthy(full:find("\n  crc32c: ", 1, true), full)
    assert.truthy(full:find("\n  size: \"?3\"?\n"), full)
    local _, code, err = cli("storage ls " .. g .. "/nothing")
    assert.are.equal(1, code)
    assert.truthy(err:find("matched no objects", 1, true), err)
    c:close()
  end)
end)

describe("dicomgcs: server names cannot drive the terminal", function()
  local evil = "evil\27]0;pwned\7\127\194\155x.dcm"

  it("term.escape shows every control character and keeps printable UTF-8", function()
    local term = require "dicomgcs.cli.term"
    assert.are.equal("plain name-1.dcm", term.escape("plain name-1.dcm"))
    assert.are.equal("caf\195\169 \226\130\172", term.escape("caf\195\169 \226\130\172"))   -- é €
    assert.are.equal("a\\e[2Jb\\n\\t\\x00\\x7f", term.escape("a\27[2Jb\n\t\0\127"))
    assert.are.equal("\\u009b\\x9b\\xc3", term.escape("\194\155\155\195"))        -- C1, lone bytes
    assert.are.equal("x\\u202ey", term.escape("x\226\128\174y"))                       -- RIGHT-TO-LEFT OVERRIDE
  end)

  it("escapes control characters in storage ls and operations failures; JSON keeps the name", function()
    local c, bucket = store_and_bucket()
    assert(c.storage:write("gs://" .. bucket .. "/in/" .. evil, "not dicom"))
    local out, code = cli("storage ls gs://" .. bucket .. "/in/")
    assert.are.equal(0, code)
    assert.is_nil(out:find("[\1-\9\11-\31\127]"), out)
    assert.is_nil(out:find("\194[\128-\159]"), out)
    assert.truthy(out:find("evil\\e]0;pwned\\a\\x7f\\u009bx.dcm", 1, true), out)
    local doc = json.decode((cli("storage ls gs://" .. bucket .. "/in/ --format=json")))
    assert.are.equal("in/" .. evil, doc[1].name)
    local checked, ccode = cli("check 'gs://" .. bucket .. "/in/*'")
    assert.are.equal(3, ccode)
    assert.is_nil(checked:find("[\1-\8\11-\31\127]"), checked)
    assert.truthy(checked:find("evil\\e]0;pwned\\a", 1, true), checked)

    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm" })
    op:wait{ interval = 0.05 }
    local text, fcode = cli("operations failures " .. op.name)
    assert.are.equal(0, fcode)
    assert.is_nil(text:find("[\1-\8\11-\31\127]"), text)
    assert.truthy(text:find("evil\\e]0;pwned\\a\\x7f\\u009bx.dcm\t", 1, true), text)
    local yaml = cli("operations failures " .. op.name .. " --format=yaml")
    assert.is_nil(yaml:find("[\1-\9\11-\31\127]"), yaml)
    c:close()
  end)
end)

describe("dicomgcs: long operations told truthfully", function()
  it("cancel counts matched - done as not processed; a finished operation says so", function()
    local emu = env.start_emulator{ "--op-delay-ms", "150" }
    local c, bucket = store_and_bucket({ emulator = emu.host, dataset = "cancel" })
    local files = env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 1, series = 2, instances = 6, nested = false }, "uxc")
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm" })
    assert(env.wait_until(function() local o = c:operation(op.name); return o and o.counter.pending > 0 end, 10))
    local _, code, err = cli("operations cancel " .. op.name, emu.host)
    assert.are.equal(0, code, err)
    local done = assert(c:operation(op.name))
    local processed = done.counter.success + done.counter.failure
    assert.is_true(processed < #files, "the import finished before the cancel took effect")
    assert.truthy(err:find(("%d succeeded, %d failed, %d not processed of %d matched."):format(
      done.counter.success, done.counter.failure, #files - processed, #files), 1, true), err)
    local _, code2, err2 = cli("operations cancel " .. op.name, emu.host)
    assert.are.equal(0, code2)
    assert.truthy(err2:find("had already finished", 1, true), err2)
    c:close()
  end)

  it("c:operation(id) is fetched: done and counters are the server's at once", function()
    local c, bucket = store_and_bucket()
    local files = env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 1, series = 1, instances = 2, nested = false }, "uxo")
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm" })
    assert(op:wait{ interval = 0.05 })
    local again = assert(c:operation(op:id()))
    assert.is_true(again.done)
    assert.are.equal(#files, again.counter.success)
    assert.is_false(assert(c:operation(op:id(), { fetch = false })).done)
    local missing, err = c:operation("99999999")
    assert.is_nil(missing)
    assert.are.equal(404, err.http_status)
    c:close()
  end)

  it("shows a bar with %, rate and ETA while waiting on a terminal; no invented rate when piped", function()
    local emu = env.start_emulator{ "--op-delay-ms", "60" }
    local c, bucket = store_and_bucket({ emulator = emu.host, dataset = "bar" })
    env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 1, series = 2, instances = 5, nested = false }, "uxb")
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm" })
    local shown, code = under_pty("operations wait " .. op.name, emu.host)
    assert.are.equal(0, code, shown)
    assert.truthy(shown:find("\r\27[K" .. op:id() .. " [", 1, true), shown)
    assert.truthy(shown:find("%[[#%-]+%] +%d+%%  %d+/10 files %(0 failed%)  "), shown)
    assert.truthy(shown:find("files/s  ETA ", 1, true) or shown:find("files/s  done", 1, true), shown)
    -- the operation is finished now: one look, so no rate at all (it printed 26,427/s)
    local _, pcode, err = cli("operations wait " .. op.name, emu.host)
    assert.are.equal(0, pcode)
    assert.are.equal(op:id() .. ": 10 succeeded, 0 failed, 0 pending, done\n", err)
    c:close()
  end)

  it("operation errors hint a command on the command line and a Lua call in Lua", function()
    local c, bucket = store_and_bucket()
    assert(c.storage:write("gs://" .. bucket .. "/in/bad.dcm", "not dicom"))
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm" })
    local _, err = op:wait{ interval = 0.05 }
    err = err or op:failure()
    assert.truthy(tostring(err):find("c:failures(op)", 1, true), tostring(err))
    local _, code, cerr = cli("operations wait " .. op.name)
    assert.are.equal(1, code)
    assert.truthy(cerr:find("dicomgcs operations failures " .. op:id() .. " --dataset=" .. c.dataset ..
      " --location=us-central1 --project=spec-project", 1, true), cerr)
    c:close()
  end)
end)

describe("dicomgcs: retry-failed and STOW summaries", function()
  it("retry-failed prints the new operations' ids", function()
    local c, bucket = store_and_bucket()
    local good = env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 1, series = 1, instances = 2, nested = false }, "uxr")
    assert(c.storage:write("gs://" .. bucket .. "/in/bad.dcm", "not dicom"))
    local op = assert(c:import{ uri = "gs://" .. bucket .. "/in/*.dcm" })
    op:wait{ interval = 0.05 }
    assert(c.storage:upload(good[1].path, "gs://" .. bucket .. "/in/bad.dcm"))
    local out, code, err = cli("operations retry-failed " .. op.name .. " --dicom-store=st --dataset=" .. c.dataset)
    assert.are.equal(0, code, err)
    local id = out:match("bad%.dcm\tretried ok\t(%d+)\t")
    assert.truthy(id, out)
    assert.truthy(err:find("New operation(s): " .. id, 1, true), err)
    local retried = assert(c:operation(id))
    assert.is_true(retried.done)
    c:close()
  end)

  it("counts instances the store already holds as already present", function()
    local c = env.client{ token = "t", dataset = env.unique("ds"), dicom_store = "st" }
    assert(c:create_dataset{}); assert(c:create_dicom_store{})
    local dir = env.tmpdir("uxs")
    local files = assert(testdata.generate{ dir = dir, studies = 1, series = 2, instances = 3 })
    local first = files[1].path .. " " .. files[2].path
    local args = " --dicom-store=st --dataset=" .. c.dataset
    assert.are.equal(0, select(2, cli("dicomweb store " .. first .. args)))
    local _, code, err = cli("dicomweb store " .. env.quote(dir) .. args)
    assert.are.equal(0, code, err)
    assert.truthy(err:find("Stored 4 of 6 file(s) (2 already present), 0 failed", 1, true), err)
    local doc = json.decode((cli("dicomweb store " .. env.quote(dir) .. args .. " --batch=1 --format=json")))
    assert.are.equal(6, doc.already_present)
    assert.are.equal(0, doc.stored)
    local shown, pcode = under_pty("dicomweb store " .. env.quote(dir) .. args)
    assert.are.equal(0, pcode, shown)
    assert.truthy(shown:find("\r\27[K[########################] 100%  6/6 files, ", 1, true), shown)
    assert.truthy(shown:find("0 stored, 6 already present, 0 failed", 1, true), shown)
    c:close()
  end)
end)

describe("dicomgcs operations wait: partial failure handed back as a result", function()
  it("exits 3 with a command hint when op:wait returns an operation some files failed in", function()
    local operation = require "dicomgcs.operation"
    local errors = require "dicomgcs.errors"
    local name = "projects/spec-project/locations/us-central1/datasets/d1/operations/42"
    local op = operation.new(nil, "http://unused", { name = name, done = true,
      metadata = { counter = { success = "30", failure = "1" } } })
    function op.wait(self) return self end   -- what op:wait does once partial failure is a result
    local wait
    for _, c in ipairs(require "dicomgcs.cli.healthcare") do
      if table.concat(c.path, " ") == "operations wait" then wait = c end
    end
    local printed, errtext = {}, {}
    local real_stderr = io.stderr
    io.stderr = { write = function(_, ...) for _, s in ipairs{ ... } do errtext[#errtext + 1] = s end end,  -- luacheck: ignore 122
                  flush = function() end }
    errors.context = "cli"
    local ok, code = pcall(wait.run, { flags = {}, words = { name },
      client = function() return { operation = function() return op end } end,
      print = function(v) printed[#printed + 1] = v end,
      progress = function() return { report = function() end, finish = function() end } end })
    io.stderr, errors.context = real_stderr, "lua"  -- luacheck: ignore 122
    assert.is_true(ok, tostring(code))
    assert.are.equal(3, code)
    assert.are.equal(op.raw, printed[1])
    local text = table.concat(errtext)
    assert.truthy(text:find("1 failed file(s) of 31", 1, true), text)
    assert.truthy(text:find("dicomgcs operations failures 42 --dataset=d1 --location=us-central1 --project=spec-project", 1, true), text)
  end)
end)
