--- A stand-in for `core.fetch` built on LuaSocket, used by spec/auth_spec.lua only while the
-- C engine has no `fetch` yet. Same request/response shape (docs/CONTRACTS.md): headers are a
-- list of "Name: value", response header names are lower-case, errors are {kind=, message=}.
-- Honours `retry.max_attempts` on transport errors and 408/429/5xx, and `timeout.total`.
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"

local RETRY = { [408] = true, [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }

local calls = 0

local function once(req)
  local headers = {}
  for _, h in ipairs(req.headers or {}) do
    local k, v = h:match("^([^:]+):%s*(.*)$")
    headers[k:lower()] = v
  end
  if req.body then headers["content-length"] = tostring(#req.body) end
  local out = {}
  http.TIMEOUT = (req.timeout and (req.timeout.total or req.timeout.connect)) or 30
  local ok, code, rh = http.request{
    url = req.url, method = req.method or "GET", headers = headers,
    source = req.body and ltn12.source.string(req.body) or nil,
    sink = ltn12.sink.table(out), redirect = false,
  }
  if not ok then
    local kind = tostring(code):find("timeout") and "timeout" or "transport"
    return nil, { kind = kind, message = tostring(code), curl_code = (tostring(code):find("refused") and 7 or nil) }
  end
  local lh = {}
  for k, v in pairs(rh or {}) do lh[k:lower()] = v end
  return { status = code, headers = lh, body = table.concat(out), attempts = 1 }
end

local function fetch(req)
  calls = calls + 1
  local attempts = (req.retry and req.retry.max_attempts) or 1
  local res, err
  for i = 1, attempts do
    res, err = once(req)
    if res and not RETRY[res.status] then break end
    if i < attempts then socket.sleep(math.min(0.2 * i, 1)) end
  end
  if res then res.attempts = attempts end
  return res, err
end

return { fetch = fetch, calls = function() return calls end }
