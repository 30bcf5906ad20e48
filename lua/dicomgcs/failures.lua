--- Which files an import or export failed on, and why.
-- The operation itself carries only counters and, in its error details, a few sample errors;
-- the per-file errors are in Cloud Logging (`entries:list` filtered on the operation). Cloud
-- Logging keeps only a sample past a threshold, so `complete` tells whether the logged
-- failures account for the operation's failure counter; when they do not, reconcile.
-- Cloud Logging is also written asynchronously, after the operation is done: `collect` reads
-- again with backoff until the logged failures reach the counter or `logs_wait` runs out.
-- @module dicomgcs.failures
local core = require "dicomgcs.core"
local errors = require "dicomgcs.errors"
local paging = require "dicomgcs.paging"

local failures = {}

local LOG_TYPES = {
  ImportDicomData = "type.googleapis.com/google.cloud.healthcare.logging.ImportDicomLogEntry",
  ExportDicomData = "type.googleapis.com/google.cloud.healthcare.logging.ExportDicomLogEntry",
}

--- The Cloud Logging filter for an operation's per-file errors.
function failures.filter(op)
  local method = (op.method or ""):match("([%w]+)$")
  local f = ('resource.type="healthcare_dicom_store" AND operation.id="%s"'):format(op.name)
  if LOG_TYPES[method] then f = f .. (' AND jsonPayload.@type="%s"'):format(LOG_TYPES[method]) end
  return f
end

-- gRPC codes that say the file itself is bad: retrying the same bytes fails the same way.
local PERMANENT = { [3] = true, [5] = false, [6] = true, [7] = false, [9] = true, [11] = true, [12] = true }

--- The kind of a failure: "conflict" (the store already holds that SOP Instance UID with other
-- bytes: Google's "An instance already exists in this DICOM Store with the same
-- Study/Series/SOPInstance UID, but the DICOM files differ"), "transient" (worth retrying as it
-- is) or "permanent" (the same bytes fail the same way).
function failures.kind(f)
  local m = (f.message or ""):lower()
  if (f.code == 6 or f.code == 9) and m:find("already exists", 1, true) and m:find("differ", 1, true) then
    return "conflict"
  end
  return PERMANENT[f.code] and "permanent" or "transient"
end

local function failure_of(uri, err, timestamp)
  local code = math.tointeger(tonumber(err.code)) or 2
  local f = { uri = uri, code = code, status = errors.rpc_status[code] or "UNKNOWN",
              message = err.message or "no message", timestamp = timestamp }
  f.kind = failures.kind(f)
  return f
end

local function entry_failure(e)
  local p = e.jsonPayload or {}
  return failure_of(p.source or p.resourceName, p.error or {}, e.timestamp)
end

-- entries:list rejects a pageSize over 1,000 (D-log ListLogEntriesRequest.pageSize).
local MAX_PAGE = 1000

--- One page of logged failures. Returns { failures = {...}, next_page_token = } or nil, Error.
function failures.page(client, op, page_token, page_size)
  local project = op.name:match("^projects/([^/]+)/")
  local body = { resourceNames = { "projects/" .. project }, filter = failures.filter(op),
                 orderBy = "timestamp asc", pageSize = math.max(1, math.min(page_size or MAX_PAGE, MAX_PAGE)),
                 pageToken = page_token }
  local doc, err = client.transport:json("POST", client.endpoints.logging .. "/entries:list", body,
    "read the logs of " .. op.name)
  if not doc then return nil, err end
  local out = {}
  for _, e in ipairs(doc.entries or {}) do out[#out + 1] = entry_failure(e) end
  return { failures = out, next_page_token = doc.nextPageToken }
end

--- Iterate over every logged failure `{uri=, code=, status=, message=}` of an operation,
-- page by page. A failure to read the logs raises the Error (use `failures.page` to handle it).
function failures.each(client, op, opts)
  opts = opts or {}
  return paging.each(paging.by_token(function(token)
    local page, err = failures.page(client, op, token, opts.page_size)
    if not page then return nil, err end
    return page.failures, page.next_page_token
  end))
end

--- The sample errors an operation carries in `error.details[].sampleErrors`.
function failures.samples(op)
  local out = {}
  for _, d in ipairs(op.error and op.error.details or {}) do
    for _, s in ipairs(d.sampleErrors or {}) do out[#out + 1] = failure_of(s.resource, s.error or {}) end
  end
  return out
end

failures.DEFAULT_LOGS_WAIT = 120

local function read_logged(client, op)
  local list, seen = {}, {}
  local ok, err = pcall(function()
    for f in failures.each(client, op) do
      if f.uri and not seen[f.uri] then seen[f.uri] = true; list[#list + 1] = f end
    end
  end)
  if not ok then return nil, err end
  return list, seen
end

--- Every failure known for a finished operation: logged ones, plus samples the logs lack.
-- The logs are written after the operation ends, so while fewer failures are logged than the
-- operation counted, read again with backoff (1 s doubling up to 15 s) for up to
-- `opts.logs_wait` seconds (default 120; 0 reads once). `opts.on_wait(logged, expected, delay)`
-- is told before each pause. Returns { failures = {...}, logged = n, expected = op.counter.failure,
-- complete = bool, waited = seconds } or nil, Error. complete = false after the wait: the logs are
-- a sample (reconcile), or were late.
function failures.collect(client, op, opts)
  opts = opts or {}
  local expected = op.counter and op.counter.failure or 0
  local budget = opts.logs_wait or failures.DEFAULT_LOGS_WAIT
  local started = core.monotime()
  local deadline = started + budget
  local delay = 1
  local list, seen
  while true do
    list, seen = read_logged(client, op)
    if not list then return nil, seen end
    if #list >= expected or not op.done then break end
    local left = deadline - core.monotime()
    if left <= 0 then break end
    local pause = math.min(delay, left)
    if opts.on_wait then opts.on_wait(#list, expected, pause) end
    -- between two reads of the logs: an engine timer (dicomgcs.runner), Ctrl-C comes back as an Error
    local paused, perr = require("dicomgcs.runner").pause(client.transport, pause)
    if not paused then return nil, perr end
    delay = math.min(delay * 2, 15)
  end
  local logged = #list
  for _, s in ipairs(failures.samples(op)) do
    if s.uri and not seen[s.uri] then seen[s.uri] = true; list[#list + 1] = s end
  end
  return { failures = list, logged = logged, expected = expected, complete = #list >= expected,
           waited = core.monotime() - started }
end

--- Is a failure worth retrying as it is? Transient codes (UNAVAILABLE, DEADLINE_EXCEEDED,
-- RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNKNOWN, and NOT_FOUND/PERMISSION_DENIED, which a
-- fix to the bucket can cure) are; INVALID_ARGUMENT and the like are not, unless the file
-- changed since (see retry_failed); a conflict never is (see retry_failed's `replace`).
function failures.transient(f)
  return (f.kind or failures.kind(f)) == "transient"
end

return failures
