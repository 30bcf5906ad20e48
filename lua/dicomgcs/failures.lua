--- Which files an import or export failed on, and why.
-- The operation itself carries only counters and, in its error details, a few sample errors;
-- the per-file errors are in Cloud Logging (`entries:list` filtered on the operation). Cloud
-- Logging keeps only a sample past a threshold, so `complete` tells whether the logged
-- failures account for the operation's failure counter; when they do not, reconcile.
-- @module dicomgcs.failures
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

local function entry_failure(e)
  local p = e.jsonPayload or {}
  local err = p.error or {}
  local code = math.tointeger(tonumber(err.code)) or 2
  return { uri = p.source or p.resourceName, code = code, status = errors.rpc_status[code] or "UNKNOWN",
           message = err.message or "no message", timestamp = e.timestamp }
end

--- One page of logged failures. Returns { failures = {...}, next_page_token = } or nil, Error.
function failures.page(client, op, page_token, page_size)
  local project = op.name:match("^projects/([^/]+)/")
  local body = { resourceNames = { "projects/" .. project }, filter = failures.filter(op),
                 orderBy = "timestamp asc", pageSize = page_size or 1000, pageToken = page_token }
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
    for _, s in ipairs(d.sampleErrors or {}) do
      local e = s.error or {}
      local code = math.tointeger(tonumber(e.code)) or 2
      out[#out + 1] = { uri = s.resource, code = code, status = errors.rpc_status[code] or "UNKNOWN",
                        message = e.message or "no message" }
    end
  end
  return out
end

--- Every failure known for a finished operation: logged ones, plus samples the logs lack.
-- Returns { failures = {...}, logged = n, expected = op.counter.failure, complete = bool } or nil, Error.
function failures.collect(client, op)
  local list, seen = {}, {}
  local ok, err = pcall(function()
    for f in failures.each(client, op) do
      if f.uri and not seen[f.uri] then seen[f.uri] = true; list[#list + 1] = f end
    end
  end)
  if not ok then return nil, err end
  local logged = #list
  for _, s in ipairs(failures.samples(op)) do
    if s.uri and not seen[s.uri] then seen[s.uri] = true; list[#list + 1] = s end
  end
  local expected = op.counter and op.counter.failure or 0
  return { failures = list, logged = logged, expected = expected, complete = #list >= expected }
end

-- gRPC codes that say the file itself is bad: retrying the same bytes fails the same way.
local PERMANENT = { [3] = true, [5] = false, [6] = true, [7] = false, [9] = true, [11] = true, [12] = true }

--- Is a failure worth retrying as it is? Transient codes (UNAVAILABLE, DEADLINE_EXCEEDED,
-- RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNKNOWN, and NOT_FOUND/PERMISSION_DENIED, which a
-- fix to the bucket can cure) are; INVALID_ARGUMENT and the like are not, unless the file
-- changed since (see retry_failed).
function failures.transient(f)
  return not PERMANENT[f.code]
end

return failures
