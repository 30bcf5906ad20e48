--- STOW-RS, part of dicomgcs.dicomweb: the handle's `store`, on the one scheduler
-- (`dicomgcs.runner`: each request, one file or one multipart batch, is a job, so
-- concurrency, progress and cancel behave as in Cloud Storage transfers), and `stow.match`,
-- the pure function that says which answer belongs to which file.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal
-- modules". Its methods are documented with dicomgcs.dicomweb.
-- @submodule dicomgcs.dicomweb
local core = require "dicomgcs.core"
local dicomfile = require "dicomgcs.dicomfile"
local errors = require "dicomgcs.errors"
local json = require "dicomgcs.json"
local localpath = require "dicomgcs.localpath"
local multipart = require "dicomgcs.multipart"
local options = require "dicomgcs.options"
local runner = require "dicomgcs.runner"
local shared = require "dicomgcs.dicomweb.shared"

local stow = {}
local DW = {}   -- methods, installed on the handle by dicomweb/init.lua
stow.methods = DW

-- PS3.4 / PS3.18 meanings of the FailureReason values servers send.
local FAILURE_REASONS = {
  [0x0110] = "processing failure", [0x0111] = "duplicate SOP instance", [0x0112] = "no such object instance",
  [0x0117] = "invalid object instance", [0x0122] = "SOP class not supported",
  [0x0124] = "not authorized", [0xA700] = "out of resources", [0xA900] = "data set does not match SOP class",
  [0xC000] = "cannot understand", [0xC122] = "referenced transfer syntax not supported",
  [0xC409] = "study instance UID does not match", [0xA770] = "duplicate SOP instance",
}

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
    if doc[1] ~= nil then doc = doc[1] end -- some servers answer an array of one dataset
    if type(doc) ~= "table" then return out end
    local function seq(tag)
      local a = doc[tag]
      return type(a) == "table" and type(a.Value) == "table" and a.Value or {}
    end
    for _, item in ipairs(seq("00081199")) do
      local sop = shared.value(item, "00081155")
      if type(sop) == "string" then out.referenced[sop] = { warning = shared.value(item, "00081196") }; out.nref = out.nref + 1 end
    end
    for _, item in ipairs(seq("00081198")) do
      local detail
      for tag, a in pairs(type(item) == "table" and item or {}) do
        if type(tag) == "string" and type(a) == "table" and (a.vr == "LT" or a.vr == "ST" or a.vr == "UT" or a.vr == "LO")
           and tag:sub(1, 4) ~= "0008" and type(a.Value) == "table" and type(a.Value[1]) == "string" then
          detail = a.Value[1]
        end
      end
      local sop = shared.value(item, "00081155")
      out.failed[#out.failed + 1] = { sop = type(sop) == "string" and sop or nil,
        code = math.tointeger(shared.value(item, "00081197")), detail = detail }
    end
  elseif body:find("NativeDicomModel", 1, true) then
    -- XML: pull the two sequences apart with patterns (enough for STOW answers).
    -- the sequence runs from its tag to the other sequence's tag (or the end); its items do
    -- not nest
    local function items_of(tag)
      local list = {}
      local at = body:find('<DicomAttribute[^>]-tag="' .. tag .. '"')
      if not at then return list end
      local s = body:sub(at + 1)
      local other = s:find('<DicomAttribute[^>]-tag="0008119[89]"')
      if other then s = s:sub(1, other - 1) end
      for it in s:gmatch("<Item[^>]*>(.-)</Item>") do list[#list + 1] = it end
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

--- Which outcome belongs to which file of one STOW request. `files`: the request's files in
-- order (`{ path=, sop_instance_uid= }`, the UID from the file's header, nil when unread);
-- `res`: the response (`{ status=, headers=, body= }`, any status); `url`: for errors.
-- Failures the server names by SOP Instance UID (FailedSOPSequence) go to their file, then the
-- referenced ones (ReferencedSOPSequence, with any WarningReason) count as stored, then the
-- unnamed failures are given out in order; a duplicate (FailureReason 0x0111 / 0xA770, or a
-- reason saying "already exists", as a 409 carries) is "already_present". A file the answer
-- does not name is stored when the status is 2xx and the answer shows no failure it could be,
-- else failed with the HTTP error. Returns one `{ status=, reason=?, failure_reason=?,
-- warning_reason=?, http_status=, err=? }` per file, in order. Pure: no I/O.
function stow.match(files, res, url)
  local parsed = parse_stow_body(res)
  local by_sop, unnamed = {}, {}
  for _, f in ipairs(parsed.failed) do
    if f.sop then by_sop[f.sop] = f else unnamed[#unnamed + 1] = f end
  end
  local ok2xx = res.status >= 200 and res.status < 300
  local out, leftovers = {}, {}
  local function failed_by(i, f)
    local text = failure_text(f)
    if is_duplicate(f) then
      out[i] = { status = "already_present", reason = text, failure_reason = f.code, http_status = res.status }
    else
      out[i] = { status = "failed", reason = text, failure_reason = f.code, http_status = res.status,
        err = errors.new{ kind = "http", http_status = res.status, failure_reason = f.code, url = url,
          message = ("%s: %s"):format(files[i].path, text) } }
    end
  end
  for i, r in ipairs(files) do
    local sop = r.sop_instance_uid
    if sop and by_sop[sop] then
      failed_by(i, by_sop[sop])
    elseif sop and parsed.referenced[sop] then
      out[i] = { status = "stored", http_status = res.status, warning_reason = parsed.referenced[sop].warning }
    else
      leftovers[#leftovers + 1] = i
    end
  end
  for k, i in ipairs(leftovers) do
    if unnamed[k] then
      failed_by(i, unnamed[k])
    elseif ok2xx and (#parsed.failed == 0 or parsed.nref > 0 or res.status == 200) then
      out[i] = { status = "stored", http_status = res.status }
    else
      local e = errors.from_response(res, url, "store " .. files[i].path)
      out[i] = { status = "failed", reason = e.message, http_status = res.status, err = e }
    end
  end
  return out
end

local BAD_HEADER = { not_dicom = true, no_preamble = true, truncated = true, bad_meta = true,
  bad_vr_length = true, missing_uid = true, bad_uid = true }

local known_store = { concurrency = true, batch = true, batch_bytes = true, study = true, on_progress = true,
  multipart = true, check = true, interruptible = true }

--- Store DICOM files (STOW-RS). `paths` is a path or a list of paths; folders are walked
-- recursively. Options: `concurrency` (requests in flight; default: the engine adapts it,
-- 4, then 16..128), `batch` (files per
-- request, default 1: one single-part `application/dicom` request per file; N > 1: a
-- `multipart/related` request of up to N files, also capped by `batch_bytes`, default 256 MiB),
-- `multipart` (true: always multipart, even for one file), `study` (post to `/studies/UID`),
-- `check` (default true: read each file's DICOM header first and fail non-DICOM files locally),
-- `interruptible` (Ctrl-C stops the store: requests in flight are cancelled, their files and
-- the ones not sent yet fail with kind "interrupted", `summary.interrupted` is true),
-- `on_progress(p)` with `p.files_done, p.files_total, p.bytes_done, p.bytes_total, p.stored,
-- p.already_present, p.failed, p.result` (the result that just finished, if any), and
-- `p.throttled` (seconds left of the current quota wait, while 429s are being waited out).
-- A server that answers a single-part request with 415 (Orthanc) gets multipart from then on
-- (for the rest of this handle's life; `summary.multipart_fallback` is true when this call found out).
-- Returns a summary `{ total=, stored=, already_present=, failed=, bytes=, seconds=, results={...} }`
-- where each result is `{ path=, size=, status="stored"|"already_present"|"failed",
-- sop_instance_uid=, study_instance_uid=, series_instance_uid=, reason=, failure_reason=,
-- http_status=, err= }`, in input order. Raises on unknown options.
function DW:store(paths, opts)
  opts = options.check(opts or {}, known_store, "dicomweb:store")
  if type(paths) == "string" then paths = { paths } end
  if type(paths) ~= "table" then error("dicomweb:store: paths must be a path or a list of paths", 2) end
  if opts.study ~= nil then
    local ok, uerr = shared.check_uid(opts.study, "study")
    if not ok then return nil, uerr end
  end
  -- unset: hand the engine as many as it may run; it picks how many
  local concurrency = math.max(1, math.tointeger(opts.concurrency) or core.max_in_flight)
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

  -- 2. Group into requests.
  local batches = {}
  local cur, cur_bytes = nil, 0
  for _, r in ipairs(pending) do
    if not cur or #cur >= batch or (cur_bytes + (r.size or 0) > batch_bytes and #cur > 0) then
      cur, cur_bytes = {}, 0
      batches[#batches + 1] = cur
    end
    cur[#cur + 1] = r
    cur_bytes = cur_bytes + (r.size or 0)
  end

  local url = self.base_url .. "/studies" .. (opts.study and ("/" .. opts.study) or "")
  local function build(files, as_multipart)
    local req = { method = "POST", url = url }
    if not as_multipart then
      req.headers = shared.with_headers(self, { "Content-Type: application/dicom", "Accept: application/dicom+json" })
      req.body_file = files[1].path
    else
      local parts = {}
      for i, r in ipairs(files) do parts[i] = { content_type = "application/dicom", file = r.path } end
      local ct
      ct, req.body_parts = multipart.related(parts, "application/dicom")
      req.headers = shared.with_headers(self, { "Content-Type: " .. ct, "Accept: application/dicom+json" })
    end
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
    return req
  end

  -- 3. One job per request, on the one scheduler.
  local function send(files, net)
    local what = "store " .. (#files == 1 and files[1].path or (#files .. " files from " .. files[1].path))
    local as_multipart = opts.multipart or #files > 1 or self.multipart_only
    local req = build(files, as_multipart)
    local res, err = net.raw(req, what)
    if res and res.status == 415 and not as_multipart then
      self.multipart_only = true
      summary.multipart_fallback = true
      req = build(files, true)
      res, err = net.raw(req, what)
    end
    if not res then
      for _, r in ipairs(files) do finish(r, "failed", { reason = err.message, err = err }) end
      return true
    end
    for i, outcome in ipairs(stow.match(files, res, req.url)) do
      local status = outcome.status
      outcome.status = nil
      finish(files[i], status, outcome)
    end
    return true
  end

  local run = runner.new(self.transport, { max_active = concurrency, interruptible = opts.interruptible,
    step_ms = opts.on_progress and 100 or nil,
    on_step = function()
      -- quota waits happen in the engine; say so while they last (and once when they end)
      local th = self.transport.throttle and self.transport:throttle()
      if th or progress.throttled then
        progress.throttled = th and th.wait or nil
        if opts.on_progress then opts.on_progress(progress) end
      end
    end })
  for _, files in ipairs(batches) do
    run:add{ fn = function(net) return send(files, net) end, files = files }
  end
  local rs = run:run()
  -- jobs stopped before or while sending (Ctrl-C): their files fail with the stop's Error
  for k, one in ipairs(rs.results) do
    if not one.ok then
      for _, r in ipairs(batches[k]) do
        if not r.status then finish(r, "failed", { reason = one.err.message, err = one.err }) end
      end
    end
  end
  summary.interrupted, summary.cancelled = rs.interrupted, rs.cancelled
  local stats = self.transport.engine:stats()
  summary.quota_waits = stats.quota_waits
  summary.seconds = core.monotime() - t0
  return summary
end

return stow
