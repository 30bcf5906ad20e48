--- Structured errors: every failure dicomgcs returns is a `dicomgcs.Error`.
-- Fields: `kind` (transport|timeout|cancelled|http|auth|json|io|operation|input|callback|ambiguous),
-- `message`, and where known `http_status`, `status` (Google's `error.status`, e.g. NOT_FOUND),
-- `code` (numeric google.rpc code for operations), `details`, `url`, `attempts`, `retryable`,
-- `class` (the retry class from the C core: retry|throttle|quota|ambiguous|fatal, see
-- `errors.class`), `hint` (what to do about it, as Lua calls), `hint_cli` (the same as dicomgcs
-- commands, where they differ). `tostring(err)` gives one readable line, with the hint for
-- `errors.context`.
-- @module dicomgcs.errors
local errors = {}

local Error = { __name = "dicomgcs.Error" }
Error.__index = Error

function Error:__tostring()
  local s = self.kind .. ": " .. self.message
  if self.http_status then
    s = s .. (" [HTTP %d%s]"):format(self.http_status, self.status and (" " .. self.status) or "")
  elseif self.status then
    s = s .. " [" .. self.status .. "]"
  end
  local hint = errors.context == "cli" and self.hint_cli or self.hint
  if hint then s = s .. " — " .. hint end
  return s
end

errors.Error = Error

--- Where errors are read: "lua" (the default: hints are Lua calls) or "cli" (set by the command
-- line: hints are `dicomgcs …` commands, from `hint_cli` when an error has one).
errors.context = "lua"

--- Make an error object from a table of fields (`kind` and `message` are required).
function errors.new(fields)
  assert(type(fields.kind) == "string" and type(fields.message) == "string", "errors.new: kind and message")
  return setmetatable(fields, Error)
end

function errors.is(v) return getmetatable(v) == Error end

--- Whether `e` (anything raised or returned) is Ctrl-C: lua.c's "interrupted!" (raised by its hook
-- wherever Lua runs next) or an Error of kind "interrupted".
function errors.is_interrupt(e)
  if type(e) == "string" then return e:match("interrupted!$") ~= nil end
  return errors.is(e) and e.kind == "interrupted"
end

-- google.rpc.Code numbers, for operations and log entries.
errors.rpc_status = {
  [0] = "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
  "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
  "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}

local core = require "dicomgcs.core"

-- The classes worth another try of the same request (later, or by the engine).
local RETRYABLE = { retry = true, throttle = true, quota = true }

-- google.rpc status names → the HTTP status Google maps them to (google/rpc/code.proto), so an
-- operation's error is classified by the same C function as an HTTP answer.
local http_of_status = {
  RESOURCE_EXHAUSTED = 429, UNAVAILABLE = 503, DEADLINE_EXCEEDED = 504, INTERNAL = 500,
  ABORTED = 409, UNKNOWN = 500, DATA_LOSS = 500,
}

--- The retry class of an Error (or of an engine error table): "retry", "throttle", "quota",
-- "ambiguous" or "fatal" — decided by the one classification in the C core (core.classify);
-- `replay` ("safe" default, or "never-ambiguous") is the request's replay mode.
function errors.class(err, replay)
  if type(err) ~= "table" then return "fatal" end
  if err.class then return err.class end
  if err.ambiguous then return "ambiguous" end
  replay = replay or err.replay
  if err.status == "ABORTED" then return "retry" end   -- a concurrency conflict: try again (AIP-194)
  if err.http_status then return core.classify{ status = err.http_status, replay = replay } end
  if err.curl_code then return core.classify{ curl_code = err.curl_code, replay = replay } end
  local status = type(err.status) == "string" and err.status
    or (math.type(err.code) == "integer" and errors.rpc_status[err.code]) or nil
  if status == "ABORTED" then return "retry" end
  if http_of_status[status] then return core.classify{ status = http_of_status[status], replay = replay } end
  if err.kind == "transport" or err.kind == "timeout" then return "retry" end
  return "fatal"
end

--- Is the class one worth another try of the same request?
function errors.retryable(class) return RETRYABLE[class] == true end

local http_hints = {
  [401] = "check the credentials: the token was missing, expired or rejected",
  [403] = "the caller lacks permission on this resource; check IAM roles and that the API is enabled",
  [404] = "check the project, location, dataset and store names (and that the resource exists)",
  [409] = "the resource already exists or conflicts with its current state",
  [429] = "quota exhausted; lower the concurrency or ask for more quota",
}

--- Turn an HTTP response with status >= 400 into an Error, reading Google's JSON error body
-- (Healthcare/Logging: `error.status`; Cloud Storage: `error.errors[1].reason`).
-- `replay` is the request's replay mode (see errors.class).
function errors.from_response(res, url, what, replay)
  local json = require "dicomgcs.json"
  local body = res.body or ""
  local class = core.classify{ status = res.status, replay = replay }
  local e = { kind = "http", http_status = res.status, url = url, attempts = res.attempts,
              class = class, retryable = RETRYABLE[class] == true }
  local doc = body ~= "" and json.decode(body) or nil
  local ge = type(doc) == "table" and type(doc.error) == "table" and doc.error or nil
  if ge then
    e.message = type(ge.message) == "string" and ge.message or ("HTTP " .. res.status)
    e.status = type(ge.status) == "string" and ge.status or nil
    e.details = ge.details
    if not e.status and type(ge.errors) == "table" and type(ge.errors[1]) == "table" then
      e.reason = ge.errors[1].reason
      e.status = e.reason
    end
  else
    local snippet = body:sub(1, 200):gsub("%s+", " ")
    e.message = ("HTTP %d%s"):format(res.status, snippet ~= "" and (": " .. snippet) or "")
  end
  if what then e.message = what .. ": " .. e.message end
  e.hint = http_hints[res.status]
  return errors.new(e)
end

--- Wrap an engine error table ({kind, message, curl_code, attempts, url, ambiguous}) as an Error.
function errors.from_transport(err, url, what)
  if errors.is(err) then return err end
  local e = {}
  for k, v in pairs(err) do e[k] = v end
  e.kind = e.kind or "transport"
  e.message = (what and (what .. ": ") or "") .. tostring(e.message or "request failed")
  e.url = e.url or url
  if e.kind == "transport" or e.kind == "timeout" then
    e.class = e.ambiguous and "ambiguous" or (e.curl_code and core.classify{ curl_code = e.curl_code }) or "retry"
  else
    e.class = "fatal"                  -- io, callback, cancelled, auth: the same request fails alike
  end
  e.retryable = RETRYABLE[e.class] == true
  if e.kind == "transport" and e.curl_code == 7 then
    e.hint = "nothing answers at " .. tostring(e.url):match("^%a+://[^/]+") ..
      "; is the service (or the emulator: emulator/start) running?"
  end
  return errors.new(e)
end

--- An error for bad input from the caller: names the input and says what to do.
function errors.input(message, hint)
  return errors.new{ kind = "input", message = message, hint = hint }
end

return errors
