--- The auth layer's view of the C token cache (`core.token_cache`, csrc/dg_token.h): the
-- engine's own cache and this one follow one rule, kept in C: refresh min(225 s, lifetime/2)
-- before expiry (static tokens: at expiry), keep serving a still-valid token when a refresh
-- fails and retry min(10 s, a quarter of what is left) later. The token bytes live in C
-- (wiped when replaced). What stays here is what is Lua's: calling the credential's fetch,
-- one refresh at a time, wrapping failures as Errors, and collapsing a burst of forced
-- refreshes (401s) for the same rejected token into one.
-- Private to `dicomgcs.auth`.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.auth.cache
-- @local
local core = require "dicomgcs.core"
local common = require "dicomgcs.auth.common"

local cache = {}

local Cache = { __name = "dicomgcs.auth.Cache" }
Cache.__index = Cache

--- `cred` has `fetch(cred) -> {token=, expires_in=?} | nil, Error` and `description`.
function cache.new(ctx, cred)
  return setmetatable({ ctx = ctx, cred = cred, tc = core.token_cache(), busy = false, last_error = nil }, Cache)
end

--- The current token, refreshed when needed. `force` (after a 401) always refreshes, unless
-- `rejected` (the token the server refused) is given and is no longer the cached one (another
-- caller refreshed already). The engine does its own de-duplication by token generation.
-- Returns token, expires_in_seconds or nil, Error.
function Cache:get(force, rejected)
  local ctx, tc = self.ctx, self.tc
  local now = ctx.mono()
  local tok, left, fresh = tc:get(now)
  if tok then
    if not force and fresh then return tok, left end
    if force and rejected ~= nil and rejected ~= tok then return tok, left end
  end
  if self.busy then
    -- Re-entered from inside the refresh (cannot happen through the engine, which calls
    -- the provider one call at a time): serve the old token if it is still valid.
    if tok then return tok, left end
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
    local old, old_left = tc:get(now2)
    if old and not force then
      tc:postpone(now2)     -- keep the old token; try again a little later, not on every call
      return old, old_left
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
  local set_ok, why = tc:set(r.token, lifetime, now, static)
  if not set_ok then
    err = common.err(ctx, self.cred.description, "the credential source returned an " .. why)
    self.last_error = err
    return nil, err
  end
  self.last_error = nil
  local _, new_left = tc:get(ctx.mono())
  return r.token, new_left or 1
end

--- Forget the cached token (the next `get` fetches a new one).
function Cache:clear() self.tc:clear() end

return cache
