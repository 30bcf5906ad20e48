-- dicomgcs.http's pure helpers: URL escaping, query strings, and turning engine completions into
-- results or Errors (Google's JSON error bodies included); no server needed.
local http = require "dicomgcs.http"

describe("http.escape", function()
  it("keeps only RFC 3986 unreserved characters", function()
    assert.are.equal("AZaz09-._~", http.escape("AZaz09-._~"))
  end)

  it("escapes an object name as one path segment", function()
    assert.are.equal("a%2Fb%20c%2Bd", http.escape("a/b c+d"))
    assert.are.equal("..%2F..%2Fetc%2Fpasswd", http.escape("../../etc/passwd"))
    assert.are.equal("%3F%23%25%26%3D", http.escape("?#%&="))
  end)

  it("escapes control bytes, NUL and UTF-8 byte by byte, upper-case hex", function()
    assert.are.equal("%00%0D%0A%7F", http.escape("\0\r\n\127"))
    assert.are.equal("%C3%A9", http.escape("é"))
    assert.are.equal("%FF", http.escape("\255"))
  end)

  it("escapes every one of the 256 bytes but the 66 unreserved, and decodes back", function()
    local all = {}
    for b = 0, 255 do all[#all + 1] = string.char(b) end
    local e = http.escape(table.concat(all))
    local kept = select(2, e:gsub("[%w%-%._~]", "")) - select(2, e:gsub("%%%x%x", "")) * 2
    assert.are.equal(66, kept)
    assert.are.equal(table.concat(all), (e:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)))
  end)

  it("turns numbers into text", function()
    assert.are.equal("42", http.escape(42))
  end)
end)

describe("http.query", function()
  it("is empty for nothing", function()
    assert.are.equal("", http.query(nil))
    assert.are.equal("", http.query({}))
    assert.are.equal("", http.query({ a = false }))
  end)

  it("sorts keys, so URLs are reproducible, and drops false", function()
    assert.are.equal("?a=1&b=2&c=x%20y", http.query({ c = "x y", b = 2, a = 1, d = false }))
  end)

  it("repeats the key for array values", function()
    assert.are.equal("?includefield=00100010&includefield=00080020&limit=5",
      http.query({ includefield = { "00100010", "00080020" }, limit = 5 }))
  end)

  it("escapes hostile keys and values so they cannot add parameters", function()
    local q = http.query({ ["a&b=c"] = "1&admin=true#x", prefix = "../x?y" })
    assert.are.equal("?a%26b%3Dc=1%26admin%3Dtrue%23x&prefix=..%2Fx%3Fy", q)
    assert.are.equal(1, select(2, q:gsub("&", "")))
  end)

  it("writes true as \"true\"", function()
    assert.are.equal("?fields=true", http.query({ fields = true }))
  end)
end)

describe("http.completion", function()
  it("gives a 2xx response back as it is", function()
    local res = { status = 200, body = "ok", headers = {} }
    assert.are.equal(res, http.completion({ id = 1, res = res }, "http://x/", "get x"))
  end)

  it("turns a status >= 400 into an http Error with Google's status and message", function()
    local body = '{"error":{"code":404,"message":"Dataset not found","status":"NOT_FOUND"}}'
    local r, err = http.completion({ res = { status = 404, body = body, headers = {} } }, "http://x/d", "get dataset d")
    assert.is_nil(r)
    assert.are.equal("http", err.kind)
    assert.are.equal(404, err.http_status)
    assert.are.equal("NOT_FOUND", err.status)
    assert.are.equal("get dataset d: Dataset not found", err.message)
    assert.are.equal("http://x/d", err.url)
    assert.is_false(err.retryable)
  end)

  it("reads Cloud Storage's error reason", function()
    local body = '{"error":{"code":403,"message":"no","errors":[{"reason":"forbidden"}]}}'
    local _, err = http.completion({ res = { status = 403, body = body, headers = {} } }, "u")
    assert.are.equal("forbidden", err.reason)
    assert.are.equal("forbidden", err.status)
  end)

  it("classifies 429 and 503 as worth another try, 400 as not", function()
    local _, e429 = http.completion({ res = { status = 429, body = "", headers = {} } }, "u")
    local _, e503 = http.completion({ res = { status = 503, body = "", headers = {} } }, "u")
    local _, e400 = http.completion({ res = { status = 400, body = "", headers = {} } }, "u")
    assert.is_true(e429.retryable)
    assert.is_true(e503.retryable)
    assert.is_false(e400.retryable)
  end)

  it("survives hostile error bodies: not JSON, wrong types, huge", function()
    for _, body in ipairs{ "<html>Bad Gateway</html>", '{"error":"string"}', '{"error":{"message":7,"status":[]}}',
                           '{"error":{"errors":"x"}}', '[1,2]', ("x"):rep(1000000), "\0\255" } do
      local _, err = http.completion({ res = { status = 502, body = body, headers = {} } }, "u", "op")
      assert.are.equal("http", err.kind)
      assert.are.equal(502, err.http_status)
      assert.is_string(err.message)
      assert.is_true(#err.message < 300, "message of " .. #err.message .. " bytes")
      assert.truthy(err.message:find("^op: "))
    end
  end)

  it("wraps an engine failure as an Error naming the URL and the call", function()
    local r, err = http.completion({ err = { kind = "transport", message = "Couldn't connect", curl_code = 7 } },
      "http://127.0.0.1:9/x", "list buckets")
    assert.is_nil(r)
    assert.are.equal("transport", err.kind)
    assert.are.equal("list buckets: Couldn't connect", err.message)
    assert.are.equal("http://127.0.0.1:9/x", err.url)
    assert.truthy(err.hint:find("127.0.0.1:9", 1, true))
  end)

  it("reports completions to http.trace", function()
    local seen = {}
    finally(function() http.trace = nil end)
    http.trace = function(what, res, err) seen[#seen + 1] = { what, res, err } end
    local res = { status = 204, headers = {} }
    http.completion({ res = res }, "u")
    assert.are.equal(1, #seen)
    assert.are.equal("response", seen[1][1])
    assert.are.equal(res, seen[1][2])
  end)
end)
