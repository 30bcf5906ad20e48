--- The request layer between the Lua API and the C engine: one engine per client, Google's
-- JSON error bodies turned into `dicomgcs.Error`s, URL and query encoding.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.http
-- @local
local core = require "dicomgcs.core"
local errors = require "dicomgcs.errors"
local json = require "dicomgcs.json"

local http = {}

--- Percent-encode everything but RFC 3986 unreserved characters (GCS object names are one
-- path segment: `/` becomes `%2F`, space `%20`, `+` `%2B`).
-- This is the one URL-escaping function of the package. A value that is exactly "." or ".."
-- is encoded too (%2E), so that no client or server can collapse it as a dot-segment.
function http.escape(s)
  s = tostring(s)
  if s == "." or s == ".." then return (s:gsub("%.", "%%2E")) end
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

--- `value` when it can go into a header line (or a multipart part header): no CR, LF or NUL,
-- which would end the line and let the rest inject headers. Else nil, Error naming `source`
-- (the option, flag or variable the value came from).
function http.header_value(value, source)
  if type(value) ~= "string" then
    return nil, errors.input(("%s must be a string, not %s"):format(source, type(value)))
  end
  if value:find("[\r\n%z]") then
    local shown = value:sub(1, 80):gsub("%c", function(c) return ("\\x%02X"):format(c:byte()) end)
    return nil, errors.input(("%s contains a line break or NUL byte ('%s')"):format(source, shown),
      "remove the CR/LF from the value")
  end
  return value
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
-- `retry_budget` (seconds a request may spend waiting out quota errors, default 600),
-- `plain_http_host` (an emulator's "host:port" that may get a token over plain http off this
-- machine), and engine options (`concurrency`, `ca_file`, `proxy`, `connect_timeout`,
-- `idle_timeout`, `http2_uploads`). Raises on a quota project that cannot be a header.
function http.new(opts)
  if opts.quota_project ~= nil then assert(http.header_value(opts.quota_project, "quota_project")) end
  local eng_opts = {
    concurrency = opts.concurrency,   -- nil: the engine chooses (csrc/dg_pace.h)
    user_agent = "dicomgcs/" .. require("dicomgcs.version"),
    ca_file = opts.ca_file, proxy = opts.proxy,
    connect_timeout = opts.connect_timeout, idle_timeout = opts.idle_timeout,
    http2_uploads = opts.http2_uploads,
    token_provider = opts.token_provider,
  }
  local retry = opts.retry
  if opts.retry_budget then            -- seconds of quota waits per request (default 600)
    retry = {}
    for k, v in pairs(opts.retry or {}) do retry[k] = v end
    retry.quota_budget_ms = math.floor(opts.retry_budget * 1000)
  end
  local self = setmetatable({ quota_project = opts.quota_project, retry = retry,
    sends_token = opts.token_provider ~= nil, plain_http_host = opts.plain_http_host,
    -- auth_error: the credential provider's last Error; the engine only passes its message on
    auth_error = opts.auth_error }, Transport)
  self.engine = core.engine(eng_opts)
  return self
end

-- nil, Error when the request would carry our token over plain http to another machine.
local function refuse_plain_http(self, req)
  if not self.sends_token or req.auth == false or type(req.url) ~= "string" then return nil end
  local ok, err = require("dicomgcs.endpoints").check_token_url(req.url, "URL", self.plain_http_host)
  if not ok then return err end
  return nil
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

-- A failed transfer as an Error. A token refresh that failed: whether it is worth retrying (its
-- endpoint out of reach, or answering 5xx) is the credential provider's verdict, not the engine's.
local function transport_error(self, err, url, what)
  local e = errors.from_transport(err, url, what)
  local last = e.kind == "auth" and self and self.auth_error and self.auth_error()
  if last then e.retryable = last.retryable == true end
  return e
end

--- Run one request. 2xx → res; any other status or failure → nil, Error (`what` prefixes the
-- message, e.g. "get dataset projects/p/locations/l/datasets/d").
-- Inside a dicomgcs.runner job the request is handed to the runner's loop (the job yields
-- until it is done) instead of blocking the engine for it alone.
function Transport:request(req, what)
  local refused = refuse_plain_http(self, req)
  if refused then return nil, refused end
  local runner = package.loaded["dicomgcs.runner"]   -- not loaded: certainly not in a job
  local r = runner and runner.current()
  if r and r.engine == self.engine then return runner.io.request(req, what) end
  req = with_default_headers(self, req)
  if http.trace then http.trace("request", req) end
  local res, err = self.engine:request(req)
  if http.trace then http.trace("response", res, err) end
  if not res then return nil, transport_error(self, err, req.url, what) end
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
  local refused = refuse_plain_http(self, req)
  if refused then error(refused, 2) end
  req = with_default_headers(self, req)
  if http.trace then http.trace("request", req) end
  return self.engine:submit(req)
end

--- Convert one completion from `engine:step()` into res or nil, Error, as `request` does.
-- `replay` is the request's replay mode (its errors are classed with it); `transport` the
-- Transport that submitted it.
function http.completion(done, url, what, replay, transport)
  if http.trace then http.trace("response", done.res, done.err) end
  if not done.res then return nil, transport_error(transport, done.err, url, what) end
  if done.res.status >= 400 then return nil, errors.from_response(done.res, url, what, replay) end
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
