--- Printing results for the command line: `--format=json|yaml|table`, and the progress line
-- for waiting (rewritten in place on a terminal, one plain line per change when piped).
-- @module dicomgcs.cli.output
local core = require "dicomgcs.core"
local json = require "dicomgcs.json"

local output = {}

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local function is_array(t)
  return type(t) == "table" and (#t > 0 or next(t) == nil)
end

local function yaml_scalar(v)
  if type(v) == "string" then
    if v == "" or v:find("[:#%[%]{},&*!|>'\"%%@`\n]") or v:match("^%s") or v:match("%s$")
       or v:match("^[%d%.%-]+$") or v == "true" or v == "false" or v == "null" then
      return json.encode(v)
    end
    return v
  end
  if v == json.null then return "null" end
  return tostring(v)
end

local function yaml(v, indent, out)
  indent = indent or ""
  if type(v) ~= "table" then out[#out + 1] = indent .. yaml_scalar(v); return end
  if is_array(v) then
    for _, x in ipairs(v) do
      if type(x) == "table" and next(x) then
        local sub = {}
        yaml(x, indent .. "  ", sub)
        sub[1] = indent .. "- " .. sub[1]:sub(#indent + 3)
        for _, l in ipairs(sub) do out[#out + 1] = l end
      else
        out[#out + 1] = indent .. "- " .. yaml_scalar(type(x) == "table" and "{}" or x)
      end
    end
    return
  end
  for _, k in ipairs(sorted_keys(v)) do
    local x = v[k]
    if type(x) == "table" and next(x) then
      out[#out + 1] = indent .. tostring(k) .. ":"
      yaml(x, indent .. "  ", out)
    elseif type(x) == "table" then
      out[#out + 1] = indent .. tostring(k) .. ": " .. (is_array(x) and "[]" or "{}")
    else
      out[#out + 1] = indent .. tostring(k) .. ": " .. yaml_scalar(x)
    end
  end
end

--- Render a value in `format` ("json", "yaml" (default) or "table"; a table needs `columns`).
function output.render(value, format, columns)
  format = format or "yaml"
  if format == "json" then
    return json.encode(value)
  elseif format == "table" and columns and is_array(value) then
    local rows, widths = {}, {}
    for i, c in ipairs(columns) do widths[i] = #c.title end
    for _, item in ipairs(value) do
      local row = {}
      for i, c in ipairs(columns) do
        local cell = c.get(item)
        row[i] = cell == nil and "" or tostring(cell)
        widths[i] = math.max(widths[i], #row[i])
      end
      rows[#rows + 1] = row
    end
    local function line(cells)
      local parts = {}
      for i, cell in ipairs(cells) do parts[i] = cell .. string.rep(" ", widths[i] - #cell) end
      return (table.concat(parts, "  "):gsub("%s+$", ""))
    end
    local titles = {}
    for i, c in ipairs(columns) do titles[i] = c.title end
    local out = { line(titles) }
    for _, r in ipairs(rows) do out[#out + 1] = line(r) end
    return table.concat(out, "\n")
  else
    local out = {}
    yaml(value, "", out)
    return table.concat(out, "\n")
  end
end

--- The progress-line note while requests wait out quota errors (429): "" when not throttled.
function output.throttle_note(seconds)
  if not seconds or seconds <= 0 then return "" end
  return (" — throttled by quota, waiting %d s"):format(math.ceil(seconds))
end

--- A progress reporter for operations: `report(op)` after each poll, `finish()` at the end.
function output.progress(stream)
  stream = stream or io.stderr
  local tty = core.isatty(2)
  local started = core.monotime()
  local last
  local reporter = {}
  function reporter.report(op)
    local c = op.counter
    local elapsed = core.monotime() - started
    local doneish = c.success + c.failure
    local rate = elapsed > 0 and doneish / elapsed or 0
    local th = op.transport and op.transport.throttle and op.transport:throttle()
    local text = ("%s: %d succeeded, %d failed, %d pending — %.0fs elapsed, %.1f/s"):format(
      op:id(), c.success, c.failure, c.pending, elapsed, rate) .. output.throttle_note(th and th.wait)
    if tty then
      stream:write("\r\27[K", text)
      stream:flush()
    else
      local key = ("%d/%d/%d/%s"):format(c.success, c.failure, c.pending, tostring(op.done))
      if key ~= last then stream:write(text, "\n"); stream:flush() end
      last = key
    end
  end
  function reporter.finish()
    if tty then stream:write("\n") end
  end
  return reporter
end

return output
