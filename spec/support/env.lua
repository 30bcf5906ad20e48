-- Test environment for specs: temporary folders, emulators, clients, shell commands.
-- Specs use the emulator named by DICOMGCS_EMULATOR_HOST when scripts/run-tests started one;
-- run alone, a spec gets a private emulator started on first use and stopped at exit.
local env = {}

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
env.quote = shell_quote

--- Run a shell command; returns stdout, exit code (stderr goes to stdout when `merge`).
function env.run(cmd, merge)
  local p = assert(io.popen(cmd .. (merge and " 2>&1" or "")))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

--- Run a shell command; returns stdout, exit code, stderr (each kept apart).
function env.run_split(cmd)
  local errfile = os.tmpname()
  local out, code = env.run(cmd .. " 2>" .. shell_quote(errfile))
  local err = io.open(errfile, "rb")
  local text = err and err:read("a") or ""
  if err then err:close() end
  os.remove(errfile)
  return out, code, text
end

--- Run `bin/dicomgcs ARGS` (a shell fragment) against an emulator (default the shared one),
-- polling fast; returns stdout, exit code, stderr.
function env.dicomgcs(args, host)
  return env.run_split(("DICOMGCS_EMULATOR_HOST=%s DICOMGCS_POLL_INTERVAL=0.05 bin/dicomgcs %s"):format(
    host or env.emulator().host, args))
end

--- Start a test server script (node) that prints "PORT <port> PID <pid>" on its first line.
-- Returns {f=, port=, pid=, base="http://127.0.0.1:PORT", host="127.0.0.1:PORT", stop=function}.
function env.node_server(script)
  local f = assert(io.popen("exec node " .. shell_quote(script), "r"))
  local line = f:read("l") or ""
  local port, pid = line:match("PORT (%d+) PID (%d+)")
  assert(port, script .. " did not start: " .. line)
  local s = { f = f, port = tonumber(port), pid = tonumber(pid), base = "http://127.0.0.1:" .. port,
              host = "127.0.0.1:" .. port }
  function s.stop()
    if s.pid then os.execute("kill " .. s.pid .. " 2>/dev/null") end
    if s.f then s.f:close() end
    s.pid, s.f = nil, nil
  end
  return s
end

local root
--- The absolute path of the source tree (the specs run from it).
function env.root()
  if not root then root = env.run("pwd"):gsub("%s+$", "") end
  return root
end

--- Environment assignments that let a child `lua5.4` load this tree's modules, whatever the
-- caller's environment (prefix a shell command with it). The C core comes from
-- $DICOMGCS_BUILD (default build/), so `make sanitize` children load the instrumented one.
function env.lua_paths()
  local dir = env.root()
  local build = os.getenv("DICOMGCS_BUILD") or "build"
  return ("LUA_PATH_5_4=%s LUA_CPATH_5_4=%s"):format(
    shell_quote(dir .. "/lua/?.lua;" .. dir .. "/lua/?/init.lua;;"), shell_quote(dir .. "/" .. build .. "/?.so;;"))
end

local cleanups = {}
-- Runs the cleanups when the Lua state closes (busted exits with os.exit(code, true)).
env._closer = setmetatable({}, { __gc = function()
  for i = #cleanups, 1, -1 do pcall(cleanups[i]) end
end })

function env.on_exit(fn) cleanups[#cleanups + 1] = fn end

--- A fresh temporary folder, removed at exit.
function env.tmpdir(tag)
  local dir = env.run("mktemp -d " .. shell_quote((os.getenv("TMPDIR") or "/tmp") .. "/dicomgcs-spec-" ..
    (tag or "x") .. ".XXXXXX")):gsub("%s+$", "")
  assert(dir ~= "", "mktemp failed")
  env.on_exit(function() os.execute("rm -rf " .. shell_quote(dir)) end)
  return dir
end

--- Start a private emulator with extra start options (a list of strings).
-- Returns { host=, data=, stop=function } ; stopped at exit if not before.
function env.start_emulator(options)
  local data = env.tmpdir("emu")
  local args = {}
  for _, o in ipairs(options or {}) do args[#args + 1] = shell_quote(o) end
  local out, code = env.run("emulator/start --data " .. shell_quote(data) .. " " .. table.concat(args, " "), true)
  assert(code == 0, "emulator/start failed: " .. out)
  local host = out:match("DICOMGCS_EMULATOR_HOST=([%d%.]+:%d+)")
  assert(host, "emulator/start printed no DICOMGCS_EMULATOR_HOST: " .. out)
  local emu = { host = host, data = data, url = "http://" .. host }
  local stopped = false
  function emu.stop()
    if stopped then return end
    stopped = true
    env.run("emulator/stop --data " .. shell_quote(data), true)
  end
  env.on_exit(emu.stop)
  return emu
end

--- Wait (bounded) until `pred()` holds, checking every 50 ms; returns whether it did.
function env.wait_until(pred, seconds)
  local core = require "dicomgcs.core"
  local deadline = core.monotime() + seconds
  while core.monotime() < deadline do
    if pred() then return true end
    core.sleep(0.05)
  end
  return pred()
end

--- A TCP port on 127.0.0.1 that nobody listens on (at the time of asking).
function env.free_port()
  local out = env.run([[node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"]])
  return assert(tonumber(out:match("%d+")), "no free port: " .. out)
end

--- Start a server in the background with shell command `cmd`; it must print `PORT N` on a line
-- of its stdout once it listens. Killed at exit. Returns { port=, pid= }.
function env.start_server(cmd)
  local out = assert(io.popen("exec " .. cmd .. " & echo PID $!", "r"))
  local pid = assert(out:read("l"), "no PID from: " .. cmd):match("PID (%d+)")
  env.on_exit(function() os.execute("kill " .. pid .. " 2>/dev/null") end)
  local port
  for line in out:lines() do
    port = line:match("PORT (%d+)")
    if port then break end
  end
  assert(port, "the server printed no PORT line: " .. cmd)
  return { port = tonumber(port), pid = tonumber(pid), output = out }
end

local shared
--- The emulator every ordinary spec uses.
function env.emulator()
  if shared then return shared end
  local host = os.getenv("DICOMGCS_EMULATOR_HOST")
  if host and host ~= "" then
    shared = { host = host, url = "http://" .. host, stop = function() end }
  else
    shared = env.start_emulator{ "--log-delay-ms", "300" } -- as scripts/run-tests starts it
  end
  return shared
end

local counter = 0
--- A unique id for resources (datasets, buckets) so specs never collide.
function env.unique(prefix)
  counter = counter + 1
  return ("%s-%d-%d-%d"):format(prefix, os.time() % 100000, math.random(1000, 9999), counter)
end

--- A client on the shared emulator with test defaults; `opts` override.
function env.client(opts)
  local dicomgcs = require "dicomgcs"
  local o = { project = "spec-project", location = "us-central1", emulator = env.emulator().host,
              token = "spec-token" }
  for k, v in pairs(opts or {}) do o[k] = v end
  return assert(dicomgcs.client(o))
end

--- A client with a fresh dataset and DICOM store (and a fresh bucket name) on the emulator.
function env.store_client(opts)
  local c = env.client(opts)
  c.dataset = env.unique("ds")
  c.dicom_store = "store"
  assert(c:create_dataset{})
  assert(c:create_dicom_store{})
  return c
end

--- Create a bucket for imports and exports: like on Google, the Healthcare service agent needs
-- a role on it, granted here through the public API as a user would. `purpose` is what the role
-- is for: "export" (the default: objectAdmin, which covers imports too) or "import" (objectViewer).
function env.bucket(c, name, purpose)
  name = name or env.unique("bkt")
  assert(c.storage:create_bucket(name))
  assert(c.storage:grant_service_agent(name, purpose or "export"))
  return name
end

--- Generate DICOM files (dicomgcs.testdata.generate options `gen`, without `dir`) in a fresh
-- folder tagged `tag` and upload them to `uri` (gs://BUCKET/PREFIX/); returns the files, the
-- folder and the upload summary.
function env.upload_testdata(c, uri, gen, tag)
  local dir = env.tmpdir(tag)
  local o = { dir = dir }
  for k, v in pairs(gen) do o[k] = v end
  local files = assert(require("dicomgcs.testdata").generate(o))
  local summary = assert(c.storage:upload(dir, uri))
  return files, dir, summary
end

--- A private emulator that runs one operation at a time, a client on it that neither retries
-- nor waits out quota errors (so that a queue itself meets the 429s), its dataset, store "st"
-- and a bucket holding 3 studies of `instances` generated files under in/study-N/ plus one
-- non-DICOM in/study-2/junk.dcm. Returns emu, client, bucket.
function env.limited_store(instances, tag)
  local emu = env.start_emulator{ "--max-concurrent-operations", "1", "--op-delay-ms", "30" }
  local c = assert(require("dicomgcs").client{ project = "spec-project", location = "us-central1", emulator = emu.host,
    token = "t", dataset = "limit", dicom_store = "st", retry = { max_attempts = 1, quota_budget_ms = 0 } })
  assert(c:create_dataset{}); assert(c:create_dicom_store{})
  local bucket = env.bucket(c, nil, "import")
  env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 3, series = 1, instances = instances, nested = true }, tag)
  assert(c.storage:write("gs://" .. bucket .. "/in/study-2/junk.dcm", "junk"))
  return emu, c, bucket
end

--- An admin call to the emulator (`/_emulator/...`): returns decoded JSON (or nil, message).
function env.admin(method, path, body, emu)
  local json = require "dicomgcs.json"
  local core = require "dicomgcs.core"
  local req = { method = method, url = (emu or env.emulator()).url .. "/_emulator/" .. path,
                headers = { "Content-Type: application/json" } }
  if body then req.body = json.encode(body) end
  local res, err = core.fetch(req)
  if not res then return nil, err.message end
  if res.status >= 300 then return nil, ("HTTP %d: %s"):format(res.status, res.body or "") end
  return json.decode(res.body ~= "" and res.body or "{}")
end

--- The emulator's log of the requests whose path and query match `path_re` (a JavaScript
-- regular expression), oldest first: `{ {method=, path=, status=, time=, ...}, ... }`.
function env.requests(path_re, emu)
  local query = "requests?path=" .. require("dicomgcs.http").escape(path_re)
  return assert(env.admin("GET", query, nil, emu)).requests
end

return env
