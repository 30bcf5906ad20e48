--- gcloud user credentials (`authorized_user`): the refresh-token grant. Like Google's
-- Python and Node libraries, the file's token_uri is not used: the token endpoint is
-- Google's, or the `token_uri` option, or the emulator's in emulator mode.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.auth.user
-- @local
local common = require "dicomgcs.auth.common"

local user = {}

local GCLOUD_CLIENT_ID = "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com"

function user.new(ctx, info, origin)
  for _, f in ipairs{ "client_id", "client_secret", "refresh_token" } do
    if type(info[f]) ~= "string" or info[f] == "" then
      return nil, common.err(ctx, origin, ("authorized_user credentials lack %s"):format(f),
        "run `gcloud auth application-default login` to write a complete file")
    end
  end
  local client_id = info.client_id
  local client_secret = common.secret(ctx, info.client_secret)
  local refresh_token = common.secret(ctx, info.refresh_token)
  local url = common.default_token_uri(ctx)
  local account = type(info.account) == "string" and info.account ~= "" and info.account or nil
  local cred = {
    kind = "authorized_user", cred_type = "u", source = origin,
    quota_project = info.quota_project_id, token_uri = url,
    description = ("user credentials%s (%s)"):format(account and (" for " .. account) or "", origin),
    gcloud_client = client_id == GCLOUD_CLIENT_ID,
  }
  function cred.fetch()
    local r, err = common.post_token_form(ctx, cred.description, url, {
      { "grant_type", "refresh_token" }, { "client_id", client_id }, { "client_secret", client_secret },
      { "refresh_token", refresh_token },
      { "scope", ctx.explicit_scopes and table.concat(ctx.scopes, " ") or nil },
    }, "refresh")
    if not r then return nil, err end
    if r.refresh_token then refresh_token = r.refresh_token end   -- rotated by the server
    return r
  end
  return cred
end

return user
