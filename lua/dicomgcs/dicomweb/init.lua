--- DICOMweb: store (STOW-RS), retrieve (WADO-RS), search (QIDO-RS) and delete, against any
-- DICOMweb server given its base URL (the Healthcare API's `.../dicomStores/S/dicomWeb`, Orthanc's
-- `.../dicom-web`, …).
--
-- This file is the handle (`dicomweb.new`, `c:dicomweb()`), delete, and what the parts share
-- (UID checks, resource paths, headers); the protocols live beside it: `stow.lua` (store, on
-- the one scheduler `dicomgcs.runner`), `wado.lua` (retrieve, metadata, rendered, frames),
-- `qido.lua` (search).
--
-- Files are never read whole into memory: a STOW body is streamed from disk by the C engine
-- (single-part `application/dicom`, or `multipart/related` batches built from file parts), and a
-- WADO-RS response is fed to the C multipart sink as it arrives, each instance written once
-- into its own file. Bulk calls return a summary that accounts for every input file; one bad
-- file never stops the others.
--
-- @module dicomgcs.dicomweb
-- @usage local dw = dicomweb.new{ base_url = "http://127.0.0.1:8042/dicom-web" }
-- local s = dw:store({ "incoming/" }, { concurrency = 16 })
-- print(s.stored, s.already_present, s.failed)
local errors = require "dicomgcs.errors"
local http = require "dicomgcs.http"
local json = require "dicomgcs.json"
local options = require "dicomgcs.options"

local dicomweb = {}

local DW = { __name = "dicomgcs.DICOMweb" }
DW.__index = DW

local shared = require "dicomgcs.dicomweb.shared"

--- Keyword → tag for the attributes searches usually name (for `dicomweb.value`).
dicomweb.TAGS = shared.TAGS
--- The first value of attribute `key` (keyword or 8-hex-digit tag) in a DICOM JSON object;
-- person names come back as their Alphabetic string. Returns the value or nil.
dicomweb.value = shared.value
--- True when `uid` is a valid DICOM UID (digits and dots, 1–64 characters, no empty component).
dicomweb.valid_uid = shared.valid_uid
--- `uid` when it is a valid DICOM UID, else nil, Error (kind "input") naming `what`.
dicomweb.check_uid = shared.check_uid

local known_new = { base_url = true, transport = true, headers = true, token = true, concurrency = true,
  operation_base = true, orthanc_root = true, ca_file = true, proxy = true, connect_timeout = true, idle_timeout = true, retry = true }

--- Make a DICOMweb handle. `o.base_url` (required: the service root, without a trailing
-- `/studies`), `o.transport` (a dicomgcs.http transport to share, e.g. a client's; else one is
-- made from `token`, `concurrency`, `ca_file`, `proxy`, `connect_timeout`, `idle_timeout`,
-- `retry`), `o.headers` (extra request headers, e.g. `{"Authorization: Basic ..."}`),
-- `o.operation_base` (root for long-running operations; default: the part of `base_url` before
-- `/projects/`, for the Healthcare API), `o.orthanc_root` (Orthanc's REST root, for deletes;
-- default: `base_url` without its last segment). Raises on unknown options.
function dicomweb.new(o)
  o = options.check(o or {}, known_new, "dicomweb.new")
  if type(o.base_url) ~= "string" or not o.base_url:match("^https?://[^/]+") then
    error("dicomweb.new: base_url must be an http(s):// URL", 2)
  end
  local self = setmetatable({}, DW)
  self.base_url = o.base_url:gsub("/+$", "")
  self.headers = o.headers or {}
  for i, h in ipairs(self.headers) do
    if type(h) ~= "string" or not h:find(":", 1, true) then error(("dicomweb.new: headers[%d] must be a \"Name: value\" string"):format(i), 2) end
    local ok, err = http.header_value(h, ("dicomweb.new: headers[%d]"):format(i))
    if not ok then error(err.message, 2) end
  end
  self.operation_base = o.operation_base or self.base_url:match("^(.-)/projects/")
  self.orthanc_root = o.orthanc_root
  -- set once a single-part STOW was refused with 415 (Orthanc): later stores on this handle
  -- go multipart straight away
  self.multipart_only = false
  if o.transport then
    self.transport = o.transport
  else
    local token = o.token
    self.transport = http.new{
      token_provider = token and function() return token, 365 * 24 * 3600 end or nil,
      concurrency = o.concurrency, ca_file = o.ca_file, proxy = o.proxy,
      connect_timeout = o.connect_timeout, idle_timeout = o.idle_timeout, retry = o.retry,
    }
    self.own_transport = true
  end
  return self
end

function DW:__tostring() return "dicomgcs.DICOMweb (" .. self.base_url .. ")" end

function DW:close() if self.own_transport then self.transport:close() end end

-- ==================== Delete ====================

local known_delete = { study = true, series = true, instance = true, wait = true, timeout = true }

-- DICOMweb has no standard delete; Orthanc's DICOMweb plugin answers 405. When the server is an
-- Orthanc (its REST root answers /system), delete through its REST API: /tools/lookup finds the
-- Orthanc id of the UID, then DELETE that resource. Returns true, nil when not Orthanc, or nil, Error.
local function orthanc_delete(self, o, what)
  local with_headers = shared.with_headers
  local root = self.orthanc_root or self.base_url:match("^(.*)/[^/]+$")
  if not root then return nil end
  local sys = self.transport:request({ method = "GET", url = root .. "/system", headers = with_headers(self, {}) })
  local doc = sys and sys.body and json.decode(sys.body)
  if type(doc) ~= "table" or doc.ApiVersion == nil then return nil end
  local uid = o.instance or o.series or o.study
  local level = o.instance and "Instance" or o.series and "Series" or "Study"
  local res, err = self.transport:request({ method = "POST", url = root .. "/tools/lookup", body = uid,
    headers = with_headers(self, { "Content-Type: text/plain" }) }, what .. " (Orthanc lookup)")
  if not res then return false, err end
  local found
  for _, r in ipairs(json.decode(res.body or "") or {}) do
    if type(r) == "table" and r.Type == level and type(r.Path) == "string" then found = r.Path end
  end
  -- The Path comes from the server: only a plain absolute path may follow the root, so that
  -- "@host/…", "//host/…" or a URL cannot send the DELETE (and its headers) elsewhere.
  if found and not (found:match("^/[%w%-_/]+$") and not found:find("//", 1, true)) then
    return false, errors.new{ kind = "http", url = root .. "/tools/lookup",
      message = ("%s: the server's lookup returned Path '%s', which is not a path on %s; nothing deleted")
        :format(what, found:sub(1, 200):gsub("%c", "?"), root) }
  end
  if not found then
    return false, errors.new{ kind = "http", http_status = 404, status = "NOT_FOUND", url = root .. "/tools/lookup",
      message = what .. ": not found" }
  end
  local _, derr = self.transport:request({ method = "DELETE", url = root .. found, headers = with_headers(self, {}) }, what)
  if derr then return false, derr end
  return true
end

--- Delete a study, series or instance. On the Healthcare API a study or series delete is a
-- long-running operation: an `Operation` is returned (waited for when `o.wait`). Other
-- servers answer at once: true. A server without DICOMweb deletes that is an Orthanc (405) is
-- asked through its REST API. Returns that or nil, Error.
function DW:delete(o)
  o = options.check(o or {}, known_delete, "dicomweb:delete")
  if not o.study then error("dicomweb:delete: study= is required", 2) end
  local path, perr = shared.resource_path(o)
  if not path then return nil, perr end
  local url = self.base_url .. path
  local what = "delete " .. shared.what_of(o)
  local res, err = self.transport:request({ method = "DELETE", url = url, headers = shared.with_headers(self, {}) }, what)
  if not res and err.http_status == 405 then
    local ok, oerr = orthanc_delete(self, o, what)
    if ok then return true end
    if ok == false then return nil, oerr end
  end
  if not res then return nil, err end
  local doc = res.body and res.body:match("^%s*{") and json.decode(res.body) or nil
  if type(doc) == "table" and type(doc.name) == "string" and doc.name:find("/operations/", 1, true) then
    local op = require("dicomgcs.operation").new(self.transport, self.operation_base or self.base_url, doc)
    if not o.wait then return op end
    return op:wait{ timeout = o.timeout, interval = 0.2, max_interval = 5 }
  end
  return true
end

-- The protocol files' methods, on the one handle.
for _, part in ipairs{ "stow", "wado", "qido" } do
  for name, fn in pairs(require("dicomgcs.dicomweb." .. part).methods) do DW[name] = fn end
end

return dicomweb
