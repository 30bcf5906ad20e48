-- Test kit for spec/auth_spec.lua: keys generated with `openssl genpkey` (none committed),
-- credential files pointing at a private strict-auth emulator, admin calls to its /_auth/
-- endpoints, and an environment table for auth.default{getenv = ...}.
package.path = "spec/support/?.lua;" .. package.path
local env = require "env"
local file = require "spec.support.file"
local json = require "dicomgcs.json"
local core = require "dicomgcs.core"

local H = {}

--- core.fetch when the engine provides it, else the LuaSocket stand-in.
H.fetch = core.fetch or require("auth_fetch").fetch
H.has_engine = type(core.engine) == "function" and type(core.fetch) == "function"

function H.sleep(s)
  if core.sleep then core.sleep(s) else require("socket").sleep(s) end
end

local read = file.read
H.read = read
H.write = file.write

function H.write_json(path, t) return H.write(path, json.encode(t)) end

local function openssl(args)
  local out, code = env.run("openssl " .. args, true)
  assert(code == 0, "openssl " .. args .. " failed: " .. out)
  return out
end
H.openssl = openssl

H.EMAIL = "sa@test-project.iam.gserviceaccount.com"
H.TARGET = "target@test-project.iam.gserviceaccount.com"

--- Keys, credential files and a strict emulator with 5-second tokens.
function H.start()
  local dir = env.tmpdir("auth")
  local q = env.quote
  openssl("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " .. q(dir .. "/key.pem"))
  openssl("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " .. q(dir .. "/other.pem"))
  openssl("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " .. q(dir .. "/ec.pem"))
  openssl("pkey -in " .. q(dir .. "/key.pem") .. " -pubout -out " .. q(dir .. "/pub.pem"))
  local k = {
    dir = dir, key = read(dir .. "/key.pem"), other = read(dir .. "/other.pem"), ec = read(dir .. "/ec.pem"),
    pub = dir .. "/pub.pem",
  }
  local function sa(key, token_uri)
    return { type = "service_account", project_id = "test-project", private_key_id = "kid-1", private_key = key,
             client_email = H.EMAIL, client_id = "100000000000000000001", token_uri = token_uri,
             auth_uri = "https://accounts.google.com/o/oauth2/auth" }
  end
  -- The emulator only needs client_email and the key; token_uri is filled in below.
  H.write_json(dir .. "/sa_boot.json", sa(k.key, "https://oauth2.googleapis.com/token"))
  local emu = env.start_emulator{ "--strict-auth", "--service-account", dir .. "/sa_boot.json", "--token-lifetime", "5" }
  k.emu = emu
  k.host = emu.host
  k.url = emu.url
  k.files = {
    sa = H.write_json(dir .. "/sa.json", sa(k.key, emu.url .. "/token")),
    sa_google = H.write_json(dir .. "/sa_google.json", sa(k.key, "https://oauth2.googleapis.com/token")),
    sa_ec = H.write_json(dir .. "/sa_ec.json", sa(k.ec, emu.url .. "/token")),
    sa_wrong = H.write_json(dir .. "/sa_wrong.json", sa(k.other, emu.url .. "/token")),
    sa_garbage = H.write_json(dir .. "/sa_garbage.json",
      sa("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", emu.url .. "/token")),
    malformed = H.write(dir .. "/malformed.json", '{"type": "service_account", "private_key": "' .. k.key:sub(30, 90) .. '"'),
    badtype = H.write_json(dir .. "/badtype.json", { type = "martian_account" }),
  }
  k.sa_info = sa(k.key, emu.url .. "/token")
  k.home = env.tmpdir("home")     -- no gcloud file in it
  return k
end

function H.stop(k) if k and k.emu then k.emu.stop() end end

--- An environment for auth.default{getenv=...}: emulator mode, an empty HOME, plus `extra`.
function H.env(k, extra)
  local e = { DICOMGCS_EMULATOR_HOST = k.host, HOME = k.home }
  for name, v in pairs(extra or {}) do e[name] = v end
  return e
end

--- An admin call to the emulator's /_auth/ endpoints; returns decoded JSON.
function H.admin(k, method, path, body)
  local req = { method = method, url = k.url .. "/_auth/" .. path, headers = { "Content-Type: application/json" } }
  if body then req.body = json.encode(body) end
  local res, err = H.fetch(req)
  assert(res, err and err.message)
  assert(res.status < 300, ("admin %s %s: HTTP %d %s"):format(method, path, res.status, res.body or ""))
  return json.decode(res.body ~= "" and res.body or "{}")
end

--- GET a Healthcare path on the emulator with a bearer token; returns the response.
function H.api(k, token, path)
  local headers = {}
  if token then headers[1] = "Authorization: Bearer " .. token end
  return assert(H.fetch{ method = "GET", url = k.url .. (path or "/v1/projects/p/locations/l/datasets"), headers = headers })
end

--- Everything a value shows: tostring and, for tables, every field recursively.
function H.all_text(v, out, seen)
  out = out or {}
  seen = seen or {}
  if type(v) == "table" then
    if seen[v] then return out end
    seen[v] = true
    out[#out + 1] = tostring(v)
    for key, x in pairs(v) do
      H.all_text(key, out, seen)
      H.all_text(x, out, seen)
    end
  elseif v ~= nil then
    out[#out + 1] = tostring(v)
  end
  return out
end

return H
