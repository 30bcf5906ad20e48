--- After an import: a report that accounts for every matched file, and re-importing only
-- the files worth another try.
-- @module dicomgcs.recovery
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
-- Failed files are those in the logs (and the operation's samples); when the logged failures
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
  local found, ferr = failures.collect(client, op)
  if not found then return nil, ferr end
  local outcomes, inputs = {}, {}
  for _, f in ipairs(found.failures) do
    outcomes[f.uri] = { outcome = "failed", code = f.status, reason = f.message }
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
      if not outcomes[input] or outcomes[input].outcome ~= "failed" then outcomes[input] = o end
    end
    r = report.build(inputs, outcomes)
    r.reconciled = true
  end
  r.failures = found
  return r
end

--- Decide, for each failure of a finished import, whether to retry it. Default policy: a
-- transient error is retried; a permanent one (e.g. INVALID_ARGUMENT, not DICOM) only when
-- the object changed after the failure was logged (someone replaced the file); a name holding
-- wildcard characters cannot be imported alone and is skipped.
-- `opts.policy(f, object) -> boolean, reason` replaces the default.
local function plan(client, list, opts)
  local retry, skip = {}, {}
  for _, f in ipairs(list) do
    local obj, err = client.storage:stat(f.uri)
    local decision, reason
    if not obj then
      decision, reason = false, "cannot read the object now: " .. tostring(err)
    elseif f.uri:find("[*?]", 6) then
      decision, reason = false, "its name holds '*' or '?', which an import would read as a wildcard"
    elseif opts.policy then
      decision, reason = opts.policy(f, obj)
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
    if decision then retry[#retry + 1] = { failure = f, reason = reason }
    else skip[#skip + 1] = { failure = f, reason = reason or "the policy said no" } end
  end
  return retry, skip
end

--- Re-import only the failed objects of `op` that are worth it, one exact-URI import per
-- object (the import takes a single URI, so a list cannot be sent), `opts.concurrency`
-- (default 3) operations at a time. Returns a summary
-- { retried = {...}, skipped = {...}, succeeded = n, failed = n } or nil, Error.
function recovery.retry_failed(client, op, opts)
  opts = opts or {}
  local found, err = failures.collect(client, op)
  if not found then return nil, err end
  local retry, skip = plan(client, found.failures, opts)
  local summary = { retried = retry, skipped = skip, succeeded = 0, failed = 0, complete = found.complete }
  local queue, running = {}, {}
  for _, r in ipairs(retry) do queue[#queue + 1] = r end
  local cap = opts.concurrency or 3
  while #queue > 0 or #running > 0 do
    while #queue > 0 and #running < cap do
      local r = table.remove(queue, 1)
      local rop, ierr = client:import{ uri = r.failure.uri, dicom_store = opts.dicom_store }
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
