--- Pre-flight check of DICOM Part 10 files (thin wrapper over the C reader).
--
-- The check reads only the first bytes of a file: the preamble, the file meta
-- group, and the dataset up to the Study / Series / SOP Instance / SOP Class
-- UIDs, and says whether the Healthcare API import is likely to reject it.
-- Result tables (see `csrc/ldg_parse.c` for every field):
--
--   { ok = bool, status = "ok"|"not_dicom"|"no_preamble"|"truncated"|"bad_meta"|
--     "bad_vr_length"|"missing_uid"|"bad_uid"|"need_more_data",
--     reason = "names the tag and byte offset", offset = n,
--     warning = "a defect the import is expected to accept" (or nil: the meta group disagreeing
--       with the dataset, an identifying UID with a VR other than UI),
--     transfer_syntax =, study_uid =, series_uid =, sop_instance_uid =, sop_class_uid =,
--     meta_sop_instance_uid =, meta_sop_class_uid =, dataset_inspected = bool }
--
-- `DEFAULT_MAX_BYTES` (64 KiB, the first read) and `GROW_LIMIT` (4 MiB, the most ever read for
-- a header) are the one definition of these limits; `dicomgcs.check` uses them for bucket objects.
-- @module dicomgcs.dicomfile

local core = require "dicomgcs.core"

local M = {}

M.DEFAULT_MAX_BYTES = 64 * 1024
M.GROW_LIMIT = 4 * 1024 * 1024

--- Check bytes already in memory (a whole file, or its first bytes).
-- @tparam string bytes
-- @tparam[opt=false] boolean complete true when `bytes` is the whole file
-- @treturn table the result table
-- @raise when bytes is not a string
function M.check_bytes(bytes, complete)
  if type(bytes) ~= "string" then
    error("dicomfile.check_bytes: bytes must be a string, got " .. type(bytes), 2)
  end
  return core.dicom_header(bytes, complete and true or false)
end

--- Check a local file, reading at most `max_bytes` first and more (up to
-- `GROW_LIMIT`, or `max_bytes` if larger) while the reader says need_more_data.
-- @tparam string path
-- @tparam[opt=65536] integer max_bytes first read size
-- @treturn table the result table
-- @return[2] nil
-- @treturn[2] string error for an unreadable file
-- @usage local r = assert(dicomfile.read_header_file("a.dcm"))
--   if not r.ok then print(r.status, r.reason) end
function M.read_header_file(path, max_bytes)
  if type(path) ~= "string" then
    error("dicomfile.read_header_file: path must be a string, got " .. type(path), 2)
  end
  max_bytes = max_bytes or M.DEFAULT_MAX_BYTES
  if math.type(max_bytes) ~= "integer" or max_bytes < 1 then
    error("dicomfile.read_header_file: max_bytes must be a positive integer", 2)
  end
  local limit = math.max(max_bytes, M.GROW_LIMIT)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data, rerr = f:read(max_bytes)
  if rerr then f:close(); return nil, path .. ": " .. tostring(rerr) end
  data = data or ""
  local complete = #data < max_bytes or f:read(0) == nil
  local res = core.dicom_header(data, complete)
  while res.status == "need_more_data" and not complete and #data < limit do
    local want = math.min(limit, math.max(res.need or 0, #data * 2))
    local more, merr = f:read(want - #data)
    if merr then f:close(); return nil, path .. ": " .. tostring(merr) end
    if more then data = data .. more end
    complete = not more or #data < want or f:read(0) == nil
    res = core.dicom_header(data, complete)
  end
  f:close()
  return res
end

return M
