-- Issue #14 §1 and §7: what emulator mode sends where, plain http, dot-segments, hostile
-- Orthanc paths and line breaks in header values. The "hostile host" is
-- spec/support/recorder.js on 127.0.0.1, which records every request it gets.
package.path = "spec/support/?.lua;" .. package.path
local env = require "env"
local file = require "spec.support.file"
local cjson = require "cjson"
local core = require "dicomgcs.core"
local dicomgcs = require "dicomgcs"
local auth = require "dicomgcs.auth"
local http = require "dicomgcs.http"
local names = require "dicomgcs.names"

local q = env.quote
local rec = {}

local function start_recorder()
  rec = env.node_server("spec/support/recorder.js")
  rec.url = rec.base
end

local function stop_recorder() if rec.stop then rec.stop() end end

local function requests()
  local res = assert(core.fetch{ url = rec.url .. "/_requests" })
  return cjson.decode(res.body)
end

-- Every byte the recorder received, as one text.
local function received()
  local parts = {}
  for _, r in ipairs(requests()) do
    parts[#parts + 1] = r.method .. " " .. r.url
    for k, v in pairs(r.headers) do parts[#parts + 1] = k .. ": " .. tostring(v) end
    parts[#parts + 1] = r.body
  end
  return table.concat(parts, "\n")
end

-- Ambient credentials as a careless developer's machine has them.
local SECRETS = { "ya29.ambient-oauth-token-secret", "gcloud-client-secret-xyz", "1//gcloud-refresh-token-secret",
                  "ya29.dicomgcs-env-token-secret" }
local function ambient_home()
  local home = env.tmpdir("home")
  os.execute("mkdir -p " .. q(home .. "/.config/gcloud"))
  file.write(home .. "/.config/gcloud/application_default_credentials.json", cjson.encode{
    type = "authorized_user", client_id = "cid.apps.googleusercontent.com",
    client_secret = SECRETS[2], refresh_token = SECRETS[3] })
  return home
end

describe("emulator mode credentials (issue #14 §1)", function()
  setup(start_recorder)
  teardown(stop_recorder)

  it("the issue's probe: a gcloud ADC file and token variables, a listener as the emulator: it gets no secret", function()
    local home = ambient_home()
    -- the gcloud file alone (it is what the probe found sent as client_secret=…&refresh_token=…)
    local out, code, err = env.run_split(("HOME=%s DICOMGCS_EMULATOR_HOST=%s bin/dicomgcs datasets list " ..
      "--project=probe-project --location=us-central1"):format(q(home), rec.host))
    assert.are.equal(0, code, out .. err)
    -- plus every other ambient source
    out, code, err = env.run_split(("HOME=%s GOOGLE_OAUTH_ACCESS_TOKEN=%s DICOMGCS_ACCESS_TOKEN=%s " ..
      "GOOGLE_APPLICATION_CREDENTIALS=%s DICOMGCS_EMULATOR_HOST=%s bin/dicomgcs datasets list " ..
      "--project=probe-project --location=us-central1"):format(q(home), SECRETS[1], SECRETS[4],
      q(home .. "/.config/gcloud/application_default_credentials.json"), rec.host))
    assert.are.equal(0, code, out .. err)
    local got = received()
    for _, s in ipairs(SECRETS) do assert.is_nil(got:find(s, 1, true), "the listener received " .. s) end
    assert.is_nil(got:find("/token", 1, true), "no token request was made")
    local n = 0
    for _, r in ipairs(requests()) do
      n = n + 1
      assert.are.equal("Bearer " .. auth.EMULATOR_PLACEHOLDER, r.headers.authorization)
    end
    assert.is_true(n >= 2)
  end)

  it("the issue's probe: `dicom-stores delete .. --dataset=ds1` sends no DELETE at all", function()
    local before = #requests()
    for _, args in ipairs{ "dicom-stores delete .. --dataset=ds1", "datasets delete ..", "datasets delete .",
                           "dicom-stores delete st --dataset=.." } do
      local out, code, err = env.run_split(("DICOMGCS_EMULATOR_HOST=%s bin/dicomgcs %s --project=probe-project " ..
        "--location=us-central1 </dev/null"):format(rec.host, args))
      assert.are_not.equal(0, code, args)
      assert.matches("'..?' are not names", out .. err)
      assert.is_nil((out .. err):find("stack traceback", 1, true))
    end
    assert.are.equal(before, #requests())
  end)

  it("auth.default in emulator mode reads no ambient source and makes no request", function()
    local calls = 0
    local p = assert(auth.default{ fetch = function() calls = calls + 1; return nil, { message = "no" } end,
      getenv = { DICOMGCS_EMULATOR_HOST = rec.host, HOME = ambient_home(), GOOGLE_OAUTH_ACCESS_TOKEN = SECRETS[1],
                 GOOGLE_APPLICATION_CREDENTIALS = "/nonexistent.json", GCE_METADATA_HOST = rec.host } })
    assert.are.equal("emulator", p:source())
    assert.is_true(p:placeholder())
    assert.are.equal(auth.EMULATOR_PLACEHOLDER, (assert(p:token())))
    assert.are.equal(0, calls)
  end)

  it("DICOMGCS_EMULATOR_CREDENTIALS names the key file to use with the emulator", function()
    local dir = env.tmpdir("emucred")
    local f = dir .. "/user.json"
    file.write(f, cjson.encode{ type = "authorized_user", client_id = "c", client_secret = "emu-secret",
      refresh_token = "1//emu-refresh", token_uri = rec.url .. "/token" })
    local seen
    local p = assert(auth.default{
      fetch = function(req) seen = req; return { status = 200, body = '{"access_token":"emu-tok","expires_in":600}' } end,
      getenv = { DICOMGCS_EMULATOR_HOST = rec.host, DICOMGCS_EMULATOR_CREDENTIALS = f, GOOGLE_OAUTH_ACCESS_TOKEN = SECRETS[1] } })
    assert.are.equal("DICOMGCS_EMULATOR_CREDENTIALS", p:source())
    assert.are.equal("emu-tok", (assert(p:token())))
    assert.matches("^" .. rec.url:gsub("%p", "%%%0"), seen.url)
  end)

  it("the client takes emulator_credentials=, and refuses credentials= with the emulator", function()
    local c, err = dicomgcs.client{ project = "probe-project", emulator = rec.host, credentials = "/some/key.json" }
    assert.is_nil(c)
    assert.matches("emulator_credentials", err.hint)
    c, err = dicomgcs.client{ project = "probe-project", emulator_credentials = "/some/key.json",
                              endpoint = "https://healthcare.googleapis.com/v1", token = nil,
                              emulator = nil }
    if os.getenv("DICOMGCS_EMULATOR_HOST") == nil then
      assert.is_nil(c)
      assert.matches("only used with the emulator", err.message)
    end
    local missing = env.tmpdir("emucred") .. "/missing.json"
    c, err = dicomgcs.client{ project = "probe-project", emulator = rec.host, emulator_credentials = missing }
    assert.is_nil(c)
    assert.matches(missing, err.message, 1, true)
  end)

  it("a remote emulator host is refused, naming the variable, unless DICOMGCS_EMULATOR_ALLOW_REMOTE=1", function()
    local c, err = dicomgcs.client{ project = "probe-project", emulator = "attacker.example.com:80" }
    assert.is_nil(c)
    assert.matches("DICOMGCS_EMULATOR_ALLOW_REMOTE=1", err.hint, 1, true)
    local out, code, stderr = env.run_split("DICOMGCS_EMULATOR_HOST=attacker.example.com:80 bin/dicomgcs datasets list " ..
      "--project=probe-project --location=us-central1")
    assert.are.equal(1, code, out .. stderr)
    assert.matches("DICOMGCS_EMULATOR_HOST", stderr, 1, true)
    assert.matches("DICOMGCS_EMULATOR_ALLOW_REMOTE", stderr, 1, true)
    assert.is_nil(stderr:find("stack traceback", 1, true))
    for _, h in ipairs{ "127.0.0.1:1", "127.9.8.7:1", "localhost:1", "[::1]:1" } do
      assert.truthy(dicomgcs.client{ project = "probe-project", emulator = h }, h)
    end
    for _, h in ipairs{ "127.0.0.1.evil.com:1", "10.0.0.1:1", "[::2]:1", "0.0.0.0:1" } do
      assert.is_nil(dicomgcs.client{ project = "probe-project", emulator = h }, h)
    end
    out, code, stderr = env.run_split(env.lua_paths() .. " DICOMGCS_EMULATOR_ALLOW_REMOTE=1 lua5.4 -e " ..
      q('local c, e = require("dicomgcs").client{project="probe-project", emulator="emu.example.com:80"}; ' ..
        'io.write(c and "ok" or tostring(e))'))
    assert.are.equal("ok", out, stderr)
    assert.are.equal(0, code)
  end)

  it("no token goes over plain http to another machine, whatever endpoint= says", function()
    for _, k in ipairs{ "endpoint", "storage_endpoint", "logging_endpoint" } do
      local c, err = dicomgcs.client{ project = "probe-project", token = "ya29.real", [k] = "http://example.com/v1" }
      assert.is_nil(c, k)
      assert.matches(k .. "=", err.message, 1, true)
      assert.matches("https://", err.hint, 1, true)
      assert.truthy(dicomgcs.client{ project = "probe-project", token = "t", [k] = "https://example.com/v1" })
      assert.truthy(dicomgcs.client{ project = "probe-project", token = "t", [k] = "http://127.0.0.1:9/v1" })
    end
    -- a DICOMweb handle with a token
    local dw = require("dicomgcs.dicomweb").new{ base_url = "http://example.com/dicom-web", token = "ya29.real" }
    local ok, err = dw:search_all("studies")
    assert.is_nil(ok)
    assert.matches("plain HTTP", err.message)
    dw:close()
    -- a token endpoint that is plain http elsewhere: nothing is posted
    local calls = 0
    local p = assert(auth.default{ fetch = function() calls = calls + 1; return { status = 200, body = "{}" } end,
      getenv = {}, token_uri = "http://evil.example/token", credentials = { type = "authorized_user",
        client_id = "c", client_secret = "s3cr3t-value", refresh_token = "1//refresh-secret" } })
    local tok, terr = p:token()
    assert.is_nil(tok)
    assert.matches("plain HTTP", tostring(terr))
    assert.are.equal(0, calls)
  end)
end)

describe("dot-segments and path encoding (issue #14 §7)", function()
  it("refuses '.', '..' and empty as dataset, store and in operation names", function()
    for _, v in ipairs{ ".", "..", "" } do
      assert.is_nil(names.dataset(v))
      assert.is_nil(names.dicom_store(v))
      assert.is_nil(names.operation_id(v))
    end
    local c = assert(dicomgcs.client{ project = "probe-project", location = "us-central1", token = "t",
                                      emulator = "127.0.0.1:9" })
    assert.is_nil(c:dataset_name{ dataset = ".." })
    assert.is_nil(c:dicom_store_name{ dataset = "ds1", dicom_store = ".." })
    assert.is_nil(c:operation("projects/p/locations/l/datasets/../operations/1"))
    assert.is_nil(c:operation("projects/p/locations/l/datasets/./operations/1"))
    local _, err = c:delete_dicom_store{ dataset = "ds1", dicom_store = ".." }
    assert.matches("'..'", err.message, 1, true)
  end)

  it("percent-encodes each segment; '.' and '..' never stay dot-segments", function()
    assert.are.equal("%2E%2E", http.escape(".."))
    assert.are.equal("%2E", http.escape("."))
    assert.are.equal("a%2F..%2Fb", http.escape("a/../b"))
    local c = assert(dicomgcs.client{ project = "probe-project", location = "us-central1", token = "t",
                                      emulator = "127.0.0.1:9" })
    assert.are.equal("projects/probe-project/locations/us-central1/datasets/d%C3%A9j%C3%A0/dicomStores/a%26b%3Dc",
      c:dicom_store_name{ dataset = "déjà", dicom_store = "a&b=c" })
    local st = c.storage
    assert.are.equal("http://127.0.0.1:9/storage/v1/b/b/o/%2E%2E", st:object_url("b", ".."))
  end)

  it("an operation name from a server with a dot-segment is refused, and nothing is requested", function()
    local sent = 0
    local transport = { json = function() sent = sent + 1; return {}, {} end }
    local op = require("dicomgcs.operation").new(transport, "http://127.0.0.1:9/v1",
      { name = "projects/p/locations/l/datasets/d/operations/../../../datasets/other" })
    local ok, err = op:get()
    assert.is_nil(ok)
    assert.matches("'..' segment", err.message, 1, true)
    assert.is_nil((op:cancel()))
    assert.are.equal(0, sent)
    op = require("dicomgcs.operation").new(transport, "http://127.0.0.1:9/v1", "projects/p/locations/l/datasets/d/operations/1")
    assert.truthy(op:get())
    assert.are.equal(1, sent)
  end)

  it("auth and http share one escaping function", function()
    assert.are.equal(http.escape("a b/é"), require("dicomgcs.auth.common").escape("a b/é"))
  end)
end)

describe("Orthanc delete path from the server (issue #14 §7)", function()
  setup(start_recorder)
  teardown(stop_recorder)

  local function set_path(p)
    assert(core.fetch{ method = "POST", url = rec.url .. "/_lookup_path", body = p })
  end

  it("refuses a Path that would change the host, and deletes nothing", function()
    local dw = require("dicomgcs.dicomweb").new{ base_url = rec.url .. "/orthanc/dicom-web" }
    for _, bad in ipairs{ "@evil.example/studies/x", "//evil.example/studies/x", "http://evil.example/x",
                          "/studies/../../x", "studies/x", "/studies/x\r\nX: y", "/studies/x?y=1", "/a@b" } do
      set_path(bad)
      local ok, err = dw:delete{ study = "1.2.3" }
      assert.is_nil(ok, bad)
      assert.matches("not a path on", err.message, 1, true)
    end
    for _, r in ipairs(requests()) do
      assert.is_nil(r.method == "DELETE" and not r.url:match("^/orthanc/dicom%-web/") or nil,
        "a DELETE went to " .. r.url)
    end
    set_path("/studies/6b9e19d9-62094390-5f9ddb01")
    assert.is_true(dw:delete{ study = "1.2.3" })
    local last = requests()
    assert.are.equal("/orthanc/studies/6b9e19d9-62094390-5f9ddb01", last[#last].url)
    dw:close()
  end)
end)

describe("line breaks in header values (issue #14 §7)", function()
  it("quota_project and GOOGLE_CLOUD_QUOTA_PROJECT with CR/LF are refused, naming the source", function()
    local c, err = dicomgcs.client{ project = "probe-project", token = "t", quota_project = "q\r\nX-Evil: 1" }
    assert.is_nil(c)
    assert.matches("quota_project", err.message, 1, true)
    local p, perr = auth.default{ credentials = "ya29.token-value", getenv = { GOOGLE_CLOUD_QUOTA_PROJECT = "q\nX: y" } }
    assert.is_nil(p)
    assert.matches("GOOGLE_CLOUD_QUOTA_PROJECT", perr.message, 1, true)
  end)

  it("a Content-Type for uploads (multipart part header) with CR/LF is refused", function()
    local c = assert(dicomgcs.client{ project = "probe-project", token = "t", emulator = "127.0.0.1:9" })
    local dir = env.tmpdir("ct")
    file.write(dir .. "/a.dcm", "x")
    local ok, err = c.storage:upload(dir .. "/a.dcm", "gs://bkt/x/", { content_type = "application/dicom\r\nX-Evil: 1" })
    assert.is_nil(ok)
    assert.matches("content_type", err.message, 1, true)
    ok, err = c.storage:write("gs://bkt/x", "data", "text/plain\nX: y")
    assert.is_nil(ok)
    assert.matches("content_type", err.message, 1, true)
  end)

  it("DICOMweb extra headers, engine user agent and request headers with CR/LF or NUL raise", function()
    assert.has_error(function() require("dicomgcs.dicomweb").new{ base_url = "http://127.0.0.1:9/dw", headers = { "A: b\r\nC: d" } } end)
    assert.has_error(function() core.engine{ user_agent = "ua\r\nX: y" } end)
    assert.has_error(function() core.fetch{ url = "http://127.0.0.1:9/", headers = { "A: b\0\r\nC: d" } } end)
    local ok, err = pcall(core.fetch, { url = "http://127.0.0.1:9/", headers = { "A: b\r\nC: d" } })
    assert.is_false(ok)
    assert.matches("header", err)
  end)
end)
