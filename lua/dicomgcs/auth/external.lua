--- Workload identity federation (`external_account`): a subject token from a file or a URL,
-- exchanged at STS, optionally followed by service-account impersonation. Executable, AWS
-- and X.509 sources are refused (Google's libraries also need an explicit opt-in for
-- executables; dicomgcs supports file and url sources only).
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.auth.external
-- @local
local common = require "dicomgcs.auth.common"
local json = require "dicomgcs.json"

local external = {}

local TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
local ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
local FIX = "check the credential configuration (`gcloud iam workload-identity-pools create-cred-config`)"

local function subject_reader(ctx, cs, origin)
  local fmt = type(cs.format) == "table" and cs.format or {}
  local ftype = fmt.type or "text"
  if ftype ~= "text" and ftype ~= "json" then
    return nil, common.err(ctx, origin, ("credential_source.format.type %q is not text or json"):format(tostring(ftype):sub(1, 40)), FIX)
  end
  local field = fmt.subject_token_field_name
  if ftype == "json" and (type(field) ~= "string" or field == "") then
    return nil, common.err(ctx, origin, "credential_source.format needs subject_token_field_name for json", FIX)
  end
  local where
  local function extract(text)
    if ftype == "text" then
      if text == "" then return nil, common.err(ctx, origin, "the subject token from " .. where .. " is empty", FIX) end
      return text
    end
    local doc = json.decode(text)
    local v = type(doc) == "table" and doc[field] or nil
    if type(v) ~= "string" or v == "" then
      return nil, common.err(ctx, origin, ("the subject token from %s has no field %q"):format(where, field), FIX)
    end
    return v
  end
  if type(cs.file) == "string" and cs.file ~= "" then
    where = "file " .. cs.file
    return function()
      local text, err = common.read_file(cs.file)
      if not text then
        return nil, common.err(ctx, origin, ("cannot read the subject token file %s: %s"):format(cs.file, err),
          "check that the identity provider's token file exists and is readable")
      end
      local tok, e2 = extract(text)
      if tok then common.secret(ctx, tok, true) end
      return tok, e2
    end, where
  elseif type(cs.url) == "string" and cs.url ~= "" then
    where = "URL " .. cs.url:gsub("%?.*", "?…")
    local headers = {}
    if type(cs.headers) == "table" then
      for k, v in pairs(cs.headers) do headers[#headers + 1] = tostring(k) .. ": " .. tostring(v) end
    end
    return function()
      local res, err = common.fetch(ctx, { method = "GET", url = cs.url, headers = headers, timeout = ctx.timeout,
                                           retry = { max_attempts = 3 } })
      if not res then return nil, common.transport_err(ctx, origin, where, err) end
      if res.status ~= 200 then
        return nil, common.err(ctx, origin, ("the subject token %s returned HTTP %d"):format(where, res.status), FIX,
          { http_status = res.status })
      end
      local tok, e2 = extract(res.body or "")
      if tok then common.secret(ctx, tok, true) end
      return tok, e2
    end, where
  end
  return nil, common.err(ctx, origin, "credential_source has neither file nor url", FIX)
end

--- Returns a credential; `make_cache(cred)` wraps a credential in a token cache (for the
-- impersonation step's source).
function external.new(ctx, info, origin, make_cache, impersonated)
  for _, f in ipairs{ "audience", "subject_token_type", "token_url", "credential_source" } do
    if info[f] == nil or info[f] == "" then
      return nil, common.err(ctx, origin, ("external_account credentials lack %s"):format(f), FIX)
    end
  end
  local cs = info.credential_source
  if type(cs) ~= "table" then return nil, common.err(ctx, origin, "credential_source is not an object", FIX) end
  if cs.executable then
    return nil, common.err(ctx, origin, "executable-sourced credentials are not supported",
      "run the executable yourself and point credential_source.file at its output")
  elseif cs.environment_id then
    return nil, common.err(ctx, origin, ("credential_source.environment_id %q (AWS) is not supported"):format(tostring(cs.environment_id):sub(1, 20)),
      "use a file- or url-sourced configuration")
  elseif cs.certificate then
    return nil, common.err(ctx, origin, "X.509 certificate-sourced credentials are not supported",
      "use a file- or url-sourced configuration")
  end
  local read_subject, where = subject_reader(ctx, cs, origin)
  if not read_subject then return nil, where end
  local token_url = common.rewrite(ctx, info.token_url)
  local imp_url = type(info.service_account_impersonation_url) == "string" and info.service_account_impersonation_url ~= ""
    and info.service_account_impersonation_url or nil
  local client_id = type(info.client_id) == "string" and info.client_id ~= "" and info.client_id or nil
  local client_secret = type(info.client_secret) == "string" and info.client_secret ~= "" and info.client_secret or nil
  if client_secret then common.secret(ctx, client_secret) end
  local headers = {}
  if client_id then
    headers[1] = "Authorization: Basic " .. common.secret(ctx, common.base64(client_id .. ":" .. (client_secret or "")))
  end
  local options
  if not client_id and type(info.workforce_pool_user_project) == "string" and info.workforce_pool_user_project ~= "" then
    options = json.encode{ userProject = info.workforce_pool_user_project }
  end

  local sts = {
    kind = "external_account", cred_type = "ext", source = origin,
    quota_project = info.quota_project_id,
    description = ("external account (subject token from %s, exchanged at %s; %s)"):format(where, token_url, origin),
  }
  function sts.fetch()
    local subject, err = read_subject()
    if not subject then return nil, err end
    local scope = imp_url and common.CLOUD_PLATFORM or table.concat(ctx.scopes, " ")
    return common.post_token_form(ctx, sts.description, token_url, {
      { "grant_type", TOKEN_EXCHANGE }, { "audience", info.audience }, { "scope", scope },
      { "requested_token_type", ACCESS_TOKEN_TYPE }, { "subject_token", subject },
      { "subject_token_type", info.subject_token_type }, { "options", options },
    }, "sts", headers)
  end
  if not imp_url then return sts end
  local lifetime = type(info.service_account_impersonation) == "table" and
    tonumber(info.service_account_impersonation.token_lifetime_seconds) or nil
  return impersonated.new(ctx, make_cache(sts), sts.description, {
    target = impersonated.target_of(imp_url), url = imp_url, origin = origin,
    lifetime = lifetime and math.floor(lifetime) or nil, quota_project = info.quota_project_id,
  })
end

return external
