--- Pre-flight check: which files would the Healthcare import reject, before it is started?
-- Local files are read from disk; bucket objects with a ranged download of their first
-- bytes (64 KiB, more only when the header needs it), many at once.
-- Each result: { source=, ok=bool, status=, reason=, warning=, study_uid=, series_uid=,
-- sop_instance_uid=, transfer_syntax= } (see dicomgcs.dicomfile); the summary accounts for every
-- input: `rejected` files the import is expected to fail, `warned` files it is expected to
-- accept that are still worth a look (`warning` says why). The verdicts are the emulator's
-- (spec/check_parity_spec.lua); what Google does with each defect is partly a guess, listed in
-- emulator/README.md "Pre-flight check".
-- @module dicomgcs.check
local dicomfile = require "dicomgcs.dicomfile"
local errors = require "dicomgcs.errors"
local localpath = require "dicomgcs.localpath"
local runner = require "dicomgcs.runner"
local wildcard = require "dicomgcs.wildcard"

local check = {}

-- The header-read limits are dicomfile's, so a local file and a bucket object are judged alike.
local FIRST, MOST = dicomfile.DEFAULT_MAX_BYTES, dicomfile.GROW_LIMIT

local function summarize(results)
  local s = { total = #results, ok = 0, rejected = 0, warned = 0, results = results }
  for _, r in ipairs(results) do
    if r.ok then s.ok = s.ok + 1 else s.rejected = s.rejected + 1 end
    if r.ok and r.warning then s.warned = s.warned + 1 end
  end
  return s
end

local function result_of(source, r)
  local out = { source = source }
  for k, v in pairs(r) do out[k] = v end
  return out
end

--- Check a local file or every file under a folder. Returns a summary or nil, Error.
function check.local_files(path)
  local files, err = localpath.files(path)
  if not files then return nil, err end
  if #files == 0 then return nil, errors.input(path .. " matched no files", "the folder is empty") end
  local results = {}
  for _, f in ipairs(files) do
    local r, rerr = dicomfile.read_header_file(f.path)
    if r then
      results[#results + 1] = result_of(f.path, r)
    else
      results[#results + 1] = { source = f.path, ok = false, status = "unreadable", reason = tostring(rerr) }
    end
  end
  return summarize(results)
end

-- Fetch the first `n` bytes of each object (in parallel, one dicomgcs.runner job each) and
-- check them; objects whose header runs past `n` come back in `again`.
local function check_ranges(storage, objects, n)
  local results, again, jobs = {}, {}, {}
  for i, obj in ipairs(objects) do
    local size = tonumber(obj.size) or 0
    if size == 0 then
      results[i] = { source = obj.uri, ok = false, status = "not_dicom", reason = "the object is empty" }
    else
      jobs[#jobs + 1] = { source = obj.uri, fn = function(io)
        local res, err = io.request({ method = "GET",
          url = storage:object_url(obj.bucket, obj.name) .. "?alt=media",
          headers = { ("Range: bytes=0-%d"):format(math.min(n, size) - 1) } }, "read the header of " .. obj.uri)
        if not res then
          results[i] = { source = obj.uri, ok = false, status = "unreadable", reason = tostring(err), err = err }
          return {}
        end
        local r = dicomfile.check_bytes(res.body, #res.body >= size)
        if r.status == "need_more_data" and n < MOST and #res.body < size then
          again[#again + 1] = i
        else
          results[i] = result_of(obj.uri, r)
        end
        return {}
      end }
    end
  end
  runner.run(storage.transport, jobs, { max_active = math.max(1, #jobs) })
  table.sort(again)
  return results, again
end

--- Check the objects a `gs://` URI selects (a wildcard as the import reads it, or a prefix
-- ending in `/`). Returns a summary or nil, Error (when the listing fails).
function check.objects(storage, uri)
  local bucket, pattern = wildcard.parse_uri(uri, { allow_empty_object = true })
  if not bucket then return nil, pattern end
  local objects, err
  if pattern == "" or pattern:sub(-1) == "/" then
    objects, err = storage:match(uri .. "**")
  else
    objects, err = storage:match(uri)
  end
  if not objects then return nil, err end
  if #objects == 0 then return nil, require("dicomgcs.gcs").no_match(uri) end
  for _, o in ipairs(objects) do o.bucket = o.bucket or bucket end
  local results, again = check_ranges(storage, objects, FIRST)
  local n = FIRST
  while #again > 0 and n < MOST do
    n = n * 4
    local subset = {}
    for j, i in ipairs(again) do subset[j] = objects[i] end
    local more, still = check_ranges(storage, subset, n)
    for j, i in ipairs(again) do results[i] = more[j] end
    local next_again = {}
    for _, j in ipairs(still) do next_again[#next_again + 1] = again[j] end
    again = next_again
  end
  for _, i in ipairs(again) do
    results[i] = { source = objects[i].uri, ok = false, status = "need_more_data",
      reason = ("the header does not end within the first %d bytes"):format(MOST) }
  end
  return summarize(results)
end

--- Check a local path or a gs:// URI. Returns a summary or nil, Error.
function check.any(storage, target)
  if type(target) ~= "string" then return nil, errors.input("check: give a path or a gs:// URI") end
  if target:sub(1, 5) == "gs://" then return check.objects(storage, target) end
  return check.local_files(target)
end

return check
