--- Service-account impersonation through IAM Credentials `generateAccessToken`, with any
-- other credential (through its own token cache) as the source.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.auth.impersonated
-- @local
local common = require "dicomgcs.auth.common"
local json = require "dicomgcs.json"

local imp = {}

--- The target email in ".../serviceAccounts/EMAIL:generateAccessToken" (as Python reads it).
function imp.target_of(url)
  if type(url) ~= "string" then return nil end
  return url:match("/([^/]+):generateAccessToken$")
end

--- The generateAccessToken URL for `email`.
function imp.url_for(ctx, email)
  return common.iam_base(ctx) .. "/v1/projects/-/serviceAccounts/" .. common.escape(email) .. ":generateAccessToken"
end

--- `source` is a token cache (`:get(force)`) over the source credential, `source_desc`
-- its description. `o`: `target`, `url`, `delegates` (emails or full names), `scopes`,
-- `lifetime` (seconds, default 3600), `origin`, `quota_project`.
function imp.new(ctx, source, source_desc, o)
  local target = o.target
  if type(target) ~= "string" or target == "" then
    return nil, common.err(ctx, o.origin, "cannot tell which service account to impersonate",
      "service_account_impersonation_url must end in /serviceAccounts/EMAIL:generateAccessToken")
  end
  local url = o.url and common.rewrite(ctx, o.url) or imp.url_for(ctx, target)
  local delegates = {}
  for _, d in ipairs(o.delegates or {}) do
    delegates[#delegates + 1] = d:find("/", 1, true) and d or ("projects/-/serviceAccounts/" .. d)
  end
  local scopes = o.scopes or ctx.scopes
  local lifetime = o.lifetime or 3600
  local cred = {
    kind = "impersonated", cred_type = "imp", source = o.origin, email = target,
    quota_project = o.quota_project,
    description = ("service account %s impersonated by %s"):format(target, source_desc),
  }
  local desc = cred.description
  function cred.fetch()
    local body = { scope = json.array(scopes), lifetime = ("%ds"):format(lifetime) }
    if #delegates > 0 then body.delegates = json.array(delegates) end
    body = json.encode(body)
    local res, err
    for attempt = 1, 2 do
      local tok, serr = source:get(attempt == 2)
      if not tok then return nil, serr end
      res, err = common.fetch(ctx, {
        method = "POST", url = url, body = body, timeout = ctx.timeout,
        headers = { "Authorization: Bearer " .. tok, "Content-Type: application/json; charset=utf-8",
                    "Accept: application/json" },
        retry = { max_attempts = 3, base_delay_ms = 1000, max_delay_ms = 2000 },
      })
      if not res then return nil, common.transport_err(ctx, desc, url, err) end
      if res.status ~= 401 then break end   -- 401: the source token went stale; refresh once
    end
    return common.parse_token_response(ctx, desc, url, res, "iam")
  end
  return cred
end

return imp
