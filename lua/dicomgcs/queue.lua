--- An operation queue: run many imports and exports with at most K operations in flight,
-- each polled with backoff, with live aggregate progress, hooks at each stage, and a durable
-- manifest so that re-running the same script after a crash skips what finished and
-- re-attaches to operations still running on the server (by name).
--
--     local q = dicomgcs.queue{ client = c, max_in_flight = 3, manifest = "bulk.jsonl" }
--     q:add{ key = "part-01", kind = "import", uri = "gs://b/part-01/**.dcm" }
--     local summary = assert(q:run())
--
-- Ctrl-C while `run` waits (lua5.4 turns it into an "interrupted!" error) cancels the
-- operations still running, records them, says so on stderr, and raises again.
-- @module dicomgcs.queue
local core = require "dicomgcs.core"
local errors = require "dicomgcs.errors"
local manifest = require "dicomgcs.manifest"
local options = require "dicomgcs.options"

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

local function finish(self, j, op, err)
  j.counter = op and op.counter or j.counter
  -- an operation that ended in error without processing a single file failed as a whole
  -- (permission, missing bucket, no match): that is not a file-level outcome
  local processed = j.counter and (j.counter.success + j.counter.failure) or 0
  if err and (err.kind ~= "operation" or processed == 0) then
    j.state, j.error = "failed", err
    self:record(j, { state = "failed", operation = op and op.name, error = tostring(err) })
  else
    -- an operation that ended with file failures is done: its files are accounted for
    j.state = "done"
    j.error = err
    local c = j.counter or { success = 0, failure = 0 }
    self:record(j, { state = "done", operation = op.name, success = c.success, failure = c.failure,
                     error = err and tostring(err) or nil })
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
      self:record(j, { state = "cancelled", operation = j.op.name, error = err and tostring(err) or nil })
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
    elseif rec and rec.state == "running" and rec.operation then
      local op = self.client:operation(rec.operation, { fetch = false })
      if op then
        j.op, j.state, j.reattached = op, "running", true
        self.log(("re-attached %s to %s"):format(j.key, rec.operation))
      end
    end
  end
end

local function step(self)
  -- start queued jobs while there is room
  local running = 0
  for _, j in ipairs(self.jobs) do if j.state == "running" then running = running + 1 end end
  local now = core.monotime()
  for _, j in ipairs(self.jobs) do
    if running >= self.max_in_flight then break end
    if j.state == "queued" and (j.not_before or 0) <= now then
      local op, err = start(self, j)
      if op then
        j.op, j.state = op, "running"
        running = running + 1
        self:record(j, { state = "running", operation = op.name })
      else
        local verdict = (self.hooks.classify_error or queue.classify_error)(err, j)
        if verdict == "retry" then
          j.not_before = now + math.min(self.max_interval, 2 ^ math.min(j.attempts, 5))
          self.log(("%s: will retry: %s"):format(j.key, tostring(err)))
        else
          finish(self, j, nil, err)
        end
      end
    end
  end
  -- poll every running job once
  for _, j in ipairs(self.jobs) do
    if j.state == "running" then
      local ok, err = j.op:get()
      if not ok then
        local verdict = (self.hooks.classify_error or queue.classify_error)(err, j)
        if verdict ~= "retry" then finish(self, j, j.op, err) end
      else
        j.counter = j.op.counter
        if j.op.done then finish(self, j, j.op, j.op.error and j.op:failure() or nil) end
      end
    end
  end
end

local function unfinished(self)
  for _, j in ipairs(self.jobs) do
    if j.state == "queued" or j.state == "running" then return true end
  end
  return false
end

--- Run until every job is done or failed (no deadline: imports can take hours).
-- Returns a summary { jobs = {...}, totals = {...}, ok = bool } where ok means no job
-- failed and no file failed; raises only for an interrupt (after cancelling).
function Queue:run()
  resume_from_manifest(self)
  local delay = self.interval
  local ok, err = pcall(function()
    while unfinished(self) do
      step(self)
      if self.hooks.on_progress then self.hooks.on_progress(self:totals()) end
      if not unfinished(self) then break end
      core.sleep(delay)
      delay = math.min(delay * 1.5, self.max_interval)
    end
  end)
  if not ok then
    local n = self:cancel_running()
    self.log(("stopped (%s); cancelled %d running operation(s); re-run to resume"):format(
      tostring(err):gsub("^.-: ", ""), n))
    error(err, 0)
  end
  local t = self:totals()
  local summary = { jobs = {}, totals = t, ok = t.failed == 0 and t.failure == 0 }
  for _, j in ipairs(self.jobs) do
    summary.jobs[#summary.jobs + 1] = { key = j.key, state = j.state, operation = j.op and j.op.name,
      counter = j.counter, error = j.error and tostring(j.error) or nil, skipped = j.skipped or false,
      reattached = j.reattached or false }
  end
  if self.manifest then self.manifest:close() end
  return summary
end

queue.Queue = Queue
return queue
