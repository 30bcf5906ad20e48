--- Defaults read the way gcloud reads its properties: a flag wins, then the property's
-- environment variable (CLOUDSDK_SECTION_NAME), then the active configuration's file
-- ($CLOUDSDK_CONFIG/configurations/config_NAME, NAME from $CLOUDSDK_ACTIVE_CONFIG_NAME or the
-- `active_config` file, else "default").
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.cli.config
-- @local
local config = {}

-- The properties dicomgcs reads: flag name, gcloud property, environment variable.
config.properties = {
  -- GOOGLE_CLOUD_PROJECT is not gcloud's; it comes last, as the Lua client has always read it
  { flag = "project", property = "core/project", env = "CLOUDSDK_CORE_PROJECT", fallback = "GOOGLE_CLOUD_PROJECT" },
  { flag = "location", property = "healthcare/location", env = "CLOUDSDK_HEALTHCARE_LOCATION" },
  { flag = "dataset", property = "healthcare/dataset", env = "CLOUDSDK_HEALTHCARE_DATASET" },
  { flag = "impersonate-service-account", property = "auth/impersonate_service_account",
    env = "CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT" },
  { flag = "quiet", property = "core/disable_prompts", env = "CLOUDSDK_CORE_DISABLE_PROMPTS", boolean = true },
  { flag = "verbosity", property = "core/verbosity", env = "CLOUDSDK_CORE_VERBOSITY" },
  { flag = "log-http", property = "core/log_http", env = "CLOUDSDK_CORE_LOG_HTTP", boolean = true },
}

--- gcloud's reading of a boolean property value ("1", "true", "yes", "on" in any case).
function config.truthy(v)
  if v == true then return true end
  if type(v) ~= "string" then return false end
  local l = v:lower()
  return l == "1" or l == "true" or l == "yes" or l == "on"
end

-- Variables whose values end up in URLs or headers: a control character in one is refused
-- up front, naming it, before it can reach a request.
config.checked_env = { "GOOGLE_CLOUD_QUOTA_PROJECT", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT",
  "CLOUDSDK_HEALTHCARE_LOCATION", "CLOUDSDK_HEALTHCARE_DATASET", "CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT",
  "CLOUDSDK_ACTIVE_CONFIG_NAME", "CLOUDSDK_CONFIG", "DICOMGCS_EMULATOR_HOST" }

local function nonempty(v) return v ~= nil and v ~= "" and v or nil end

--- gcloud's configuration folder.
function config.dir(getenv)
  local d = nonempty(getenv("CLOUDSDK_CONFIG"))
  if d then return d end
  local home = nonempty(getenv("HOME"))
  return home and (home .. "/.config/gcloud") or nil
end

local read = require("dicomgcs.auth.common").read_file

--- The active configuration's name and file path.
function config.active(getenv)
  local dir = config.dir(getenv)
  local name = nonempty(getenv("CLOUDSDK_ACTIVE_CONFIG_NAME"))
  if not name and dir then
    local text = read(dir .. "/active_config")
    name = text and nonempty(text:match("^%s*(.-)%s*$"))
  end
  name = name or "default"
  -- a name with a slash would read a file outside the configurations folder
  if not name:match("^[%w_%-%.]+$") or name:match("^%.") then return name, nil end
  return name, dir and (dir .. "/configurations/config_" .. name) or nil
end

--- Parse gcloud's INI text into { ["section/key"] = value }.
function config.parse_ini(text)
  local props, section = {}, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = line:gsub("\r$", "")
    local s = line:match("^%s*%[%s*([^%]]-)%s*%]%s*$")
    if s then section = s
    elseif section and not line:match("^%s*[#;]") then
      local k, v = line:match("^%s*([^=:%s][^=:]-)%s*[=:]%s*(.-)%s*$")
      if k then props[section .. "/" .. k] = v end
    end
  end
  return props
end

--- Resolve every property: { [flag] = { value=, source=, property= } } (value nil when unset),
-- from `flags` (the parsed command line) and `getenv` (default os.getenv).
function config.resolve(flags, getenv)
  getenv = getenv or os.getenv
  local name, path = config.active(getenv)
  local text = path and read(path)
  local file_props = text and config.parse_ini(text) or {}
  local out = {}
  for _, p in ipairs(config.properties) do
    local r = { property = p.property }
    local flag = flags[p.flag]
    if flag ~= nil and flag ~= "" then
      if type(flag) == "boolean" then flag = tostring(flag) end
      r.value, r.source = flag, (flags[p.flag] == false and "flag --no-" or "flag --") .. p.flag
    elseif nonempty(getenv(p.env)) then r.value, r.source = getenv(p.env), "environment " .. p.env
    elseif nonempty(file_props[p.property]) then
      r.value, r.source = file_props[p.property], ("gcloud configuration %s (%s)"):format(name, path)
    elseif p.fallback and nonempty(getenv(p.fallback)) then
      r.value, r.source = getenv(p.fallback), "environment " .. p.fallback
    end
    out[p.flag] = r
  end
  return out
end

return config
