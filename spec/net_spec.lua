-- dicomgcs where Google really is (issue 20): an emulator started with --tls (HTTP/2 and HTTP/1.1
-- over TLS, certificate from its own CA) and --latency-ms. The client verifies the certificate
-- with DICOMGCS_CA_FILE and fails clearly without it; the engine multiplexes its transfers on one
-- connection (the emulator counts connections) and, left to choose, keeps more requests in flight
-- than its floor when answers are slow but not queueing, within `concurrency` when given.
-- No timing is asserted: only what the emulator saw and what the engine reports.
local env = require "spec.support.env"
local core = require "dicomgcs.core"
local json = require "dicomgcs.json"

local function shq(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function start(options)
  local data = env.tmpdir("net-emu")
  local out, code = env.run("emulator/start --data " .. shq(data) .. " " .. options, true)
  assert(code == 0, "emulator/start failed: " .. out)
  local e = { data = data }
  for k, v in out:gmatch("export ([%w_]+)=(%S+)") do e[k] = v end
  env.on_exit(function() env.run("emulator/stop --data " .. shq(data), true) end)
  return e
end

local function admin(e, path)
  local eng = core.engine{ ca_file = e.DICOMGCS_CA_FILE, concurrency = 1 }
  local res, err = eng:request{ method = "GET", url = e.DICOMGCS_EMULATOR_HOST .. "/_emulator/" .. path }
  eng:close()
  assert(res, err and err.message)
  return json.decode(res.body)
end

-- bin/dicomgcs ARGS with the emulator's exports; ca = false leaves DICOMGCS_CA_FILE out. No other
-- CA setting leaks in from the caller's environment.
local function cli(e, args, ca)
  local vars = { "DICOMGCS_EMULATOR_HOST", "GCE_METADATA_HOST" }
  if ca ~= false then vars[#vars + 1] = "DICOMGCS_CA_FILE" end
  local set = {}
  for _, k in ipairs(vars) do set[#set + 1] = k .. "=" .. shq(e[k]) end
  return env.run(("env -u CURL_CA_BUNDLE -u SSL_CERT_FILE -u SSL_CERT_DIR -u DICOMGCS_CA_FILE %s %s bin/dicomgcs %s")
    :format(table.concat(set, " "), env.lua_paths(), args), true)
end

-- Step ENG until nothing is pending; close it. Returns the most transfers seen in flight at once
-- and how many answers were 200.
local function drain(eng)
  local top, ok = 0, 0
  while eng:pending() > 0 do
    for _, d in ipairs(eng:step(1000)) do if d.res and d.res.status == 200 then ok = ok + 1 end end
    top = math.max(top, eng:stats().in_flight)
  end
  eng:close()
  return top, ok
end

local function storage_requests(e)
  local n, versions = 0, {}
  for _, r in ipairs(admin(e, "requests").requests) do
    if r.path:match("^/storage/") then n = n + 1; versions[r.http] = (versions[r.http] or 0) + 1 end
  end
  return n, versions
end

describe("TLS + HTTP/2 emulator", function()
  local tls
  setup(function() tls = start("--tls --latency-ms 300") end)

  it("a request the server did not process (GOAWAY drained its connection) is retried at once, on a fresh connection", function()
    local aeng = core.engine{ ca_file = tls.DICOMGCS_CA_FILE, concurrency = 1 }
    local url = tls.DICOMGCS_EMULATOR_HOST .. "/storage/v1/b?project=net-spec-goaway"
    local eng = core.engine{ ca_file = tls.DICOMGCS_CA_FILE }
    assert.equal(200, eng:request{ method = "GET", url = url }.status)   -- the connection to drain
    local rule = assert(aeng:request{ method = "POST", url = tls.DICOMGCS_EMULATOR_HOST .. "/_emulator/faults",
      headers = { "Content-Type: application/json" },
      body = json.encode{ path = "^/storage/v1/b$", method = "GET", count = 1, goaway = true } })
    assert.equal(200, rule.status, rule.body)
    -- a backoff would wait 30-60 s: done within 20 s means the retry did not wait for one
    local id = eng:submit{ method = "GET", url = url, retry = { base_delay_ms = 60000 } }
    local deadline, done = core.monotime() + 20, nil
    while not done and core.monotime() < deadline do
      for _, d in ipairs(eng:step(1000)) do if d.id == id then done = d end end
    end
    aeng:request{ method = "DELETE", url = tls.DICOMGCS_EMULATOR_HOST .. "/_emulator/faults" }
    aeng:close()
    assert.truthy(done, "the drained request was not retried at once")
    assert.equal(200, done.res.status)
    assert.equal(2, done.res.attempts)
    eng:close()
  end)

  it("prints an https host and the CA to trust", function()
    assert.matches("^https://127%.0%.0%.1:%d+$", tls.DICOMGCS_EMULATOR_HOST)
    assert.equal(tls.data .. "/tls-ca.pem", tls.DICOMGCS_CA_FILE)
    assert.matches("^127%.0%.0%.1:%d+$", tls.GCE_METADATA_HOST)
  end)

  it("the command line speaks HTTP/2 to it, trusting DICOMGCS_CA_FILE (verification on)", function()
    local out, code = cli(tls, "storage buckets create gs://net-spec-bucket --project=net-spec-proj")
    assert.equal(0, code, out)
    out, code = cli(tls, "storage ls gs://net-spec-bucket --project=net-spec-proj")
    assert.equal(0, code, out)
    local n, versions = storage_requests(tls)
    assert.is_true(n >= 2, "storage requests seen: " .. n)
    assert.equal(n, versions["2.0"], "every storage request over HTTP/2: " .. json.encode(versions))
  end)

  it("without the CA it fails with a TLS error, exit 1, and no request reaches the API", function()
    local before = storage_requests(tls)
    local out, code = cli(tls, "storage ls gs://net-spec-bucket --project=net-spec-proj", false)
    assert.equal(1, code, out)
    assert.matches("SSL certificate problem", out)
    assert.not_matches("traceback", out)
    assert.equal(before, (storage_requests(tls)))
  end)

  it("the engine multiplexes: many transfers in flight, one connection", function()
    local before = admin(tls, "state").connections
    local eng = core.engine{ ca_file = tls.DICOMGCS_CA_FILE }
    for _ = 1, 30 do
      eng:submit{ method = "GET", url = tls.DICOMGCS_EMULATOR_HOST .. "/storage/v1/b?project=net-spec-proj" }
    end
    local top, ok = drain(eng)
    local after = admin(tls, "state").connections
    assert.equal(30, ok)
    assert.is_true(top > 1, "transfers in flight at once: " .. top)
    -- the engine's connection and the admin call's own
    assert.equal(2, after.total - before.total)
    assert.equal(2, after.http2 - before.http2)
  end)

  it("left to choose, the engine keeps more than 16 in flight when answers are slow but not queueing", function()
    local function top_in_flight(opts, n)
      local eng = core.engine(opts)
      for _ = 1, n do
        eng:submit{ method = "GET", url = tls.DICOMGCS_EMULATOR_HOST .. "/storage/v1/b?project=net-spec-proj" }
      end
      local top = 0
      while eng:pending() > 0 do
        eng:step(1000)
        top = math.max(top, eng:stats().in_flight)
      end
      eng:close()
      return top
    end
    local auto = top_in_flight({ ca_file = tls.DICOMGCS_CA_FILE }, 200)
    assert.is_true(auto > 16 and auto <= 128, "in flight at once, default: " .. auto)
    local given = top_in_flight({ ca_file = tls.DICOMGCS_CA_FILE, concurrency = 8 }, 40)
    assert.is_true(given <= 8, "in flight at once, concurrency = 8: " .. given)
  end)

  it("sends bodies over 64 KiB on HTTP/1.1 connections, small ones on HTTP/2; http2_uploads = true keeps them on HTTP/2", function()
    local dir = env.tmpdir("net-bodies")
    local big, small = dir .. "/big.bin", dir .. "/small.bin"
    local f = assert(io.open(big, "wb")); f:write(("b"):rep(64 * 1024 + 1)); f:close()
    f = assert(io.open(small, "wb")); f:write(("s"):rep(64 * 1024)); f:close()
    local h = tls.DICOMGCS_EMULATOR_HOST
    local eng0 = core.engine{ ca_file = tls.DICOMGCS_CA_FILE, concurrency = 1 }
    assert(eng0:request{ method = "POST", url = h .. "/storage/v1/b?project=net-spec-proj",
      headers = { "Content-Type: application/json" }, body = '{"name":"net-spec-bodies"}' })
    eng0:close()
    local function upload(opts, file, name)
      local eng = core.engine(opts)
      local res, err = eng:request{ method = "POST", body_file = file,
        url = h .. "/upload/storage/v1/b/net-spec-bodies/o?uploadType=media&name=" .. name,
        headers = { "Content-Type: application/octet-stream" } }
      eng:close()
      assert(res and res.status == 200, err and err.message or (res and res.body))
    end
    upload({ ca_file = tls.DICOMGCS_CA_FILE }, big, "big")
    upload({ ca_file = tls.DICOMGCS_CA_FILE }, small, "small")
    upload({ ca_file = tls.DICOMGCS_CA_FILE, http2_uploads = true }, big, "big-h2")
    local seen = {}
    for _, r in ipairs(admin(tls, "requests").requests) do
      local name = r.path:match("^/upload/storage/v1/b/net%-spec%-bodies/o%?.*[?&]name=([%w%-]+)")
      if name then seen[name] = r.http end
    end
    assert.same({ big = "1.1", small = "2.0", ["big-h2"] = "2.0" }, seen)
    assert.has_error(function() core.engine{ http2_uploads = "yes" } end,
      "engine: field 'http2_uploads' must be a boolean")
  end)

  it("downloads into files go over HTTP/1.1 (their own connections), reads into memory stay on HTTP/2", function()
    local h = tls.DICOMGCS_EMULATOR_HOST
    local eng = core.engine{ ca_file = tls.DICOMGCS_CA_FILE }
    assert(eng:request{ method = "POST", url = h .. "/storage/v1/b?project=net-spec-proj",
      headers = { "Content-Type: application/json" }, body = '{"name":"net-spec-down"}' })
    assert(eng:request{ method = "POST", body = ("d"):rep(1000),
      url = h .. "/upload/storage/v1/b/net-spec-down/o?uploadType=media&name=obj" })
    local dir = env.tmpdir("net-down")
    local url = h .. "/storage/v1/b/net-spec-down/o/obj?alt=media"
    local to_file = assert(eng:request{ method = "GET", url = url .. "&to=file", output_file = dir .. "/obj" })
    local to_memory = assert(eng:request{ method = "GET", url = url .. "&to=memory" })
    eng:close()
    assert.equal(200, to_file.status)
    assert.equal(("d"):rep(1000), to_memory.body)
    local seen = {}
    for _, r in ipairs(admin(tls, "requests").requests) do
      local to = r.path:match("^/storage/v1/b/net%-spec%-down/o/obj%?alt=media&to=(%a+)")
      if to then seen[to] = r.http end
    end
    assert.same({ file = "1.1", memory = "2.0" }, seen)
  end)

  it("runs at most 64 uploads at once over HTTP/1.1, each on its own connection, while the pace allows more", function()
    local dir = env.tmpdir("net-h1cap")
    local body = dir .. "/b.bin"
    local f = assert(io.open(body, "wb")); f:write(("u"):rep(64 * 1024 + 1)); f:close()
    local h = tls.DICOMGCS_EMULATOR_HOST
    local before = admin(tls, "state").connections
    local eng = core.engine{ ca_file = tls.DICOMGCS_CA_FILE }
    for i = 1, 300 do
      eng:submit{ method = "POST", body_file = body, headers = { "Content-Type: application/octet-stream" },
        url = h .. "/upload/storage/v1/b/net-spec-bodies/o?uploadType=media&name=cap-" .. i }
    end
    local top, ok = drain(eng)
    local opened = admin(tls, "state").connections.total - before.total
    assert.equal(300, ok)
    assert.is_true(top > 16 and top <= 64, "uploads in flight at once: " .. top)
    -- one connection per upload in flight (reused afterwards), and the admin calls' own
    assert.is_true(opened <= 64 + 2, "connections opened: " .. opened)
  end)
end)
