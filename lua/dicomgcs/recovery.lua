--- After an import: a report that accounts for every matched file, and re-importing only
-- the files worth another try.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.recovery
-- @local
local errors = require "dicomgcs.errors"
local failures = require "dicomgcs.failures"
local report = require "dicomgcs.report"
local timestamp = require "dicomgcs.timestamp"

local recovery = {}

--- Reconcile an import without the logs: read the header of every object `uri` matches
-- (ranged reads), ask the store over QIDO which SOP Instance UIDs it holds, and name the
-- missing ones. Returns a table input-URI -> { outcome=, code=, reason= } or nil, Error.
function recovery.reconcile(client, uri, opts)
  opts = opts or {}
  local check = require "dicomgcs.check"
  local s, err = check.objects(client.storage, uri)
  if not s then return nil, err end
  local dw; dw, err = client:dicomweb(opts)
  if not dw then return nil, err end
  local present, asked = {}, {}
  for _, r in ipairs(s.results) do
    if r.ok and r.study_uid and not asked[r.study_uid] then
      asked[r.study_uid] = true
      local found, qerr = dw:search_all("instances", { study = r.study_uid })
      if not found then
        if qerr.http_status ~= 404 then return nil, qerr end
        found = {}
      end
      for _, inst in ipairs(found) do
        local uid = require("dicomgcs.dicomweb").value(inst, "00080018")
        if uid then present[uid] = true end
      end
    end
  end
  local outcomes = {}
  for _, r in ipairs(s.results) do
    if not r.ok then
      outcomes[r.source] = { outcome = "failed", code = r.status, reason = "reconciled: " .. tostring(r.reason) }
    elseif present[r.sop_instance_uid] then
      outcomes[r.source] = { outcome = "succeeded", reason = "reconciled: in the store" }
    else
      outcomes[r.source] = { outcome = "failed", code = "MISSING",
        reason = "reconciled: SOP Instance " .. r.sop_instance_uid .. " is not in the store" }
    end
  end
  return outcomes
end

--- Report the outcome of every object an import of `uri` matched.
-- Failed files are those in the logs (and the operation's samples; read again while the logs
-- lag behind the failure counter, up to `opts.logs_wait` seconds, see failures.collect); files
-- whose SOP Instance UID the store already held with other bytes are "conflict". When the logged failures
-- account for the failure counter, every other matched file succeeded. Otherwise the rest
-- is settled by reconciliation (see recovery.reconcile; `opts.reconcile = false` leaves it
-- "unknown", and `complete` false). `opts.dicom_store`/`dataset` name the store imported into.
-- Returns a report (see dicomgcs.report) with `.failures` attached, or nil, Error.
function recovery.import_report(client, op, uri, opts)
  if not op.done then
    local ok, err = op:get()
    if not ok then return nil, err end
    if not op.done then return nil, errors.input("operation " .. op.name .. " is still running", "wait for it first") end
  end
  local matched, merr = client.storage:match(uri)
  if not matched then return nil, merr end
  local found, ferr = failures.collect(client, op, { logs_wait = opts and opts.logs_wait })
  if not found then return nil, ferr end
  local outcomes, inputs = {}, {}
  for _, f in ipairs(found.failures) do
    -- a conflict is listed apart: the store holds that instance, with other bytes
    outcomes[f.uri] = { outcome = f.kind == "conflict" and "conflict" or "failed", code = f.status, reason = f.message }
  end
  local logged_all = found.complete and (op.counter.success + op.counter.failure) >= #matched
  for _, obj in ipairs(matched) do
    inputs[#inputs + 1] = obj.uri
    if not outcomes[obj.uri] and logged_all then outcomes[obj.uri] = { outcome = "succeeded" } end
  end
  local r = report.build(inputs, outcomes)
  if not r.complete and opts and opts.reconcile ~= false then
    -- the logs are a sample: settle every file they do not name by looking at the store
    local rec, rerr = recovery.reconcile(client, uri, opts)
    if not rec then return nil, rerr end
    for input, o in pairs(rec) do
      local known = outcomes[input] and outcomes[input].outcome
      if known ~= "failed" and known ~= "conflict" then outcomes[input] = o end
    end
    r = report.build(inputs, outcomes)
    r.reconciled = true
  end
  r.failures = found
  return r
end

--- Decide, for each failure of a finished import, whether to retry it. Default policy: a
-- transient error is retried; a permanent one (e.g. INVALID_ARGUMENT, not DICOM) only when
-- the object changed after the failure was logged (someone replaced the file); a conflict (the
-- store holds that SOP Instance UID with other bytes) only with `opts.replace`; a name holding
-- wildcard characters cannot be imported alone and is skipped.
-- `opts.policy(f, object) -> boolean, reason` replaces the default.
local function plan(client, list, opts)
  local retry, skip = {}, {}
  for _, f in ipairs(list) do
    local obj, err = client.storage:stat(f.uri)
    local decision, reason, replace
    if not obj then
      decision, reason = false, "cannot read the object now: " .. tostring(err)
    elseif f.uri:find("[*?]", 6) then
      decision, reason = false, "its name holds '*' or '?', which an import would read as a wildcard"
    elseif opts.policy then
      decision, reason = opts.policy(f, obj)
    elseif f.kind == "conflict" then
      if opts.replace then
        decision, reason, replace = true, "conflict: replacing the stored instance with this file", true
      else
        decision, reason = false, "conflict: the store holds this SOP Instance UID with other bytes " ..
          "(replace=true / --replace deletes the stored instance and imports this file)"
      end
    elseif failures.transient(f) then
      decision, reason = true, "transient error " .. f.status
    else
      local failed_at, updated = timestamp.parse(f.timestamp), timestamp.parse(obj.updated)
      if failed_at and updated and updated > failed_at then
        decision, reason = true, "the object was replaced after it failed"
      else
        decision, reason = false, ("permanent error %s and the object is unchanged"):format(f.status)
      end
    end
    if decision then retry[#retry + 1] = { failure = f, reason = reason, replace = replace }
    else skip[#skip + 1] = { failure = f, reason = reason or "the policy said no", conflict = f.kind == "conflict" } end
  end
  return retry, skip
end

-- Replace: delete the instance the store holds under the file's SOP Instance UID (its UIDs read
-- from the object's header), so that importing the file stores it. Returns true or nil, Error.
local function delete_stored(client, r, opts)
  local s, err = require("dicomgcs.check").objects(client.storage, r.failure.uri)
  if not s then return nil, err end
  local h = s.results[1]
  if not (h and h.ok) then
    return nil, errors.new{ kind = "input", message = ("cannot read the DICOM header of %s: %s"):format(
      r.failure.uri, h and tostring(h.reason) or "no such object") }
  end
  local dw; dw, err = client:dicomweb{ dicom_store = opts.dicom_store }
  if not dw then return nil, err end
  local ok; ok, err = dw:delete{ study = h.study_uid, series = h.series_uid, instance = h.sop_instance_uid }
  if not ok and err.http_status ~= 404 then return nil, err end
  return true
end

--- Re-import only the failed objects of `op` that are worth it, one exact-URI import per
-- object (the import takes a single URI, so a list cannot be sent), `opts.concurrency`
-- (default 3) operations at a time. Conflicts are skipped unless `opts.replace`, which first
-- deletes the stored instance over DICOMweb. `opts.logs_wait` (see failures.collect).
-- Returns a summary { retried = {...}, skipped = {...}, succeeded = n, failed = n,
-- conflicts = n (skipped as conflicts), complete = } or nil, Error.
function recovery.retry_failed(client, op, opts)
  opts = opts or {}
  local found, err = failures.collect(client, op, { logs_wait = opts.logs_wait })
  if not found then return nil, err end
  local retry, skip = plan(client, found.failures, opts)
  local summary = { retried = retry, skipped = skip, succeeded = 0, failed = 0, conflicts = 0, complete = found.complete }
  for _, s in ipairs(skip) do if s.conflict then summary.conflicts = summary.conflicts + 1 end end
  local queue, running = {}, {}
  for _, r in ipairs(retry) do queue[#queue + 1] = r end
  local cap = opts.concurrency or 3
  while #queue > 0 or #running > 0 do
    while #queue > 0 and #running < cap do
      local r = table.remove(queue, 1)
      local rop, ierr = true, nil
      if r.replace then rop, ierr = delete_stored(client, r, opts) end
      if rop then
        rop, ierr = client:import{ uri = r.failure.uri, dicom_store = opts.dicom_store,
                                   check_permissions = opts.check_permissions }
      end
      if rop then
        r.operation = rop
        running[#running + 1] = r
      else
        r.ok, r.err = false, ierr
        summary.failed = summary.failed + 1
      end
    end
    local r = table.remove(running, 1)
    if r then
      local done, werr = r.operation:wait{ interval = opts.interval or 0.5, max_interval = 5 }
      if done and done.partial then done, werr = nil, done:failure() end   -- the file failed again
      r.ok, r.err = done ~= nil, werr
      if done then summary.succeeded = summary.succeeded + 1 else summary.failed = summary.failed + 1 end
      if opts.on_result then opts.on_result(r) end
    end
  end
  return summary
end

return recovery
