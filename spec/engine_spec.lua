-- The C HTTP engine (dicomgcs.core engine/fetch) against spec/support/http_server.js.
local core = require "dicomgcs.core"
local cjson = require "cjson"
local file = require "spec.support.file"
local write_file, file_size, read_all = file.write, file.size, file.read

local server = {}

local function start_server()
  server = require("spec.support.env").node_server("spec/support/http_server.js")
end

local function stop_server()
  if server.stop then server.stop() end
  server = {}
end

local seq = 0
local function key()
  seq = seq + 1
  return ("k%d_%d"):format(os.time(), seq)
end

local function url(path) return server.base .. path end

local function server_log(k)
  local res = assert(core.fetch{ url = url("/_log?key=" .. k) })
  return cjson.decode(res.body)
end

local function tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p
end


local function sha256_file(path)
  local p = assert(io.popen("sha256sum '" .. path .. "'"))
  local out = p:read("a")
  p:close()
  return out:match("^(%x+)")
end


-- The name of a temporary file the engine left beside `path` (".NAME.<hex>.dgtmp"), or nil.
local function leftover(path)
  local dir, base = path:match("^(.*)/([^/]*)$")
  for _, e in ipairs(assert(core.listdir(dir))) do
    if e.name:sub(1, #base + 2) == "." .. base .. "." and e.name:match("%.dgtmp$") then return e.name end
  end
  return nil
end

local function rss_kb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmRSS:%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end

local function drain(eng, limit_s)
  local out = {}
  local t0 = os.time()
  while eng:pending() > 0 do
    for _, d in ipairs(eng:step(200)) do out[d.id] = d end
    assert(os.time() - t0 < (limit_s or 60), "drain timed out")
  end
  return out
end

local fast = { base_delay_ms = 10, max_delay_ms = 50, quota_base_delay_ms = 10, quota_max_delay_ms = 50 }

describe("dicomgcs.core engine", function()
  local eng

  setup(start_server)
  teardown(function()
    if eng then eng:close() end
    stop_server()
  end)
  before_each(function() eng = core.engine{ concurrency = 8, connect_timeout = 5, idle_timeout = 10 } end)
  after_each(function() eng:close() end)

  describe("requests", function()
    it("GETs and POSTs with headers round trip", function()
      local res, err = eng:request{ url = url("/echo?a=1"), headers = { "X-Test: one", "X-Other: two" } }
      assert.is_nil(err)
      assert.equal(200, res.status)
      assert.equal(1, res.attempts)
      local doc = cjson.decode(res.body)
      assert.equal("GET", doc.method)
      assert.equal("/echo?a=1", doc.url)
      assert.equal("one", doc.headers["x-test"])
      assert.equal("two", doc.headers["x-other"])
      assert.matches("^dicomgcs/%d+%.%d+%.%d+ libcurl/", doc.headers["user-agent"])
      assert.equal("application/json", res.headers["content-type"])
      assert.equal("a, b", res.headers["x-multi"])       -- repeated headers joined

      res = assert(eng:request{ method = "POST", url = url("/echo"), body = "hello\0world",
                                headers = { "Content-Type: text/plain" } })
      doc = cjson.decode(res.body)
      assert.equal("POST", doc.method)
      assert.equal(11, doc.length)
      assert.equal("hello\0world", doc.body)
      assert.equal("text/plain", doc.headers["content-type"])
      assert.is_nil(doc.headers.expect)                    -- no Expect: 100-continue
      assert.equal(11, res.bytes_sent)
    end)

    it("sends PUT, PATCH, DELETE and HEAD", function()
      for _, m in ipairs{ "PUT", "PATCH", "DELETE" } do
        local res = assert(eng:request{ method = m, url = url("/echo"), body = "x" })
        local doc = cjson.decode(res.body)
        assert.equal(m, doc.method)
        assert.equal(1, doc.length)
      end
      local res = assert(eng:request{ method = "DELETE", url = url("/echo") })
      assert.equal("DELETE", cjson.decode(res.body).method)
      res = assert(eng:request{ method = "HEAD", url = url("/echo") })
      assert.equal(200, res.status)
      assert.equal("", res.body)
    end)

    it("POSTs an empty body without a form content type", function()
      local res = assert(eng:request{ method = "POST", url = url("/echo") })
      local doc = cjson.decode(res.body)
      assert.equal(0, doc.length)
      assert.is_nil(doc.headers["content-type"])
    end)

    it("uploads body_file streamed (length and hash checked by the server)", function()
      local path = tmpname()
      local chunk = {}
      for i = 1, 4096 do chunk[i] = string.char((i * 7) % 256) end
      chunk = table.concat(chunk)
      local f = assert(io.open(path, "wb"))
      for _ = 1, 1280 do f:write(chunk) end                -- 5 MiB
      f:close()
      local res = assert(eng:request{ method = "POST", url = url("/upload"), body_file = path,
                                      headers = { "Content-Type: application/dicom" } })
      local doc = cjson.decode(res.body)
      assert.equal(5 * 1024 * 1024, doc.length)
      assert.equal(sha256_file(path), doc.sha256)
      assert.equal("application/dicom", doc.headers["content-type"])
      assert.is_nil(doc.headers.expect)
      os.remove(path)
    end)

    it("streams body_parts as an exact multipart/related body", function()
      local p1, p2 = tmpname(), tmpname()
      write_file(p1, "DICM\0\1\2 first file")
      write_file(p2, "")
      local parts = {
        { data = "--BOUND\r\nContent-Type: application/dicom\r\n\r\n" }, { file = p1 },
        { data = "\r\n--BOUND\r\nContent-Type: application/dicom\r\n\r\n" }, { file = p2 },
        { data = "" }, { data = "\r\n--BOUND--\r\n" },
      }
      local expect = parts[1].data .. "DICM\0\1\2 first file" .. parts[3].data .. parts[6].data
      local res = assert(eng:request{ method = "POST", url = url("/echo"), body_parts = parts,
        headers = { 'Content-Type: multipart/related; type="application/dicom"; boundary=BOUND' } })
      local doc = cjson.decode(res.body)
      assert.equal(#expect, doc.length)
      assert.equal(#expect, tonumber(doc.headers["content-length"]))
      assert.equal(expect, doc.body)
      os.remove(p1); os.remove(p2)
    end)

    it("fails with kind io naming a body file that is missing", function()
      local missing = tmpname() .. "-gone.dcm"
      local res, err = eng:request{ method = "POST", url = url("/echo"),
                                    body_parts = { { data = "x" }, { file = missing } } }
      assert.is_nil(res)
      assert.equal("io", err.kind)
      assert.matches(missing, err.message, 1, true)
    end)

    it("fails with kind io when a body file shrinks during the upload", function()
      local path = tmpname()
      write_file(path, string.rep("z", 4 * 1024 * 1024))
      local id = eng:submit{ method = "POST", url = url("/echo"), body_file = path, retry = { max_attempts = 1 },
        on_progress = function(sent)
          if sent > 0 then
            local f = io.open(path, "wb"); if f then f:close() end   -- truncate to 0
          end
        end }
      local d = drain(eng)[id]
      assert.is_nil(d.res)
      assert.equal("io", d.err.kind)
      assert.matches(path, d.err.message, 1, true)
      os.remove(path)
    end)

    it("downloads a large body to output_file with flat memory", function()
      local out = tmpname()
      collectgarbage()
      local before = rss_kb()
      local n = 50 * 1000 * 1000
      local res, err = eng:request{ url = url("/bytes?n=" .. n), output_file = out }
      assert.is_nil(err)
      assert.equal(200, res.status)
      assert.is_nil(res.body)
      assert.equal(n, res.bytes_received)
      local after = rss_kb()
      assert.is_true(after - before < 20 * 1024, ("RSS grew by %d kB"):format(after - before))
      assert.equal(n, file_size(out))
      assert.is_nil(leftover(out))
      local f = assert(io.open(out, "rb"))
      f:seek("set", 1000003)
      local b = f:read(3)
      f:close()
      assert.equal(string.char(1000003 % 251, 1000004 % 251, 1000005 % 251), b)
      os.remove(out)
    end)

    it("keeps non-2xx bodies in res.body and writes no output_file", function()
      local out = tmpname()
      local res = assert(eng:request{ url = url("/status?code=404&body=nothing"), output_file = out })
      assert.equal(404, res.status)
      assert.equal("nothing", res.body)
      assert.is_nil(file_size(out))
      assert.is_nil(leftover(out))
    end)

    it("removes the partial output_file on failure", function()
      local out = tmpname()
      local res, err = eng:request{ url = url("/reset"), output_file = out, retry = { max_attempts = 2,
        base_delay_ms = 1 } }
      assert.is_nil(res)
      assert.equal("transport", err.kind)
      assert.equal(2, err.attempts)
      assert.is_nil(file_size(out))
      assert.is_nil(leftover(out))
    end)
  end)

  describe("concurrency", function()
    it("runs many submits to completion, within the cap", function()
      local e = core.engine{ concurrency = 4 }
      local ids = {}
      for i = 1, 40 do ids[i] = e:submit{ url = url("/delay?ms=30&i=" .. i) } end
      assert.equal(40, e:pending())
      local max_in_flight = 0
      local done = {}
      while e:pending() > 0 do
        for _, d in ipairs(e:step(100)) do done[d.id] = d end
        local s = e:stats()
        if s.in_flight > max_in_flight then max_in_flight = s.in_flight end
      end
      for i = 1, 40 do
        assert.equal(200, done[ids[i]].res.status)
        assert.equal("late", done[ids[i]].res.body)
      end
      assert.is_true(max_in_flight <= 4)
      local s = e:stats()
      assert.equal(40, s.completed)
      assert.equal(0, s.in_flight)
      assert.equal(4, s.cap)
      e:close()
    end)

    it("step returns an empty list when nothing is pending", function()
      assert.same({}, eng:step(10))
    end)

    it("request() leaves other completions for step()", function()
      local id = eng:submit{ url = url("/echo?bg=1") }
      local res = assert(eng:request{ url = url("/delay?ms=100") })
      assert.equal(200, res.status)
      assert.equal(1, eng:pending())
      local done = drain(eng)
      assert.equal(200, done[id].res.status)
    end)
  end)

  describe("retries", function()
    for _, code in ipairs{ 408, 429, 500, 502, 503, 504 } do
      it("retries " .. code .. " with the exact attempt count", function()
        local k = key()
        local res = assert(eng:request{ url = url(("/status?code=%d&n=2&key=%s"):format(code, k)), retry = fast })
        assert.equal(200, res.status)
        assert.equal(3, res.attempts)
        assert.equal(3, #server_log(k))
        if code == 429 then return end  -- quota waits end with the quota budget, not max_attempts (below)
        k = key()
        res = assert(eng:request{ url = url(("/status?code=%d&key=%s"):format(code, k)),
                                  retry = { max_attempts = 4, base_delay_ms = 1, max_delay_ms = 5 } })
        assert.equal(code, res.status)
        assert.equal(4, res.attempts)
        assert.equal(4, #server_log(k))
      end)
    end

    for _, code in ipairs{ 400, 401, 403, 404, 409, 412 } do
      it("returns " .. code .. " at once", function()
        local k = key()
        local res = assert(eng:request{ url = url(("/status?code=%d&key=%s"):format(code, k)), retry = fast })
        assert.equal(code, res.status)
        assert.equal(1, res.attempts)
        assert.equal(1, #server_log(k))
      end)
    end

    it("honours Retry-After in seconds", function()
      local k = key()
      local res = assert(eng:request{ url = url("/status?code=503&n=1&retry_after=1&key=" .. k), retry = fast })
      assert.equal(200, res.status)
      assert.equal(2, res.attempts)
      local log = server_log(k)
      assert.equal(2, #log)
      local gap = log[2].t - log[1].t
      assert.is_true(gap >= 950 and gap < 3000, "gap " .. gap)
    end)

    it("honours Retry-After as an HTTP date", function()
      local k = key()
      local when = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 2)
      local res = assert(eng:request{ url = url("/status?code=429&n=1&key=" .. k .. "&retry_after=" ..
        when:gsub(" ", "%%20"):gsub(",", "%%2C")), retry = fast })
      assert.equal(2, res.attempts)
      local log = server_log(k)
      local gap = log[2].t - log[1].t
      assert.is_true(gap >= 900 and gap < 3500, "gap " .. gap)
    end)

    it("stops at the deadline", function()
      local k = key()
      local t0 = os.time()
      local res = assert(eng:request{ url = url("/status?code=503&retry_after=1&key=" .. k),
                                      retry = { max_attempts = 50, deadline_ms = 1500 } })
      assert.equal(503, res.status)
      assert.equal(2, res.attempts)
      assert.is_true(os.time() - t0 <= 3)
    end)

    it("uses exponential backoff between attempts", function()
      local k = key()
      local res = assert(eng:request{ url = url("/status?code=500&key=" .. k),
                                      retry = { max_attempts = 3, base_delay_ms = 200, max_delay_ms = 300 } })
      assert.equal(3, res.attempts)
      local log = server_log(k)
      -- delay n is uniform in [cap/2, cap], cap = min(max, base * 2^(n-1)): 100..200, then 150..300
      local first, second = log[2].t - log[1].t, log[3].t - log[2].t
      assert.is_true(first >= 100, "first delay " .. first)
      assert.is_true(second >= 150, "second delay " .. second)
      assert.is_true(log[3].t - log[1].t <= 200 + 300 + 400)
    end)

    it("waits out 429s beyond max_attempts, within the quota budget, and counts the waits", function()
      local e = core.engine{ concurrency = 4 }
      local k = key()
      local res = assert(e:request{ url = url("/status?code=429&n=6&key=" .. k),
        retry = { max_attempts = 2, base_delay_ms = 1, quota_base_delay_ms = 1, quota_max_delay_ms = 20 } })
      assert.equal(200, res.status)
      assert.equal(7, res.attempts)
      assert.equal(6, e:stats().quota_waits)
      e:close()
    end)

    it("gives up on 429s once the quota budget is spent", function()
      local k = key()
      local res = assert(eng:request{ url = url("/status?code=429&key=" .. k),
        retry = { max_attempts = 2, quota_base_delay_ms = 50, quota_max_delay_ms = 100, quota_budget_ms = 300 } })
      assert.equal(429, res.status)
      local log = server_log(k)
      assert.is_true(#log >= 3, "attempts " .. #log)
      assert.is_true(log[#log].t - log[1].t >= 300 - 5, "the last attempt is made at the budget's end")
    end)

    it("survives a connection reset mid-body", function()
      local k = key()
      local res = assert(eng:request{ url = url("/reset?n=1&key=" .. k), retry = fast })
      assert.equal(200, res.status)
      assert.equal(2, res.attempts)
      assert.equal(100000, #res.body)
    end)

    it("never resends a never-ambiguous request once it may have run, and flags it", function()
      local k = key()
      local res, err = eng:request{ url = url("/reset?n=1&key=" .. k), retry = fast, replay = "never-ambiguous" }
      assert.is_nil(res)
      assert.is_true(err.ambiguous)
      assert.equal(1, err.attempts)
      assert.equal(1, #server_log(k))
      k = key()
      res = assert(eng:request{ url = url("/status?code=500&n=1&key=" .. k), retry = fast, replay = "never-ambiguous" })
      assert.equal(500, res.status)
      assert.is_true(res.ambiguous)
      assert.equal(1, #server_log(k))
      k = key()
      res = assert(eng:request{ url = url("/status?code=503&n=1&key=" .. k), retry = fast, replay = "never-ambiguous" })
      assert.equal(200, res.status)
      assert.equal(2, #server_log(k))
      local _, cerr = eng:request{ url = "http://127.0.0.1:1/x", replay = "never-ambiguous",
                                   retry = { max_attempts = 3, base_delay_ms = 1 } }
      assert.equal(3, cerr.attempts)
      assert.is_nil(cerr.ambiguous)
      assert.has_error(function() eng:request{ url = url("/echo"), replay = "sometimes" } end)
    end)

    it("retries connection errors and reports the attempts", function()
      local res, err = eng:request{ url = "http://127.0.0.1:1/x?q=1", retry = { max_attempts = 3, base_delay_ms = 1 } }
      assert.is_nil(res)
      assert.equal("transport", err.kind)
      assert.equal(3, err.attempts)
      assert.equal(7, err.curl_code)
      assert.equal("http://127.0.0.1:1/x?q=1", err.url)
    end)

    it("strips credentials from error URLs and keeps the query", function()
      local _, err = eng:request{ url = "http://user:hunter2@127.0.0.1:1/p?x=1", retry = { max_attempts = 1 } }
      assert.equal("http://127.0.0.1:1/p?x=1", err.url)
      assert.is_nil(err.message:find("hunter2", 1, true))
    end)

    it("halves the cap on 429/503 and raises it on success (AIMD)", function()
      local e = core.engine{ concurrency = 8 }
      local k = key()
      e:request{ url = url("/status?code=429&n=3&key=" .. k), retry = fast }
      local s = e:stats()
      assert.is_true(s.cap <= 2, "cap " .. s.cap)
      assert.equal(3, s.retries)
      for _ = 1, 60 do e:request{ url = url("/echo") } end
      assert.equal(8, e:stats().cap)
      e:close()
    end)
  end)

  describe("timeouts and cancellation", function()
    it("aborts a stalled transfer with kind timeout", function()
      local t0 = os.time()
      local res, err = eng:request{ url = url("/stall"), timeout = { idle = 1 }, retry = { max_attempts = 1 } }
      assert.is_nil(res)
      assert.equal("timeout", err.kind)
      assert.equal(28, err.curl_code)
      assert.equal(1, err.attempts)
      assert.is_true(os.time() - t0 <= 4)
    end)

    it("does not time out a slow transfer that keeps moving", function()
      local res = assert(eng:request{ url = url("/slow?n=2000&chunk=100&interval=100"), timeout = { idle = 1 } })
      assert.equal(2000, #res.body)
    end)

    it("applies an optional total timeout", function()
      local res, err = eng:request{ url = url("/slow?n=2000&chunk=100&interval=100"),
                                    timeout = { total = 0.5 }, retry = { max_attempts = 3 } }
      assert.is_nil(res)
      assert.equal("timeout", err.kind)
      assert.equal(1, err.attempts)
    end)

    it("cancels running and queued transfers", function()
      local e = core.engine{ concurrency = 1 }
      local a = e:submit{ url = url("/delay?ms=5000") }
      local b = e:submit{ url = url("/delay?ms=5000") }
      e:step(50)
      assert.is_true(e:cancel(a))
      assert.is_true(e:cancel(b))
      assert.is_false(e:cancel(a))
      assert.is_false(e:cancel(12345))
      local done = drain(e, 3)
      assert.equal("cancelled", done[a].err.kind)
      assert.equal("cancelled", done[b].err.kind)
      assert.equal(0, e:pending())
      e:close()
    end)
  end)

  describe("callbacks", function()
    it("reports progress", function()
      local calls, last = 0, nil
      local res = assert(eng:request{ url = url("/bytes?n=300000"), on_progress = function(s, st, r, rt)
        calls = calls + 1
        last = { s, st, r, rt }
      end })
      assert.equal(300000, #res.body)
      assert.is_true(calls >= 1)
      assert.equal(300000, last[4])
    end)

    it("aborts only the transfer whose progress callback raises", function()
      local ids = {}
      for i = 1, 4 do ids[i] = eng:submit{ url = url("/slow?n=1000&chunk=100&interval=20&i=" .. i) } end
      local bad = eng:submit{ url = url("/slow?n=1000&chunk=100&interval=20"),
                              on_progress = function() error("boom in progress") end }
      local done = drain(eng)
      assert.equal("callback", done[bad].err.kind)
      assert.matches("boom in progress", done[bad].err.message, 1, true)
      for i = 1, 4 do assert.equal(1000, #done[ids[i]].res.body) end
      local res = assert(eng:request{ url = url("/echo") })   -- the engine still works
      assert.equal(200, res.status)
    end)

    it("raises a clear error when a callback re-enters the engine", function()
      local seen
      local res, err = eng:request{ url = url("/bytes?n=1000"), on_progress = function()
        local ok, e = pcall(eng.pending, eng)
        seen = seen or e
        if not ok then error(e, 0) end   -- the transfer is aborted with this message
      end }
      assert.is_nil(res)
      assert.equal("callback", err.kind)
      assert.matches("re%-entered", seen)
      assert.matches("re%-entered", err.message)
    end)

    it("handles error objects that are not strings", function()
      local _, err = eng:request{ url = url("/bytes?n=1000"), on_progress = function()
        error(setmetatable({}, { __tostring = function() return "custom error object" end }))
      end }
      assert.equal("callback", err.kind)
      assert.matches("custom error object", err.message, 1, true)
    end)
  end)

  describe("token_provider", function()
    it("is called once for many concurrent transfers", function()
      local calls = 0
      local e = core.engine{ concurrency = 8, token_provider = function()
        calls = calls + 1
        return "tok-" .. calls, 3600
      end }
      local k = key()
      for i = 1, 20 do e:submit{ url = url("/auth?key=" .. k .. "&i=" .. i) } end
      local done = drain(e)
      assert.equal(1, calls)
      for _, d in pairs(done) do assert.equal('{"auth":"Bearer tok-1"}', d.res.body) end
      for _, entry in ipairs(server_log(k)) do assert.equal("Bearer tok-1", entry.auth) end
      -- auth = false sends none
      local res = assert(e:request{ url = url("/auth"), auth = false })
      assert.equal('{"auth":""}', res.body)
      e:close()
    end)

    it("refreshes a token near its expiry", function()
      local calls = 0
      local e = core.engine{ token_provider = function()
        calls = calls + 1
        return "t" .. calls, 1                      -- margin = lifetime / 4
      end }
      assert(e:request{ url = url("/auth") })
      assert(e:request{ url = url("/auth") })
      assert.equal(1, calls)
      local t0 = os.clock()
      local s = os.time() repeat until os.time() - s >= 2     -- wait out the token
      local res = assert(e:request{ url = url("/auth") })
      assert.equal('{"auth":"Bearer t2"}', res.body)
      assert.equal(2, calls)
      e:close()
      assert(t0)
    end)

    it("forces a refresh once on 401 and retries once", function()
      local forced = {}
      local e = core.engine{ token_provider = function(force)
        forced[#forced + 1] = force
        return force and "new-token" or "old-token", 3600
      end }
      local k = key()
      local res = assert(e:request{ url = url("/auth?reject=old-token&key=" .. k) })
      assert.equal(200, res.status)
      assert.equal(2, res.attempts)
      assert.same({ false, true }, forced)
      local log = server_log(k)
      assert.equal("Bearer old-token", log[1].auth)
      assert.equal("Bearer new-token", log[2].auth)
      -- a token the server keeps rejecting: one forced refresh, one retry, then the 401
      res = assert(e:request{ url = url("/auth?reject=new-token") })
      assert.equal(401, res.status)
      assert.equal(2, res.attempts)
      assert.same({ false, true, true }, forced)
      e:close()
    end)

    it("turns provider errors into kind auth, without leaking the token", function()
      local mode = "fail"
      local e = core.engine{ token_provider = function()
        if mode == "fail" then return nil, "no credentials found" end
        if mode == "raise" then error("provider exploded") end
        return "secret-token-value", 3600
      end }
      local res, err = e:request{ url = url("/auth") }
      assert.is_nil(res)
      assert.equal("auth", err.kind)
      assert.matches("no credentials found", err.message, 1, true)
      mode = "raise"
      res, err = e:request{ url = url("/auth") }
      assert.is_nil(res)
      assert.equal("auth", err.kind)
      assert.matches("provider exploded", err.message, 1, true)
      mode = "ok"
      res, err = e:request{ url = "http://127.0.0.1:1/x", retry = { max_attempts = 1 } }
      assert.is_nil(res)
      assert.equal("transport", err.kind)
      for _, v in pairs(err) do assert.is_nil(tostring(v):find("secret-token", 1, true)) end
      e:close()
    end)

    it("may call core.fetch, and may not re-enter the engine", function()
      local e
      e = core.engine{ token_provider = function()
        local r = assert(core.fetch{ url = url("/echo?from=provider") })
        assert(r.status == 200)
        if e.reenter then return e:request{ url = url("/echo") } end
        return "fetched", 3600
      end }
      local res = assert(e:request{ url = url("/auth") })
      assert.equal('{"auth":"Bearer fetched"}', res.body)
      e:close()
      local e2
      e2 = core.engine{ token_provider = function() return e2:request{ url = url("/echo") } end }
      local _, err = e2:request{ url = url("/auth") }
      assert.equal("auth", err.kind)
      assert.matches("re%-entered", err.message)
      e2:close()
    end)
  end)

  describe("fetch", function()
    it("makes one blocking request with the same shapes", function()
      local k = key()
      local res = assert(core.fetch{ url = url("/status?code=500&n=1&key=" .. k), retry = fast })
      assert.equal(200, res.status)
      assert.equal(2, res.attempts)
      local _, err = core.fetch{ url = "http://127.0.0.1:1/", retry = { max_attempts = 1 } }
      assert.equal("transport", err.kind)
      assert.equal(1, err.attempts)
      res = assert(core.fetch{ method = "POST", url = url("/echo"), body = "abc" })
      assert.equal(3, cjson.decode(res.body).length)
    end)
  end)

  describe("output_offset", function()
    local CYCLE = {}
    for i = 0, 250 do CYCLE[#CYCLE + 1] = string.char(i) end
    CYCLE = table.concat(CYCLE)
    -- bytes a..b (0-based, inclusive) of the server's pattern object
    local function pattern(a, b)
      local s = CYCLE:rep((b - a + 1) // 251 + 2)
      local from = a % 251 + 1
      return s:sub(from, from + b - a)
    end
    local function preallocate(path, size)
      local f = assert(io.open(path, "wb"))
      if size > 0 then f:seek("set", size - 1); f:write("\0") end
      f:close()
    end

    it("fills one preallocated file from parallel ranged GETs, with no temporary file", function()
      local out = tmpname()
      local n = 3 * 1000 * 1000 + 7
      preallocate(out, n)
      local ids, step = {}, 800 * 1000
      for a = 0, n - 1, step do
        local b = math.min(n, a + step) - 1
        ids[#ids + 1] = eng:submit{ url = url("/range?n=" .. n), output_file = out, output_offset = a,
          headers = { ("Range: bytes=%d-%d"):format(a, b) } }
      end
      local done = drain(eng)
      for _, id in ipairs(ids) do
        assert.is_nil(done[id].err)
        assert.equal(206, done[id].res.status)
        assert.is_nil(done[id].res.body)
      end
      assert.equal(4, #ids)
      assert.equal(n, file_size(out))
      assert.is_true(read_all(out) == pattern(0, n - 1), "the file differs from the object")
      assert.is_nil(leftover(out))
      os.remove(out)
    end)

    it("writes only its range and leaves the bytes around it", function()
      local out = tmpname()
      write_file(out, string.rep("X", 10000))
      local res = assert(core.fetch{ url = url("/range?n=5000"), output_file = out, output_offset = 1000,
        headers = { "Range: bytes=0-999" } })
      assert.equal(206, res.status)
      assert.equal(string.rep("X", 1000) .. pattern(0, 999) .. string.rep("X", 8000), read_all(out))
      os.remove(out)
    end)

    it("starts again at output_offset when a retry follows a dropped connection", function()
      local out, k = tmpname(), key()
      write_file(out, string.rep("X", 6000))
      local res, err = eng:request{ url = url("/range?n=5000&fail=1&key=" .. k), output_file = out,
        output_offset = 100, headers = { "Range: bytes=2000-4999" }, retry = fast }
      assert.is_nil(err)
      assert.equal(206, res.status)
      assert.equal(2, res.attempts)
      assert.equal(3000, res.bytes_received)
      -- the first attempt wrote 1000 bytes of 'E' at 100; the retry overwrote them from 100
      assert.equal(string.rep("X", 100) .. pattern(2000, 4999) .. string.rep("X", 2900), read_all(out))
      os.remove(out)
    end)

    it("computes hash = \"crc32c\" over the 2xx body bytes written, per transfer", function()
      local out = tmpname()
      local n = 3 * 1000 * 1000 + 7
      preallocate(out, n)
      local ids, want, step = {}, {}, 800 * 1000
      for a = 0, n - 1, step do
        local b = math.min(n, a + step) - 1
        local id = eng:submit{ url = url("/range?n=" .. n), output_file = out, output_offset = a,
          headers = { ("Range: bytes=%d-%d"):format(a, b) }, hash = "crc32c" }
        ids[#ids + 1] = id
        want[id] = { crc = core.crc32c(pattern(a, b)), len = b - a + 1 }
      end
      local done = drain(eng)
      local whole = 0
      for _, id in ipairs(ids) do
        assert.is_nil(done[id].err)
        assert.equal(want[id].crc, done[id].res.crc32c)
        whole = core.crc32c_combine(whole, done[id].res.crc32c, want[id].len)
      end
      assert.equal(core.crc32c(pattern(0, n - 1)), whole)
      assert.equal(core.hash_file(out, { crc32c = true }).crc32c, core.crc32c_b64(whole))
      -- kept in memory too; no field without the option or for a non-2xx answer
      local res = assert(eng:request{ url = url("/range?n=5000"), hash = "crc32c" })
      assert.equal(core.crc32c(res.body), res.crc32c)
      assert.is_nil(assert(eng:request{ url = url("/range?n=5000") }).crc32c)
      assert.is_nil(assert(eng:request{ url = url("/status?code=404&body=x"), hash = "crc32c" }).crc32c)
      assert.has_error(function() eng:submit{ url = url("/range?n=1"), hash = "md5" } end)
      os.remove(out)
    end)

    it("starts the CRC32C again when a retry follows a dropped connection", function()
      local out, k = tmpname(), key()
      write_file(out, string.rep("X", 6000))
      local res, err = eng:request{ url = url("/range?n=5000&fail=1&key=" .. k), output_file = out,
        output_offset = 100, headers = { "Range: bytes=2000-4999" }, retry = fast, hash = "crc32c" }
      assert.is_nil(err)
      assert.equal(2, res.attempts)
      assert.equal(core.crc32c(pattern(2000, 4999)), res.crc32c)
      os.remove(out)
    end)

    it("leaves the file in place on a failure or a non-2xx answer", function()
      local out, k = tmpname(), key()
      write_file(out, string.rep("X", 3000))
      local res, err = eng:request{ url = url("/range?n=5000&fail=9&key=" .. k), output_file = out,
        output_offset = 0, headers = { "Range: bytes=0-2999" }, retry = { max_attempts = 2, base_delay_ms = 1 } }
      assert.is_nil(res)
      assert.equal("transport", err.kind)
      assert.equal(2, err.attempts)
      assert.equal(3000, file_size(out))
      write_file(out, string.rep("X", 3000))
      res = assert(eng:request{ url = url("/status?code=404&body=nothing"), output_file = out, output_offset = 10 })
      assert.equal(404, res.status)
      assert.equal("nothing", res.body)
      assert.equal(string.rep("X", 3000), read_all(out))
      assert.is_nil(leftover(out))
      os.remove(out)
    end)

    it("fails with kind io naming a file removed before the body came, and does not create it", function()
      local out = tmpname()
      write_file(out, "")
      local id = eng:submit{ url = url("/range?n=100"), output_file = out, output_offset = 0 }
      os.remove(out)
      local d = drain(eng)[id]
      assert.is_nil(d.res)
      assert.equal("io", d.err.kind)
      assert.matches(out, d.err.message, 1, true)
      assert.is_nil(file_size(out))
    end)

    it("checks its arguments, naming the file", function()
      local out = tmpname()
      write_file(out, "x")
      for _, bad in ipairs{ -1, 1.5, "3", true } do
        assert.has_error(function() eng:submit{ url = url("/range?n=1"), output_file = out, output_offset = bad } end,
          "request: field 'output_offset' must be an integer >= 0")
      end
      assert.has_error(function() eng:submit{ url = url("/range?n=1"), output_offset = 0 } end,
        "request: field 'output_offset' needs 'output_file'")
      local missing = out .. "-missing"
      local ok, msg = pcall(eng.submit, eng, { url = url("/range?n=1"), output_file = missing, output_offset = 0 })
      assert.is_false(ok)
      assert.matches("output_file " .. missing .. " must be an existing regular file", msg, 1, true)
      ok, msg = pcall(core.fetch, { url = url("/range?n=1"), output_file = "/tmp", output_offset = 0 })
      assert.is_false(ok)
      assert.matches("not a regular file", msg, 1, true)
      assert.is_nil(file_size(missing))
      assert.equal(0, eng:pending())
      os.remove(out)
    end)
  end)

  describe("file slices in body_parts", function()
    local data = {}
    for i = 0, 9999 do data[#data + 1] = string.char(32 + (i * 7 + 3) % 95) end   -- ASCII: /echo returns latin1 in JSON
    data = table.concat(data)
    local path
    before_each(function() path = tmpname(); write_file(path, data) end)
    after_each(function() os.remove(path) end)

    it("streams exactly length bytes from offset, and the rest of the file without length", function()
      local parts = { { data = "A" }, { file = path, offset = 10, length = 20 }, { data = "B" },
        { file = path, offset = 9990 }, { file = path, offset = 500, length = 0 }, { file = path, offset = 10000 },
        { file = path, length = 3 }, { data = "C" } }
      local expect = "A" .. data:sub(11, 30) .. "B" .. data:sub(9991) .. data:sub(1, 3) .. "C"
      local res = assert(eng:request{ method = "POST", url = url("/echo"), body_parts = parts })
      local doc = cjson.decode(res.body)
      assert.equal(#expect, doc.length)
      assert.equal(#expect, tonumber(doc.headers["content-length"]))
      assert.equal(expect, doc.body)
      assert.equal(#expect, res.bytes_sent)
    end)

    it("takes body_offset and body_length with body_file", function()
      local res = assert(eng:request{ method = "PUT", url = url("/echo"), body_file = path, body_offset = 4096,
        body_length = 5000 })
      assert.equal(data:sub(4097, 9096), cjson.decode(res.body).body)
      res = assert(eng:request{ method = "PUT", url = url("/echo"), body_file = path, body_offset = 9000 })
      assert.equal(data:sub(9001), cjson.decode(res.body).body)
      res = assert(core.fetch{ method = "PUT", url = url("/echo"), body_file = path, body_length = 7 })
      assert.equal(data:sub(1, 7), cjson.decode(res.body).body)
    end)

    it("sends the same slice again on a retry", function()
      local k = key()
      local res = assert(eng:request{ method = "PUT", url = url("/echo?fail=2&key=" .. k), retry = fast,
        body_parts = { { data = "<" }, { file = path, offset = 1234, length = 4321 }, { data = ">" } } })
      assert.equal(200, res.status)
      assert.equal(3, res.attempts)
      assert.equal(3, #server_log(k))
      assert.equal("<" .. data:sub(1235, 1234 + 4321) .. ">", cjson.decode(res.body).body)
    end)

    it("fails with kind io naming a file shorter than its slice", function()
      local res, err = eng:request{ method = "PUT", url = url("/echo"),
        body_parts = { { file = path, offset = 9000, length = 1001 } } }
      assert.is_nil(res)
      assert.equal("io", err.kind)
      assert.matches(path, err.message, 1, true)
      res, err = eng:request{ method = "PUT", url = url("/echo"), body_file = path, body_offset = 10001 }
      assert.is_nil(res)
      assert.equal("io", err.kind)
      assert.matches(path, err.message, 1, true)
    end)

    it("fails with kind io when the file shrinks below offset + length during the upload", function()
      local big = tmpname()
      write_file(big, string.rep("z", 4 * 1024 * 1024))
      local id = eng:submit{ method = "PUT", url = url("/echo"), retry = { max_attempts = 1 },
        body_parts = { { file = big, offset = 1024 * 1024, length = 3 * 1024 * 1024 } },
        on_progress = function(sent)
          if sent > 0 then
            local f = io.open(big, "wb"); if f then f:close() end   -- truncate to 0
          end
        end }
      local d = drain(eng)[id]
      assert.is_nil(d.res)
      assert.equal("io", d.err.kind)
      assert.matches(big, d.err.message, 1, true)
      os.remove(big)
    end)

    it("raises on bad slice arguments, naming the part", function()
      local function submit(req) req.url = url("/echo"); req.method = "PUT"; return eng:submit(req) end
      assert.has_error(function() submit{ body_parts = { { data = "x", offset = 1 } } } end,
        "request: body_parts[1]: field 'offset' applies only to a file part")
      assert.has_error(function() submit{ body_parts = { { data = "x" }, { file = path, offset = -1 } } } end,
        "request: body_parts[2]: field 'offset' must be an integer >= 0")
      assert.has_error(function() submit{ body_parts = { { file = path, length = 2.5 } } } end,
        "request: body_parts[1]: field 'length' must be an integer >= 0")
      assert.has_error(function() submit{ body_parts = { { file = path, size = 2 } } } end,
        "request: body_parts[1]: unknown field 'size'")
      assert.has_error(function() submit{ body = "x", body_offset = 1 } end,
        "request: fields 'body_offset' and 'body_length' need 'body_file'")
      assert.has_error(function() submit{ body_file = path, body_length = -5 } end,
        "request: field 'body_length' must be an integer >= 0")
      assert.has_error(function() submit{ body_file = path, body_offset = math.maxinteger, body_length = 2 } end)
      assert.equal(0, eng:pending())
    end)
  end)

  describe("misuse", function()
    it("raises naming the field", function()
      assert.has_error(function() eng:request{ url = url("/"), bogus = 1 } end, "request: unknown field 'bogus'")
      assert.has_error(function() eng:submit{} end, "request: field 'url' is required (a string)")
      assert.has_error(function() eng:submit{ url = 5 } end, "request: field 'url' must be a string")
      assert.has_error(function() eng:submit{ url = "x", headers = "a" } end, "request: field 'headers' must be a table")
      assert.has_error(function() eng:submit{ url = "x", retry = { tries = 2 } } end,
        "request.retry: unknown field 'tries'")
      assert.has_error(function() eng:submit{ url = "x", timeout = { idle = "1" } } end,
        "request.timeout: field 'idle' must be a number")
      assert.has_error(function() eng:submit{ url = "x", body = "a", body_file = "b" } end)
      assert.has_error(function() eng:submit{ url = "x", body_parts = { { data = "a", file = "b" } } } end)
      assert.has_error(function() eng:submit{ url = "x", auth = true } end)
      assert.has_error(function() eng:submit{ url = "x", headers = { "Bad\r\nInjected: 1" } } end)
      assert.has_error(function() core.engine{ concurrency = 0 } end)
      assert.has_error(function() core.engine{ colour = "red" } end, "engine: unknown field 'colour'")
      assert.has_error(function() core.fetch{ url = "x", on_progress = print } end)
      assert.equal(0, eng:pending())
    end)

    it("closes idempotently and refuses use after close", function()
      local e = core.engine{}
      e:submit{ url = url("/delay?ms=2000") }
      e:step(20)
      e:close()
      e:close()
      assert.equal("dicomgcs.Engine (closed)", tostring(e))
      assert.has_error(function() e:pending() end, "dicomgcs engine: the engine is closed")
      do local e3 <close> = core.engine{}; e3:submit{ url = url("/echo") } end
      local e4 = core.engine{}; e4:submit{ url = url("/delay?ms=2000") }; e4:step(10)
      e4 = nil -- luacheck: ignore 311 (dropped on purpose: __gc must cope with a transfer in flight)
      collectgarbage(); collectgarbage()
    end)
  end)

  describe("multipart_sink", function()
    local function sinkdir()
      local d = tmpname()
      assert(core.mkdir_p(d))
      return d
    end
    local function entries(d)
      local p = assert(io.popen("ls -A " .. d))
      local n = 0
      for _ in p:lines() do n = n + 1 end
      p:close()
      return n
    end

    it("takes a body that is not multipart as one part, and a retry starts clean", function()
      local d = sinkdir()
      local sink <close> = core.multipart_sink(d)
      local k = key()
      local res = assert(eng:request{ url = url("/reset?n=1&size=5000&key=" .. k), multipart_sink = sink, retry = fast })
      assert.equal(200, res.status)
      assert.equal(2, res.attempts)
      assert.is_nil(res.body)
      assert.is_true(sink:complete())
      assert.is_nil(sink:error())
      local parts = sink:parts()
      assert.equal(1, #parts)
      assert.equal(5000, parts[1].size)
      assert.truthy(parts[1].path:find("^" .. d:gsub("%p", "%%%0") .. "/%.part%.[0-9a-f]+%.dgtmp$"))
      assert.equal(1, entries(d))
      os.remove(parts[1].path)
    end)

    it("keeps nothing of an error answer, and the body stays in res.body", function()
      local d = sinkdir()
      local sink <close> = core.multipart_sink(d)
      local res = assert(eng:request{ url = url("/status?code=404&body=nope"), multipart_sink = sink })
      assert.equal(404, res.status)
      assert.equal(0, #sink:parts())
      assert.is_false(sink:complete())
      assert.equal(0, entries(d))
    end)

    it("keeps nothing of a single part cut on every attempt", function()
      local d = sinkdir()
      local sink <close> = core.multipart_sink(d)
      local res, err = eng:request{ url = url("/reset?key=" .. key()), multipart_sink = sink,
        retry = { max_attempts = 2, base_delay_ms = 10, max_delay_ms = 20 } }
      assert.is_nil(res)
      assert.equal("transport", err.kind)
      assert.equal(0, #sink:parts())
      assert.equal(0, entries(d))
    end)

    it("refuses misuse: not a sink, with output_file, one transfer at a time, reading while it writes", function()
      local d = sinkdir()
      local sink = core.multipart_sink(d)
      assert.has_error(function() core.multipart_sink("") end)
      assert.has_error(function() core.multipart_sink("a\0b") end)
      assert.has_error(function() core.multipart_sink({}) end)
      assert.has_error(function() eng:submit{ url = url("/echo"), multipart_sink = {} } end,
        "request: field 'multipart_sink' must be an open core.multipart_sink")
      assert.has_error(function() eng:submit{ url = url("/echo"), multipart_sink = sink, output_file = d .. "/x" } end)
      local id = eng:submit{ url = url("/delay?ms=300"), multipart_sink = sink }
      assert.has_error(function() eng:submit{ url = url("/echo"), multipart_sink = sink } end)
      assert.has_error(function() sink:parts() end, "multipart sink: a transfer is still writing into it")
      eng:cancel(id)
      eng:step(0)
      assert.equal(0, #sink:parts())
      sink:close()
      assert.has_error(function() sink:parts() end, "multipart sink: closed")
      assert.has_error(function() eng:submit{ url = url("/echo"), multipart_sink = sink } end)
    end)

    it("survives its userdata being collected while the transfer runs", function()
      local d = sinkdir()
      eng:submit{ url = url("/bytes?n=300000"), multipart_sink = core.multipart_sink(d) }
      collectgarbage(); collectgarbage()
      local done = {}
      while #done == 0 do done = eng:step(1000) end
      assert.equal(200, done[1].res.status)
      eng:close()
      assert.equal(0, entries(d))   -- nobody took the part: removed with the last reference
    end)
  end)
end)
