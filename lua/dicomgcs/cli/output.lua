--- Printing results for the command line: `--format=json|yaml|table`, and the progress line
-- for waiting (rewritten in place on a terminal, one plain line per change when piped).
-- @module dicomgcs.cli.output
local json = require "dicomgcs.json"
local term = require "dicomgcs.cli.term"

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
       or v:match("^[%d%.%-]+$") or v == "true" or v == "false" or v == "null" or term.escape(v) ~= v then
      -- JSON's escapes are YAML double-quoted escapes; term.escape turns what JSON leaves raw
      -- (DEL, C1) into \x7f / \u009b, which YAML reads back as the same characters
      return term.escape(json.encode(v))
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
        row[i] = cell == nil and "" or term.escape(cell)
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

--- A progress reporter for operations: `report(op)` after each poll, `finish()` at the end
-- (lives in dicomgcs.cli.progress).
function output.progress(stream)
  return require("dicomgcs.cli.progress").operation(stream)
end

return output
