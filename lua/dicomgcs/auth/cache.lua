--- A refreshing token cache over one credential source: refresh before expiry (margin),
-- one refresh at a time, keep serving a still-valid token when a refresh fails (as
-- google-cloud-cpp does), and collapse a burst of forced refreshes (401s) into one.
-- Private to `dicomgcs.auth`.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.auth.cache
-- @local
local common = require "dicomgcs.auth.common"

local cache = {}

local Cache = { __name = "dicomgcs.auth.Cache" }
Cache.__index = Cache

--- `cred` has `fetch(cred) -> {token=, expires_in=?} | nil, Error` and `description`.
function cache.new(ctx, cred)
  return setmetatable({ ctx = ctx, cred = cred, tok = nil, busy = false, last_error = nil }, Cache)
end

local function remaining(t, now) return math.max(1, math.floor(t.expires_at - now)) end

--- The current token, refreshing when needed. `force` (after a 401) always refreshes, unless
-- `rejected` (the token the server refused) is given and is no longer the cached one (another
-- caller refreshed already). The engine does its own de-duplication by token generation.
-- Returns token, expires_in_seconds or nil, Error.
function Cache:get(force, rejected)
  local ctx, t = self.ctx, self.tok
  local now = ctx.mono()
  if t and now < t.expires_at then
    if not force and now < t.refresh_at then return t.token, remaining(t, now) end
    if force and rejected ~= nil and rejected ~= t.token then return t.token, remaining(t, now) end
  end
  if self.busy then
    -- Re-entered from inside the refresh (cannot happen through the engine, which calls
    -- the provider one call at a time): serve the old token if it is still valid.
    if t and now < t.expires_at then return t.token, remaining(t, now) end
    return nil, common.err(ctx, self.cred.description, "token requested while it is being refreshed")
  end
  self.busy = true
  local ok, r, err = pcall(self.cred.fetch, self.cred)
  self.busy = false
  if not ok then
    r, err = nil, common.err(ctx, self.cred.description, "internal error while getting a token: " .. tostring(r))
  elseif r == nil and err == nil then
    err = common.err(ctx, self.cred.description, "no token and no error from the credential source")
  end
  if not r then
    self.last_error = err
    local now2 = ctx.mono()
    if t and not force and now2 < t.expires_at then
      -- Keep the old token; try again a little later rather than on every call.
      t.refresh_at = now2 + math.min(10, (t.expires_at - now2) / 4)
      return t.token, remaining(t, now2)
    end
    return nil, err
  end
  local lifetime = r.expires_in
  local static = false
  if lifetime == nil then lifetime, static = self.cred.default_lifetime or 3600, self.cred.static end
  if lifetime <= 0 then
    err = common.err(ctx, self.cred.description, "the token endpoint returned a token that has already expired",
      "check this machine's clock")
    self.last_error = err
    return nil, err
  end
  -- Measured from before the request, so the local deadline is never later than the real one.
  local margin = static and 0 or math.min(ctx.refresh_margin, lifetime / 2)
  self.tok = { token = r.token, expires_at = now + lifetime, refresh_at = now + lifetime - margin,
               fetched_at = ctx.mono() }
  self.last_error = nil
  return r.token, remaining(self.tok, ctx.mono())
end

--- Forget the cached token (the next `get` fetches a new one).
function Cache:clear() self.tok = nil end

return cache
