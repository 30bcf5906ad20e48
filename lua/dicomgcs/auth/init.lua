--- Application Default Credentials, found and refreshed the way Google's client libraries do.
--
-- Search order (the first source present wins; a source that is present but broken is an
-- error, never a silent fall-through):
--
-- 1. the `credentials` option: an access token, a credential-file path, or a decoded
--    credential table; then an access token from the environment, in this order:
--    `DICOMGCS_ACCESS_TOKEN`, `GOOGLE_OAUTH_ACCESS_TOKEN` (the Terraform provider's),
--    `DICOMGCS_ACCESS_TOKEN_FILE`, `CLOUDSDK_AUTH_ACCESS_TOKEN_FILE` (gcloud's
--    `auth/access_token_file` property; the file is re-read on every refresh);
-- 2. `GOOGLE_APPLICATION_CREDENTIALS`: a `service_account`, `authorized_user`,
--    `impersonated_service_account` or `external_account` (file/url source) JSON file;
-- 3. gcloud's file: `$CLOUDSDK_CONFIG/application_default_credentials.json`, else
--    `~/.config/gcloud/application_default_credentials.json` (`%APPDATA%\gcloud\` on Windows);
-- 4. the metadata server, if a short probe finds one (see `dicomgcs.auth.metadata`).
--
-- Tokens are cached in the C core's token cache (csrc/dg_token.h), the same one the engine
-- uses, and refreshed min(225 s, half the token's lifetime) before expiry: one rule everywhere.
--
-- Emulator mode (`DICOMGCS_EMULATOR_HOST`) reads no ambient credential: none of the token
-- variables, `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's file or the metadata server. It uses
-- the `credentials` option, else the file named by `DICOMGCS_EMULATOR_CREDENTIALS`, else a
-- fixed placeholder token, as Google's own libraries send no credentials to an emulator.
-- Google's OAuth, IAM Credentials, STS and metadata endpoints are then replaced by the
-- emulator; a `token_uri` pointing elsewhere in a key file is used as given, but nothing
-- secret is ever sent over plain http to another machine.
--
-- Nothing secret (token, key, refresh token, client secret, assertion) ever appears in an
-- error, in `tostring(provider)` or in `describe()`.
-- @module dicomgcs.auth
local common = require "dicomgcs.auth.common"
local cache = require "dicomgcs.auth.cache"
local files = require "dicomgcs.auth.files"
local static = require "dicomgcs.auth.static"
local metadata = require "dicomgcs.auth.metadata"
local impersonated = require "dicomgcs.auth.impersonated"
local options = require "dicomgcs.options"

local auth = {}

--- Seconds before expiry a token is refreshed (at most half its lifetime); set in C.
auth.REFRESH_MARGIN = require("dicomgcs.core").token_margin(1e9)
auth.DEFAULT_SCOPES = { common.CLOUD_PLATFORM }
--- Access-token environment variables, in the order they are honoured.
auth.TOKEN_ENV = { "DICOMGCS_ACCESS_TOKEN", "GOOGLE_OAUTH_ACCESS_TOKEN" }
auth.TOKEN_FILE_ENV = { "DICOMGCS_ACCESS_TOKEN_FILE", "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE" }

local KNOWN = {
  credentials = true, scopes = true, quota_project = true,
  token_uri = true, iam_endpoint = true, metadata_host = true, metadata = true,
  self_signed_jwt = true, impersonate_service_account = true, delegates = true,
  timeout = true, getenv = true, fetch = true, clock = true, monotonic = true,
  emulator_adc = true,
}

--- The token sent to an emulator when no credentials are given for it.
auth.EMULATOR_PLACEHOLDER = "dicomgcs-emulator-placeholder-token"

local Provider = { __name = "dicomgcs.auth.Provider" }
Provider.__index = Provider

function Provider:__tostring()
  return "dicomgcs.auth.Provider: " .. self:describe()
end

--- The current access token, refreshed when needed (`force`: after a 401).
-- @treturn string token
-- @treturn integer seconds until it expires
-- @return[2] nil
-- @treturn[2] dicomgcs.Error kind "auth", naming the failing source, with a hint
function Provider:token(force, rejected)
  return self._cache:get(force and true or false, rejected)
end

--- The function the engine calls: `function(force, rejected) -> token, expires_in | nil, message`.
-- `expires_in` is the true remaining lifetime in seconds (>= 1); the provider applies its own
-- refresh margin, so calling it before every request is cheap. `rejected` (optional) is the
-- token a 401 refused. The message is a string (the full Error is `provider:last_error()`).
function Provider:token_provider()
  if not self._fn then
    self._fn = function(force, rejected)
      if type(rejected) ~= "string" then rejected = nil end
      local tok, exp = self._cache:get(force and true or false, rejected)
      if not tok then return nil, tostring(exp) end
      return tok, exp
    end
  end
  return self._fn
end

--- The Error of the last failed refresh, or nil.
function Provider:last_error() return self._cache.last_error end

--- One line saying which source was chosen (never a secret).
function Provider:describe()
  local s = self._cred.description
  if self._quota then s = s .. "; quota project " .. self._quota end
  return common.redact(self._ctx, s)
end

--- Short name of the source: "option", "env:NAME", "GOOGLE_APPLICATION_CREDENTIALS",
-- "gcloud", "metadata".
function Provider:source() return self._source end

--- Kind of credential: access_token, service_account, authorized_user, impersonated,
-- external_account or metadata.
function Provider:kind() return self._cred.kind end

--- The quota project to send as `x-goog-user-project`, or nil.
function Provider:quota_project() return self._quota end

--- Headers the client should add to API requests (a list of "Name: value").
function Provider:headers()
  local h = {}
  if self._quota then h[#h + 1] = "x-goog-user-project: " .. self._quota end
  return h
end

--- The project id the credential names (key file `project_id`), or nil. With
-- `{metadata=true}` the metadata server is asked when the source is the metadata server.
function Provider:project_id(opts)
  if self._cred.project_id then return self._cred.project_id end
  if opts and opts.metadata and self._cred.kind == "metadata" then return metadata.project_id(self._ctx) end
  return nil
end

--- Service-account email, when the credential has one.
function Provider:email() return self._cred.email end

--- true when the token is the emulator placeholder (nothing real is sent).
function Provider:placeholder() return self._cred.placeholder == true end

local function getenv_of(opts)
  local g = opts.getenv
  if g == nil then return os.getenv end
  if type(g) == "table" then return function(k) return g[k] end end
  return g
end

local function nonempty(v) return v ~= nil and v ~= "" and v or nil end

local function make_context(opts)
  local getenv = getenv_of(opts)
  local scopes = opts.scopes
  if type(scopes) == "string" then scopes = { scopes } end
  if scopes ~= nil and (type(scopes) ~= "table" or #scopes == 0) then
    error("auth.default: scopes must be a non-empty list of scope URLs", 3)
  end
  local core = require "dicomgcs.core"
  local ctx = {
    getenv = function(k) return nonempty(getenv(k)) end,
    fetch = opts.fetch or core.fetch,
    now = opts.clock or os.time,
    mono = opts.monotonic or core.monotime or os.time,
    scopes = scopes or auth.DEFAULT_SCOPES,
    explicit_scopes = scopes ~= nil,
    token_uri = opts.token_uri, iam_endpoint = opts.iam_endpoint, metadata_host = opts.metadata_host,
    self_signed_jwt = opts.self_signed_jwt,
    timeout = opts.timeout or { connect = 10, total = 60 },
    secrets = {}, transient_secrets = {},
  }
  local emu_err
  ctx.emulator, emu_err = common.emulator_base(ctx.getenv)
  if emu_err then return nil, emu_err end
  if ctx.fetch == nil then
    error("auth.default: dicomgcs.core has no fetch (the HTTP engine is not built in)", 3)
  end
  return ctx
end

local function make_cache(cred, ctx) return cache.new(ctx, cred) end

local function looks_like_path(s)
  return s:find("[/\\]") ~= nil or s:match("%.json$") ~= nil
end

local function well_known_file(ctx)
  local dir = ctx.getenv("CLOUDSDK_CONFIG")
  if not dir then
    if package.config:sub(1, 1) == "\\" then
      local appdata = ctx.getenv("APPDATA")
      dir = appdata and (appdata .. "\\gcloud") or ((ctx.getenv("SystemDrive") or "C:") .. "\\gcloud")
    else
      local home = ctx.getenv("HOME")
      if not home then return nil end
      dir = home .. "/.config/gcloud"
    end
  end
  local sep = package.config:sub(1, 1)
  return dir .. sep .. "application_default_credentials.json"
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function tag(source, cred, err)
  if not cred then return nil, err end
  return cred, source
end

-- The credential and the short source name, or nil, Error.
local function find(ctx, opts)
  local c = opts.credentials
  if c ~= nil then
    if type(c) == "table" then
      if type(c.access_token) == "string" then
        return tag("option", static.new(ctx, "the credentials option", c.access_token))
      end
      return tag("option", files.from_info(ctx, c, "the credentials option (table)", make_cache))
    elseif type(c) == "string" then
      if looks_like_path(c) then
        return tag("option", files.load(ctx, c, "credential file " .. c .. " (credentials option)", make_cache))
      end
      return tag("option", static.new(ctx, "the credentials option", c))
    end
    error("auth.default: credentials must be an access token, a file path or a credential table", 3)
  end
  if ctx.emulator and not opts.emulator_adc then
    local f = ctx.getenv("DICOMGCS_EMULATOR_CREDENTIALS")
    if f then
      return tag("DICOMGCS_EMULATOR_CREDENTIALS", files.load(ctx, f, "DICOMGCS_EMULATOR_CREDENTIALS=" .. f, make_cache))
    end
    local cred = assert(static.new(ctx, "emulator", auth.EMULATOR_PLACEHOLDER))
    cred.description = "a placeholder token for the emulator (no credentials read; " ..
      "DICOMGCS_EMULATOR_CREDENTIALS=FILE sends a key's tokens instead)"
    cred.placeholder = true
    return cred, "emulator"
  end
  for _, name in ipairs(auth.TOKEN_ENV) do
    local v = ctx.getenv(name)
    if v then return tag("env:" .. name, static.new(ctx, name, v)) end
  end
  for _, name in ipairs(auth.TOKEN_FILE_ENV) do
    local v = ctx.getenv(name)
    if v then return tag("env:" .. name, static.new(ctx, name, nil, v)) end
  end
  local gac = ctx.getenv("GOOGLE_APPLICATION_CREDENTIALS")
  if gac then
    return tag("GOOGLE_APPLICATION_CREDENTIALS", files.load(ctx, gac, "GOOGLE_APPLICATION_CREDENTIALS=" .. gac, make_cache))
  end
  local wk = well_known_file(ctx)
  if wk and file_exists(wk) then
    return tag("gcloud", files.load(ctx, wk, "gcloud ADC file " .. wk, make_cache))
  end
  local why
  if opts.metadata ~= false then
    local ok, reason = metadata.probe(ctx)
    if ok then return tag("metadata", metadata.new(ctx)) end
    why = reason
  else
    why = "the metadata server was disabled (metadata = false)"
  end
  return nil, common.err(ctx, nil,
    "Your default credentials were not found. To set up Application Default Credentials, see " ..
    common.ADC_HELP .. " for more information",
    ("checked: the credentials option, %s, %s, GOOGLE_APPLICATION_CREDENTIALS, %s, and the metadata server (%s). " ..
     "Run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a key file")
      :format(table.concat(auth.TOKEN_ENV, ", "), table.concat(auth.TOKEN_FILE_ENV, ", "),
              wk or "the gcloud ADC file (HOME unset)", why),
    { source = "application default credentials" })
end

--- Find Application Default Credentials.
-- @tparam[opt] table opts
--  `credentials` (access token | file path | decoded credential table),
--  `scopes` (list or string; default cloud-platform),
--  `quota_project` (else `GOOGLE_CLOUD_QUOTA_PROJECT`, else the file's `quota_project_id`),
--  `impersonate_service_account` (email; wraps whatever was found) and `delegates`,
--  `self_signed_jwt` (service accounts only: true = scope claim, or an audience URL),
--  endpoint overrides `token_uri` (authorized_user grants and key files without one),
--  `iam_endpoint`, `metadata_host`; `metadata = false` skips the metadata server;
--  `timeout` ({connect=, total=} for token calls).
--  `emulator_adc = true` (a test seam, for specs of the search order against the emulator):
--  in emulator mode, search the ambient sources all the same.
--  Seams for tests and embedders: `getenv` (function or table), `fetch` (core.fetch's
--  contract), `clock` (wall seconds), `monotonic` (seconds).
-- @treturn dicomgcs.auth.Provider
-- @return[2] nil
-- @treturn[2] dicomgcs.Error kind "auth"
-- @raise on an unknown option or a wrongly typed one
function auth.default(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("auth.default: options must be a table", 2) end
  options.check(opts, KNOWN, "auth.default")
  local ctx, cerr = make_context(opts)
  if not ctx then return nil, cerr end
  local imp_target = opts.impersonate_service_account
  if imp_target ~= nil and (type(imp_target) ~= "string" or imp_target == "") then
    error("auth.default: impersonate_service_account must be a service-account email", 2)
  end
  -- The source of an impersonation needs cloud-platform to call IAM Credentials.
  local find_ctx = ctx
  if imp_target then
    find_ctx = setmetatable({ scopes = { common.CLOUD_PLATFORM }, explicit_scopes = false }, { __index = ctx })
  end
  local cred, source = find(find_ctx, opts)
  if not cred then return nil, source end
  if imp_target then
    local err
    cred, err = impersonated.new(ctx, cache.new(find_ctx, cred), cred.description, {
      target = imp_target, delegates = opts.delegates, origin = "impersonate_service_account=" .. imp_target,
      quota_project = cred.quota_project,
    })
    if not cred then return nil, err end
  end
  local quota, quota_source = opts.quota_project, "quota_project"
  if quota == nil then quota, quota_source = ctx.getenv("GOOGLE_CLOUD_QUOTA_PROJECT"), "GOOGLE_CLOUD_QUOTA_PROJECT" end
  if quota == nil then quota, quota_source = cred.quota_project, "quota_project_id of " .. cred.description end
  if quota ~= nil and (type(quota) ~= "string" or quota == "") then quota = nil end
  if quota then
    local ok, qerr = require("dicomgcs.http").header_value(quota, quota_source)
    if not ok then return nil, qerr end
  end
  return setmetatable({ _ctx = ctx, _cred = cred, _cache = cache.new(ctx, cred), _source = source,
                        _quota = quota }, Provider)
end

--- Strip anything token-, key- or JWT-shaped from a text (for logs and debug output).
function auth.redact(text)
  return common.redact(nil, text)
end

return auth
