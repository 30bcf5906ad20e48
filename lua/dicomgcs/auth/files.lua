--- Credential files (and their decoded tables): dispatch on `type`.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.auth.files
-- @local
local common = require "dicomgcs.auth.common"
local sa = require "dicomgcs.auth.service_account"
local user = require "dicomgcs.auth.user"
local impersonated = require "dicomgcs.auth.impersonated"
local external = require "dicomgcs.auth.external"

local files = {}

local VALID = "service_account, authorized_user, impersonated_service_account, external_account"

--- A credential from a decoded credential table. `make_cache(cred, ctx)` makes a token
-- cache for a nested source credential.
function files.from_info(ctx, info, origin, make_cache, depth)
  if type(info) ~= "table" then
    return nil, common.err(ctx, origin, "the credentials are not a JSON object", "use a credential JSON file")
  end
  local t = info.type
  if t == "service_account" then
    return sa.new(ctx, info, origin)
  elseif t == "authorized_user" then
    return user.new(ctx, info, origin)
  elseif t == "external_account" then
    return external.new(ctx, info, origin, function(c) return make_cache(c, ctx) end, impersonated)
  elseif t == "impersonated_service_account" then
    if (depth or 0) > 0 then
      return nil, common.err(ctx, origin, "source_credentials may not themselves be impersonated", "flatten the chain")
    end
    local url = info.service_account_impersonation_url
    if type(url) ~= "string" or url == "" then
      return nil, common.err(ctx, origin, "impersonated_service_account credentials lack service_account_impersonation_url",
        "run `gcloud auth application-default login --impersonate-service-account EMAIL` again")
    end
    if type(info.source_credentials) ~= "table" then
      return nil, common.err(ctx, origin, "impersonated_service_account credentials lack source_credentials",
        "run `gcloud auth application-default login --impersonate-service-account EMAIL` again")
    end
    -- The source needs cloud-platform (or iam) to call IAM Credentials.
    local sctx = setmetatable({ scopes = { common.CLOUD_PLATFORM }, explicit_scopes = false }, { __index = ctx })
    local src, err = files.from_info(sctx, info.source_credentials, origin .. ", source_credentials", make_cache, (depth or 0) + 1)
    if not src then return nil, err end
    local scopes
    if type(info.scopes) == "table" and #info.scopes > 0 and not ctx.explicit_scopes then scopes = info.scopes end
    local delegates = type(info.delegates) == "table" and info.delegates or nil
    return impersonated.new(ctx, make_cache(src, sctx), src.description, {
      target = impersonated.target_of(url), url = url, delegates = delegates, scopes = scopes,
      origin = origin, quota_project = info.quota_project_id,
    })
  elseif t == "external_account_authorized_user" or t == "gdch_service_account" then
    return nil, common.err(ctx, origin, ("credential type %q is not supported by dicomgcs"):format(t),
      "use a service_account, authorized_user, impersonated_service_account or external_account file")
  elseif t == nil then
    return nil, common.err(ctx, origin, "the credential file has no \"type\" field",
      "expected one of: " .. VALID)
  end
  return nil, common.err(ctx, origin, ("the credential file does not have a valid type (%q)"):format(tostring(t):sub(1, 60)),
    "expected one of: " .. VALID)
end

--- Load a credential file. `origin` says why this file (e.g. "GOOGLE_APPLICATION_CREDENTIALS=PATH").
function files.load(ctx, path, origin, make_cache)
  local text, err = common.read_file(path)
  if not text then
    return nil, common.err(ctx, origin, ("cannot read credential file %s: %s"):format(path, tostring(err)),
      "check the path and permissions, or unset the variable to use the next source")
  end
  if #text > 1024 * 1024 then
    return nil, common.err(ctx, origin, ("credential file %s is too large to be a credential file"):format(path))
  end
  local info, jerr = common.decode_json(text)
  -- Register the file's secrets before anything can echo them.
  if type(info) == "table" then
    for _, f in ipairs{ "private_key", "client_secret", "refresh_token" } do
      if type(info[f]) == "string" then common.secret(ctx, info[f]) end
    end
    if type(info.source_credentials) == "table" then
      for _, f in ipairs{ "private_key", "client_secret", "refresh_token" } do
        if type(info.source_credentials[f]) == "string" then common.secret(ctx, info.source_credentials[f]) end
      end
    end
  end
  if info == nil then
    return nil, common.err(ctx, origin, ("credential file %s is not valid JSON (%s)"):format(path,
      tostring(jerr):gsub("^credential file: ", "")), "replace it with the JSON file Google issued")
  end
  return files.from_info(ctx, info, origin, make_cache)
end

return files
