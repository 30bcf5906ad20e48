--- Printing results for the command line, and the progress line.
-- Formats: `--format=json|yaml|table`; the progress line is
-- for waiting (rewritten in place on a terminal, one plain line per change when piped).
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.cli.output
-- @local
local json = require "dicomgcs.json"
local term = require "dicomgcs.cli.term"

local output = {}

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local function marked_array(t) return getmetatable(t) == getmetatable(json.array()) end

local function is_array(t)
  return type(t) == "table" and (#t > 0 or (next(t) == nil and marked_array(t)))
end

-- A copy of `v` that dkjson encodes as we mean it: objects with their keys sorted (so the text is
-- the same on every run), empty tables as {} unless marked with json.array, cjson's null as null.
local function for_dkjson(v, dk)
  if v == json.null then return dk.null end
  if type(v) ~= "table" then return v end
  local copy = {}
  if is_array(v) then
    for i, x in ipairs(v) do copy[i] = for_dkjson(x, dk) end
    return setmetatable(copy, { __jsontype = "array" })
  end
  local order = {}
  for _, k in ipairs(sorted_keys(v)) do
    copy[tostring(k)] = for_dkjson(v[k], dk)
    order[#order + 1] = tostring(k)
  end
  return setmetatable(copy, { __jsontype = "object", __jsonorder = order })
end

--- JSON text for `value`: indented (or one line when `compact`), keys sorted, `/` unescaped.
function output.json(value, compact)
  local dk = require "dkjson"
  local text, err = dk.encode(for_dkjson(value, dk), { indent = not compact })
  if not text then error("cannot print as JSON: " .. tostring(err), 0) end
  return text
end

-- YAML 1.1 readers (PyYAML) take these plain words as booleans or null.
local yaml_words = { y = true, yes = true, n = true, no = true, on = true, off = true, ["true"] = true,
  ["false"] = true, null = true, ["~"] = true }

-- A string plain in YAML only when no reader can take it for anything else; otherwise it is
-- written double-quoted, JSON's escapes being valid YAML.
local function yaml_string(s)
  if s:match("^[%a_][%w_%-%./]*$") and not yaml_words[s:lower()] then return s end
  -- term.escape turns what JSON's escapes leave raw (DEL, C1, bidi overrides, bytes that are not
  -- UTF-8) into \x7f / \u009b escapes, which a YAML reader reads back as the same characters
  return term.escape(require("dkjson").quotestring(s))
end

local function yaml_scalar(v)
  if type(v) == "string" then return yaml_string(v) end
  if v == json.null or v == nil then return "null" end
  if math.type(v) == "float" and (v ~= v or v == math.huge or v == -math.huge) then
    return v ~= v and ".nan" or (v > 0 and ".inf" or "-.inf")
  end
  return tostring(v)
end

local function yaml(v, indent, out)
  if type(v) ~= "table" then out[#out + 1] = indent .. yaml_scalar(v); return end
  if is_array(v) then
    for _, x in ipairs(v) do
      if type(x) == "table" and next(x) then
        local sub = {}
        yaml(x, indent .. "  ", sub)
        sub[1] = indent .. "- " .. sub[1]:sub(#indent + 3)
        for _, l in ipairs(sub) do out[#out + 1] = l end
      elseif type(x) == "table" then
        out[#out + 1] = indent .. "- " .. (marked_array(x) and "[]" or "{}")
      else
        out[#out + 1] = indent .. "- " .. yaml_scalar(x)
      end
    end
    return
  end
  for _, k in ipairs(sorted_keys(v)) do
    local x, key = v[k], yaml_string(tostring(k))
    if type(x) == "table" and next(x) then
      out[#out + 1] = indent .. key .. ":"
      yaml(x, indent .. "  ", out)
    elseif type(x) == "table" then
      out[#out + 1] = indent .. key .. ": " .. (marked_array(x) and "[]" or "{}")
    else
      out[#out + 1] = indent .. key .. ": " .. yaml_scalar(x)
    end
  end
end

--- YAML text for `value` (a block document; keys sorted).
function output.yaml(value)
  if type(value) == "table" and next(value) == nil then return marked_array(value) and "[]" or "{}" end
  local out = {}
  yaml(value, "", out)
  return table.concat(out, "\n")
end

--- Parse a format value.
-- One of "yaml", "json", "json-compact", "csv", "table" or gcloud's
-- "table(FIELD[:label=TITLE], ...)" projection (FIELD a dotted path). Returns
-- { name=, columns= } or nil, message.
function output.parse_format(text)
  local name, inner = text:match("^([%a%-]+)%s*(%b())%s*$")
  if not name then name = text end
  if not name:match("^[%a%-]+$") then return nil, ("cannot read --format=%s"):format(text) end
  if not inner then return { name = name } end
  if name ~= "table" and name ~= "value" then
    return nil, ("--format=%s: only table and value take a (FIELD, ...) projection"):format(text)
  end
  local columns = {}
  for item in inner:sub(2, -2):gmatch("[^,]+") do
    local field, label = item:match("^%s*([%w_%.%-@]+)%s*:%s*label%s*=%s*['\"]?([^'\"]-)['\"]?%s*$")
    field = field or item:match("^%s*([%w_%.%-@]+)%s*$")
    if not field then return nil, ("--format=%s: cannot read the column '%s'; write FIELD or FIELD:label=TITLE"):format(text, item) end
    local path = {}
    for part in field:gmatch("[^%.]+") do path[#path + 1] = part end
    columns[#columns + 1] = { title = label or (path[#path]:gsub("(%l)(%u)", "%1_%2"):upper()), path = path }
  end
  if #columns == 0 then return nil, ("--format=%s: name at least one field"):format(text) end
  return { name = name, columns = columns }
end

--- The value at a dotted path (a list of keys) inside `item`.
function output.pick(item, path)
  local v = item
  for _, k in ipairs(path) do
    if type(v) ~= "table" then return nil end
    local nv = v[k]
    if nv == nil and math.tointeger(tonumber(k)) then nv = v[math.tointeger(tonumber(k))] end
    v = nv
  end
  return v
end

--- `text` safe for one cell of a terminal line: C0 and C1 control characters (escape sequences,
-- newlines, tabs) become spaces.
function output.one_line(text)
  return term.escape(text)
end

local function cell_text(v)
  if v == nil or v == json.null then return "" end
  if type(v) == "table" then return output.json(v, true) end
  return tostring(v)
end

--- A table with a header: `rows` an array (or one item), `columns` a list of { title=, get=
-- function(item) } or { title=, path= }.
function output.table(rows, columns)
  if not is_array(rows) then rows = { rows } end
  local widths, lines = {}, {}
  for i, c in ipairs(columns) do widths[i] = #c.title end
  for _, item in ipairs(rows) do
    local row = {}
    for i, c in ipairs(columns) do
      local v
      if c.get then v = c.get(item) else v = output.pick(item, c.path) end
      row[i] = output.one_line(cell_text(v))
      widths[i] = math.max(widths[i], #row[i])
    end
    lines[#lines + 1] = row
  end
  local function line(cells)
    local parts = {}
    for i, cell in ipairs(cells) do parts[i] = cell .. string.rep(" ", widths[i] - #cell) end
    return (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  local titles = {}
  for i, c in ipairs(columns) do titles[i] = c.title end
  local out = { line(titles) }
  for _, r in ipairs(lines) do out[#out + 1] = line(r) end
  return table.concat(out, "\n")
end

--- Render a value in `format` (a parsed format, or its name; default yaml). `columns` are the
-- command's default table columns, used for `table` without a projection.
function output.render(value, format, columns)
  if type(format) ~= "table" then format = { name = format or "yaml" } end
  if format.name == "json" then return output.json(value)
  elseif format.name == "json-compact" then return output.json(value, true)
  elseif format.name == "value" and format.columns then
    -- gcloud's value(...): the fields of each item, tab-separated, no header (for scripts)
    local items = is_array(value) and value or { value }
    local lines = {}
    for i, item in ipairs(items) do
      local cells = {}
      for j, c in ipairs(format.columns) do cells[j] = output.one_line(cell_text(output.pick(item, c.path))) end
      lines[i] = table.concat(cells, "\t")
    end
    return table.concat(lines, "\n")
  elseif format.name == "table" then
    local cols = format.columns or columns
    if not cols then error("--format=table needs a projection here, e.g. --format='table(name)'", 0) end
    return output.table(value, cols)
  end
  return output.yaml(value)
end

--- A progress reporter for operations: `report(op)` after each poll, `finish()` at the end
-- (lives in dicomgcs.cli.progress).
function output.progress(stream)
  return require("dicomgcs.cli.progress").operation(stream)
end

return output
