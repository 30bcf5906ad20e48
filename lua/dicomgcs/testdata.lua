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

return testdata
