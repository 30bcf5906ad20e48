--- Service-account key files: the JWT-bearer (two-legged OAuth) exchange at `token_uri`,
-- or, as an opt-in, self-signed JWTs sent directly as bearer tokens (AIP-4111/4112).
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.auth.service_account
-- @local
local core = require "dicomgcs.core"
local common = require "dicomgcs.auth.common"

local sa = {}

local JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
local KEY_HINT = "use the JSON key file downloaded from IAM (an unencrypted RSA key in PEM form); " ..
  "create a new key with `gcloud iam service-accounts keys create`"

--- `info` is the decoded key file, `origin` says where it came from (for messages).
function sa.new(ctx, info, origin)
  local email = info.client_email
  if type(email) ~= "string" or email == "" then
    return nil, common.err(ctx, origin, "service_account credentials lack client_email", KEY_HINT)
  end
  local source = origin
  if type(info.private_key) ~= "string" or info.private_key == "" then
    return nil, common.err(ctx, source, ("service account %s: private_key is missing"):format(email), KEY_HINT)
  end
  local key = common.secret(ctx, info.private_key)
  if info.universe_domain ~= nil and info.universe_domain ~= "googleapis.com" then
    return nil, common.err(ctx, source, ("universe_domain %q is not supported"):format(tostring(info.universe_domain):sub(1, 80)),
      "dicomgcs only talks to googleapis.com")
  end
  -- Parse and check the key now, so a broken or non-RSA key fails at start-up.
  local probe, perr = core.jwt_sign_rs256(key, '{"alg":"RS256"}', "{}")
  if not probe then
    return nil, common.err(ctx, source, ("service account %s: %s"):format(email, perr), KEY_HINT)
  end
  local kid = type(info.private_key_id) == "string" and info.private_key_id ~= "" and info.private_key_id or nil
  local token_uri = type(info.token_uri) == "string" and info.token_uri ~= "" and common.rewrite(ctx, info.token_uri)
    or common.default_token_uri(ctx)

  local cred = {
    kind = "service_account", cred_type = ctx.self_signed_jwt and "jwt" or "sa", source = source,
    email = email, project_id = info.project_id, token_uri = token_uri,
    description = ("service account %s (%s)%s"):format(email, origin,
      ctx.self_signed_jwt and ", self-signed JWTs" or ""),
  }

  local function sign(claims)
    local header = common.json_object{ { "alg", "RS256" }, { "typ", "JWT" }, { "kid", kid } }
    local jwt, err = core.jwt_sign_rs256(key, header, common.json_object(claims))
    if not jwt then
      return nil, common.err(ctx, source, ("service account %s: %s"):format(email, err), KEY_HINT)
    end
    return jwt
  end

  function cred.fetch()
    local now = ctx.now()
    local scope = table.concat(ctx.scopes, " ")
    if ctx.self_signed_jwt then
      -- Either an audience or a scope claim, never both (AIP-4111).
      local aud = type(ctx.self_signed_jwt) == "string" and ctx.self_signed_jwt or nil
      local jwt, err = sign{ { "iss", email }, { "sub", email }, { "aud", aud }, { "scope", not aud and scope or nil },
                             { "iat", now }, { "exp", now + common.JWT_LIFETIME } }
      if not jwt then return nil, err end
      return { token = common.secret(ctx, jwt, true), expires_in = common.JWT_LIFETIME }
    end
    local jwt, err = sign{ { "iss", email }, { "scope", scope }, { "aud", token_uri },
                           { "iat", now }, { "exp", now + common.JWT_LIFETIME } }
    if not jwt then return nil, err end
    return common.post_token_form(ctx, cred.description, token_uri,
      { { "grant_type", JWT_BEARER }, { "assertion", jwt } }, "jwt")
  end
  return cred
end

return sa
