--- The request layer between the Lua API and the C engine: one engine per client, Google's
-- JSON error bodies turned into `dicomgcs.Error`s, URL and query encoding.
-- @module dicomgcs.http
local core = require "dicomgcs.core"
local errors = require "dicomgcs.errors"
local json = require "dicomgcs.json"

local http = {}

--- Percent-encode everything but RFC 3986 unreserved characters (GCS object names are one
-- path segment: `/` becomes `%2F`, space `%20`, `+` `%2B`).
function http.escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

--- Encode a query table; keys are sorted so URLs are reproducible. Array values repeat the key.
function http.query(params)
  if not params then return "" end
  local keys = {}
  for k, v in pairs(params) do if v ~= nil and v ~= false then keys[#keys + 1] = k end end
  if #keys == 0 then return "" end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = params[k]
    if type(v) == "table" then
      for _, x in ipairs(v) do parts[#parts + 1] = http.escape(k) .. "=" .. http.escape(x) end
    else
      parts[#parts + 1] = http.escape(k) .. "=" .. http.escape(v)
    end
  end
  return "?" .. table.concat(parts, "&")
end

local Transport = {}
Transport.__index = Transport

-- An observer for every request and its outcome.
-- The CLI's log-http flag sets it (it masks
-- secrets): `http.trace("request", req)` before a request, `http.trace("response", res, err)` after.
http.trace = nil

--- Make a transport. `opts`: `token` (a fixed access token), `token_provider` (function(force)
-- -> token, expires_in), `quota_project`, `retry` (the engine's per-request policy),
-- `retry_budget` (seconds a request may spend waiting out quota errors, default 600), and engine
-- options (`concurrency`, `ca_file`, `proxy`, `connect_timeout`, `idle_timeout`).
function http.new(opts)
  local eng_opts = {
    concurrency = opts.concurrency or 16,
    user_agent = "dicomgcs/" .. require("dicomgcs.version"),
    ca_file = opts.ca_file, proxy = opts.proxy,
    connect_timeout = opts.connect_timeout, idle_timeout = opts.idle_timeout,
    token_provider = opts.token_provider,
  }
  local retry = opts.retry
  if opts.retry_budget then            -- seconds of quota waits per request (default 600)
    retry = {}
    for k, v in pairs(opts.retry or {}) do retry[k] = v end
    retry.quota_budget_ms = math.floor(opts.retry_budget * 1000)
  end
  local self = setmetatable({ quota_project = opts.quota_project, retry = retry }, Transport)
  self.engine = core.engine(eng_opts)
  return self
end

local function with_default_headers(self, req)
  if self.quota_project and req.auth ~= false then
    local h = {}
    for i, v in ipairs(req.headers or {}) do h[i] = v end
    h[#h + 1] = "x-goog-user-project: " .. self.quota_project
    req.headers = h
  end
  if req.retry == nil then req.retry = self.retry end
  return req
end

--- Run one request. 2xx → res; any other status or failure → nil, Error (`what` prefixes the
-- message, e.g. "get dataset projects/p/locations/l/datasets/d").
function Transport:request(req, what)
  req = with_default_headers(self, req)
  if http.trace then http.trace("request", req) end
  local res, err = self.engine:request(req)
  if http.trace then http.trace("response", res, err) end
  if not res then return nil, errors.from_transport(err, req.url, what) end
  if res.status >= 400 then return nil, errors.from_response(res, req.url, what, req.replay) end
  return res
end

--- A JSON call: `body` (table or nil) is encoded, the response decoded. `replay` =
-- "never-ambiguous" for a request that must not be resent once it may have run (see
-- docs/CONTRACTS.md "Which layer retries what"). Returns decoded, res or nil, Error.
function Transport:json(method, url, body, what, replay)
  local req = { method = method, url = url, headers = { "Accept: application/json" }, replay = replay }
  if body ~= nil then
    req.body = json.encode(body)
    req.headers[2] = "Content-Type: application/json; charset=utf-8"
  end
  local res, err = self:request(req, what)
  if not res then return nil, err end
  if not res.body or res.body == "" then return {}, res end
  local doc, jerr = json.decode(res.body, what)
  if doc == nil then
    return nil, errors.new{ kind = "json", message = jerr, url = url, http_status = res.status }
  end
  return doc, res
end

--- Submit without waiting (for parallel work): returns the engine's id.
function Transport:submit(req)
  req = with_default_headers(self, req)
  if http.trace then http.trace("request", req) end
  return self.engine:submit(req)
end

--- Convert one completion from `engine:step()` into res or nil, Error, as `request` does.
function http.completion(done, url, what)
  if http.trace then http.trace("response", done.res, done.err) end
  if not done.res then return nil, errors.from_transport(done.err, url, what) end
  if done.res.status >= 400 then return nil, errors.from_response(done.res, url, what) end
  return done.res
end

--- The engine's quota state, for progress lines and operation events: nil when no quota wait
-- is under way, else { wait = seconds left, waits = quota waits so far }.
function Transport:throttle()
  local s = self.engine:stats()
  if s.throttle_wait <= 0 then return nil end
  return { wait = s.throttle_wait, waits = s.quota_waits }
end

function Transport:close() if self.engine then self.engine:close() end end

return http
