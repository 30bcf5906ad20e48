--- The GCE metadata server (Compute Engine, GKE, Cloud Run, ...): detection with a short
-- probe, and the default service account's tokens.
--
-- Hosts: the probe goes to GCE_METADATA_IP, else GCE_METADATA_HOST, else GCE_METADATA_ROOT,
-- else the emulator (DICOMGCS_EMULATOR_HOST), else 169.254.169.254; data requests to
-- GCE_METADATA_HOST, else GCE_METADATA_ROOT, else the emulator, else 169.254.169.254.
-- NO_GCE_CHECK=true skips detection. With an explicit host, or when the machine looks like
-- Google Cloud (DMI product name, Cloud Run / Functions / Kubernetes variables), the probe
-- waits GCE_METADATA_TIMEOUT (3) s for up to GCE_METADATA_DETECT_RETRIES (3) attempts, as
-- google-auth-library-python does; anywhere else one 1-second attempt, so a laptop does not hang.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.auth.metadata
-- @local
local common = require "dicomgcs.auth.common"

local metadata = {}

local function strip_host(h)
  if not h or h == "" then return nil end
  return (h:gsub("^%a+://", ""):gsub("/.*$", ""))
end

--- probe_host, data_host, explicit (a host was configured).
function metadata.hosts(ctx)
  local g = ctx.getenv
  local emu = ctx.emulator and strip_host(ctx.emulator)
  local host = strip_host(ctx.metadata_host) or strip_host(g("GCE_METADATA_HOST"))
  local root = strip_host(g("GCE_METADATA_ROOT"))
  local ip = strip_host(g("GCE_METADATA_IP"))
  local probe = strip_host(ctx.metadata_host) or ip or host or root or emu or "169.254.169.254"
  local data = host or root or emu or "169.254.169.254"
  return probe, data, (ctx.metadata_host or ip or host or root or emu) ~= nil
end

local function looks_like_gcp(ctx)
  local f = io.open("/sys/class/dmi/id/product_name", "r")
  if f then
    local name = f:read("l") or ""
    f:close()
    if name:match("^Google") then return true end
  end
  for _, v in ipairs{ "K_SERVICE", "CLOUD_RUN_JOB", "FUNCTION_NAME", "KUBERNETES_SERVICE_HOST" } do
    local x = ctx.getenv(v)
    if x and x ~= "" then return true end
  end
  return false
end

local function get(ctx, host, path, timeout, attempts)
  return common.fetch(ctx, {
    method = "GET", url = "http://" .. host .. path, headers = { "Metadata-Flavor: Google" },
    noproxy = "*",                                       -- the MDS never goes through a proxy
    timeout = timeout, retry = { max_attempts = attempts, base_delay_ms = 100, max_delay_ms = 1000 },
  })
end

local function flavor_ok(res)
  local v = common.header(res, "metadata-flavor")
  return v ~= nil and v:lower() == "google"
end

--- Probe: true, or false and why.
function metadata.probe(ctx)
  local nc = ctx.getenv("NO_GCE_CHECK")
  if nc and (nc:lower() == "true" or nc == "1") then return false, "NO_GCE_CHECK is set" end
  local probe, _, explicit = metadata.hosts(ctx)
  local t, attempts = 1, 1
  if explicit or looks_like_gcp(ctx) then
    t = tonumber(ctx.getenv("GCE_METADATA_TIMEOUT") or "") or 3
    attempts = math.tointeger(tonumber(ctx.getenv("GCE_METADATA_DETECT_RETRIES") or "")) or 3
  end
  local res, err = get(ctx, probe, "/", { connect = t, total = t }, math.max(1, attempts))
  if not res then return false, ("no metadata server at %s (%s)"):format(probe, tostring(err.message)) end
  if res.status ~= 200 or not flavor_ok(res) then
    return false, ("%s answered, but not as a metadata server (HTTP %d%s)"):format(probe, res.status,
      flavor_ok(res) and "" or ", no Metadata-Flavor: Google")
  end
  return true
end

function metadata.new(ctx)
  local _, host = metadata.hosts(ctx)
  local source = "metadata server " .. host
  local cred = { kind = "metadata", cred_type = "mds", source = source }
  -- The account's email, for describe() only; failures are ignored.
  local res = get(ctx, host, "/computeMetadata/v1/instance/service-accounts/default/email", { connect = 2, total = 3 }, 1)
  if res and res.status == 200 and flavor_ok(res) and res.body and #res.body < 320 and not res.body:find("%s") then
    cred.email = res.body
  end
  cred.description = ("%s (%s)"):format(cred.email and ("service account " .. cred.email) or "default service account", source)
  local path = "/computeMetadata/v1/instance/service-accounts/default/token"
  if ctx.explicit_scopes then
    local sc = {}
    for i, s in ipairs(ctx.scopes) do sc[i] = common.escape(s) end
    path = path .. "?scopes=" .. table.concat(sc, ",")
  end
  function cred.fetch()
    local r, err = get(ctx, host, path, { connect = 3, total = 10 }, 5)
    if not r then
      return nil, common.err(ctx, source, "cannot get a token: " .. tostring(err.message),
        "the metadata server did not answer; is this still running on Google Cloud?", { retryable = true })
    end
    if r.status == 200 and not flavor_ok(r) then
      return nil, common.err(ctx, source, "the token response lacks Metadata-Flavor: Google",
        "something other than the metadata server answered; check GCE_METADATA_HOST")
    end
    return common.parse_token_response(ctx, source, "http://" .. host .. path, r, "mds")
  end
  return cred
end

--- Project id from the metadata server, or nil.
function metadata.project_id(ctx)
  local _, host = metadata.hosts(ctx)
  local res = get(ctx, host, "/computeMetadata/v1/project/project-id", { connect = 2, total = 3 }, 1)
  if res and res.status == 200 and flavor_ok(res) and res.body and res.body ~= "" then return res.body end
  return nil
end

return metadata
