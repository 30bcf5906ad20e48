--- Runs many multi-step transfers on one engine: each job is a coroutine that yields the
-- requests it needs (one, or several at once) and gets their outcomes back, so a resumable
-- upload (start, chunks, status queries) or a ranged download (N range GETs into one file) reads
-- as straight-line code while every job's requests share the engine's concurrency.
-- Private to dicomgcs.gcs.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.gcs.runner
-- @local
local errors = require "dicomgcs.errors"
local http = require "dicomgcs.http"

local runner = {}

local YIELD = {}   -- marks our yields (a job must not yield anything else)

-- What a job function gets (`net`): `net.request(req, what)` -> res | nil, Error (HTTP >= 400 is an
-- Error, 308 is not); `net.requests({ {req, what}, ... })` -> array of { res=, err= }.
local io_api = {}
function io_api.request(req, what)
  local out = coroutine.yield(YIELD, { { req, what } })
  return out[1].res, out[1].err
end
function io_api.requests(list)
  if #list == 0 then return {} end
  return coroutine.yield(YIELD, list)
end

--- Run `jobs` (array of { source=, target=, fn=function(net) -> info | nil, Error, err=Error?,
-- large=bool }) and return a summary `{ ok=, failed=, skipped=, bytes=, results= }` with one
-- result per job, in input order: `{ source=, target=, ok=, err=?, skipped=?, object=?, bytes=? }`.
-- `info` fields (object, skipped, bytes, resumed) are copied into the result.
-- opts: `max_active` (jobs started at once, default 64), `max_large` (of which large, default 2),
-- `on_progress(result, summary, total)` after each job.
function runner.run(transport, jobs, opts)
  opts = opts or {}
  local max_active, max_large = opts.max_active or 64, opts.max_large or 2
  local results = {}
  local summary = { ok = 0, failed = 0, skipped = 0, bytes = 0, results = results }
  local engine = transport.engine
  local waiting = {}          -- engine id -> { job=i, slot=k }
  local state = {}            -- job i -> { co=, outs=, left= }
  local active, active_large, next_job = 0, 0, 1

  local function finish(i, info, err)
    local r = results[i]
    if state[i] then
      active = active - 1
      if jobs[i].large then active_large = active_large - 1 end
      state[i] = nil
    end
    if info then
      r.ok = true
      for k, v in pairs(info) do r[k] = v end
      summary.ok = summary.ok + 1
      if r.skipped then summary.skipped = summary.skipped + 1 end
      summary.bytes = summary.bytes + (r.bytes or 0)
    else
      r.ok = false
      r.err = errors.is(err) and err or errors.new{ kind = "internal", message = tostring(err) }
      summary.failed = summary.failed + 1
    end
    if opts.on_progress then opts.on_progress(r, summary, #jobs) end
  end

  local resume
  local function submit_batch(i, list)
    local st = state[i]
    st.outs, st.left = {}, #list
    for k, item in ipairs(list) do
      local req, what = item[1], item[2]
      local ok, id = pcall(transport.submit, transport, req)
      if ok then
        waiting[id] = { job = i, slot = k, url = req.url, what = what }
      else
        st.outs[k] = { err = errors.new{ kind = "input", message = (what and (what .. ": ") or "") .. tostring(id) } }
        st.left = st.left - 1
      end
    end
    if st.left == 0 then return resume(i, st.outs) end
  end

  function resume(i, value)
    local st = state[i]
    local ok, a, b = coroutine.resume(st.co, value)
    if not ok then return finish(i, nil, a) end
    if coroutine.status(st.co) == "dead" then
      if a == nil and b == nil then return finish(i, nil, "the job returned nothing") end
      return finish(i, a, b)
    end
    if a ~= YIELD then return finish(i, nil, "a transfer job yielded outside the runner") end
    return submit_batch(i, b)
  end

  local function start(i)
    local job = jobs[i]
    results[i] = { source = job.source, target = job.target }
    if job.err then return finish(i, nil, job.err) end
    active = active + 1
    if job.large then active_large = active_large + 1 end
    state[i] = { co = coroutine.create(function() return job.fn(io_api) end) }
    return resume(i, nil)
  end

  local function fill()
    while next_job <= #jobs and active < max_active do
      local job = jobs[next_job]
      if job.large and active_large >= max_large and active > 0 then break end
      next_job = next_job + 1
      start(next_job - 1)
    end
  end

  fill()
  while next(waiting) or next_job <= #jobs do
    if not next(waiting) then
      fill()
    else
      for _, done in ipairs(engine:step(200)) do
        local w = waiting[done.id]
        if w then
          waiting[done.id] = nil
          local st = state[w.job]
          local res, err = http.completion(done, w.url, w.what)
          st.outs[w.slot] = { res = res, err = err }
          st.left = st.left - 1
          if st.left == 0 then resume(w.job, st.outs) end
        end
      end
      fill()
    end
  end
  return summary
end

return runner
