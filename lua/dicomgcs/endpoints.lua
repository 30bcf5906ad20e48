--- Where requests go: Google's endpoints, or the local emulator.
-- The emulator is chosen by `emulator = "127.0.0.1:PORT"` in the client options or by the
-- environment variable `DICOMGCS_EMULATOR_HOST` (plain HTTP, like Google's own emulators, or
-- `https://HOST:PORT` for an emulator started with --tls, whose CA DICOMGCS_CA_FILE names);
-- `endpoint`, `storage_endpoint` and `logging_endpoint` override single services.
-- @module dicomgcs.endpoints
local errors = require "dicomgcs.errors"

local endpoints = {}

endpoints.google = {
  healthcare = "https://healthcare.googleapis.com/v1",
  storage = "https://storage.googleapis.com",
  logging = "https://logging.googleapis.com/v2",
  resourcemanager = "https://cloudresourcemanager.googleapis.com/v1",
}

local function trim_slash(u) return (u:gsub("/+$", "")) end

--- Resolve the base URLs for a client. Returns a table or nil, Error.
function endpoints.resolve(opts)
  local host = opts.emulator or os.getenv("DICOMGCS_EMULATOR_HOST")
  local e = {}
  if host and host ~= "" then
    local scheme = host:match("^https://") and "https" or "http"
    host = host:gsub("^https?://", ""):gsub("/+$", "")
    if not host:match("^[%w%.%-]+:%d+$") and not host:match("^%[[%x:]+%]:%d+$") then
      return nil, errors.input(("emulator address '%s' is not HOST:PORT"):format(host),
        "use the value emulator/start prints, e.g. DICOMGCS_EMULATOR_HOST=127.0.0.1:8123")
    end
    local base = scheme .. "://" .. host
    e.emulator = scheme == "https" and base or host
    e.healthcare = base .. "/v1"
    e.storage = base
    e.logging = base .. "/v2"
    e.resourcemanager = base .. "/resourcemanager/v1"
  else
    for k, v in pairs(endpoints.google) do e[k] = v end
  end
  if opts.endpoint then e.healthcare = trim_slash(opts.endpoint) end
  if opts.storage_endpoint then e.storage = trim_slash(opts.storage_endpoint) end
  if opts.logging_endpoint then e.logging = trim_slash(opts.logging_endpoint) end
  for k, v in pairs(e) do
    if k ~= "emulator" and not v:match("^https?://[^/]+") then
      return nil, errors.input(("%s endpoint '%s' is not an http(s) URL"):format(k, v))
    end
  end
  -- the v1beta1 surface (export filterConfig) lives beside v1
  e.healthcare_beta = e.healthcare:gsub("/v1$", "/v1beta1")
  return e
end

return endpoints
