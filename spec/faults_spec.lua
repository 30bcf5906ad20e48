-- The HTTP engine under the emulator's fault injection (emulator/src/faults.js), driven through
-- the real client (dicomgcs.client → storage / healthcare calls). Every retryable fault is
-- survived and every non-retryable one reported, with the exact number of attempts, read from
-- the result (res.attempts / err.attempts) and checked against the emulator's request log and the
-- engine's retry counter. Timing is only asserted where the protocol sets it (Retry-After), and
-- read from the emulator's request log, not from the test's clock.
local env = require "spec.support.env"
local file = require "spec.support.file"
local dicomgcs = require "dicomgcs"
local timestamp = require "dicomgcs.timestamp"

local emu, c, bucket, dir
local FAST = { max_attempts = 5, base_delay_ms = 20, max_delay_ms = 100, quota_base_delay_ms = 20, quota_max_delay_ms = 100 }

local function client(opts)
  local o = { project = "faults-project", location = "us-central1", emulator = emu.host, token = "spec-token",
              retry = FAST }
  for k, v in pairs(opts or {}) do o[k] = v end
  return assert(dicomgcs.client(o))
end

local function admin(method, path, body)
  return assert(env.admin(method, path, body, emu))
end

-- Add one fault rule; returns its id.
local function fault(rule)
  return admin("POST", "faults", rule).faults[1].id
end

local function fault_state(id)
  for _, f in ipairs(admin("GET", "faults").faults) do if f.id == id then return f end end
end

-- The request log (oldest first), filtered by a regexp on "path?query".
local function requests(re) return env.requests(re, emu) end

local function statuses(log)
  local s = {}
  for i, r in ipairs(log) do s[i] = r.status end
  return s
end

-- "2024-05-01T12:00:01.250Z" → milliseconds (only differences are used).
local function ms(iso)
  return math.floor(assert(timestamp.parse(iso), "unexpected time " .. tostring(iso)) * 1000 + 0.5)
end

local function retries(cl) return (cl or c).transport.engine:stats().retries end

local function bytes(n, seed)
  local t = {}
  for i = 1, n // 256 do t[i] = string.char((i * 7 + seed) % 256):rep(256) end
  return table.concat(t)
end

describe("engine under injected faults", function()
  local small, small_data, big_data

  setup(function()
    emu = env.start_emulator()
    dir = env.tmpdir("faults")
    c = client()
    bucket = env.unique("faults")
    assert(c.storage:create_bucket(bucket))
    small_data = bytes(256 * 1024, 1)
    small = dir .. "/small.bin"
    file.write(small, small_data)
    big_data = bytes(1024 * 1024, 2)
    assert(c.storage:write("gs://" .. bucket .. "/dl-obj", big_data))
  end)

  teardown(function()
    if c then c:close() end
    if emu then emu.stop() end
  end)

  before_each(function()
    admin("DELETE", "faults")
    admin("DELETE", "requests")
  end)

  local function uri(name) return "gs://" .. bucket .. "/" .. name end
  local function obj_path(name) return "^/storage/v1/b/" .. bucket .. "/o/" .. name .. "$" end

  describe("retryable faults are survived", function()
    for _, code in ipairs{ 429, 503 } do
      it(("uploads a file through two %d answers without Retry-After: 3 attempts"):format(code), function()
        local id = fault{ path = "^/upload/", method = "POST", status = code, count = 2 }
        local r0 = retries()
        local summary = assert(c.storage:upload(small, uri("up-" .. code)))
        assert.equal(1, summary.ok, summary.results[1].err and tostring(summary.results[1].err))
        local log = requests("^/upload/")
        assert.same({ code, code, 200 }, statuses(log))
        assert.equal(id, log[1].fault)
        assert.equal(id, log[2].fault)
        assert.is_nil(log[3].fault)
        assert.equal(2, retries() - r0)
        assert.equal(2, fault_state(id).fired)
        local obj, res = assert(c.storage:stat(uri("up-" .. code)))
        assert.equal(tostring(#small_data), obj.size)
        assert.equal(1, res.attempts)
      end)

      it(("honours Retry-After on %d (the retry comes >= 1 s after the first attempt)"):format(code), function()
        local id = fault{ path = obj_path("dl-obj"), method = "GET", status = code, count = 1, retryAfter = 1 }
        local obj, res = c.storage:stat(uri("dl-obj"))
        assert.truthy(obj, res and tostring(res))
        assert.equal(2, res.attempts)
        local log = requests(obj_path("dl-obj"))
        assert.same({ code, 200 }, statuses(log))
        assert.equal(id, log[1].fault)
        -- the client backs off 20..100 ms on its own; only Retry-After explains >= 1000 ms
        local gap = ms(log[2].time) - ms(log[1].time)
        assert.is_true(gap >= 1000, "second attempt only " .. gap .. " ms after the first")
      end)
    end

    it("honours Retry-After on a Healthcare API call (Google error shape)", function()
      local id = fault{ path = "/datasets$", method = "GET", status = 429, count = 1, retryAfter = 1 }
      local list, err = c:list_datasets()
      assert.truthy(list, err and tostring(err))
      local log = requests("/datasets\\?")
      assert.same({ 429, 200 }, statuses(log))
      assert.equal(id, log[1].fault)
      assert.is_true(ms(log[2].time) - ms(log[1].time) >= 1000)
    end)

    for _, code in ipairs{ 408, 500, 502, 504 } do
      it(("retries %d once and succeeds: 2 attempts"):format(code), function()
        local id = fault{ path = obj_path("dl-obj"), method = "GET", status = code, count = 1 }
        local _, res = assert(c.storage:stat(uri("dl-obj")))
        assert.equal(2, res.attempts)
        assert.same({ code, 200 }, statuses(requests(obj_path("dl-obj"))))
        assert.equal(1, fault_state(id).fired)
      end)
    end

    it("stops at the retry budget and reports the last status with the attempts", function()
      local cl = client{ retry = { max_attempts = 3, base_delay_ms = 5, max_delay_ms = 20 } }
      fault{ path = obj_path("dl-obj"), method = "GET", status = 503 }
      local obj, err = cl.storage:stat(uri("dl-obj"))
      cl:close()
      assert.is_nil(obj)
      assert.equal("http", err.kind)
      assert.equal(503, err.http_status)
      assert.equal(3, err.attempts)
      assert.is_true(err.retryable)
      assert.same({ 503, 503, 503 }, statuses(requests(obj_path("dl-obj"))))
    end)

    it("survives a connection reset mid-body on upload: 2 attempts, the object is whole", function()
      local data = bytes(300 * 1024, 3)
      local id = fault{ path = "^/upload/", method = "POST", count = 1, resetRequestAfterBytes = 100000 }
      local r0 = retries()
      local obj = assert(c.storage:write(uri("reset-up"), data))
      assert.equal(tostring(#data), obj.size)
      assert.equal(1, retries() - r0)
      local log = requests("^/upload/")
      assert.equal(2, #log)
      assert.equal(id, log[1].fault)           -- cut after 100000 body bytes (libcurl may re-send it
      assert.equal(200, log[2].status)         -- itself on a reused connection: counted as an attempt)
      assert.equal(data, c.storage:read(uri("reset-up")))
    end)

    it("survives a connection reset mid-body on download: 2 attempts, the file is whole", function()
      local id = fault{ path = obj_path("dl-obj"), method = "GET", count = 1, resetAfterBytes = 300000 }
      local r0 = retries()
      local out = dir .. "/dl-reset"
      local summary = assert(c.storage:download(uri("dl-obj"), out))
      assert.equal(1, summary.ok, summary.results[1] and summary.results[1].err and tostring(summary.results[1].err))
      assert.equal(big_data, file.read(out .. "/dl-obj"))
      assert.equal(1, retries() - r0)
      local log = requests("/o/dl-obj\\?alt=media")
      assert.equal(2, #log)
      assert.equal(id, log[1].fault)
      assert.is_nil(log[2].fault)
      assert.equal(1, fault_state(id).fired)
    end)

    it("waits through a stall shorter than the idle timeout: 1 attempt", function()
      local cl = client{ idle_timeout = 2 }
      local id = fault{ path = obj_path("dl-obj"), method = "GET", count = 1, stallMs = 700 }
      local _, res = assert(cl.storage:stat(uri("dl-obj")))
      assert.equal(0, retries(cl))
      cl:close()
      assert.equal(1, res.attempts)
      local log = requests(obj_path("dl-obj"))
      assert.equal(1, #log)
      assert.equal(id, log[1].fault)
      assert.is_true(log[1].ms >= 700)
    end)

    it("times out a stall longer than the idle timeout (kind timeout), and retries it", function()
      local cl = client{ idle_timeout = 1, retry = { max_attempts = 1 } }
      fault{ path = obj_path("dl-obj"), method = "GET", count = 1, stallMs = 2500 }
      local obj, err = cl.storage:stat(uri("dl-obj"))
      cl:close()
      assert.is_nil(obj)
      assert.equal("timeout", err.kind)
      assert.equal(1, err.attempts)
      assert.is_true(err.retryable)

      admin("DELETE", "requests")
      cl = client{ idle_timeout = 1 }
      local id = fault{ path = obj_path("dl-obj"), method = "GET", count = 1, stallMs = 2500 }
      local _, res = assert(cl.storage:stat(uri("dl-obj")))
      assert.equal(1, retries(cl))
      cl:close()
      assert.equal(2, res.attempts)
      local log = requests(obj_path("dl-obj"))
      assert.equal(2, #log)
      assert.equal(id, log[1].fault)
      assert.equal(0, log[1].status)          -- the client gave up before the answer
      assert.equal(200, log[2].status)
    end)

    it("does not cut a slow download that keeps moving (slower than the idle timeout in all)", function()
      -- the emulator sends 256 KiB pieces: at 512 KiB/s one every 500 ms, 2 s for 1 MiB, idle limit 1 s
      local cl = client{ idle_timeout = 1 }
      local id = fault{ path = obj_path("dl-obj"), method = "GET", count = 1, throttleBytesPerSec = 524288 }
      local out = dir .. "/dl-slow"
      local summary = assert(cl.storage:download(uri("dl-obj"), out))
      assert.equal(0, retries(cl))
      cl:close()
      assert.equal(1, summary.ok)
      assert.equal(big_data, file.read(out .. "/dl-obj"))
      local log = requests("/o/dl-obj\\?alt=media")
      assert.equal(1, #log)
      assert.equal(id, log[1].fault)
      assert.is_true(log[1].ms >= 1500, "the throttled answer took " .. log[1].ms .. " ms")
    end)
  end)

  describe("non-retryable faults are reported at once", function()
    for _, code in ipairs{ 400, 403, 404, 409 } do
      it(("returns an injected %d after 1 attempt, with Google's error body parsed"):format(code), function()
        local id = fault{ path = obj_path("dl-obj"), method = "GET", status = code, message = "injected " .. code }
        local r0 = retries()
        local obj, err = c.storage:stat(uri("dl-obj"))
        assert.is_nil(obj)
        assert.equal("http", err.kind)
        assert.equal(code, err.http_status)
        assert.equal(1, err.attempts)
        assert.is_false(err.retryable)
        assert.truthy(err.message:find("injected " .. code, 1, true), err.message)
        assert.equal(0, retries() - r0)
        assert.same({ code }, statuses(requests(obj_path("dl-obj"))))
        assert.equal(1, fault_state(id).fired)
      end)
    end

    it("fails an upload on an injected 403 after 1 attempt", function()
      fault{ path = "^/upload/", method = "POST", status = 403, message = "injected 403" }
      local summary = assert(c.storage:upload(small, uri("up-403")))
      assert.equal(1, summary.failed)
      local err = summary.results[1].err
      assert.equal(403, err.http_status)
      assert.equal(1, err.attempts)
      assert.equal(1, #requests("^/upload/"))
    end)

    it("returns the emulator's own 404 and 409 after 1 attempt", function()
      local obj, err = c.storage:stat(uri("no-such-object"))
      assert.is_nil(obj)
      assert.equal(404, err.http_status)
      assert.equal(1, err.attempts)
      local b, berr = c.storage:create_bucket(bucket)
      assert.is_nil(b)
      assert.equal(409, berr.http_status)
      assert.equal(1, berr.attempts)
      local ds, derr = c:get_dataset{ dataset = "no-such-dataset" }
      assert.is_nil(ds)
      assert.equal(404, derr.http_status)
      assert.equal("NOT_FOUND", derr.status)
      assert.equal(1, derr.attempts)
      assert.equal(1, #requests("no-such-object"))
      assert.equal(1, #requests("no-such-dataset"))
    end)
  end)

  describe("adaptive concurrency (AIMD)", function()
    it("slows a job started at concurrency 64 down when a share of answers is 429, and completes it", function()
      local n = 150
      local src = dir .. "/aimd"
      os.execute("mkdir -p " .. env.quote(src))
      for i = 1, n do file.write(("%s/f%03d.bin"):format(src, i), bytes(8192, i)) end
      local cl = client{ concurrency = 64, retry = { max_attempts = 40, base_delay_ms = 5, max_delay_ms = 200 } }
      assert.equal(64, cl.transport.engine:stats().cap)
      local id = fault{ path = "^/upload/", method = "POST", status = 429, share = 0.3, count = 60 }
      local min_cap, max_in_flight = 64, 0
      local summary = assert(cl.storage:upload(src, "gs://" .. bucket .. "/aimd/", {
        skip_same = false,
        on_progress = function()
          local s = cl.transport.engine:stats()
          if s.cap < min_cap then min_cap = s.cap end
          if s.in_flight > max_in_flight then max_in_flight = s.in_flight end
        end }))
      local stats = cl.transport.engine:stats()
      cl:close()
      assert.equal(n, summary.ok)
      assert.equal(0, summary.failed)
      local fired = fault_state(id).fired
      assert.is_true(fired > 0)
      assert.is_true(min_cap < 64, "the cap never dropped")
      assert.is_true(stats.cap < 64, "cap " .. stats.cap)
      assert.equal(fired, stats.retries)
      local log = requests("^/upload/")
      assert.equal(n + fired, #log)
      local throttled = 0
      for _, r in ipairs(log) do if r.status == 429 then throttled = throttled + 1 end end
      assert.equal(fired, throttled)
    end)
  end)

  describe("faults given at start-up (--faults)", function()
    it("applies them from the first request", function()
      local e2 = env.start_emulator{ "--faults",
        '{"path":"^/storage/v1/b$","method":"POST","status":503,"count":2}' }
      local cl = assert(dicomgcs.client{ project = "faults-project", emulator = e2.host, token = "spec-token",
                                         retry = FAST })
      local _, res = assert(cl.storage:create_bucket(env.unique("startup")))
      cl:close()
      assert.equal(3, res.attempts)
      local log = assert(env.admin("GET", "requests", nil, e2)).requests
      assert.same({ 503, 503, 200 }, statuses(log))
      e2.stop()
    end)
  end)
end)
