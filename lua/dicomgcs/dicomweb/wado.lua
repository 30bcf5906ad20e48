--- WADO-RS, part of dicomgcs.dicomweb: the handle's `retrieve` (instances into files),
-- `metadata`, `rendered` and `frames`.
--
-- Retrieve streams: the engine feeds the response body, as it arrives, to the C multipart
-- sink (`core.multipart_sink`, csrc/dg_mpsink.c), which writes each part straight into its own
-- hidden temporary file in `dest` (O_CREAT|O_EXCL|O_NOFOLLOW) and keeps it only once its
-- closing delimiter has been seen. Here each complete part is named from the UIDs in its DICOM
-- header and renamed into place; every byte is written once, and when the connection is cut
-- the parts already complete are kept.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal
-- modules". Its methods are documented with dicomgcs.dicomweb.
-- @submodule dicomgcs.dicomweb
local core = require "dicomgcs.core"
local errors = require "dicomgcs.errors"
local json = require "dicomgcs.json"
local localpath = require "dicomgcs.localpath"
local options = require "dicomgcs.options"
local shared = require "dicomgcs.dicomweb.shared"

local with_headers, resource_path, what_of = shared.with_headers, shared.resource_path, shared.what_of

local DW = {}   -- methods, installed on the handle by dicomweb/init.lua

local HEADER_PEEK = 256 * 1024

local function head_of(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local head = f:read(HEADER_PEEK) or ""
  f:close()
  return head
end

local known_retrieve = { study = true, series = true, instance = true, dest = true, transfer_syntax = true,
  layout = true, on_progress = true, overwrite = true }

--- Retrieve a study, series or instance (WADO-RS) into folder `o.dest`, one `.dcm` per instance
-- named from its UIDs: `dest/STUDY/SERIES/SOP.dcm` (`o.layout = "flat"`: `dest/SOP.dcm`). UIDs
-- from the server are checked (digits and dots, ≤ 64) and joined with `localpath.safe_join`, so
-- nothing is written outside `dest`. `o.transfer_syntax` (default "*": as stored),
-- `o.on_progress(received, total)` while the response streams.
-- Returns `{ instances=, failed=, bytes=, seconds=, results = { {path=, sop_instance_uid=,
-- study_instance_uid=, series_instance_uid=, size=, status="retrieved"|"failed", err=} } }`, or
-- nil, Error when the request itself fails (e.g. 404 for a study that does not exist) before
-- any instance is complete. A response that breaks off (connection cut, malformed framing)
-- keeps the complete instances and reports the cut one as failed, with `summary.err` set.
function DW:retrieve(o)
  o = options.check(o or {}, known_retrieve, "dicomweb:retrieve")
  if not o.study then error("dicomweb:retrieve: study= is required", 2) end
  if type(o.dest) ~= "string" or o.dest == "" then error("dicomweb:retrieve: dest= (a folder) is required", 2) end
  local path, perr = resource_path(o)
  if not path then return nil, perr end
  local ok, merr = core.mkdir_p(o.dest)
  if not ok then return nil, errors.new{ kind = "io", message = "cannot create folder " .. tostring(merr) } end
  local t0 = core.monotime()
  local dest = o.dest:gsub("/+$", "")
  if dest == "" then dest = "/" end
  local sink <close> = core.multipart_sink(dest)
  local ts = o.transfer_syntax or "*"
  local req = { method = "GET", url = self.base_url .. path, multipart_sink = sink,
    headers = with_headers(self, { 'Accept: multipart/related; type="application/dicom"; transfer-syntax=' .. ts }) }
  if o.on_progress then
    req.on_progress = function(_, _, received, total) o.on_progress(received, total) end
  end
  local what = "retrieve " .. what_of(o)
  local res, err = self.transport:request(req, what)
  local parts = sink:parts()   -- the complete parts, ours from now on (renamed or removed below)
  local complete = sink:complete()
  local broken, broken_kind = sink:error()
  if not res and #parts == 0 and broken_kind ~= "transport" then return nil, err end

  local results = {}
  local summary = { instances = 0, failed = 0, bytes = 0, results = results }
  local seen = {}
  local function place(tmp_part, info)
    local r = { size = info.size, part = info.part }
    results[#results + 1] = r
    local function fail(msg, kind)
      os.remove(tmp_part)
      r.status = "failed"
      r.err = errors.new{ kind = kind or "input", message = msg }
      summary.failed = summary.failed + 1
    end
    local head = head_of(tmp_part)
    local h = core.dicom_header(head, #head == info.size)
    local sop, study, series = h.sop_instance_uid, h.study_uid, h.series_uid
    if not sop then
      return fail(("part %d is not a DICOM instance we can name (%s)"):format(info.part, h.reason or h.status))
    end
    for _, u in ipairs{ sop, study or "", series or "" } do
      if u ~= "" and not shared.valid_uid(u) then
        return fail(("part %d carries an invalid UID '%s'; nothing was written for it"):format(info.part, u:sub(1, 80)))
      end
    end
    local rel
    if o.layout == "flat" or not (study and series) then rel = sop .. ".dcm"
    else rel = study .. "/" .. series .. "/" .. sop .. ".dcm" end
    local final, jerr = localpath.safe_join(dest, rel)
    if not final then return fail(jerr.message) end
    if seen[final] then return fail(("part %d repeats instance %s"):format(info.part, sop)) end
    seen[final] = true
    local mk, mkerr = localpath.make_parent(final, dest)
    if not mk then return fail(mkerr.message, "io") end
    local moved, mverr = os.rename(tmp_part, final)
    if not moved then return fail("cannot write " .. final .. ": " .. tostring(mverr), "io") end
    r.path, r.status = final, "retrieved"
    r.sop_instance_uid, r.study_instance_uid, r.series_instance_uid = sop, study, series
    summary.instances = summary.instances + 1
    summary.bytes = summary.bytes + info.size
  end
  for i, p in ipairs(parts) do place(p.path, { part = i, size = p.size }) end

  if not complete then
    -- the part being received when the response broke off: nothing of it was kept
    local cause = broken or (err and err.message) or "the response ended early"
    summary.err = errors.new{ kind = broken_kind or (err and err.kind) or "transport", url = req.url,
      message = ("%s: the multipart response is broken after %d complete part(s): %s"):format(what, #parts, cause) }
    results[#results + 1] = { part = #parts + 1, status = "failed", err = summary.err }
    summary.failed = summary.failed + 1
  end
  summary.seconds = core.monotime() - t0
  if summary.instances == 0 and summary.err then return nil, summary.err end
  return summary
end
local known_meta = { study = true, series = true, instance = true }

--- Metadata (`application/dicom+json`, bulk data left out) of a study, series or instance.
-- Returns an array of DICOM JSON objects or nil, Error.
function DW:metadata(o)
  o = options.check(o or {}, known_meta, "dicomweb:metadata")
  if not o.study then error("dicomweb:metadata: study= is required", 2) end
  local path, perr = resource_path(o)
  if not path then return nil, perr end
  local res, err = self.transport:request({ method = "GET", url = self.base_url .. path .. "/metadata",
    headers = with_headers(self, { "Accept: application/dicom+json" }) }, "metadata of " .. what_of(o))
  if not res then return nil, err end
  local doc, jerr = json.decode(res.body or "", "metadata of " .. what_of(o))
  if doc == nil then return nil, errors.new{ kind = "json", message = jerr, url = self.base_url .. path } end
  return doc
end

local known_rendered = { study = true, series = true, instance = true, frame = true, format = true, output_file = true }

--- A rendered image of an instance (or of one frame, `o.frame`): `o.format` "jpeg" (default) or
-- "png". With `o.output_file` the image is streamed there and the path returned; otherwise the
-- bytes. Returns them, content type, or nil, Error.
function DW:rendered(o)
  o = options.check(o or {}, known_rendered, "dicomweb:rendered")
  if not (o.study and o.series and o.instance) then error("dicomweb:rendered: study=, series= and instance= are required", 2) end
  local path, perr = resource_path(o)
  if not path then return nil, perr end
  if o.frame then
    if math.tointeger(o.frame) == nil or o.frame < 1 then return nil, errors.input("frame must be a number from 1") end
    path = path .. "/frames/" .. math.tointeger(o.frame)
  end
  local fmt = o.format or "jpeg"
  if fmt ~= "jpeg" and fmt ~= "png" then error("dicomweb:rendered: format must be 'jpeg' or 'png'", 2) end
  local req = { method = "GET", url = self.base_url .. path .. "/rendered", output_file = o.output_file,
    headers = with_headers(self, { "Accept: image/" .. fmt }) }
  local res, err = self.transport:request(req, "render " .. what_of(o))
  if not res then return nil, err end
  return o.output_file or res.body, res.headers["content-type"]
end

local known_frames = { study = true, series = true, instance = true, frames = true, transfer_syntax = true }

--- Frames of an instance: `o.frames` a number or a list of numbers (from 1). Returns a list of
-- byte strings (one per frame, in the order asked), content type of the parts, or nil, Error.
function DW:frames(o)
  o = options.check(o or {}, known_frames, "dicomweb:frames")
  if not (o.study and o.series and o.instance) then error("dicomweb:frames: study=, series= and instance= are required", 2) end
  local path, perr = resource_path(o)
  if not path then return nil, perr end
  local list = type(o.frames) == "table" and o.frames or { o.frames or 1 }
  for i, n in ipairs(list) do
    if math.tointeger(n) == nil or n < 1 then return nil, errors.input("frame numbers start at 1") end
    list[i] = math.tointeger(n)
  end
  local res, err = self.transport:request({ method = "GET",
    url = self.base_url .. path .. "/frames/" .. table.concat(list, ","),
    headers = with_headers(self, { 'Accept: multipart/related; type="application/octet-stream"; transfer-syntax=' ..
      (o.transfer_syntax or "*") }) }, "frames of " .. what_of(o))
  if not res then return nil, err end
  local ct = res.headers["content-type"] or ""
  if not ct:lower():match("^%s*multipart/") then return { res.body }, ct end
  local parser, perr2 = core.multipart_parser(ct)
  if not parser then return nil, errors.new{ kind = "transport", message = perr2 } end
  local events, ferr = parser:feed(res.body or "")
  local fok, finerr = parser:finish()
  parser:close()
  if not events or not fok then
    return nil, errors.new{ kind = "transport", message = "frames of " .. what_of(o) .. ": " .. tostring(ferr or finerr) }
  end
  local out, cur, part_ct = {}, nil, nil
  for _, ev in ipairs(events) do
    if ev.type == "begin" then cur = {}; part_ct = part_ct or ev.content_type
    elseif ev.type == "data" then cur[#cur + 1] = ev.data
    elseif ev.type == "end" then out[#out + 1] = table.concat(cur); cur = nil end
  end
  return out, part_ct
end

return { methods = DW }
