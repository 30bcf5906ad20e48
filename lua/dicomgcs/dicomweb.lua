--- DICOMweb: store (STOW-RS), retrieve (WADO-RS), search (QIDO-RS) and delete, against any
-- DICOMweb server given its base URL (the Healthcare API's `.../dicomStores/S/dicomWeb`, Orthanc's
-- `.../dicom-web`, …).
--
-- Files are never read whole into memory: a STOW body is streamed from disk by the C engine
-- (single-part `application/dicom`, or `multipart/related` batches built from file parts), and a
-- WADO-RS response is streamed to a temporary file, then cut into one `.dcm` per instance by the
-- streaming multipart parser, a chunk at a time. Bulk calls return a summary that accounts for
-- every input file; one bad file never stops the others.
--
-- @module dicomgcs.dicomweb
-- @usage local dw = dicomweb.new{ base_url = "http://127.0.0.1:8042/dicom-web" }
-- local s = dw:store({ "incoming/" }, { concurrency = 16 })
-- print(s.stored, s.already_present, s.failed)
local core = require "dicomgcs.core"
local dicomfile = require "dicomgcs.dicomfile"
local errors = require "dicomgcs.errors"
local http = require "dicomgcs.http"
local json = require "dicomgcs.json"
local localpath = require "dicomgcs.localpath"
local options = require "dicomgcs.options"
local paging = require "dicomgcs.paging"

local dicomweb = {}

local DW = { __name = "dicomgcs.DICOMweb" }
DW.__index = DW

-- Servers known to refuse single-part application/dicom STOW (they answered 415), by base URL.
local multipart_only = {}

--- Keyword → tag for the attributes searches usually name (for `dicomweb.value`).
dicomweb.TAGS = {
  SpecificCharacterSet = "00080005", SOPClassUID = "00080016", SOPInstanceUID = "00080018",
  StudyDate = "00080020", SeriesDate = "00080021", StudyTime = "00080030", AccessionNumber = "00080050",
  Modality = "00080060", ModalitiesInStudy = "00080061", ReferringPhysicianName = "00080090",
  StudyDescription = "00081030", SeriesDescription = "0008103E", RetrieveURL = "00081190",
  FailureReason = "00081197", FailedSOPSequence = "00081198", ReferencedSOPSequence = "00081199",
  ReferencedSOPClassUID = "00081150", ReferencedSOPInstanceUID = "00081155", WarningReason = "00081196",
  PatientName = "00100010", PatientID = "00100020", PatientBirthDate = "00100030", PatientSex = "00100040",
  StudyInstanceUID = "0020000D", SeriesInstanceUID = "0020000E", StudyID = "00200010",
  SeriesNumber = "00200011", InstanceNumber = "00200013", NumberOfStudyRelatedSeries = "00201206",
  NumberOfStudyRelatedInstances = "00201208", NumberOfSeriesRelatedInstances = "00201209",
  NumberOfFrames = "00280008", Rows = "00280010", Columns = "00280011",
}

-- PS3.4 / PS3.18 meanings of the FailureReason values servers send.
local FAILURE_REASONS = {
  [0x0110] = "processing failure", [0x0111] = "duplicate SOP instance", [0x0112] = "no such object instance",
  [0x0117] = "invalid object instance", [0x0122] = "SOP class not supported",
  [0x0124] = "not authorized", [0xA700] = "out of resources", [0xA900] = "data set does not match SOP class",
  [0xC000] = "cannot understand", [0xC122] = "referenced transfer syntax not supported",
  [0xC409] = "study instance UID does not match", [0xA770] = "duplicate SOP instance",
}

--- The first value of attribute `key` (keyword or 8-hex-digit tag) in a DICOM JSON object;
-- person names come back as their Alphabetic string. Returns the value or nil.
function dicomweb.value(obj, key)
  if type(obj) ~= "table" then return nil end
  local tag = dicomweb.TAGS[key] or (type(key) == "string" and key:upper()) or key
  local a = obj[tag]
  if type(a) ~= "table" or type(a.Value) ~= "table" then return nil end
  local v = a.Value[1]
  if type(v) == "table" and a.vr == "PN" then return v.Alphabetic end
  return v
end

--- True when `uid` is a valid DICOM UID (digits and dots, 1–64 characters, no empty component).
function dicomweb.valid_uid(uid)
  return type(uid) == "string" and #uid >= 1 and #uid <= 64 and uid:match("^[0-9.]+$") ~= nil
    and not uid:find("..", 1, true) and uid:sub(1, 1) ~= "." and uid:sub(-1) ~= "."
end

local function check_uid(uid, what)
  if uid == nil then return true end
  if not dicomweb.valid_uid(uid) then
    return nil, errors.input(("'%s' is not a valid %s UID"):format(tostring(uid), what),
      "a UID has 1 to 64 characters, digits and dots only")
  end
  return true
end

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
  self.operation_base = o.operation_base or self.base_url:match("^(.-)/projects/")
  self.orthanc_root = o.orthanc_root
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

local function with_headers(self, list)
  local h = {}
  for _, v in ipairs(list or {}) do h[#h + 1] = v end
  for _, v in ipairs(self.headers) do h[#h + 1] = v end
  return h
end

-- /studies/S[/series/SE[/instances/I]] after checking every UID.
local function resource_path(o)
  local ok, err = check_uid(o.study, "study")
  if ok then ok, err = check_uid(o.series, "series") end
  if ok then ok, err = check_uid(o.instance, "instance") end
  if not ok then return nil, err end
  if o.series and not o.study then return nil, errors.input("a series needs its study (study=)") end
  if o.instance and not o.series then return nil, errors.input("an instance needs its series (series=)") end
  local p = ""
  if o.study then p = p .. "/studies/" .. o.study end
  if o.series then p = p .. "/series/" .. o.series end
  if o.instance then p = p .. "/instances/" .. o.instance end
  return p
end

local function what_of(o)
  if o.instance then return ("instance %s"):format(o.instance) end
  if o.series then return ("series %s"):format(o.series) end
  return ("study %s"):format(o.study)
end

-- ==================== STOW-RS ====================

-- Read the DICOM JSON (or XML) answer of a STOW into { referenced = {sop -> item},
-- failed = { {sop=, code=, detail=} ... } }.
local function parse_stow_body(res)
  local out = { referenced = {}, failed = {}, nref = 0 }
  local body = res.body or ""
  if body == "" then return out end
  local ct = (res.headers and res.headers["content-type"] or ""):lower()
  if ct:find("json", 1, true) or body:match("^%s*[{%[]") then
    local doc = json.decode(body)
    if type(doc) ~= "table" then return out end
    if doc[1] then doc = doc[1] end -- some servers answer an array of one dataset
    local function seq(tag)
      local a = doc[tag]
      return type(a) == "table" and type(a.Value) == "table" and a.Value or {}
    end
    for _, item in ipairs(seq("00081199")) do
      local sop = dicomweb.value(item, "00081155")
      if sop then out.referenced[sop] = { warning = dicomweb.value(item, "00081196") }; out.nref = out.nref + 1 end
    end
    for _, item in ipairs(seq("00081198")) do
      local detail
      for tag, a in pairs(item) do
        if type(a) == "table" and (a.vr == "LT" or a.vr == "ST" or a.vr == "UT" or a.vr == "LO")
           and tag:sub(1, 4) ~= "0008" and type(a.Value) == "table" and type(a.Value[1]) == "string" then
          detail = a.Value[1]
        end
      end
      out.failed[#out.failed + 1] = { sop = dicomweb.value(item, "00081155"),
        code = math.tointeger(dicomweb.value(item, "00081197")), detail = detail }
    end
  elseif body:find("NativeDicomModel", 1, true) then
    -- XML: pull the two sequences apart with patterns (enough for STOW answers).
    local function items_of(tag)
      local s = body:match('<DicomAttribute[^>]-tag="' .. tag .. '"[^>]*>(.-)</DicomAttribute>%s*<DicomAttribute[^>]-tag="0008119')
        or body:match('<DicomAttribute[^>]-tag="' .. tag .. '"[^>]*>(.*)</DicomAttribute>')
      local list = {}
      if s then for it in s:gmatch("<Item[^>]*>(.-)</Item>") do list[#list + 1] = it end end
      return list
    end
    local function val(it, tag)
      return it:match('tag="' .. tag .. '"[^>]*>%s*<Value[^>]*>([^<]*)</Value>')
    end
    for _, it in ipairs(items_of("00081199")) do
      local sop = val(it, "00081155")
      if sop then out.referenced[sop] = {}; out.nref = out.nref + 1 end
    end
    for _, it in ipairs(items_of("00081198")) do
      out.failed[#out.failed + 1] = { sop = val(it, "00081155"), code = math.tointeger(tonumber(val(it, "00081197") or "")),
        detail = it:match('vr="LT"[^>]*>%s*<Value[^>]*>([^<]*)</Value>') }
    end
  end
  return out
end

local function failure_text(f)
  local meaning = f.code and FAILURE_REASONS[f.code]
  local code = f.code and ("FailureReason 0x%04X%s"):format(f.code, meaning and (" " .. meaning) or "") or nil
  if f.detail and code then return f.detail .. " (" .. code .. ")" end
  return f.detail or code or "the server reported a failure"
end

local function is_duplicate(f)
  if f.code == 0x0111 or f.code == 0xA770 then return true end
  local d = (f.detail or ""):lower()
  return d:find("already exist", 1, true) ~= nil or d:find("duplicate", 1, true) ~= nil
end

local BAD_HEADER = { not_dicom = true, no_preamble = true, truncated = true, bad_meta = true,
  bad_vr_length = true, missing_uid = true, bad_uid = true }

local known_store = { concurrency = true, batch = true, batch_bytes = true, study = true, on_progress = true,
  multipart = true, check = true }

--- Store DICOM files (STOW-RS). `paths` is a path or a list of paths; folders are walked
-- recursively. Options: `concurrency` (requests in flight; default: the engine adapts it,
-- 16..64), `batch` (files per request, default 1: one single-part `application/dicom` request per file; N > 1: a
-- `multipart/related` request of up to N files, also capped by `batch_bytes`, default 256 MiB),
-- `multipart` (true: always multipart, even for one file), `study` (post to `/studies/UID`),
-- `check` (default true: read each file's DICOM header first and fail non-DICOM files locally),
-- `on_progress(p)` with `p.files_done, p.files_total, p.bytes_done, p.bytes_total, p.stored,
-- p.already_present, p.failed, p.result` (the result that just finished, if any).
-- A server that answers a single-part request with 415 (Orthanc) gets multipart from then on
-- (for the rest of the process; `summary.multipart_fallback` is true when this call found out).
-- Returns a summary `{ total=, stored=, already_present=, failed=, bytes=, seconds=, results={...} }`
-- where each result is `{ path=, size=, status="stored"|"already_present"|"failed",
-- sop_instance_uid=, study_instance_uid=, series_instance_uid=, reason=, failure_reason=,
-- http_status=, err= }`, in input order. Raises on unknown options.
function DW:store(paths, opts)
  opts = options.check(opts or {}, known_store, "dicomweb:store")
  if type(paths) == "string" then paths = { paths } end
  if type(paths) ~= "table" then error("dicomweb:store: paths must be a path or a list of paths", 2) end
  local ok, uerr = check_uid(opts.study, "study")
  if not ok then return nil, uerr end
  -- unset: hand the engine as many as it may run (csrc/dg_pace.h DG_PACE_MAX); it picks how many
  local concurrency = math.max(1, math.tointeger(opts.concurrency) or 64)
  local batch = math.max(1, math.tointeger(opts.batch) or 1)
  local batch_bytes = opts.batch_bytes or 256 * 1024 * 1024
  local t0 = core.monotime()
  local results = {}
  local summary = { total = 0, stored = 0, already_present = 0, failed = 0, bytes = 0, results = results }
  local progress = { files_done = 0, files_total = 0, bytes_done = 0, bytes_total = 0 }

  local function finish(r, status, fields)
    r.status = status
    for k, v in pairs(fields or {}) do r[k] = v end
    summary[status] = summary[status] + 1
    if status ~= "failed" then summary.bytes = summary.bytes + (r.size or 0) end
    progress.files_done = progress.files_done + 1
    progress.bytes_done = progress.bytes_done + (r.size or 0)
    if opts.on_progress then
      progress.stored, progress.already_present, progress.failed = summary.stored, summary.already_present, summary.failed
      progress.result = r
      opts.on_progress(progress)
      progress.result = nil
    end
  end

  -- 1. Expand the inputs; check each file's header.
  local pending = {}
  for _, p in ipairs(paths) do
    local files, ferr = localpath.files(p)
    if not files then
      local r = { path = p }
      results[#results + 1] = r
      finish(r, "failed", { reason = ferr.message, err = ferr })
    elseif #files == 0 then
      local r = { path = p }
      results[#results + 1] = r
      local e = errors.input(p .. ": the folder holds no files", "give a folder with DICOM files")
      finish(r, "failed", { reason = e.message, err = e })
    else
      for _, f in ipairs(files) do
        local r = { path = f.path, size = f.size }
        results[#results + 1] = r
        progress.bytes_total = progress.bytes_total + f.size
        if opts.check ~= false then
          local h, herr = dicomfile.read_header_file(f.path, 16384)
          if not h then
            local e = errors.new{ kind = "io", message = "cannot read " .. tostring(herr) }
            finish(r, "failed", { reason = e.message, err = e })
          elseif BAD_HEADER[h.status] then
            local e = errors.input(("%s is not a DICOM file we can send: %s"):format(f.path, h.reason or h.status),
              "only DICOM Part 10 files (128-byte preamble, DICM, file meta) can be stored")
            finish(r, "failed", { reason = e.message, err = e, dicom_status = h.status })
          elseif opts.study and h.study_uid and h.study_uid ~= opts.study then
            local e = errors.input(("%s belongs to study %s, not %s"):format(f.path, h.study_uid, opts.study))
            finish(r, "failed", { reason = e.message, err = e })
          else
            r.sop_instance_uid, r.study_instance_uid, r.series_instance_uid = h.sop_instance_uid, h.study_uid, h.series_uid
            pending[#pending + 1] = r
          end
        else
          pending[#pending + 1] = r
        end
      end
    end
  end
  summary.total = #results
  progress.files_total = #results

  -- 2. Group into jobs.
  local jobs = {}
  local cur, cur_bytes = nil, 0
  for _, r in ipairs(pending) do
    if not cur or #cur >= batch or (cur_bytes + (r.size or 0) > batch_bytes and #cur > 0) then
      cur, cur_bytes = {}, 0
      jobs[#jobs + 1] = cur
    end
    cur[#cur + 1] = r
    cur_bytes = cur_bytes + (r.size or 0)
  end

  local url = self.base_url .. "/studies" .. (opts.study and ("/" .. opts.study) or "")
  local base_key = self.base_url
  local function build(job)
    local multipart = opts.multipart or #job > 1 or multipart_only[base_key]
    local req = { method = "POST", url = url }
    if not multipart then
      req.headers = with_headers(self, { "Content-Type: application/dicom", "Accept: application/dicom+json" })
      req.body_file = job[1].path
    else
      local boundary = "dicomgcs-" .. core.random_hex(16)
      local parts = {}
      for i, r in ipairs(job) do
        parts[#parts + 1] = { data = (i == 1 and "" or "\r\n") .. "--" .. boundary ..
          "\r\nContent-Type: application/dicom\r\n\r\n" }
        parts[#parts + 1] = { file = r.path }
      end
      parts[#parts + 1] = { data = "\r\n--" .. boundary .. "--\r\n" }
      req.headers = with_headers(self, { 'Content-Type: multipart/related; type="application/dicom"; boundary=' .. boundary,
        "Accept: application/dicom+json" })
      req.body_parts = parts
    end
    job.multipart = multipart and true or false
    return req
  end

  local function settle(job, done, req)
    local res = done.res
    local what = "store " .. (#job == 1 and job[1].path or (#job .. " files from " .. job[1].path))
    if not res then
      local e = errors.from_transport(done.err, req.url, what)
      for _, r in ipairs(job) do finish(r, "failed", { reason = e.message, err = e }) end
      return
    end
    if res.status == 415 and not job.multipart then
      multipart_only[base_key] = true
      summary.multipart_fallback = true
      return "again"
    end
    local parsed = parse_stow_body(res)
    -- failures the server named by SOP Instance UID, then unnamed ones in order
    local by_sop, unnamed = {}, {}
    for _, f in ipairs(parsed.failed) do
      if f.sop then by_sop[f.sop] = f else unnamed[#unnamed + 1] = f end
    end
    local ok2xx = res.status >= 200 and res.status < 300
    local leftovers = {}
    for _, r in ipairs(job) do
      local sop = r.sop_instance_uid
      local f = sop and by_sop[sop]
      if f then
        local text = failure_text(f)
        if is_duplicate(f) then
          finish(r, "already_present", { reason = text, failure_reason = f.code, http_status = res.status })
        else
          local e = errors.new{ kind = "http", http_status = res.status, failure_reason = f.code, url = req.url,
            message = ("%s: %s"):format(r.path, text) }
          finish(r, "failed", { reason = text, failure_reason = f.code, http_status = res.status, err = e })
        end
      elseif sop and parsed.referenced[sop] then
        finish(r, "stored", { http_status = res.status, warning_reason = parsed.referenced[sop].warning })
      else
        leftovers[#leftovers + 1] = r
      end
    end
    for i, r in ipairs(leftovers) do
      local f = unnamed[i]
      if f then
        local text = failure_text(f)
        local e = errors.new{ kind = "http", http_status = res.status, failure_reason = f.code, url = req.url,
          message = ("%s: %s"):format(r.path, text) }
        finish(r, is_duplicate(f) and "already_present" or "failed",
          { reason = text, failure_reason = f.code, http_status = res.status, err = not is_duplicate(f) and e or nil })
      elseif ok2xx and (#parsed.failed == 0 or parsed.nref > 0 or res.status == 200) then
        finish(r, "stored", { http_status = res.status })
      else
        local e = errors.from_response(res, req.url, "store " .. r.path)
        finish(r, "failed", { reason = e.message, http_status = res.status, err = e })
      end
    end
  end

  -- 3. Run them, `concurrency` at a time.
  local eng = self.transport.engine
  local inflight, n_inflight, next_job = {}, 0, 1
  local queue_again = {}
  local function submit(job)
    local req = build(job)
    if opts.on_progress then
      local last = 0
      req.on_progress = function(sent)
        local now = core.monotime()
        if now - last >= 0.2 then
          last = now
          progress.sending = sent
          opts.on_progress(progress)
        end
      end
    end
    local id = self.transport:submit(req)
    inflight[id] = { job = job, req = req }
    n_inflight = n_inflight + 1
  end
  while true do
    while n_inflight < concurrency and (#queue_again > 0 or next_job <= #jobs) do
      if #queue_again > 0 then submit(table.remove(queue_again, 1))
      else submit(jobs[next_job]); next_job = next_job + 1 end
    end
    if n_inflight == 0 then break end
    for _, done in ipairs(eng:step(100)) do
      local slot = inflight[done.id]
      if slot then
        inflight[done.id] = nil
        n_inflight = n_inflight - 1
        if settle(slot.job, done, slot.req) == "again" then queue_again[#queue_again + 1] = slot.job end
      end
    end
  end
  summary.seconds = core.monotime() - t0
  return summary
end

-- ==================== WADO-RS ====================

local CHUNK = 1024 * 1024
local HEADER_PEEK = 256 * 1024

local function rm(p) if p then os.remove(p) end end

-- Split a multipart/related file into one file per part. `on_part(tmp_path, head_bytes, info)`
-- decides the final path of each part. Returns true or nil, message (truncated / malformed).
local function split_multipart(file, content_type, on_part)
  local parser, perr = core.multipart_parser(content_type)
  if not parser then return nil, perr end
  local f, ferr = io.open(file, "rb")
  if not f then parser:close(); return nil, ferr end
  local cur -- { out=, path=, head={}, headn=, size=, n= }
  local nparts = 0
  local failure
  local function close_cur(complete)
    if not cur then return end
    local okc, cerr = cur.out:close()
    if not okc then complete, failure = false, "cannot write " .. cur.path .. ": " .. tostring(cerr) end
    local head = table.concat(cur.head)
    on_part(cur.path, head, { part = cur.n, size = cur.size, complete = complete, headers = cur.headers })
    cur = nil
  end
  local dir = localpath.dirname(file)
  while not failure do
    local chunk = f:read(CHUNK)
    if not chunk then break end
    local events, err, before = parser:feed(chunk)
    local list = events or before or {}
    for _, ev in ipairs(list) do
      if ev.type == "begin" then
        nparts = nparts + 1
        -- created O_EXCL|O_NOFOLLOW under a random name (nothing planted there is followed), then
        -- opened by name: the folder is the caller's own
        local p, oerr = core.create_temp((dir ~= "" and dir or ".") .. "/part")
        local out = p and io.open(p, "wb")
        if not out then rm(p); failure = "cannot write " .. tostring(oerr or p); break end
        cur = { out = out, path = p, head = {}, headn = 0, size = 0, n = nparts, headers = ev.headers }
      elseif ev.type == "data" and cur then
        local okw, werr = cur.out:write(ev.data)
        if not okw then failure = "cannot write " .. cur.path .. ": " .. tostring(werr); break end
        cur.size = cur.size + #ev.data
        if cur.headn < HEADER_PEEK then
          local piece = ev.data:sub(1, HEADER_PEEK - cur.headn)
          cur.head[#cur.head + 1] = piece
          cur.headn = cur.headn + #piece
        end
      elseif ev.type == "end" then
        close_cur(true)
      end
    end
    if not events then failure = err end
  end
  f:close()
  if not failure then
    local okf, ferr2 = parser:finish()
    if not okf then failure = ferr2 end
  end
  parser:close()
  if cur then
    cur.out:close()
    on_part(cur.path, table.concat(cur.head), { part = cur.n, size = cur.size, complete = false, error = failure })
    cur = nil
  end
  if failure then return nil, failure, nparts end
  return true, nil, nparts
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
-- nil, Error when the request itself fails (e.g. 404 for a study that does not exist). A
-- truncated response keeps the complete instances and reports the cut one as failed, with
-- `summary.err` set.
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
  local tmp = dest .. "/.dicomgcs-wado-" .. core.random_hex(8) .. ".tmp"
  local ts = o.transfer_syntax or "*"
  local req = { method = "GET", url = self.base_url .. path, output_file = tmp,
    headers = with_headers(self, { 'Accept: multipart/related; type="application/dicom"; transfer-syntax=' .. ts }) }
  if o.on_progress then
    req.on_progress = function(_, _, received, total) o.on_progress(received, total) end
  end
  local res, err = self.transport:request(req, "retrieve " .. what_of(o))
  if not res then rm(tmp); return nil, err end
  local ct = res.headers["content-type"] or ""
  local results = {}
  local summary = { instances = 0, failed = 0, bytes = 0, results = results }
  local seen = {}
  local function place(tmp_part, head, info)
    local r = { size = info.size, part = info.part }
    results[#results + 1] = r
    local function fail(msg, kind)
      rm(tmp_part)
      r.status = "failed"
      r.err = errors.new{ kind = kind or "input", message = msg }
      summary.failed = summary.failed + 1
    end
    if not info.complete then
      return fail(("part %d of the response is incomplete (%s); nothing was written for it"):format(
        info.part, tostring(info.error or "the response ended inside it")), "transport")
    end
    local h = core.dicom_header(head, #head == info.size)
    local sop, study, series = h.sop_instance_uid, h.study_uid, h.series_uid
    if not sop then
      return fail(("part %d is not a DICOM instance we can name (%s)"):format(info.part, h.reason or h.status))
    end
    for _, u in ipairs{ sop, study or "", series or "" } do
      if u ~= "" and not dicomweb.valid_uid(u) then
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
  if ct:lower():match("^%s*multipart/") then
    local sok, serr, nparts = split_multipart(tmp, ct, place)
    if not sok then
      summary.err = errors.new{ kind = "transport", message = ("retrieve %s: the multipart response is broken after %d part(s): %s"):format(
        what_of(o), nparts or 0, tostring(serr)), url = req.url }
      if (nparts or 0) == 0 then summary.failed = summary.failed + 1 end
    end
  else
    -- a single-part answer (some servers do this for an instance)
    local f = io.open(tmp, "rb")
    local head = f and f:read(HEADER_PEEK) or ""
    if f then f:close() end
    local st = core.stat(tmp)
    local copy = dest .. "/.dicomgcs-part-" .. core.random_hex(6) .. ".tmp"
    os.rename(tmp, copy)
    place(copy, head, { part = 1, size = st and st.size or #head, complete = true })
  end
  rm(tmp)
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

-- ==================== QIDO-RS ====================

local LEVELS = { studies = true, series = true, instances = true }
local known_search = { study = true, series = true, filters = true, include_fields = true, limit = true,
  offset = true, page_size = true, fuzzy = true }

local function search_url(self, level, o)
  if not LEVELS[level] then error("dicomweb: search level must be 'studies', 'series' or 'instances'", 3) end
  local path, perr = resource_path{ study = o.study, series = o.series }
  if not path then return nil, perr end
  if level == "studies" and o.study then return nil, errors.input("search studies takes no study=; use filters={StudyInstanceUID=...}") end
  if level == "series" and o.series then return nil, errors.input("search series takes no series=") end
  return self.base_url .. path .. "/" .. level
end

local function query_string(o, limit, offset)
  local q = {}
  for k, v in pairs(o.filters or {}) do
    if type(k) ~= "string" then error("dicomweb: filters must be a table keyword = value", 3) end
    q[k] = type(v) == "table" and table.concat(v, ",") or tostring(v)
  end
  if o.include_fields then
    local f = o.include_fields
    q.includefield = type(f) == "table" and table.concat(f, ",") or tostring(f)
  end
  if o.fuzzy then q.fuzzymatching = "true" end
  q.limit = limit
  q.offset = offset and offset > 0 and offset or nil
  -- Escape only what cannot stand in a query value: some servers (Orthanc 1.10) match the raw
  -- text, so `*`, `?`, `^` and `,` (wildcards, name parts, UID lists) stay as they are.
  local keys = {}
  for k in pairs(q) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  local function esc(v)
    return (tostring(v):gsub("[^%w%-%._~%*%?%^,:/@!$'()]", function(c) return ("%%%02X"):format(c:byte()) end))
  end
  for _, k in ipairs(keys) do parts[#parts + 1] = esc(k) .. "=" .. esc(q[k]) end
  return #parts > 0 and ("?" .. table.concat(parts, "&")) or ""
end

--- Search pages (QIDO-RS). `level` is "studies", "series" or "instances"; `o.study` /
-- `o.series` scope the search; `o.filters` = { PatientName = "DOE*", StudyDate = "20240101-",
-- StudyInstanceUID = {"1.2", "1.3"}, ... } (keywords or tags); `o.include_fields` a list
-- (or "all"); `o.page_size` (per request; default the server's); `o.offset` (start);
-- `o.limit` (most results in all). Returns a function that gives the next page (a non-empty
-- array of DICOM JSON objects), nil at the end, or nil, Error. Raises on unknown options.
function DW:pages(level, o)
  o = options.check(o or {}, known_search, "dicomweb:pages")
  local url, uerr = search_url(self, level, o)
  local offset = o.offset or 0
  local got, finished, last_first = 0, false, nil
  return function()
    if not url then
      if uerr then local e = uerr; uerr = nil; return nil, e end
      return nil
    end
    if finished then return nil end
    local want = o.page_size
    if o.limit then
      local left = o.limit - got
      if left <= 0 then finished = true; return nil end
      want = want and math.min(want, left) or left
    end
    local full = url .. query_string(o, want, offset)
    local res, err = self.transport:request({ method = "GET", url = full,
      headers = with_headers(self, { "Accept: application/dicom+json" }) }, "search " .. level)
    if not res then finished = true; return nil, err end
    local page = {}
    if res.status ~= 204 and res.body and res.body:match("%S") then
      local doc, jerr = json.decode(res.body, "search " .. level)
      if type(doc) ~= "table" then
        finished = true
        return nil, errors.new{ kind = "json", message = jerr or "search answer is not a JSON array", url = full }
      end
      page = doc
    end
    if #page == 0 then finished = true; return nil end
    -- a server that ignores offset would send the same page forever
    local first = json.encode(page[1])
    if first == last_first then finished = true; return nil end
    last_first = first
    got, offset = got + #page, offset + #page
    local more = (res.headers.warning or ""):lower():find("additional results", 1, true)
    -- without a Warning, a short page is the last; with no page size asked, the server chose
    -- one, so go on until an empty page
    if not more and want and #page < want then finished = true end
    return page
  end
end

--- Iterate over search results one DICOM JSON object at a time (see `pages` for the options).
-- `for study in dw:search("studies", { filters = { PatientID = "P1" } }) do ... end`.
-- Returns the iterator (not an array: `#` does not apply), or nil, Error for bad arguments; a
-- failure mid-way raises the Error. To collect: `local all = {}; for s in dw:search(...) do
-- all[#all + 1] = s end`, or `dw:search_all(...)` (an array, or nil, Error).
function DW:search(level, o)
  o = options.check(o or {}, known_search, "dicomweb:search")
  local _, uerr = search_url(self, level, o)
  if uerr then return nil, uerr end
  return paging.each(self:pages(level, o))
end

--- Every result of a search as one array, or nil, Error.
function DW:search_all(level, o)
  o = options.check(o or {}, known_search, "dicomweb:search_all")
  local _, uerr = search_url(self, level, o)
  if uerr then return nil, uerr end
  return paging.all(self:pages(level, o))
end

-- ==================== Delete ====================

local known_delete = { study = true, series = true, instance = true, wait = true, timeout = true }

-- DICOMweb has no standard delete; Orthanc's DICOMweb plugin answers 405. When the server is an
-- Orthanc (its REST root answers /system), delete through its REST API: /tools/lookup finds the
-- Orthanc id of the UID, then DELETE that resource. Returns true, nil when not Orthanc, or nil, Error.
local function orthanc_delete(self, o, what)
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
  local path, perr = resource_path(o)
  if not path then return nil, perr end
  local url = self.base_url .. path
  local what = "delete " .. what_of(o)
  local res, err = self.transport:request({ method = "DELETE", url = url, headers = with_headers(self, {}) }, what)
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

return dicomweb
