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

--- Make a transport. `opts`: `token` (a fixed access token), `token_provider` (function(force)
-- -> token, expires_in), `quota_project`, and engine options (`concurrency`, `ca_file`, `proxy`,
-- `connect_timeout`, `idle_timeout`).
function http.new(opts)
  local eng_opts = {
    concurrency = opts.concurrency,   -- nil: the engine chooses (csrc/dg_pace.h)
    user_agent = "dicomgcs/" .. require("dicomgcs.version"),
    ca_file = opts.ca_file, proxy = opts.proxy,
    connect_timeout = opts.connect_timeout, idle_timeout = opts.idle_timeout,
    token_provider = opts.token_provider,
  }
  local self = setmetatable({ quota_project = opts.quota_project, retry = opts.retry }, Transport)
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
  local res, err = self.engine:request(with_default_headers(self, req))
  if not res then return nil, errors.from_transport(err, req.url, what) end
  if res.status >= 400 then return nil, errors.from_response(res, req.url, what) end
  return res
end

--- A JSON call: `body` (table or nil) is encoded, the response decoded.
-- Returns decoded, res or nil, Error.
function Transport:json(method, url, body, what)
  local req = { method = method, url = url, headers = { "Accept: application/json" } }
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
  return self.engine:submit(with_default_headers(self, req))
end

--- Convert one completion from `engine:step()` into res or nil, Error, as `request` does.
function http.completion(done, url, what)
  if not done.res then return nil, errors.from_transport(done.err, url, what) end
  if done.res.status >= 400 then return nil, errors.from_response(done.res, url, what) end
  return done.res
end

function Transport:close() if self.engine then self.engine:close() end end

return http
