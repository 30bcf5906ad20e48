--- Long-running operations (import, export, dataset creation, …).
-- `op:get()` refreshes, `op:wait{}` polls with backoff until done, `op:cancel()` asks the
-- server to stop. Counters are read from `metadata.counter` (int64 strings on the wire) and
-- exposed as integers in `op.counter` (`success`, `failure`, `pending`, zeros included).
-- @module dicomgcs.operation
local core = require "dicomgcs.core"
local errors = require "dicomgcs.errors"

local operation = {}

local Operation = { __name = "dicomgcs.Operation" }
Operation.__index = Operation

local function count(v)
  if v == nil then return 0 end
  return math.tointeger(tonumber(v)) or 0
end

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
  return self
end

--- Wrap an operation document (or a bare name) for a transport and base URL.
function operation.new(transport, base_url, doc)
  if type(doc) == "string" then doc = { name = doc } end
  local self = setmetatable({ transport = transport, base_url = base_url }, Operation)
  return absorb(self, doc)
end

function Operation:__tostring()
  local c = self.counter
  return ("operation %s: %s (success %d, failure %d, pending %d)"):format(
    self.name, self.done and (self.error and "failed" or "done") or "running", c.success, c.failure, c.pending)
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

--- Refresh from the server. Returns self or nil, Error.
function Operation:get()
  local doc, res = self.transport:json("GET", self.base_url .. "/" .. self.name, nil,
    "get operation " .. self.name)
  if not doc then return nil, res end
  if res.quota_waits then             -- the engine waited out 429s for this poll (op.events, TEAM.md)
    self.events = self.events or {}
    self.events[#self.events + 1] = { t = os.time(), kind = "throttle",
      detail = ("throttled by quota: the poll waited out %d quota error(s)"):format(res.quota_waits) }
  end
  return absorb(self, doc)
end

--- Ask the server to cancel (best effort: it stops between files). With `opts.wait`, poll
-- until the operation has stopped, so that its counters tell what it did before it stopped
-- (`counter.pending` is what it never processed). Returns self (refreshed) or nil, Error.
function Operation:cancel(opts)
  opts = opts or {}
  local ok, err = self.transport:json("POST", self.base_url .. "/" .. self.name .. ":cancel", {},
    "cancel operation " .. self.name)
  if not ok then return nil, err end
  if not opts.wait then return self:get() end
  local _, werr = self:wait{ interval = opts.interval or 0.5, max_interval = 5, timeout = opts.timeout }
  if werr and werr.kind ~= "operation" then return nil, werr end
  return self
end

--- The error an operation ended with, as a `dicomgcs.Error` (kind "operation").
function Operation:failure()
  if not (self.done and self.error) then return nil end
  local e = self.error
  local code = math.tointeger(tonumber(e.code)) or 2
  local c = self.counter
  return errors.new{
    kind = "operation", code = code, status = errors.rpc_status[code] or "UNKNOWN",
    message = ("operation %s failed: %s (success %d, failure %d)"):format(
      self.name, tostring(e.message or "no message"), c.success, c.failure),
    details = e.details, operation = self,
    -- permission_hint: set by the client when its pre-check could not see the service agent's grant
    hint = (code == 7 and self.permission_hint)
      or (c.failure > 0 and "list the failed files: c:failures(op).failures (each {uri=, status=, message=})" or nil),
    hint_cli = (code == 7 and self.permission_hint)
      or (c.failure > 0 and ("list the failed files: dicomgcs operations failures " .. self:cli_ref()) or nil),
  }
end

--- Poll until the operation is done.
-- `opts.timeout` (seconds, default none: long imports take hours), `opts.interval` (first poll
-- delay, default 1 s), `opts.max_interval` (default 30 s), `opts.on_progress(op)` called after
-- every poll (an error it raises stops the wait and is returned as kind "callback").
-- Returns self when it succeeded, or nil, Error: kind "operation" when it ended with an error
-- (`err.operation` is this object, with its counters), "timeout" when time ran out.
function Operation:wait(opts)
  opts = opts or {}
  local interval = opts.interval or 1
  local max_interval = opts.max_interval or 30
  local deadline = opts.timeout and (core.monotime() + opts.timeout)
  while true do
    local ok, err = self:get()
    if not ok then return nil, err end
    if opts.on_progress then
      local cb_ok, cb_err = pcall(opts.on_progress, self)
      if not cb_ok then
        return nil, errors.new{ kind = "callback", message = "on_progress raised: " .. tostring(cb_err),
          operation = self }
      end
    end
    if self.done then
      if self.error then return nil, self:failure() end
      return self
    end
    local now = core.monotime()
    if deadline and now >= deadline then
      return nil, errors.new{ kind = "timeout", operation = self,
        message = ("operation %s still running after %gs"):format(self.name, opts.timeout),
        hint = "it goes on in the server: call op:wait{} again (or c:operation(\"" .. self.name .. "\"):wait{})",
        hint_cli = "it goes on in the server: wait again with dicomgcs operations wait " .. self:cli_ref() }
    end
    local delay = interval
    if deadline then delay = math.min(delay, deadline - now) end
    core.sleep(math.max(delay, 0))
    interval = math.min(interval * 1.5, max_interval)
  end
end

return operation
