--- Synthetic DICOM test data made with dcmtk's `dump2dcm`: several studies, series and
-- instances, some in sub-folders, for demos and for testing one's own pipelines offline.
-- Needs the dcmtk package (`apt-get install dcmtk`).
-- @module dicomgcs.testdata
local atomicfile = require "dicomgcs.atomicfile"
local core = require "dicomgcs.core"
local errors = require "dicomgcs.errors"

local testdata = {}

-- An example UID root for generated test data (see PS3.5 §9; this is Medical Connections'
-- documented root for generated UIDs, used by pydicom too). Never use it for real data.
testdata.UID_ROOT = "1.2.826.0.1.3680043.8.498"

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function write_file(path, bytes)
  return atomicfile.write(path, bytes, { sync = false })
end

-- A little-endian 16-bit gradient, different per instance so files differ in content.
local function pixels(rows, cols, seed)
  local parts = {}
  for r = 0, rows - 1 do
    local row = {}
    for c = 0, cols - 1 do
      local v = ((r * 7 + c * 3 + seed * 13) % 4096)
      row[#row + 1] = string.pack("<I2", v)
    end
    parts[#parts + 1] = table.concat(row)
  end
  return table.concat(parts)
end

local function dump_text(inst, o, pixel_file)
  return table.concat({
    "(0008,0016) UI =CTImageStorage",
    "(0008,0018) UI " .. inst.sop_uid,
    "(0008,0020) DA " .. o.study_date,
    "(0008,0060) CS " .. (o.modality or "CT"),
    "(0010,0010) PN [" .. inst.patient_name .. "]",
    "(0010,0020) LO " .. inst.patient_id,
    "(0020,000d) UI " .. inst.study_uid,
    "(0020,000e) UI " .. inst.series_uid,
    "(0020,0011) IS " .. inst.series_number,
    "(0020,0013) IS " .. inst.instance_number,
    "(0028,0002) US 1",
    "(0028,0004) CS MONOCHROME2",
    "(0028,0010) US " .. o.rows,
    "(0028,0011) US " .. o.cols,
    "(0028,0100) US 16",
    "(0028,0101) US 12",
    "(0028,0102) US 11",
    "(0028,0103) US 0",
    "(7fe0,0010) OW =" .. pixel_file,
  }, "\n") .. "\n"
end

--- Write a DICOM file from dcmtk dump text (the `dcmdump` format, one element a line) with
-- `dump2dcm`; `args` are extra dump2dcm options (e.g. "+te -e", already shell-quoted). The dump
-- is written to `path .. ".dump"` and removed. Returns true or nil, Error.
function testdata.dump2dcm(text, path, args)
  local dump_file = path .. ".dump"
  local ok, err = write_file(dump_file, text)
  if not ok then return nil, err end
  local cmd = ("dump2dcm %s %s %s 2>&1"):format(args or "", shell_quote(dump_file), shell_quote(path))
  local p = io.popen(cmd)
  local msg = p:read("a")
  local closed_ok = p:close()
  os.remove(dump_file)
  if not closed_ok then
    return nil, errors.new{ kind = "io", message = "dump2dcm failed for " .. path .. ": " .. msg,
      hint = "is dcmtk installed? (apt-get install dcmtk)" }
  end
  return true
end

--- Generate `studies` × `series` × `instances` DICOM files under `o.dir`.
-- Options: `dir` (required), `studies` (2), `series` (2 per study), `instances` (3 per series),
-- `rows`/`cols` (64), `nested` (true: `study-N/series-M/` sub-folders for every study but the
-- first, whose files lie at the top), `prefix` (file-name prefix), `modality` ("CT"),
-- `uid_seed` (default random, to make UIDs unique across runs).
-- Returns a list of { path=, rel=, study_uid=, series_uid=, sop_uid= } or nil, Error.
function testdata.generate(o)
  assert(type(o) == "table" and type(o.dir) == "string", "testdata.generate: dir is required")
  o.studies, o.series, o.instances = o.studies or 2, o.series or 2, o.instances or 3
  o.rows, o.cols = o.rows or 64, o.cols or 64
  o.study_date = o.study_date or "20260101"
  if o.nested == nil then o.nested = true end
  local seed = o.uid_seed or (math.random(1, 999999999) .. os.time() % 100000)
  local ok, err = core.mkdir_p(o.dir)
  if not ok then return nil, errors.new{ kind = "io", message = "cannot create " .. err } end
  local work = o.dir .. "/.dump2dcm"
  core.mkdir_p(work)
  local out = {}
  for s = 1, o.studies do
    local study_uid = ("%s.%s.%d"):format(testdata.UID_ROOT, seed, s)
    for se = 1, o.series do
      local series_uid = ("%s.%d"):format(study_uid, se)
      for i = 1, o.instances do
        local inst = {
          study_uid = study_uid, series_uid = series_uid, sop_uid = ("%s.%d"):format(series_uid, i),
          patient_name = ("Test^Patient%d"):format(s), patient_id = ("PID%04d"):format(s),
          series_number = se, instance_number = i,
        }
        local rel = (o.prefix or "") .. ("s%d-se%d-i%d.dcm"):format(s, se, i)
        if o.nested and s > 1 then rel = ("study-%d/series-%d/%s"):format(s, se, rel) end
        inst.rel, inst.path = rel, o.dir .. "/" .. rel
        local pixel_file = work .. "/pixels.raw"
        ok, err = write_file(pixel_file, pixels(o.rows, o.cols, #out))
        if not ok then return nil, err end
        core.mkdir_p(inst.path:match("^(.*)/"))
        ok, err = testdata.dump2dcm(dump_text(inst, o, pixel_file), inst.path)
        if not ok then return nil, err end
        out[#out + 1] = inst
      end
    end
  end
  os.remove(work .. "/pixels.raw"); os.remove(work)
  return out
end

--- Many files fast: one file made with `dump2dcm`, then `count` copies with their own UIDs
-- (written at the same length, so each copy stays a valid file; no process per file).
-- Options: `dir` (required), `count` (required), `instances` (10 per series), `series` (2 per
-- study), `prefix`, `uid_seed`. Files lie in `study-N/series-M/` sub-folders.
-- Returns a list of { path=, rel=, study_uid=, series_uid=, sop_uid= } or nil, Error.
function testdata.generate_many(o)
  assert(type(o) == "table" and type(o.dir) == "string", "testdata.generate_many: dir is required")
  local count = math.tointeger(o.count)
  assert(count and count >= 1 and count < 8999999, "testdata.generate_many: count must be an integer from 1")
  local per_series, per_study = o.instances or 10, o.series or 2
  -- Fixed-width components (1000000 + n, never a leading zero) keep every UID the same length;
  -- the template's 9999999 never occurs in a copy.
  local seed = tostring(o.uid_seed or (math.random(1, 999999999) .. os.time() % 100000))
  assert(seed:match("^[1-9]%d*$") and #seed <= 14, "testdata.generate_many: uid_seed must be digits (at most 14)")
  local function uids(st, se, i)
    local study = ("%s.%s.%d"):format(testdata.UID_ROOT, seed, 1000000 + st)
    local series = ("%s.%d"):format(study, 1000000 + se)
    return study, series, ("%s.%d"):format(series, 1000000 + i), ("PID%07d"):format(st)
  end
  local t_study, t_series, t_sop, t_pid = uids(8999999, 8999999, 8999999)
  local ok, err = core.mkdir_p(o.dir)
  if not ok then return nil, errors.new{ kind = "io", message = "cannot create " .. err } end
  local work, tmpl = o.dir .. "/.dump2dcm", o.dir .. "/.dump2dcm/template.dcm"
  core.mkdir_p(work)
  local inst = { study_uid = t_study, series_uid = t_series, sop_uid = t_sop, patient_name = "Test^Patient",
    patient_id = t_pid, series_number = 1, instance_number = 1 }
  local d = { rows = o.rows or 8, cols = o.cols or 8, study_date = "20260101" }
  ok, err = write_file(work .. "/pixels.raw", pixels(d.rows, d.cols, 1))
  if ok then ok, err = write_file(work .. "/instance.dump", dump_text(inst, d, work .. "/pixels.raw")) end
  if not ok then return nil, err end
  local p = io.popen(("dump2dcm %s %s 2>&1"):format(shell_quote(work .. "/instance.dump"), shell_quote(tmpl)))
  local msg = p:read("a")
  if not p:close() then
    return nil, errors.new{ kind = "io", message = "dump2dcm failed: " .. msg, hint = "is dcmtk installed? (apt-get install dcmtk)" }
  end
  local f = assert(io.open(tmpl, "rb"))
  local bytes = f:read("a")
  f:close()
  for _, name in ipairs{ "pixels.raw", "instance.dump", "template.dcm" } do os.remove(work .. "/" .. name) end
  os.remove(work)
  -- plain (not pattern) replacement of every occurrence, longest UID first: the study UID is a
  -- prefix of the series UID, itself a prefix of the SOP UID
  local function swap(b, from, to)
    local parts, pos = {}, 1
    while true do
      local i, j = b:find(from, pos, true)
      if not i then break end
      parts[#parts + 1] = b:sub(pos, i - 1) .. to
      pos = j + 1
    end
    parts[#parts + 1] = b:sub(pos)
    return table.concat(parts)
  end
  local out = {}
  for n = 0, count - 1 do
    local st, rest = n // (per_series * per_study) + 1, n % (per_series * per_study)
    local se, i = rest // per_series + 1, rest % per_series + 1
    local study, series, sop, pid = uids(st, se, i)
    local b = swap(swap(swap(swap(bytes, t_sop, sop), t_series, series), t_study, study), t_pid, pid)
    local rel = ("study-%d/series-%d/%ss%d-se%d-i%d.dcm"):format(st, se, o.prefix or "", st, se, i)
    local path = o.dir .. "/" .. rel
    core.mkdir_p(path:match("^(.*)/"))
    local wf, werr = io.open(path, "wb")
    if not wf then return nil, errors.new{ kind = "io", message = "cannot write " .. tostring(werr) } end
    wf:write(b)
    wf:close()
    out[#out + 1] = { path = path, rel = rel, study_uid = study, series_uid = series, sop_uid = sop }
  end
  return out
end

return testdata
