--- Shared pieces of the credential sources: endpoints, HTTP through `core.fetch`, OAuth
-- response parsing, error objects and redaction. Private to `dicomgcs.auth`.
--
-- Every function takes a context `ctx` built by `dicomgcs.auth` (see `common.context`):
-- `getenv`, `fetch`, `now` (wall clock, integer seconds), `mono` (monotonic seconds),
-- `scopes`, `explicit_scopes`, `emulator` (base URL or nil) and endpoint overrides.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.auth.common
-- @local
local errors = require "dicomgcs.errors"
local json = require "dicomgcs.json"
local timestamp = require "dicomgcs.timestamp"

local common = {}

common.CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
common.GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
common.IAM_ENDPOINT = "https://iamcredentials.googleapis.com"
common.STS_TOKEN_URL = "https://sts.googleapis.com/v1/token"
common.ADC_HELP = "https://cloud.google.com/docs/authentication/external/set-up-adc"
common.JWT_LIFETIME = 3600

-- Origins of Google's auth endpoints, and the path each maps to on the emulator.
local GOOGLE_ORIGINS = {
  ["https://oauth2.googleapis.com"] = true,
  ["https://www.googleapis.com"] = true,          -- old token_uri .../oauth2/v4/token
  ["https://accounts.google.com"] = true,         -- old token_uri .../o/oauth2/token
  ["https://iamcredentials.googleapis.com"] = true,
  ["https://sts.googleapis.com"] = true,
}

-- ---------------------------------------------------------------------------------------
-- Redaction: nothing secret may reach an error message, a log line or tostring.

local SECRET_PATTERNS = {
  "%-%-%-%-%-BEGIN[^%-]*%-%-%-%-%-.-%-%-%-%-%-END[^%-]*%-%-%-%-%-", -- PEM blocks
  "%-%-%-%-%-BEGIN[^%-]*%-%-%-%-%-.*",                              -- truncated PEM
  "ya29%.[%w%-_%.]+",                                                -- Google access tokens
  "1//[%w%-_%.]+",                                                   -- Google refresh tokens
  "eyJ[%w%-_]+%.[%w%-_]+%.?[%w%-_]*",                                -- JWTs / assertions
  "[Bb]earer%s+[%w%-_%.~+/]+=*",                                     -- Authorization values
}

local function plain_replace(s, needle, repl)
  local out, i = {}, 1
  while true do
    local a, b = s:find(needle, i, true)
    if not a then break end
    out[#out + 1] = s:sub(i, a - 1)
    out[#out + 1] = repl
    i = b + 1
  end
  out[#out + 1] = s:sub(i)
  return table.concat(out)
end

--- Remove secrets from `s`: every registered secret of `ctx` (tokens, refresh tokens,
-- client secrets, key lines) and anything shaped like a Google token, JWT or PEM block.
function common.redact(ctx, s)
  s = tostring(s)
  if ctx and ctx.secrets then
    for secret in pairs(ctx.secrets) do
      if #secret >= 6 and s:find(secret, 1, true) then s = plain_replace(s, secret, "[REDACTED]") end
    end
  end
  for _, p in ipairs(SECRET_PATTERNS) do s = s:gsub(p, "[REDACTED]") end
  return s
end

--- Remember a secret so that `redact` strips it (and so specs can check for it). Long-lived
-- secrets (keys, refresh tokens, client secrets) stay; `transient` ones (access tokens,
-- subject tokens) are kept for the 16 most recent only.
function common.secret(ctx, value, transient)
  if type(value) ~= "string" or #value < 6 or not ctx.secrets then return value end
  if ctx.secrets[value] then return value end
  ctx.secrets[value] = true
  if transient then
    local ring = ctx.transient_secrets
    ring[#ring + 1] = value
    if #ring > 16 then ctx.secrets[table.remove(ring, 1)] = nil end
  elseif value:find("BEGIN", 1, true) then
    -- Also each line of a PEM key, so a partial echo cannot leak either.
    for line in value:gmatch("[^\n]+") do
      if #line >= 16 and not line:find("-----", 1, true) then ctx.secrets[line] = true end
    end
  end
  return value
end

--- An auth Error naming the credential source that failed and what to do about it.
-- `fields` may add `reason` (OAuth error code), `http_status`, `url`, `retryable`.
function common.err(ctx, source, message, hint, fields)
  local e = { kind = "auth" }
  for k, v in pairs(fields or {}) do e[k] = v end
  e.source = source and common.redact(ctx, source) or nil
  e.message = common.redact(ctx, (source and (source .. ": ") or "") .. message)
  e.hint = hint and common.redact(ctx, hint) or nil
  if e.url then e.url = common.redact(ctx, e.url) end
  return errors.new(e)
end

-- ---------------------------------------------------------------------------------------
-- Endpoints

--- The emulator base URL ("http://HOST:PORT", or "https://…" for one started with --tls) from
-- DICOMGCS_EMULATOR_HOST, or nil; nil, Error when the variable is malformed or names another
-- machine (see dicomgcs.endpoints).
function common.emulator_base(getenv)
  local endpoints = require "dicomgcs.endpoints"
  local host, err = endpoints.emulator(nil, getenv)
  if not host then return nil, err end
  return endpoints.emulator_base(host)
end

--- In emulator mode, point a Google auth endpoint URL at the emulator (same path; the old
-- OAuth token URLs become /token). Any other URL, or outside emulator mode, is unchanged.
function common.rewrite(ctx, url)
  if not ctx.emulator or type(url) ~= "string" then return url end
  local origin, path = url:match("^(https?://[^/]+)(.*)$")
  if not origin or not GOOGLE_ORIGINS[origin:lower()] then return url end
  if path:match("^/o/oauth2/token") or path:match("^/oauth2/v%d/token") then path = "/token" end
  return ctx.emulator .. path
end

--- Token URL for grants whose file carries none (authorized_user; a service-account file
-- without token_uri): the `token_uri` option, else the emulator, else Google's.
function common.default_token_uri(ctx)
  return ctx.token_uri or (ctx.emulator and (ctx.emulator .. "/token")) or common.GOOGLE_TOKEN_URI
end

function common.iam_base(ctx)
  return ctx.iam_endpoint or ctx.emulator or common.IAM_ENDPOINT
end

-- ---------------------------------------------------------------------------------------
-- Encoding

-- One URL-escaping home: dicomgcs.http.
local function escape(s) return require("dicomgcs.http").escape(s) end
common.escape = escape

--- application/x-www-form-urlencoded body from an ordered list of {name, value} pairs
-- (pairs with a nil or empty value are left out, as Google's libraries do).
function common.form(fields)
  local parts = {}
  for _, f in ipairs(fields) do
    if f[2] ~= nil and f[2] ~= "" then parts[#parts + 1] = escape(f[1]) .. "=" .. escape(f[2]) end
  end
  return table.concat(parts, "&")
end

--- A JSON string literal (only `"`, `\` and control characters escaped; `/` stays as is).
function common.json_string(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(c)
    local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
                    ["\b"] = "\\b", ["\f"] = "\\f" }
    return named[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

--- A flat JSON object with keys in the given order; values are strings or integers.
function common.json_object(pairs_list)
  local parts = {}
  for _, kv in ipairs(pairs_list) do
    local k, v = kv[1], kv[2]
    if v ~= nil then
      local enc
      if math.type(v) == "integer" then enc = tostring(v)
      elseif type(v) == "number" then enc = ("%d"):format(math.floor(v))
      else enc = common.json_string(v) end
      parts[#parts + 1] = common.json_string(k) .. ":" .. enc
    end
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

--- Standard base64 with padding (HTTP Basic authentication).
function common.base64(s)
  local u = require("dicomgcs.core").base64url_encode(s):gsub("[-_]", { ["-"] = "+", ["_"] = "/" })
  return u .. ("="):rep((4 - #u % 4) % 4)
end

-- ---------------------------------------------------------------------------------------
-- Files and JSON

--- Read a whole file; nil, reason when it is missing or unreadable.
function common.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data, rerr = f:read("a")
  f:close()
  if not data then return nil, tostring(rerr or "cannot read") end
  return data
end

function common.decode_json(text)
  local v, err = json.decode(text, "credential file")
  if v == nil then return nil, err end
  return v
end

common.json = json

-- ---------------------------------------------------------------------------------------
-- HTTP

--- One request through the injected `ctx.fetch` (core.fetch). Never raises. Returns res, or
-- nil and an error table {kind=, message=} from the engine.
function common.fetch(ctx, req)
  if req.auth == nil then req.auth = false end
  -- A request carrying a secret (a form, a JSON body, an Authorization header) never goes over
  -- plain http to another machine, whatever a key file's token_uri or an option says.
  local carries = req.body ~= nil
  for _, h in ipairs(req.headers or {}) do
    if tostring(h):lower():match("^authorization:") then carries = true end
  end
  if carries then
    local allowed = ctx.emulator and ctx.emulator:gsub("^http://", "")
    local ok, err = require("dicomgcs.endpoints").check_token_url(req.url, "token endpoint", allowed)
    if not ok then return nil, { kind = "input", message = err.message .. " (" .. err.hint .. ")" } end
  end
  -- a credential is needed now: 429s here are waited out for seconds, not the 10-minute budget
  local retry = {}
  for k, v in pairs(req.retry or {}) do retry[k] = v end
  retry.quota_budget_ms = retry.quota_budget_ms or 10000
  retry.quota_max_delay_ms = retry.quota_max_delay_ms or 2000
  req.retry = retry
  local ok, res, err = pcall(ctx.fetch, req)
  if not ok then
    -- An engine without CURLOPT_NOPROXY support may refuse the field; retry without it once.
    if req.noproxy ~= nil then
      req.noproxy = nil
      ok, res, err = pcall(ctx.fetch, req)
    end
    if not ok then return nil, { kind = "transport", message = tostring(res) } end
  end
  if res == nil then
    if type(err) ~= "table" then err = { kind = "transport", message = tostring(err) } end
    return nil, err
  end
  return res
end

local function header(res, name)
  local h = res.headers or {}
  return h[name] or h[name:lower()]
end
common.header = header

--- Short, single-line, redacted text of a response body, for error messages.
function common.body_snippet(ctx, body)
  body = tostring(body or ""):sub(1, 300):gsub("%s+", " ")
  return common.redact(ctx, body)
end

-- Hints for the OAuth error codes Google's token endpoints return.
local function oauth_hint(code, desc, what)
  desc = (desc or ""):lower()
  if code == "invalid_grant" then
    if desc:find("expired or revoked", 1, true) or what == "refresh" then
      return "the refresh token has expired or was revoked: sign in again " ..
        "(`gcloud auth application-default login`) or use another credential", "revoked"
    elseif desc:find("short-lived", 1, true) or desc:find("timeframe", 1, true) or desc:find("iat", 1, true) then
      return "the JWT's iat/exp were rejected, usually because this machine's clock is wrong: " ..
        "sync it (NTP) and retry", "clock_skew"
    elseif desc:find("signature", 1, true) then
      return "the key was not accepted (deleted, disabled or rotated?): create a new key for the " ..
        "service account and point GOOGLE_APPLICATION_CREDENTIALS at it", "bad_key"
    elseif desc:find("audience", 1, true) then
      return "the JWT audience must be the token endpoint: check token_uri in the key file", "audience"
    elseif desc:find("account not found", 1, true) or desc:find("invalid_grant", 1, true) == nil and
      desc:find("not found", 1, true) then
      return "the service account does not exist (deleted?): check client_email in the key file", "not_found"
    end
    return "the credential was rejected: check that it is current and belongs to this project"
  elseif code == "invalid_scope" then
    return "the requested OAuth scopes are not allowed for this credential; use the default " ..
      "(cloud-platform) or check the `scopes` option"
  elseif code == "invalid_client" or code == "unauthorized_client" then
    return "the client id/secret in the credential file were rejected: download a fresh file"
  end
  return nil
end

--- Parse a token-endpoint response. `what` is "jwt", "refresh", "sts" or "mds" (for hints).
-- Returns {token=, expires_in=, refresh_token=?} or nil, Error.
function common.parse_token_response(ctx, source, url, res, what)
  local doc = res.body and res.body ~= "" and json.decode(res.body) or nil
  if res.status ~= 200 then
    local code = type(doc) == "table" and type(doc.error) == "string" and doc.error or nil
    if code then
      local desc = type(doc.error_description) == "string" and doc.error_description or nil
      local hint, cause = oauth_hint(code, desc, what)
      local msg = ("token endpoint %s refused the request: %s%s"):format(url, code,
        desc and (": " .. desc:sub(1, 300)) or "")
      return nil, common.err(ctx, source, msg, hint,
        { reason = code, cause = cause, http_status = res.status, url = url,
          retryable = code == "temporarily_unavailable" or code == "server_error" or code == "internal_failure" })
    end
    local ge = type(doc) == "table" and type(doc.error) == "table" and doc.error or nil
    local msg
    if ge then
      msg = ("%s returned HTTP %d %s: %s"):format(url, res.status, tostring(ge.status or ""),
        tostring(ge.message or ""):sub(1, 300))
    else
      msg = ("%s returned HTTP %d: %s"):format(url, res.status, common.body_snippet(ctx, res.body))
    end
    local hint
    if res.status == 403 then
      hint = "the caller lacks permission: to impersonate, grant it roles/iam.serviceAccountTokenCreator on the target"
    elseif res.status == 401 then
      hint = "the source credential was rejected: check it is valid"
    elseif res.status == 404 then
      hint = "check the endpoint URL and the service-account email"
    end
    return nil, common.err(ctx, source, msg, hint,
      { http_status = res.status, status = ge and ge.status or nil, url = url,
        retryable = errors.retryable(errors.class{ http_status = res.status }) })
  end
  if type(doc) ~= "table" then
    return nil, common.err(ctx, source, ("%s returned a response that is not JSON"):format(url), nil, { url = url })
  end
  local token = doc.access_token or doc.accessToken
  if type(token) ~= "string" or token == "" then
    return nil, common.err(ctx, source, ("%s returned no access token"):format(url), nil, { url = url })
  end
  common.secret(ctx, token, true)
  local expires_in = doc.expires_in
  if type(expires_in) == "string" then expires_in = tonumber(expires_in) end
  if doc.expireTime then
    local t = timestamp.parse(doc.expireTime)
    if not t then
      return nil, common.err(ctx, source, ("%s returned an unreadable expireTime"):format(url), nil, { url = url })
    end
    expires_in = t - ctx.now()
  end
  if type(expires_in) ~= "number" then expires_in = nil end
  if type(doc.token_type) == "string" and doc.token_type:lower() ~= "bearer" then
    return nil, common.err(ctx, source, ("%s returned token_type %q, not Bearer"):format(url, doc.token_type:sub(1, 40)))
  end
  if type(doc.refresh_token) == "string" then common.secret(ctx, doc.refresh_token) end
  return { token = token, expires_in = expires_in and math.floor(expires_in) or nil,
           refresh_token = type(doc.refresh_token) == "string" and doc.refresh_token or nil }
end

--- POST a form to a token endpoint, with Google's retry policy for token endpoints
-- (3 attempts on 408/5xx, 1 s then 2 s; 429s waited out for at most 10 s: a token is needed
-- now, not after a 10-minute quota budget). Returns {token=, expires_in=} or nil, Error.
function common.post_token_form(ctx, source, url, fields, what, extra_headers)
  local headers = { "Content-Type: application/x-www-form-urlencoded", "Accept: application/json" }
  for _, h in ipairs(extra_headers or {}) do headers[#headers + 1] = h end
  local res, err = common.fetch(ctx, {
    method = "POST", url = url, headers = headers, body = common.form(fields),
    timeout = ctx.timeout, retry = { max_attempts = 3, base_delay_ms = 1000, max_delay_ms = 2000 },
  })
  if not res then
    return nil, common.transport_err(ctx, source, url, err)
  end
  return common.parse_token_response(ctx, source, url, res, what)
end

--- An auth Error from an engine transport failure.
function common.transport_err(ctx, source, url, err)
  local msg = ("cannot reach %s: %s"):format(url, tostring(err and err.message or "request failed"))
  local hint
  if err and err.kind == "timeout" then
    hint = "the endpoint did not answer in time; check the network and proxy settings"
  else
    hint = "check the network, proxy settings and the endpoint URL" ..
      (ctx.emulator and " (is the emulator running? emulator/start)" or "")
  end
  return common.err(ctx, source, msg, hint, { url = url, curl_code = err and err.curl_code,
    retryable = errors.retryable(errors.class(err or { kind = "transport" })) })
end

return common
