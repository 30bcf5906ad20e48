--- A fixed access token: from the `credentials` option or an environment variable, or a
-- file re-read on every refresh (gcloud's `auth/access_token_file`). Never refreshable
-- through Google: when it expires, the caller must supply a new one.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.auth.static
-- @local
local common = require "dicomgcs.auth.common"

local static = {}

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

local function check(ctx, source, token)
  if token == "" then
    return nil, common.err(ctx, source, "the access token is empty", "supply a token, or unset the variable")
  end
  if token:find("[%s%c]") then
    return nil, common.err(ctx, source, "the access token contains whitespace or control characters",
      "supply just the token (as printed by `gcloud auth print-access-token`)")
  end
  return token
end

--- `token` (string) or `path` (file holding it); `source` names where it came from.
function static.new(ctx, source, token, path)
  local cred = {
    kind = "access_token", cred_type = "at", static = true, default_lifetime = 300,
    source = source,
    description = path and ("access token read from file " .. path .. " (" .. source .. ")")
      or ("access token from " .. source),
  }
  if token then
    local ok, err = check(ctx, source, trim(token))
    if not ok then return nil, err end
    token = common.secret(ctx, ok)
  end
  function cred.fetch()
    if not path then return { token = token } end
    local data, rerr = common.read_file(path)
    if not data then
      return nil, common.err(ctx, source, ("cannot read access-token file %s: %s"):format(path, rerr),
        "check the path, or unset the variable")
    end
    local tok, err = check(ctx, source .. " (file " .. path .. ")", trim(data))
    if not tok then return nil, err end
    return { token = common.secret(ctx, tok, true) }
  end
  if path then
    local first, err = cred.fetch()     -- fail now, not at the first request
    if not first then return nil, err end
  end
  return cred
end

return static
