--- The one scheduler: runs many jobs on one engine. Each job is a coroutine that yields the
-- requests it needs (one, or several at once), or a pause on an engine timer, and gets the
-- outcomes back, so a resumable upload, a ranged download, a pre-flight header read or the
-- polling of a long-running operation reads as straight-line code while every job's requests
-- share the engine's concurrency. Nothing blocks: time passes in the engine's step.
--
-- Inside a job, `Transport:request` (and so every API call made through it, e.g. `op:get()`)
-- yields to the runner instead of blocking, so code written for the blocking API runs
-- unchanged as a job.
--
-- Cancel and Ctrl-C are handled here, alike for every job: `runner:cancel(reason)` (e.g. from
-- an `on_progress` hook) or Ctrl-C while `interruptible` cancels every transfer and timer in
-- flight and resumes each waiting job with an Error of kind "cancelled" or "interrupted";
-- jobs not yet started finish with that Error without running. The run then returns as usual,
-- with `summary.cancelled` / `summary.interrupted` set. When something raises out of the run
-- instead (an on_progress hook; Ctrl-C in a run that is not `interruptible`, raised as
-- lua.c's "interrupted!" once the SIGINT is handed back to the handler from before), every
-- started job is still resumed with a stop so its cleanup runs (temporary files removed),
-- unreported, before the error goes on.
--
-- Used by dicomgcs.gcs (transfers), dicomgcs.check (ranged header reads),
-- dicomgcs.operation (waiting on operations, and so dicomgcs.queue) and dicomgcs.dicomweb
-- (`store`: one job per STOW request).
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.runner
-- @local
local core = require "dicomgcs.core"
local errors = require "dicomgcs.errors"
local http = require "dicomgcs.http"

local runner = {}

local YIELD = {}   -- marks our yields (a job must not yield anything else)
local current = setmetatable({}, { __mode = "k" })   -- coroutine -> Runner, while it is a job

-- Completions by engine id, per engine: whichever runner steps the engine files every
-- completion here and each runner takes its own, so a runner started inside another's job
-- (a queue hook that downloads, say) loses nothing of the outer one's.
local mailboxes = setmetatable({}, { __mode = "k" })
local function mailbox(engine)
  local m = mailboxes[engine]
  if not m then m = {}; mailboxes[engine] = m end
  return m
end

local function completion(done, w)
  if done.res and done.res.timer then return true end
  if w.raw and done.res then   -- any HTTP status is an answer
    if http.trace then http.trace("response", done.res) end
    return done.res
  end
  return http.completion(done, w.url, w.what, w.replay, w.transport)
end

-- What a job function gets (also reachable as runner.io inside a job):
-- `io.request(req, what)` -> res | nil, Error (HTTP >= 400 is an Error, 308 is not; `req.delay`
-- (seconds) starts it no earlier than that); `io.requests({ {req, what}, ... })` -> array of
-- { res=, err= }; `io.sleep(seconds)` -> true | nil, Error (cancelled/interrupted).
local io_api = {}
function io_api.request(req, what)
  local out = coroutine.yield(YIELD, { { req, what } })
  return out[1].res, out[1].err
end
-- `io.raw(req, what)` -> res with any HTTP status | nil, Error (transport failures only): for
-- protocols whose error answers carry results (a STOW 409 lists the instances that failed).
function io_api.raw(req, what)
  local out = coroutine.yield(YIELD, { { req, what, raw = true } })
  return out[1].res, out[1].err
end
function io_api.requests(list)
  if #list == 0 then return {} end
  return coroutine.yield(YIELD, list)
end
function io_api.sleep(seconds)
  local out = coroutine.yield(YIELD, { { timer = math.max(0, seconds) } })
  if out[1].err then return nil, out[1].err end
  return true
end
runner.io = io_api

--- The Runner running the calling coroutine as a job, or nil (then calls block as usual).
function runner.current()
  local co, main = coroutine.running()
  if main then return nil end
  return current[co]
end

local Runner = { __name = "dicomgcs.Runner" }
Runner.__index = Runner

--- Make a runner for `transport` (a dicomgcs.http transport: its engine and default headers).
-- opts: `max_active` (jobs started at once, default `core.max_in_flight`: as many as an engine
-- left to choose may run), `max_large` (of which large, default
-- 2), `on_progress(result, summary, total)` after each job, `on_step(runner)` after each
-- engine step (e.g. to report quota waits), `step_ms` (longest step, default 60000: how
-- often on_step runs while nothing completes), `interruptible` (Ctrl-C cancels
-- the run with kind "interrupted" instead of raising lua.c's "interrupted!").
function runner.new(transport, opts)
  opts = opts or {}
  return setmetatable({ transport = transport, engine = transport.engine, opts = opts, jobs = {},
    max_active = opts.max_active or core.max_in_flight, max_large = opts.max_large or 2, step_ms = opts.step_ms or 60000 }, Runner)
end

--- Add a job: { fn=function(io) -> info | nil, Error, err=Error? (fails at once), large=bool,
-- source=, target= (copied into its result) }. Returns its index.
function Runner:add(job)
  self.jobs[#self.jobs + 1] = job
  return #self.jobs
end

--- Stop the run: every job ends with an Error of `kind` ("cancelled" by default).
function Runner:cancel(message, kind)
  if self.stopping then return end
  self.stopping = errors.new{ kind = kind or "cancelled", message = message or "cancelled" }
end

--- Run every job; returns `{ ok=, failed=, skipped=, bytes=, results=, cancelled=?, interrupted=? }`
-- with one result per job, in order: `{ source=, target=, ok=, err=?, ... }` (the fields of the
-- job's `info` are copied in).
function Runner:run()
  local jobs, opts, engine, transport = self.jobs, self.opts, self.engine, self.transport
  local results = {}
  local summary = { ok = 0, failed = 0, skipped = 0, bytes = 0, results = results }
  local waiting = {}          -- engine id -> { job=i, slot=k, url=, what= }
  local state = {}            -- job i -> { co=, outs=, left= }
  local active, active_large, next_job = 0, 0, 1

  local aborting = false      -- a hook or Ctrl-C raised: jobs run their cleanup, unreported

  local function finish(i, info, err)
    local r = results[i]
    if state[i] then
      active = active - 1
      if jobs[i].large then active_large = active_large - 1 end
      current[state[i].co] = nil
      state[i] = nil
    end
    if info then
      r.ok = true
      if type(info) == "table" then for k, v in pairs(info) do r[k] = v end end
      summary.ok = summary.ok + 1
      if r.skipped then summary.skipped = summary.skipped + 1 end
      summary.bytes = summary.bytes + (r.bytes or 0)
    else
      r.ok = false
      r.err = errors.is(err) and err or errors.new{ kind = "internal", message = tostring(err) }
      summary.failed = summary.failed + 1
    end
    if opts.on_progress and not aborting then opts.on_progress(r, summary, #jobs) end
  end

  local resume
  local function submit_batch(i, list)
    local st = state[i]
    st.outs, st.left, st.asked = {}, #list, #list
    for k, item in ipairs(list) do
      local ok, id
      if item.timer then
        ok, id = pcall(engine.timer, engine, item.timer)
      else
        ok, id = pcall(transport.submit, transport, item[1])
      end
      if not ok and errors.is_interrupt(id) then error(id, 0) end   -- Ctrl-C, not a bad request
      if ok then
        waiting[id] = { job = i, slot = k, url = item[1] and item[1].url, what = item[2],
                         replay = item[1] and item[1].replay, transport = transport, raw = item.raw }
      else
        st.outs[k] = { err = errors.new{ kind = "input", message = (item[2] and (item[2] .. ": ") or "") .. tostring(id) } }
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
    if a ~= YIELD then return finish(i, nil, "a job yielded outside the runner") end
    if self.stopping then   -- stopped while it ran: it gets the stop for what it asks next
      local outs = {}
      for k = 1, #b do outs[k] = { err = self.stopping } end
      return resume(i, outs)
    end
    return submit_batch(i, b)
  end

  local function start(i)
    local job = jobs[i]
    results[i] = { source = job.source, target = job.target }
    if job.err then return finish(i, nil, job.err) end
    if self.stopping then return finish(i, nil, self.stopping) end
    active = active + 1
    if job.large then active_large = active_large + 1 end
    local co = coroutine.create(function() return job.fn(io_api) end)
    current[co] = self
    state[i] = { co = co }
    return resume(i, nil)
  end

  local function fill()
    while next_job <= #jobs and (active < self.max_active or self.stopping) do
      local job = jobs[next_job]
      if job.large and active_large >= self.max_large and active > 0 and not self.stopping then break end
      next_job = next_job + 1
      start(next_job - 1)
    end
  end

  -- Stop: cancel everything in flight; each waiting job gets the stop as its outcome.
  local box = mailbox(engine)
  local function stop_all()
    local ids = {}
    for id in pairs(waiting) do ids[#ids + 1] = id end
    table.sort(ids)
    for _, id in ipairs(ids) do engine:cancel(id) end
    for _, id in ipairs(ids) do
      local w = waiting[id]
      if w then
        waiting[id] = nil
        local st = state[w.job]
        st.outs[w.slot] = { err = self.stopping }
        st.left = st.left - 1
        if st.left == 0 then resume(w.job, st.outs) end
      end
    end
    for _, done in ipairs(engine:step(0)) do box[done.id] = done end
    for _, id in ipairs(ids) do box[id] = nil end   -- the cancelled ones: nobody waits for them
  end

  -- Something raised out of the run: cancel what is in flight, then resume every started job
  -- with the stop (as many times as it asks) so that its own cleanup runs, e.g. a download
  -- removing its temporary file, before the error goes on.
  local function abandon(err)
    local ctrl_c = errors.is_interrupt(err)
    self.stopping = self.stopping or errors.new{ kind = ctrl_c and "interrupted" or "cancelled",
      message = ctrl_c and "interrupted (Ctrl-C)" or "stopped: " .. tostring(err) }
    aborting = true
    local ids = {}
    for id in pairs(waiting) do ids[#ids + 1] = id end
    table.sort(ids)
    for _, id in ipairs(ids) do engine:cancel(id); waiting[id] = nil end
    local started = {}
    for i in pairs(state) do started[#started + 1] = i end
    table.sort(started)
    for _, i in ipairs(started) do
      local st = state[i]
      if st and coroutine.status(st.co) == "suspended" then
        local outs = {}
        for k = 1, st.asked or 0 do outs[k] = { err = self.stopping } end
        resume(i, outs)
      end
    end
    for _, done in ipairs(engine:step(0)) do box[done.id] = done end
    for _, id in ipairs(ids) do box[id] = nil end
  end

  -- Completions of our own transfers, stepping the engine only when none is filed yet.
  local function take_own()
    local got = {}
    for id, done in pairs(box) do
      if waiting[id] then got[#got + 1] = done; box[id] = nil end
    end
    if #got > 0 then return got end
    for _, done in ipairs(engine:step(self.step_ms)) do
      if waiting[done.id] then got[#got + 1] = done else box[done.id] = done end
    end
    return got
  end

  -- Every run catches Ctrl-C, so that it wakes the step at once. Interruptible runs stop with
  -- a summary; the others clean up (abandon) and then pass it on to whoever handled it before
  -- (lua.c raises "interrupted!"), as if they had never caught it.
  local guard = core.sigint_guard()
  local passing_on = false
  local ok, err = pcall(function()
    fill()
    while next(waiting) or next_job <= #jobs do
      if self.stopping then
        stop_all()
        fill()
      elseif not next(waiting) then
        fill()
      else
        local got = take_own()
        table.sort(got, function(x, y) return x.id < y.id end)
        for _, done in ipairs(got) do
          local w = waiting[done.id]
          if w then
            waiting[done.id] = nil
            local st = state[w.job]
            local res, rerr = completion(done, w)
            st.outs[w.slot] = { res = res, err = rerr }
            st.left = st.left - 1
            if st.left == 0 then resume(w.job, st.outs) end
          end
        end
        if opts.on_step then opts.on_step(self) end
        if guard:caught() then
          if not opts.interruptible then passing_on = true; error("interrupted!", 0) end
          self:cancel("interrupted (Ctrl-C)", "interrupted")
        end
        fill()
      end
    end
  end)
  if not ok then
    pcall(abandon, err)   -- the first error is the one to tell
    if passing_on then guard:pass_on() else guard:close() end
    error(err, 0)
  end
  guard:close()
  if self.stopping then summary[self.stopping.kind == "interrupted" and "interrupted" or "cancelled"] = true end
  return summary
end

--- Run `jobs` on `transport` (see runner.new for opts and Runner:run for the summary).
function runner.run(transport, jobs, opts)
  local r = runner.new(transport, opts)
  for _, job in ipairs(jobs) do r:add(job) end
  return r:run()
end

--- Wait `seconds` on an engine timer of `transport`'s engine: inside a job, as part of that
-- runner's loop; outside, as a one-job run that Ctrl-C interrupts. Returns true, or nil, Error
-- (kind "interrupted" on Ctrl-C, "cancelled" when the runner is cancelled).
function runner.pause(transport, seconds)
  if runner.current() then return runner.io.sleep(seconds) end
  local s = runner.run(transport, { { fn = function(io)
    local ok, err = io.sleep(seconds)
    if not ok then return nil, err end
    return {}
  end } }, { interruptible = true })
  if s.ok == 1 then return true end
  return nil, s.results[1].err
end

return runner
