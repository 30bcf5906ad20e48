--- Long-running operations (import, export, dataset creation, …).
-- `op:get()` refreshes, `op:wait{}` polls until done, `op:cancel()` asks the server to stop,
-- `operation.wait_all{ops=}` waits on many at once. Counters are read from `metadata.counter`
-- (int64 strings on the wire) and exposed as integers in `op.counter` (`success`, `failure`,
-- `pending`, zeros included).
--
-- Waiting is one dicomgcs.runner job per operation: each poll is an engine transfer started
-- by an engine timer, so one loop waits on one operation or a hundred while other transfers
-- of the same engine run, and Ctrl-C is handled there (kind "interrupted").
--
-- Polls are timed by progress: from the counters' rate and `pending` (or `expected`, the
-- number of matched files when known) the waiter predicts the end, polls sparsely before it
-- (half the predicted remaining time, at most twice the time it has watched the operation so
-- far, and at most `max_interval` when given) and every `near_interval` (default
-- min(interval, 0.5 s)) around it. Without a prediction (no
-- progress yet, no pending count) it backs off ×1.5 from `interval` up to `max_interval`
-- (default 30 s).
--
-- History (read by reports and watchers): every successful refresh appends
-- `{t=<unix seconds>, success=, failure=, pending=}` to `op.history`; throttling, retries
-- and restarts append `{t=, kind="throttle"|"retry"|"restart", detail=}` to `op.events`.
-- @module dicomgcs.operation
local errors = require "dicomgcs.errors"
local runner = require "dicomgcs.runner"

local operation = {}

local Operation = { __name = "dicomgcs.Operation" }
Operation.__index = Operation

local function count(v)
  if v == nil then return 0 end
  return math.tointeger(tonumber(v)) or 0
end

--- Unix time in seconds (a float) for history entries; replaceable in tests.
operation.clock = require("dicomgcs.core").unixtime

-- Copy the server's fields onto the object; proto3 omits `done` and zero counters.
local function absorb(self, doc)
  self.raw = doc
  self.name = doc.name or self.name
  self.done = doc.done == true
  self.metadata = doc.metadata or {}
  self.error = doc.error
  self.response = doc.response
  local c = self.metadata.counter or {}
  self.counter = { success = count(c.success), failure = count(c.failure), pending = count(c.pending) }
  self.method = self.metadata.apiMethodName
  self.logs_url = self.metadata.logsUrl
  self.cancel_requested = self.metadata.cancelRequested == true
  -- Per-file failures are an outcome, not a failed operation: Google ends an import or export
  -- in which some files failed with `error` (not `response`) and both counters. A cancelled
  -- one (code 1, CANCELLED) did not finish its work: that stays a failure of the operation.
  local cancelled = self.error ~= nil and math.tointeger(tonumber(self.error.code)) == 1
  self.partial = self.done and self.counter.failure > 0 and not cancelled or false
  return self
end

--- Wrap an operation document (or a bare name) for a transport and base URL.
function operation.new(transport, base_url, doc)
  if type(doc) == "string" then doc = { name = doc } end
  local self = setmetatable({ transport = transport, base_url = base_url, history = {}, events = {} }, Operation)
  return absorb(self, doc)
end

function Operation:__tostring()
  local c = self.counter
  local state = "running"
  if self.done then state = self.partial and "done with failed files" or (self.error and "failed" or "done") end
  return ("operation %s: %s (success %d, failure %d, pending %d)"):format(self.name, state, c.success, c.failure, c.pending)
end

--- The short id: the last part of the name.
function Operation:id() return (self.name:match("([^/]+)$")) end

--- The operation as the command line names it: "ID --dataset=D --location=L --project=P"
-- (for hints that are `dicomgcs operations …` commands).
function Operation:cli_ref()
  local p, l, d = self.name:match("^projects/([^/]+)/locations/([^/]+)/datasets/([^/]+)/operations/")
  if not p then return self.name end
  return ("%s --dataset=%s --location=%s --project=%s"):format(self:id(), d, l, p)
end

--- Append `{t=, kind=, detail=}` to `op.events` (throttle, retry, restart).
function Operation:event(kind, detail)
  self.events[#self.events + 1] = { t = operation.clock(), kind = kind, detail = detail }
end

-- The operation's URL: its name comes from a server, so a dot-segment in it is refused
-- (issue #14 §7), never collapsed into another resource's URL.
local function url_of(self, suffix)
  local ok, err = require("dicomgcs.names").path(self.name, "operation name")
  if not ok then return nil, err end
  return self.base_url .. "/" .. self.name .. (suffix or "")
end

--- Refresh from the server. Returns self or nil, Error. Inside a runner job the request goes
-- through the runner's loop.
function Operation:get()
  local url, uerr = url_of(self)
  if not url then return nil, uerr end
  local doc, res = self.transport:json("GET", url, nil,
    "get operation " .. self.name)
  if not doc then return nil, res end
  if res.quota_waits then             -- the engine waited out 429s for this poll
    self:event("throttle", ("throttled by quota: the poll waited out %d quota error(s)"):format(res.quota_waits))
  end
  absorb(self, doc)
  local c = self.counter
  self.history[#self.history + 1] = { t = operation.clock(), success = c.success, failure = c.failure, pending = c.pending }
  return self
end

--- Ask the server to cancel (best effort: it stops between files). With `opts.wait`, poll
-- until the operation has stopped, so that its counters tell what it did before it stopped
-- (`counter.pending` is what it never processed). Returns self (refreshed) or nil, Error.
function Operation:cancel(opts)
  opts = opts or {}
  local url, uerr = url_of(self, ":cancel")
  if not url then return nil, uerr end
  local ok, err = self.transport:json("POST", url, {},
    "cancel operation " .. self.name)
  if not ok then return nil, err end
  if not opts.wait then return self:get() end
  local _, werr = self:wait{ interval = opts.interval or 0.5, max_interval = 5, timeout = opts.timeout }
  if werr and werr.kind ~= "operation" then return nil, werr end
  return self
end

--- The error an operation ended with, as a `dicomgcs.Error` (kind "operation"); also for a
-- partial result (`op.partial`), where it tells how many files failed.
function Operation:failure()
  if not (self.done and self.error) then return nil end
  local e = self.error
  local code = math.tointeger(tonumber(e.code)) or 2
  local c = self.counter
  return errors.new{
    kind = "operation", code = code, status = errors.rpc_status[code] or "UNKNOWN",
    message = ("operation %s %s: %s (success %d, failure %d)"):format(
      self.name, self.partial and "ended with failed files" or "failed", tostring(e.message or "no message"),
      c.success, c.failure),
    details = e.details, operation = self,
    -- permission_hint: set by the client when its pre-check could not see the service agent's grant
    hint = (code == 7 and self.permission_hint)
      or (c.failure > 0 and "list the failed files: c:failures(op).failures (each {uri=, status=, message=})" or nil),
    hint_cli = (code == 7 and self.permission_hint)
      or (c.failure > 0 and ("list the failed files: dicomgcs operations failures " .. self:cli_ref()) or nil),
  }
end

-- The delay before the next poll, from what the history says about progress.
-- Returns seconds (> 0).
function operation.next_delay(op, st, opts)
  local h = op.history
  local last = h[#h]
  local first = h[1]
  local remaining, rate
  if last then
    local processed = last.success + last.failure
    local total = opts.expected
    for i = #h, 1, -1 do   -- the latest poll that still saw files pending tells the total
      if not total and h[i].pending > 0 then total = h[i].success + h[i].failure + h[i].pending end
    end
    if total then remaining = math.max(0, total - processed) end
    -- the rate since the first poll that saw progress (the start-up time before it says
    -- nothing); with only one such poll, since the last poll before it
    local ref = first
    for i, p in ipairs(h) do
      if p.success + p.failure > 0 then
        if i < #h then ref = p end
        break
      end
      ref = p
    end
    local dt = last.t - ref.t
    local dp = processed - (ref.success + ref.failure)
    -- counters are whole files: up to one more may have been almost done, so take the faster
    -- rate (an earlier end): few files seen say little, and a late poll is what costs
    if dt > 0 and dp > 0 then rate = (dp + 1) / dt end
  end
  local near = opts.near_interval or math.min(opts.interval or 1, 0.5)
  if remaining and remaining > 0 and rate then
    st.backoff = nil
    local d = math.max(near, remaining / rate / 2)
    -- never sleep more than twice as long as the operation has been watched: an early
    -- estimate made from a few files cannot send the next poll far past the real end
    local age = last.t - first.t + (opts.interval or 1)
    d = math.min(d, math.max(near, 2 * age))
    if opts.max_interval then d = math.min(d, opts.max_interval) end
    return d
  end
  -- no prediction (no progress yet, or nothing left but not done): back off
  if remaining == 0 and rate then st.backoff = st.backoff and math.min(st.backoff * 1.5, opts.max_interval or 30) or near
  else st.backoff = st.backoff and math.min(st.backoff * 1.5, opts.max_interval or 30) or (opts.interval or 1) end
  return st.backoff
end

-- The runner stopped the wait (Ctrl-C or cancel): an Error of this operation's own.
local function stopped(op, err)
  if err.kind ~= "interrupted" and err.kind ~= "cancelled" then return err end
  return errors.new{ kind = err.kind, operation = op,
    message = ("%s while waiting for %s; the operation goes on in the server: wait again with "
      .. "`dicomgcs operations wait %s` or c:operation(%q):wait{}"):format(
      err.kind == "interrupted" and "interrupted (Ctrl-C)" or "stopped", op.name, op:cli_ref(), op.name),
    hint = "it goes on in the server: call op:wait{} again (or c:operation(\"" .. op.name .. "\"):wait{})",
    hint_cli = "it goes on in the server: wait again with dicomgcs operations wait " .. op:cli_ref() }
end

--- Poll `op` until done, inside a runner job (the queue's jobs call it). `opts` as for
-- Operation:wait, plus `on_poll(op)` after each successful poll and `on_poll_error(err)` ->
-- true to poll again later instead of failing. Returns op | nil, Error.
local function watch(op, opts, deadline, monotime)
  monotime = monotime or require("dicomgcs.core").monotime
  if deadline == nil and opts.timeout then deadline = monotime() + opts.timeout end
  local st = {}
  local unreachable = opts.unreachable or 300
  local last_ok -- until a first poll succeeds, a failure ends the wait (a wrong endpoint fails fast)
  while true do
    local ok, err = op:get()
    while not ok do
      -- a poll that failed for a reason worth retrying: the operation goes on in the server (a
      -- restarting server, a token endpoint out of reach), so polling goes on, for up to
      -- `unreachable` seconds without a successful poll (or as opts.on_poll_error says)
      local again = err.kind ~= "interrupted" and err.kind ~= "cancelled" and
        ((opts.on_poll_error and opts.on_poll_error(err)) or
         (last_ok and err.retryable and monotime() - last_ok <= unreachable))
      if not again then return nil, stopped(op, err) end
      op:event("retry", tostring(err.message))
      st.backoff = math.min((st.backoff or opts.interval or 1) * 2, opts.max_interval or 30)
      local slept, serr = runner.io.sleep(st.backoff)
      if not slept then return nil, stopped(op, serr) end
      ok, err = op:get()
    end
    last_ok = monotime()
    if opts.on_poll then opts.on_poll(op) end
    if opts.on_progress then
      local cb_ok, cb_err = pcall(opts.on_progress, op)
      if not cb_ok then
        return nil, errors.new{ kind = "callback", message = "on_progress raised: " .. tostring(cb_err),
          operation = op }
      end
    end
    if op.done then
      if op.error and not op.partial then return nil, op:failure() end
      return op
    end
    local now = monotime()
    if deadline and now >= deadline then
      return nil, errors.new{ kind = "timeout", operation = op,
        message = ("operation %s still running after %gs"):format(op.name, opts.timeout),
        hint = "it goes on in the server: call op:wait{} again (or c:operation(\"" .. op.name .. "\"):wait{})",
        hint_cli = "it goes on in the server: wait again with dicomgcs operations wait " .. op:cli_ref() }
    end
    local delay = operation.next_delay(op, st, opts)
    if deadline then delay = math.min(delay, deadline - now) end
    local slept, serr = runner.io.sleep(math.max(delay, 0))
    if not slept then return nil, stopped(op, serr) end
  end
end
operation.watch = watch

local wait_known = { ops = true, on_progress = true, timeout = true, interval = true, max_interval = true,
  near_interval = true, expected = true, on_done = true, on_poll = true, on_poll_error = true }

--- Wait on many operations at once (one loop, no blocking sleep; they must share one transport).
-- `opts.ops` (array of Operations), `on_progress(op)` after each poll of any of them,
-- `on_done(op, result, err)` when one ends, `timeout`/`interval`/`max_interval`/`near_interval`
-- (seconds), `expected` (files each is known to process, e.g. the matched count).
-- Returns an array with one `{ op=, ok=bool, err=Error? }` per operation, in order, plus
-- `interrupted = true` when Ctrl-C stopped the wait (each unfinished one then has an Error of
-- kind "interrupted": the operations go on in the server).
function operation.wait_all(opts)
  for k in pairs(opts) do
    if not wait_known[k] then error(("operation.wait_all: unknown option '%s'"):format(tostring(k)), 2) end
  end
  local ops = opts.ops or {}
  local out = {}
  if #ops == 0 then return out end
  local core = require "dicomgcs.core"
  local deadline = opts.timeout and (core.monotime() + opts.timeout)
  local jobs = {}
  for i, op in ipairs(ops) do
    jobs[i] = { fn = function()
      local done, err = watch(op, opts, deadline, core.monotime)
      out[i] = { op = op, ok = done ~= nil, err = err }
      if opts.on_done then opts.on_done(op, done, err) end
      if done then return {} end
      return nil, err
    end }
  end
  local summary = runner.run(ops[1].transport, jobs, { max_active = #jobs, interruptible = true })
  for i, r in ipairs(summary.results) do
    out[i] = out[i] or { op = ops[i], ok = false, err = r.err }
  end
  out.interrupted = summary.interrupted
  return out
end

--- Poll until the operation is done (one engine loop, no blocking sleep).
-- `opts.timeout` (seconds, default none: long imports take hours), `opts.interval` (first
-- poll delay, default 1 s), `opts.max_interval` (cap on every delay; without it, 30 s while
-- there is no prediction), `opts.expected` (files it will process, when known),
-- `opts.on_progress(op)` after every poll (an error it raises stops the wait and is returned
-- as kind "callback"), `opts.unreachable` (seconds, default 300: once a poll has succeeded, polls
-- that fail with a retryable error — a server restarting, a token endpoint out of reach — do not
-- end the wait for this long; each is an `op.events` entry of kind "retry").
-- Returns self when it is done without a whole-operation error, including when some files
-- failed (`op.partial` true, `op.counter.failure` > 0, `op:failure()` the Error); else nil,
-- Error: kind "operation" when the operation failed as a whole (e.g. PERMISSION_DENIED,
-- cancelled, nothing processed; `err.operation` is this object, with its counters), "timeout"
-- when time ran out, "interrupted" on Ctrl-C (the operation goes on in the server).
-- Inside a runner job it waits as part of that runner's loop.
function Operation:wait(opts)
  opts = opts or {}
  local core = require "dicomgcs.core"
  local deadline = opts.timeout and (core.monotime() + opts.timeout)
  if runner.current() then return watch(self, opts, deadline, core.monotime) end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.ops = { self }
  local r = operation.wait_all(o)[1]
  if r.ok then return self end
  return nil, r.err
end

return operation
