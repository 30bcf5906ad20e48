--- Outcome reports: every matched input with its outcome, as JSON and CSV files, with totals
-- that must add up (succeeded + failed + skipped + conflict = matched; a conflict is a file whose
-- SOP Instance UID the store already held with other bytes). Nothing is silently dropped: an
-- input without an outcome is reported as "unknown" and makes `complete` false.
-- @module dicomgcs.report
local atomicfile = require "dicomgcs.atomicfile"
local json = require "dicomgcs.json"
local localpath = require "dicomgcs.localpath"

local report = {}

local OUTCOMES = { succeeded = true, failed = true, skipped = true, conflict = true }

--- Build a report from the list of matched inputs (URIs or paths) and a table of outcomes
-- keyed by input: { outcome = "succeeded"|"failed"|"skipped"|"conflict", code=, reason= }.
-- Returns { rows = {...}, totals = {matched=, succeeded=, failed=, skipped=, conflict=, unknown=}, complete = bool }.
function report.build(inputs, outcomes)
  local rows = {}
  local totals = { matched = #inputs, succeeded = 0, failed = 0, skipped = 0, conflict = 0, unknown = 0 }
  for _, input in ipairs(inputs) do
    local o = outcomes[input]
    local outcome = o and OUTCOMES[o.outcome] and o.outcome or "unknown"
    totals[outcome] = totals[outcome] + 1
    rows[#rows + 1] = { input = input, outcome = outcome, code = o and o.code or nil,
                        reason = o and o.reason or (outcome == "unknown" and "no outcome recorded" or nil) }
  end
  return { rows = rows, totals = totals,
           complete = totals.unknown == 0 and
             totals.succeeded + totals.failed + totals.skipped + totals.conflict == totals.matched }
end

local function csv_field(v)
  if v == nil then return "" end
  v = tostring(v)
  if v:find('[,"\r\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
  return v
end

--- The CSV text of a report: header `input,outcome,code,reason`, one row per input.
function report.csv(r)
  local out = { "input,outcome,code,reason" }
  for _, row in ipairs(r.rows) do
    out[#out + 1] = table.concat({ csv_field(row.input), csv_field(row.outcome), csv_field(row.code),
                                   csv_field(row.reason) }, ",")
  end
  return table.concat(out, "\r\n") .. "\r\n"
end

--- The JSON text of a report: { totals = {...}, complete = bool, rows = [...] }.
function report.json(r)
  return json.encode{ totals = r.totals, complete = r.complete, rows = json.array(r.rows) }
end

--- The self-contained HTML page of a report (see dicomgcs.report.html for the fields it shows).
function report.html(r)
  return require("dicomgcs.report.html").render(r)
end

--- Write `base.json` and `base.csv` (each whole or not at all), creating their folder; with
-- `opts.format = "html"`, write the HTML page to the path `base` instead. Returns true or nil, Error.
function report.write(r, base, opts)
  local ok, err = localpath.make_parent(base)
  if not ok then return nil, err end
  if opts and opts.format == "html" then
    return atomicfile.write(base, report.html(report.describe(r, opts)))
  end
  for _, ext in ipairs{ "json", "csv" } do
    ok, err = atomicfile.write(base .. "." .. ext, ext == "json" and report.json(r) or report.csv(r))
    if not ok then return nil, err end
  end
  return true
end

-- The command line that started this process, quoted for a POSIX shell.
local function quote(a)
  if a:match("^[%w%-_./=:@,+%%]+$") then return a end
  return "'" .. a:gsub("'", "'\\''") .. "'"
end
function report.command_line(argv, program)
  local words = { program }
  for _, a in ipairs(argv or {}) do words[#words + 1] = quote(tostring(a)) end
  return table.concat(words, " ")
end

--- Fill in what a report page shows about the run, without overwriting what `r` has:
-- `opts` fields (`kind`, `title`, `source`, `store`, `operation`, `started`, `ended`, `command`,
-- `history`, `events`, `operations`, `bytes`) and defaults: the tool's version, the time now, and
-- as the command, the Lua script and arguments of this process. Returns `r`.
function report.describe(r, opts)
  opts = opts or {}
  for _, k in ipairs{ "kind", "title", "source", "store", "operation", "started", "ended", "command",
                      "history", "events", "operations", "bytes" } do
    if r[k] == nil then r[k] = opts[k] end
  end
  r.version = r.version or require "dicomgcs.version"
  r.generated = r.generated or require("dicomgcs.timestamp").now()
  if not r.command and arg and arg[0] then
    r.command = report.command_line(arg, (arg[-1] or "lua5.4") .. " " .. quote(arg[0]))
  end
  return r
end

--- Take an Operation's poll history, events, name and times into a report. Returns `r`.
function report.from_operation(r, op)
  local timestamp = require "dicomgcs.timestamp"
  local h = op.history or {}
  r.operation = r.operation or op.name
  r.history = r.history or h
  r.events = r.events or op.events or {}
  local md = op.metadata or {}
  r.started = r.started or timestamp.parse(md.createTime) or (h[1] and h[1].t)
  r.ended = r.ended or timestamp.parse(md.endTime) or (h[#h] and h[#h].t)
  return r
end

--- A recorder of counters over time for runs that do not poll an operation (STOW, transfers):
-- `rec:sample{success=, failure=, pending=, bytes=}` keeps at most one point per `interval`
-- seconds (default 0.25; `force` keeps it anyway), `rec:event(kind, detail)` marks a moment,
-- `rec.history`, `rec.events`, `rec.started` are what a report takes.
function report.recorder(interval)
  local timestamp = require "dicomgcs.timestamp"
  local rec = { history = {}, events = {}, started = timestamp.now() }
  interval = interval or 0.25
  function rec.sample(_, c, force)
    local now, last = timestamp.now(), rec.history[#rec.history]
    if not force and last and now - last.t < interval then return end
    rec.history[#rec.history + 1] = { t = now, success = c.success or 0, failure = c.failure or 0,
                                      pending = c.pending or 0, bytes = c.bytes }
  end
  function rec.event(_, kind, detail)
    rec.events[#rec.events + 1] = { t = timestamp.now(), kind = kind, detail = detail }
  end
  return rec
end

-- A report of a bulk summary's `results`: `outcome_of(x)` gives each one's input and outcome.
local function from_results(summary, kind, outcome_of)
  local inputs, outcomes = {}, {}
  for _, x in ipairs(summary.results or {}) do
    local input, o = outcome_of(x)
    inputs[#inputs + 1] = input
    outcomes[input] = o
  end
  local r = report.build(inputs, outcomes)
  r.kind, r.bytes = kind, summary.bytes
  return r
end

--- A report of a STOW (dicomweb:store summary: `results` with `path`, `status` "stored" |
-- "already_present" | "failed" | "skipped", `reason`): already present counts as skipped.
function report.from_stow(summary)
  return from_results(summary, "stow", function(x)
    local o = (x.status == "stored" and "succeeded") or (x.status == "failed" and "failed") or "skipped"
    return x.path, { outcome = o, code = x.http_status or (x.status ~= "stored" and x.status or nil),
                     reason = x.reason or x.failure_reason }
  end)
end

--- A report of a Cloud Storage transfer (runner summary: `results` with `source`, `ok`,
-- `skipped`, `err`): skipped means already there with the same checksum.
function report.from_transfer(summary)
  return from_results(summary, "transfer", function(x)
    local o = not x.ok and "failed" or (x.skipped and "skipped" or "succeeded")
    return x.source, { outcome = o, code = x.err and (x.err.status or x.err.http_status or x.err.kind) or nil,
                       reason = x.err and (x.err.message or tostring(x.err))
                         or (x.skipped and "already there with the same checksum" or nil) }
  end)
end

--- A report of a queue run (Queue:run's summary) with the failed files found for each job
-- (`failed_files[key]` = list of failures from client:failures: `uri`, `status`, `message`).
-- Only failures are listed row by row; succeeded files are counted from the counters.
function report.from_queue(summary, failed_files)
  failed_files = failed_files or {}
  local rows, ops = {}, {}
  local t = { matched = 0, succeeded = 0, failed = 0, skipped = 0, unknown = 0, pending = 0 }
  local started, ended
  for _, j in ipairs(summary.jobs or {}) do
    local c = j.counter or { success = 0, failure = 0, pending = 0 }
    local poll = j.poll or {}
    local h = poll.history or {}
    local op = { key = j.key, name = j.operation, state = j.state, error = j.error, history = h,
                 events = poll.events or {}, source = j.uri,
                 started = h[1] and h[1].t, ended = h[#h] and h[#h].t,
                 totals = { matched = c.success + c.failure + (c.pending or 0), succeeded = c.success,
                            failed = c.failure, skipped = 0, unknown = 0, pending = c.pending or 0 } }
    ops[#ops + 1] = op
    for k, v in pairs(op.totals) do t[k] = t[k] + v end
    if op.started and (not started or op.started < started) then started = op.started end
    if op.ended and (not ended or op.ended > ended) then ended = op.ended end
    for _, f in ipairs(failed_files[j.key] or {}) do
      rows[#rows + 1] = { input = f.uri, outcome = "failed", code = f.status, reason = f.message, operation = j.key }
    end
  end
  -- the queue's own history: every job's latest counters summed at each recorded moment
  local moments = {}
  for _, op in ipairs(ops) do for _, p in ipairs(op.history) do moments[#moments + 1] = p.t end end
  table.sort(moments)
  local history, events, at = {}, {}, {}
  for _, m in ipairs(moments) do
    local s = { t = m, success = 0, failure = 0, pending = 0 }
    for i, op in ipairs(ops) do
      local h, k = op.history, at[i] or 0
      while h[k + 1] and h[k + 1].t <= m do k = k + 1 end
      at[i] = k
      local last = h[k]
      if last then s.success, s.failure, s.pending = s.success + last.success, s.failure + last.failure, s.pending + last.pending end
    end
    if history[#history] and history[#history].t == m then history[#history] = s else history[#history + 1] = s end
  end
  for _, op in ipairs(ops) do
    for _, e in ipairs(op.events) do
      events[#events + 1] = { t = e.t, kind = e.kind, detail = op.key .. ": " .. tostring(e.detail or "") }
    end
  end
  table.sort(events, function(a, b) return a.t < b.t end)
  return { kind = "queue", rows = rows, totals = t, operations = ops, history = history, events = events,
           started = started, ended = ended, ok = summary.ok,
           complete = t.pending == 0 and t.succeeded + t.failed == t.matched }
end

return report
