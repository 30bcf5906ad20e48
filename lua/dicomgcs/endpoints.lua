--- Where requests go: Google's endpoints, or the local emulator.
-- The emulator is chosen by `emulator = "127.0.0.1:PORT"` in the client options or by the
-- environment variable `DICOMGCS_EMULATOR_HOST` (plain HTTP, like Google's own emulators, or
-- `https://HOST:PORT` for an emulator started with --tls, whose CA DICOMGCS_CA_FILE names);
-- `endpoint`, `storage_endpoint` and `logging_endpoint` override single services.
--
-- Plain HTTP carries a token in clear text, so the emulator must be on this machine (loopback:
-- 127.0.0.0/8, ::1, localhost) unless `DICOMGCS_EMULATOR_ALLOW_REMOTE=1`, and an http://
-- endpoint on another host is refused: a real token never crosses the network unencrypted.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.endpoints
-- @local
local errors = require "dicomgcs.errors"

local endpoints = {}

endpoints.google = {
  healthcare = "https://healthcare.googleapis.com/v1",
  storage = "https://storage.googleapis.com",
  logging = "https://logging.googleapis.com/v2",
  resourcemanager = "https://cloudresourcemanager.googleapis.com/v1",
}

local function trim_slash(u) return (u:gsub("/+$", "")) end

--- The scheme (lower case) and host (lower case, without brackets, user info or port) of a URL,
-- or nil when it is not an absolute URL.
function endpoints.parse(url)
  if type(url) ~= "string" then return nil end
  local scheme, authority = url:match("^(%a[%w+.-]*)://([^/?#]*)")
  if not scheme then return nil end
  authority = authority:gsub("^.*@", "")
  local host = authority:match("^%[([^%]]*)%]") or authority:match("^[^:]*")
  return scheme:lower(), host:lower(), authority:lower()
end

--- Is `host` (no port, no brackets) this machine: localhost, 127.0.0.0/8 or ::1?
function endpoints.is_loopback(host)
  if type(host) ~= "string" then return false end
  host = host:lower()
  if host == "localhost" or host == "::1" or host == "0:0:0:0:0:0:0:1" then return true end
  local a, b, c = host:match("^127%.(%d+)%.(%d+)%.(%d+)$")
  return a ~= nil and tonumber(a) <= 255 and tonumber(b) <= 255 and tonumber(c) <= 255
end

--- true when a token may be sent to `url`: https, or plain http to a loopback host or to
-- `allowed` (the "host:port" of an emulator the user allowed off this machine).
-- Otherwise nil, Error naming `what` (the option or variable the URL came from).
function endpoints.check_token_url(url, what, allowed)
  local scheme, host, authority = endpoints.parse(url)
  if scheme == "https" then return true end
  if scheme == "http" and (endpoints.is_loopback(host) or (allowed and authority == allowed:lower())) then
    return true
  end
  return nil, errors.input(("%s '%s' would send a token over plain %s to %s, which is not this machine")
      :format(what, url, scheme and scheme:upper() or "text", tostring(host)),
    "use an https:// URL (plain http:// is only allowed to 127.0.0.1, ::1 or localhost)")
end

--- The emulator's "host:port" from the `emulator` option or DICOMGCS_EMULATOR_HOST (read
-- through `getenv`), or nil when not in emulator mode; nil, Error when it is malformed or not
-- this machine (DICOMGCS_EMULATOR_ALLOW_REMOTE=1 allows another host).
function endpoints.emulator(option, getenv)
  getenv = getenv or os.getenv
  local host, source = option, "emulator option"
  if host == nil or host == "" then host, source = getenv("DICOMGCS_EMULATOR_HOST"), "DICOMGCS_EMULATOR_HOST" end
  if host == nil or host == "" or host == false then return nil end
  -- an emulator started with --tls is "https://HOST:PORT" (its CA in DICOMGCS_CA_FILE)
  local tls = tostring(host):match("^https://") ~= nil
  host = tostring(host):gsub("^https?://", ""):gsub("/+$", "")
  if not host:match("^[%w%.%-]+:%d+$") and not host:match("^%[[%x:]+%]:%d+$") then
    return nil, errors.input(("emulator address '%s' (%s) is not HOST:PORT"):format(host, source),
      "use the value emulator/start prints, e.g. DICOMGCS_EMULATOR_HOST=127.0.0.1:8123")
  end
  local name = host:match("^%[([%x:]+)%]") or host:match("^([^:]+)")
  if not endpoints.is_loopback(name) and getenv("DICOMGCS_EMULATOR_ALLOW_REMOTE") ~= "1" then
    return nil, errors.input(("emulator address '%s' (%s) is not this machine: the emulator is spoken to " ..
      "over plain HTTP"):format(host, source),
      "run the emulator on 127.0.0.1 (emulator/start), or set DICOMGCS_EMULATOR_ALLOW_REMOTE=1 to accept " ..
      "another host on a network you trust")
  end
  return tls and ("https://" .. host) or host
end

--- The base URL of an emulator address as `endpoints.emulator` returns it.
function endpoints.emulator_base(host)
  return host:match("^https://") and host or ("http://" .. host)
end

--- Resolve the base URLs for a client. Returns a table or nil, Error.
function endpoints.resolve(opts)
  local host, herr = endpoints.emulator(opts.emulator)
  if herr then return nil, herr end
  local e = {}
  if host then
    local base = endpoints.emulator_base(host)
    e.emulator = host
    e.healthcare = base .. "/v1"
    e.storage = base
    e.logging = base .. "/v2"
    e.resourcemanager = base .. "/resourcemanager/v1"
  else
    for k, v in pairs(endpoints.google) do e[k] = v end
  end
  local option = { healthcare = "endpoint", storage = "storage_endpoint", logging = "logging_endpoint" }
  if opts.endpoint then e.healthcare = trim_slash(opts.endpoint) end
  if opts.storage_endpoint then e.storage = trim_slash(opts.storage_endpoint) end
  if opts.logging_endpoint then e.logging = trim_slash(opts.logging_endpoint) end
  for k, v in pairs(e) do
    if k ~= "emulator" then
      if not v:match("^https?://[^/]+") then
        return nil, errors.input(("%s endpoint '%s' is not an http(s) URL"):format(k, v))
      end
      local ok, err = endpoints.check_token_url(v, (option[k] or k) .. "=", e.emulator)
      if not ok then return nil, err end
    end
  end
  -- the v1beta1 surface (export filterConfig) lives beside v1
  e.healthcare_beta = e.healthcare:gsub("/v1$", "/v1beta1")
  return e
end

return endpoints
