-- dicomgcs.errors as a pure module (no server): Google's error shapes, the one retry
-- classification (core.classify, through errors.class), hints, and the readable line.
local errors = require "dicomgcs.errors"
local core = require "dicomgcs.core"
local json = require "dicomgcs.json"

local function res(status, body) return { status = status, body = body and json.encode(body) or "", attempts = 1 } end

describe("dicomgcs.errors", function()
  it("requires kind and message, and prints one line with status and hint", function()
    assert.has_error(function() errors.new{ kind = "http" } end)
    local e = errors.new{ kind = "http", message = "boom", http_status = 404, status = "NOT_FOUND", hint = "look" }
    assert.is_true(errors.is(e))
    assert.is_false(errors.is({}))
    assert.are.equal("http: boom [HTTP 404 NOT_FOUND] — look", tostring(e))
    assert.are.equal("operation: x [CANCELLED]", tostring(errors.new{ kind = "operation", message = "x", status = "CANCELLED" }))
  end)

  describe("from_response", function()
    it("reads Google's JSON error (Healthcare, Logging)", function()
      local e = errors.from_response(res(404, { error = { code = 404, message = "no such store", status = "NOT_FOUND" } }),
        "http://h/x", "get store")
      assert.are.equal("http", e.kind)
      assert.are.equal("get store: no such store", e.message)
      assert.are.equal("NOT_FOUND", e.status)
      assert.are.equal("fatal", e.class)
      assert.is_false(e.retryable)
      assert.truthy(e.hint:find("names", 1, true))
    end)

    it("reads Cloud Storage's errors[].reason", function()
      local e = errors.from_response(res(429, { error = { code = 429, message = "slow down",
        errors = { { domain = "global", reason = "rateLimitExceeded", message = "slow down" } } } }))
      assert.are.equal("rateLimitExceeded", e.reason)
      assert.are.equal("quota", e.class)
      assert.is_true(e.retryable)
    end)

    it("keeps a short snippet of a body that is not JSON", function()
      local e = errors.from_response({ status = 502, body = "<html>\n  Bad   gateway</html>" .. ("x"):rep(500) })
      assert.truthy(e.message:find("^HTTP 502: <html> Bad gateway</html>"))
      assert.is_true(#e.message < 230)
      assert.are.equal("retry", e.class)
    end)

    it("classifies 500/502/504 as ambiguous for a never-ambiguous request, 429/503 still retryable", function()
      for _, s in ipairs{ 500, 502, 504 } do
        local e = errors.from_response(res(s, {}), nil, nil, "never-ambiguous")
        assert.are.equal("ambiguous", e.class)
        assert.is_false(e.retryable)
      end
      assert.are.equal("quota", errors.from_response(res(429, {}), nil, nil, "never-ambiguous").class)
      assert.are.equal("throttle", errors.from_response(res(503, {}), nil, nil, "never-ambiguous").class)
    end)
  end)

  describe("from_transport", function()
    it("gives the emulator hint on connection refused, retryable", function()
      local e = errors.from_transport({ kind = "transport", message = "Couldn't connect", curl_code = 7, attempts = 3 },
        "http://127.0.0.1:1/x", "list")
      assert.are.equal("list: Couldn't connect", e.message)
      assert.are.equal("retry", e.class)
      assert.truthy(e.hint:find("emulator/start", 1, true))
      assert.are.equal(3, e.attempts)
    end)

    it("marks an engine error flagged ambiguous, and never retries TLS verification or io", function()
      assert.are.equal("ambiguous", errors.from_transport({ kind = "transport", message = "m", curl_code = 52,
        ambiguous = true }).class)
      local tls = errors.from_transport({ kind = "transport", message = "cert", curl_code = 60 })
      assert.are.equal("fatal", tls.class)
      assert.is_false(tls.retryable)
      assert.are.equal("fatal", errors.from_transport({ kind = "io", message = "disk full" }).class)
      assert.are.equal("retry", errors.from_transport({ kind = "timeout", message = "idle", curl_code = 28 }).class)
    end)

    it("returns an Error unchanged", function()
      local e = errors.input("bad")
      assert.are.equal(e, errors.from_transport(e))
    end)
  end)

  describe("class", function()
    it("maps operation errors (google.rpc codes) through the same classification", function()
      assert.are.equal("quota", errors.class{ kind = "operation", code = 8 })
      assert.are.equal("throttle", errors.class{ kind = "operation", code = 14 })
      assert.are.equal("retry", errors.class{ kind = "operation", code = 4 })
      assert.are.equal("retry", errors.class{ kind = "operation", code = 10 })
      assert.are.equal("fatal", errors.class{ kind = "operation", code = 3 })
      assert.are.equal("retry", errors.class{ kind = "http", http_status = 409, status = "ABORTED" })
      assert.are.equal("fatal", errors.class{ kind = "http", http_status = 409, status = "ALREADY_EXISTS" })
      assert.are.equal("fatal", errors.class("not an error"))
      assert.is_true(errors.retryable("quota"))
      assert.is_false(errors.retryable("ambiguous"))
    end)

    it("is core.classify, which checks its arguments", function()
      assert.are.equal("ok", core.classify{ status = 200 })
      assert.are.equal("retry", core.classify{ curl_code = 7, sent = false, replay = "never-ambiguous" })
      assert.are.equal("retry", core.classify{ curl_code = 56, sent = false, replay = "never-ambiguous" })
      assert.are.equal("ambiguous", core.classify{ curl_code = 56, sent = true, replay = "never-ambiguous" })
      assert.has_error(function() core.classify{ status = 500, replay = "maybe" } end)
      assert.has_error(function() core.classify{ status = "500" } end)
      local d = core.backoff("quota", 7)
      assert.is_true(d >= 0 and d <= 64000)
      d = core.backoff("retry", 3)
      assert.is_true(d >= 500 and d <= 1000)
    end)
  end)

  it("token requests wait out 429s for seconds, not the 10-minute quota budget", function()
    local common = require "dicomgcs.auth.common"
    local seen
    local ctx = { fetch = function(req) seen = req; return { status = 200, headers = {}, body = "{}" } end }
    assert(common.fetch(ctx, { url = "http://h/token", retry = { max_attempts = 3 } }))
    assert.are.equal(3, seen.retry.max_attempts)
    assert.are.equal(10000, seen.retry.quota_budget_ms)
    assert(common.fetch(ctx, { url = "http://h/token" }))
    assert.are.equal(10000, seen.retry.quota_budget_ms)
    local e = select(2, common.fetch({ fetch = function() return nil, { kind = "transport", curl_code = 60,
      message = "cert" } end }, { url = "http://h/t" }))
    assert.are.equal(60, e.curl_code)
  end)
end)
