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

--- Environment assignments that let a child `lua5.4` load this tree's modules, whatever the
-- caller's environment (prefix a shell command with it).
function env.lua_paths()
  local root = env.run("pwd"):gsub("%s+$", "")
  return ("LUA_PATH_5_4=%s LUA_CPATH_5_4=%s"):format(
    shell_quote(root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;"), shell_quote(root .. "/build/?.so;;"))
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

local shared
--- The emulator every ordinary spec uses.
function env.emulator()
  if shared then return shared end
  local host = os.getenv("DICOMGCS_EMULATOR_HOST")
  if host and host ~= "" then
    shared = { host = host, url = "http://" .. host, stop = function() end }
  else
    shared = env.start_emulator()
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
-- a role on it, granted here through the public API as a user would (objectAdmin covers both).
function env.bucket(c, name)
  name = name or env.unique("bkt")
  assert(c.storage:create_bucket(name))
  assert(c.storage:grant_service_agent(name, "export"))
  return name
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

return env
