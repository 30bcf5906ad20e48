--- Requests that must not be replayed blindly (issue #15 §4): `:import`, `:export`,
-- `datasets.create`, `dicomStores.create`, `buckets.insert`. They go out with
-- `replay = "never-ambiguous"`: the engine resends them only when they surely did not run
-- (no connection, 408, 429, 503; see core.classify). After an ambiguous failure (connection
-- lost once the request was sent, a timeout, 500/502/504) this module finds out what happened
-- instead of resending: a create looks the resource up ("exists" is success); an import or
-- export adopts the one matching operation started since the request. Otherwise the caller
-- gets an Error of kind `ambiguous` that says what to check. Private to dicomgcs.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.replay
-- @local
local core = require "dicomgcs.core"
local errors = require "dicomgcs.errors"
local timestamp = require "dicomgcs.timestamp"

local replay = {}

-- Slack around the request's start on the server's clock: its `Date` header has whole seconds.
replay.SLACK = 2

--- Send a JSON request once. Returns doc, res; or nil, Error, started (monotonic seconds before
-- sending) — `errors.class(err) == "ambiguous"` tells whether to look for its effect.
function replay.send(transport, method, url, body, what)
  local started = core.monotime()
  local doc, res = transport:json(method, url, body, what, "never-ambiguous")
  return doc, res, started
end

local function ambiguous(what, cause, check)
  return errors.new{ kind = "ambiguous", message = what .. ": the answer was lost after the request was sent (" ..
    tostring(cause and cause.message or cause) .. "), so it may or may not have run", hint = check, cause = cause,
    http_status = cause and cause.http_status, class = "ambiguous" }
end
replay.ambiguous = ambiguous

--- After an ambiguous create: `get()` → resource or nil, Error. A resource that exists is the
-- create's success; anything else is an `ambiguous` Error naming what to check.
function replay.settle_create(what, cause, get, check)
  local found, gerr = get()
  if found then return found end
  if gerr and gerr.http_status == 404 then
    return nil, ambiguous(what, cause, "it does not exist now; " .. check)
  end
  return nil, ambiguous(what, cause, "looking it up failed too (" .. tostring(gerr and gerr.message) .. "); " .. check)
end

--- After an ambiguous `:import`/`:export`: adopt the one operation whose
-- metadata.apiMethodName ends with `method`, created since the request on the server's clock
-- (`server_now()` → the server's `Date` now, in epoch seconds, or nil: no time bound), and not
-- in `known` (operations this client started itself). `list()` → the dataset's Operations.
-- Returns the Operation (with `adopted = true`) or nil, Error.
function replay.adopt_operation(what, cause, started, method, list, check, server_now, known)
  local now = server_now()
  local since = now and now - (core.monotime() - started) - replay.SLACK
  local ops, lerr = list()
  if not ops then
    return nil, ambiguous(what, cause, "listing the operations failed too (" .. tostring(lerr and lerr.message) ..
      "); " .. check)
  end
  local found = {}
  for _, op in ipairs(ops) do
    local t = op.metadata and timestamp.parse(op.metadata.createTime or "")
    local m = op.method or ""
    if t and (not since or t >= since) and not (known or {})[op.name] and m:sub(-#method - 1) == "." .. method then
      found[#found + 1] = op
    end
  end
  if #found == 1 then
    found[1].adopted = true
    return found[1]
  end
  if #found == 0 then
    return nil, ambiguous(what, cause, ("no %s operation started since then: it most likely did not run; %s"):format(
      method, check))
  end
  local list_names = {}
  for i, op in ipairs(found) do list_names[i] = op.name end
  return nil, ambiguous(what, cause, ("%d %s operations started since then (%s): check which is yours"):format(
    #found, method, table.concat(list_names, ", ")))
end

return replay
