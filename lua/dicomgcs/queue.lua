--- An operation queue: run many imports and exports with at most K operations in flight,
-- each a dicomgcs.runner job that starts its operation and waits on it with the operation
-- module's waiter (polls timed by progress, one engine loop for all of them), with live
-- aggregate progress, hooks at each stage, and a durable manifest so that re-running the same
-- script after a crash skips what finished and re-attaches to operations still running on
-- the server (by name). Each operation's poll history (`op.history`, `op.events`) is kept in
-- its manifest records, so a resumed run's history covers the whole run.
--
--     local q = dicomgcs.queue{ client = c, max_in_flight = 3, manifest = "bulk.jsonl" }
--     q:add{ key = "part-01", kind = "import", uri = "gs://b/part-01/**.dcm" }
--     local summary = assert(q:run())
--
-- Ctrl-C while `run` waits (caught by the runner) cancels the operations still running,
-- records them, says so on stderr, and raises a `dicomgcs.Error` of kind "interrupted".
-- @module dicomgcs.queue
local errors = require "dicomgcs.errors"
local manifest = require "dicomgcs.manifest"
local operation = require "dicomgcs.operation"
local options = require "dicomgcs.options"
local runner = require "dicomgcs.runner"

local queue = {}

local Queue = { __name = "dicomgcs.Queue" }
Queue.__index = Queue

local known = { client = true, max_in_flight = true, manifest = true, on_progress = true,
  on_operation_done = true, on_file_failed = true, classify_error = true, interval = true,
  max_interval = true, log = true }

--- Default error classification: "retry" for errors worth another try later (quota,
-- throttling, unavailable, transport: errors.class, the one classification), "fail" otherwise.
function queue.classify_error(err)
  return errors.retryable(errors.class(err)) and "retry" or "fail"
end

--- Make a queue. Options: `client` (required), `max_in_flight` (K, default 3), `manifest`
-- (path of the JSON Lines state file; without it nothing survives a crash), hooks
-- `on_progress(totals)`, `on_operation_done(job, op)`, `on_file_failed(job, failure)`
-- (called for each failed file of a finished operation, from its logs),
-- `classify_error(err, job) -> "retry"|"fail"`, polling `interval` (default 1 s) and
-- `max_interval` (default 30 s), `log(line)` (default: stderr).
function queue.new(opts)
  options.check(opts, known, "dicomgcs.queue")
  assert(opts.client, "dicomgcs.queue: client is required")
  local self = setmetatable({
    client = opts.client, max_in_flight = opts.max_in_flight or 3, jobs = {}, by_key = {},
    hooks = opts, interval = opts.interval or 1, max_interval = opts.max_interval or 30,
    log = opts.log or function(line) io.stderr:write(line, "\n") end,
  }, Queue)
  if opts.manifest then
    local m, err = manifest.open(opts.manifest)
    if not m then return nil, err end
    self.manifest = m
  end
  return self
end

local job_fields = { key = true, kind = true, uri = true, uri_prefix = true, mime_type = true,
  transfer_syntax = true, dicom_store = true, dataset = true, project = true, location = true }

--- Add a job: `key` (unique, stable across runs: it is how the manifest recognises the job),
-- `kind` "import" (with `uri`) or "export" (with `uri_prefix`, `mime_type`, `transfer_syntax`),
-- and optionally `dicom_store`, `dataset`, `project`, `location` (default: the client's).
function Queue:add(job)
  options.check(job, job_fields, "queue:add", 2, "field")
  assert(type(job.key) == "string", "queue:add: key (a string) is required")
  assert(job.kind == "import" or job.kind == "export", "queue:add: kind must be 'import' or 'export'")
  if self.by_key[job.key] then error(("queue:add: duplicate key '%s'"):format(job.key), 2) end
  local j = { spec = job, key = job.key, state = "queued", attempts = 0 }
  self.jobs[#self.jobs + 1] = j
  self.by_key[job.key] = j
  return j
end

function Queue:record(j, fields)
  if not self.manifest then return end
  fields.state = fields.state or j.state
  local ok, err = self.manifest:record(j.key, fields)
  if not ok then self.log("warning: " .. tostring(err)) end
end

local function start(self, j)
  local s = j.spec
  local where = { dicom_store = s.dicom_store, dataset = s.dataset, project = s.project, location = s.location }
  local op, err
  if s.kind == "import" then
    where.uri = s.uri
    op, err = self.client:import(where)
  else
    where.uri_prefix, where.mime_type, where.transfer_syntax = s.uri_prefix, s.mime_type, s.transfer_syntax
    op, err = self.client:export(where)
  end
  j.attempts = j.attempts + 1
  return op, err
end

-- Aggregate counters over every job for progress reports.
function Queue:totals()
  local t = { jobs = #self.jobs, queued = 0, running = 0, done = 0, failed = 0,
              success = 0, failure = 0, pending = 0 }
  for _, j in ipairs(self.jobs) do
    t[j.state] = (t[j.state] or 0) + 1
    local c = j.counter
    if c then t.success, t.failure, t.pending = t.success + c.success, t.failure + c.failure, t.pending + c.pending end
  end
  return t
end

local function history_of(op)
  if not op then return nil end
  return { history = op.history, events = op.events }
end

local function finish(self, j, op, err)
  j.counter = op and op.counter or j.counter
  if err then
    -- the operation failed as a whole (permission, missing bucket, no match, cancelled),
    -- or could not be started or polled: not a file-level outcome
    j.state, j.error = "failed", err
    self:record(j, { state = "failed", operation = op and op.name, error = tostring(err), poll = history_of(op) })
  else
    -- done, possibly with file failures (op.partial): its files are accounted for
    j.state = "done"
    j.error = op.partial and op:failure() or nil
    local c = j.counter or { success = 0, failure = 0 }
    self:record(j, { state = "done", operation = op.name, success = c.success, failure = c.failure,
                     error = j.error and tostring(j.error) or nil, poll = history_of(op) })
    if self.hooks.on_operation_done then self.hooks.on_operation_done(j, op) end
    if self.hooks.on_file_failed and c.failure > 0 then
      local found = self.client:failures(op)
      for _, f in ipairs(found and found.failures or {}) do self.hooks.on_file_failed(j, f) end
    end
  end
end

--- Cancel every operation still running; returns the number cancelled.
function Queue:cancel_running()
  local n = 0
  for _, j in ipairs(self.jobs) do
    if j.state == "running" and j.op then
      local ok, err = j.op:cancel()
      if ok then n = n + 1 end
      j.state = "cancelled"
      self:record(j, { state = "cancelled", operation = j.op.name, error = err and tostring(err) or nil,
                       poll = history_of(j.op) })
      self.log(("cancelled %s (%s)%s"):format(j.key, j.op.name, ok and "" or (": " .. tostring(err))))
    end
  end
  return n
end

local function resume_from_manifest(self)
  if not self.manifest then return end
  for _, j in ipairs(self.jobs) do
    local rec = self.manifest:get(j.key)
    if rec and rec.state == "done" then
      j.state = "done"
      j.counter = { success = rec.success or 0, failure = rec.failure or 0, pending = 0 }
      j.skipped = true
      j.poll = rec.poll
    elseif rec and rec.state == "running" and rec.operation then
      local op = self.client:operation(rec.operation, { fetch = false })
      if op then
        j.op, j.state, j.reattached = op, "running", true
        local poll = type(rec.poll) == "table" and rec.poll or {}
        op.history = type(poll.history) == "table" and poll.history or {}
        op.events = type(poll.events) == "table" and poll.events or {}
        op:event("restart", "re-attached by a new run of the queue")
        self.log(("re-attached %s to %s"):format(j.key, rec.operation))
      end
    end
  end
end

local function classify(self, err, j)
  return (self.hooks.classify_error or queue.classify_error)(err, j)
end

-- One queue job, as a runner job: start the operation (again later while the server refuses
-- for a reason worth retrying), then wait on it with the operation waiter.
local function job_fn(self, j)
  return function(io)
    while not j.op do
      local op, err = start(self, j)
      if op then
        j.op, j.state = op, "running"
        -- the refusals before it started are moments of the run too (the report marks them)
        for i, e in ipairs(j.refused or {}) do table.insert(op.events, i, e) end
        self:record(j, { state = "running", operation = op.name, poll = history_of(op) })
      elseif err.kind == "interrupted" or err.kind == "cancelled" then
        return nil, err
      elseif classify(self, err, j) == "retry" then
        self.log(("%s: will retry: %s"):format(j.key, tostring(err)))
        j.refused = j.refused or {}
        j.refused[#j.refused + 1] = { t = operation.clock(), detail = tostring(err),
          kind = err.status == "RESOURCE_EXHAUSTED" and "throttle" or "retry" }
        local ok, serr = io.sleep(math.min(self.max_interval, 2 ^ math.min(j.attempts, 5)))
        if not ok then return nil, serr end
      else
        finish(self, j, nil, err)
        return {}
      end
    end
    local op = j.op
    local done, err = operation.watch(op, {
      interval = self.interval, max_interval = self.max_interval,
      on_poll = function()
        j.counter = op.counter
        self:record(j, { state = "running", operation = op.name, poll = history_of(op) })
        if self.hooks.on_progress then self.hooks.on_progress(self:totals()) end
      end,
      on_poll_error = function(perr)
        if classify(self, perr, j) ~= "retry" then return false end
        op:event(perr.status == "RESOURCE_EXHAUSTED" and "throttle" or "retry", tostring(perr))
        return true
      end,
    })
    if not done and (err.kind == "interrupted" or err.kind == "cancelled") then return nil, err end
    finish(self, j, op, err)
    return {}
  end
end

--- Run until every job is done or failed (no deadline: imports can take hours).
-- Returns a summary { jobs = {...}, totals = {...}, ok = bool } where ok means no job
-- failed and no file failed; raises only for an interrupt (after cancelling).
function Queue:run()
  resume_from_manifest(self)
  local transport = self.client.transport
  local r = runner.new(transport, { max_active = self.max_in_flight, interruptible = true })
  for _, j in ipairs(self.jobs) do
    if j.state == "queued" or j.state == "running" then r:add{ fn = job_fn(self, j) } end
  end
  if self.hooks.on_progress then self.hooks.on_progress(self:totals()) end
  local s = r:run()
  for _, res in ipairs(s.results) do
    if res.err and res.err.kind == "internal" then   -- a bug or a hook that raised: do not hide it
      self:cancel_running()
      if self.manifest then self.manifest:close() end
      error(res.err.message, 0)
    end
  end
  if s.interrupted or s.cancelled then
    local n = self:cancel_running()
    local err = errors.new{ kind = s.interrupted and "interrupted" or "cancelled",
      message = ("stopped (%s); cancelled %d running operation(s); re-run to resume"):format(
        s.interrupted and "Ctrl-C" or "cancelled", n) }
    self.log(err.message)
    if self.manifest then self.manifest:close() end
    error(err, 0)
  end
  local t = self:totals()
  local summary = { jobs = {}, totals = t, ok = t.failed == 0 and t.failure == 0 }
  for _, j in ipairs(self.jobs) do
    summary.jobs[#summary.jobs + 1] = { key = j.key, state = j.state, operation = j.op and j.op.name,
      counter = j.counter, error = j.error and tostring(j.error) or nil, skipped = j.skipped or false,
      reattached = j.reattached or false, poll = j.op and history_of(j.op) or j.poll }
  end
  if self.manifest then self.manifest:close() end
  return summary
end

queue.Queue = Queue
return queue
