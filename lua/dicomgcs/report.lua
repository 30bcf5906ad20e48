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

--- Write `base.json` and `base.csv` (each whole or not at all), creating their folder.
-- Returns true or nil, Error.
function report.write(r, base)
  local ok, err = localpath.make_parent(base)
  if not ok then return nil, err end
  for _, ext in ipairs{ "json", "csv" } do
    ok, err = atomicfile.write(base .. "." .. ext, ext == "json" and report.json(r) or report.csv(r))
    if not ok then return nil, err end
  end
  return true
end

return report
