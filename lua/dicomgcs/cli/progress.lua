--- Progress for the command line, told truthfully: on a terminal a bar redrawn in place (%,
-- counts, rate, ETA), when piped plain lines (operations: one per change; copies: one summary
-- line at the end). A rate is only shown once it has been observed: the work done between two
-- looks divided by the time between them, never the total divided by the time since we started
-- watching (an operation that finished before the first poll has no rate to show).
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.cli.progress
-- @local
local core = require "dicomgcs.core"
local term = require "dicomgcs.cli.term"

local progress = {}

--- Bytes as people read them: "812 B", "3.4 KiB", "12.0 MiB", "1.50 GiB".
function progress.bytes(n)
  n = n or 0
  if n < 1024 then return ("%d B"):format(math.floor(n)) end
  local units = { "KiB", "MiB", "GiB", "TiB" }
  local v, i = n / 1024, 1
  while v >= 1024 and i < #units do v, i = v / 1024, i + 1 end
  return (v >= 100 and "%.0f %s" or "%.1f %s"):format(v, units[i])
end

--- Seconds as "1.3s", "42s", "3m05s", "2h07m".
function progress.duration(s)
  if s < 10 then return ("%.1fs"):format(math.max(0, s)) end
  s = math.floor(s + 0.5)
  if s < 60 then return s .. "s" end
  if s < 3600 then return ("%dm%02ds"):format(s // 60, s % 60) end
  return ("%dh%02dm"):format(s // 3600, (s % 3600) // 60)
end

--- A rate meter over observations `(done, t)`: `rate()` is nil until two observations with
-- time between them, then (done now − done at the first look) / (time between them).
function progress.meter()
  local first, last
  local m = {}
  function m.observe(done, t)
    t = t or core.monotime()
    if not first then first = { done = done, t = t } end
    last = { done = done, t = t }
  end
  function m.rate()
    if not first or last.t - first.t <= 0 then return nil end
    return (last.done - first.done) / (last.t - first.t)
  end
  --- Seconds left for `remaining` units at the observed rate, or nil when unknown.
  function m.eta(remaining)
    local r = m.rate()
    if not r or r <= 0 then return nil end
    return remaining / r
  end
  return m
end

--- A text bar of `width` cells for a fraction 0..1.
function progress.bar(fraction, width)
  width = width or 24
  fraction = math.max(0, math.min(1, fraction or 0))
  local full = math.floor(fraction * width + 0.5)
  return "[" .. string.rep("#", full) .. string.rep("-", width - full) .. "]"
end

local function eta_text(m, remaining)
  local eta = m.eta(remaining)
  return eta and ("ETA " .. progress.duration(eta)) or "ETA --"
end

--- The note while requests wait out quota errors (429): "" when not throttled.
function progress.throttle_note(seconds)
  if not seconds or seconds <= 0 then return "" end
  return (" — throttled by quota, waiting %d s"):format(math.ceil(seconds))
end

--- The reporter for an operation's polls: `report(op)` after each poll, `finish()` at the end.
-- `tty` (default: whether stderr is a terminal) chooses the bar or plain lines.
function progress.operation(stream, tty)
  stream = stream or io.stderr
  if tty == nil then tty = term.isatty(2) end
  local m = progress.meter()
  local last, drawn
  local reporter = {}
  function reporter.report(op)
    local c = op.counter
    local done = c.success + c.failure
    local total = done + c.pending
    m.observe(done)
    local rate = m.rate()
    local id = term.escape(op:id())
    local th = op.transport and op.transport.throttle and op.transport:throttle()
    local note = progress.throttle_note(th and th.wait)
    if tty then
      local text
      if total == 0 then
        text = ("%s: %s"):format(id, op.done and "done" or "starting")
      else
        text = ("%s %3d%%  %d/%d files (%d failed)  %s  %s"):format(progress.bar(done / total),
          math.floor(100 * done / total), done, total, c.failure,
          rate and ("%.1f files/s"):format(rate) or "-- files/s",
          op.done and "done" or eta_text(m, c.pending))
        text = id .. " " .. text
      end
      stream:write("\r\27[K", text, note)
      stream:flush()
      drawn = true
    else
      local key = ("%d/%d/%d/%s/%s"):format(c.success, c.failure, c.pending, tostring(op.done), note ~= "")
      if key ~= last then
        stream:write(("%s: %d succeeded, %d failed, %d pending%s%s%s\n"):format(id, c.success, c.failure, c.pending,
          rate and (", %.1f files/s"):format(rate) or "", op.done and ", done" or "", note))
        stream:flush()
      end
      last = key
    end
  end
  function reporter.finish()
    if tty and drawn then stream:write("\n") end
  end
  return reporter
end

--- The reporter for a bulk copy of `files` files and `bytes` bytes: `on_progress` is the
-- upload/download callback (result, summary, total); `finish(summary)` returns the summary
-- line's tail: "(12.0 MiB in 1.2s, 10.0 MiB/s)".
function progress.transfer(stream, files, bytes, tty)
  stream = stream or io.stderr
  if tty == nil then tty = term.isatty(2) end
  local started = core.monotime()
  local m = progress.meter()
  m.observe(0, started)
  local drawn, last_draw = false, 0
  local t = {}
  function t.on_progress(_, summary, total)
    files = total or files
    local now = core.monotime()
    m.observe(summary.bytes, now)
    local finished = summary.ok + summary.failed
    if not tty or (now - last_draw < 0.1 and finished < files) then return end
    last_draw = now
    local fraction = bytes > 0 and summary.bytes / bytes or (files > 0 and finished / files or 1)
    local rate = m.rate()
    stream:write("\r\27[K", ("%s %3d%%  %d/%d files  %s/%s  %s  %s"):format(progress.bar(fraction),
      math.floor(100 * fraction), finished, files, progress.bytes(summary.bytes), progress.bytes(bytes),
      rate and (progress.bytes(rate) .. "/s") or "--/s", eta_text(m, math.max(0, bytes - summary.bytes))))
    stream:flush()
    drawn = true
  end
  function t.finish(summary)
    if drawn then stream:write("\r\27[K") end
    local elapsed = core.monotime() - started
    return ("(%s in %s%s)"):format(progress.bytes(summary.bytes), progress.duration(elapsed),
      elapsed > 0 and (", " .. progress.bytes(summary.bytes / elapsed) .. "/s") or "")
  end
  return t
end

return progress
