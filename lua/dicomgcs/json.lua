--- JSON through lua-cjson, with the fixes Google's APIs need.
-- Debian's lua-cjson 2.1.0 decodes every number as a float (`1` becomes `1.0`) and encodes
-- both `{}` and `[]` as `{}`. Google sends int64 values as strings, so floats are only ever small
-- counts and sizes: they are turned back into integers here, and `json.array()` marks tables that
-- must encode as arrays even when empty.
-- @module dicomgcs.json
local cjson = require "cjson.safe"

local json = {}

local array_mt = { __name = "dicomgcs.json.array" }
local EMPTY_ARRAY = "@@dicomgcs_empty_array_a7f3c1@@"

--- Mark `t` (default a new table) as a JSON array.
function json.array(t) return setmetatable(t or {}, array_mt) end

--- The JSON `null` sentinel (lua-cjson's lightuserdata).
json.null = cjson.null

local function integers(v)
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = integers(x) end
  elseif math.type(v) == "float" then
    local i = math.tointeger(v)
    if i then return i end
  end
  return v
end

--- Decode a JSON text. Returns the value, or nil and a message naming `what`.
function json.decode(text, what)
  if type(text) ~= "string" then
    return nil, ("%s: expected JSON text, got %s"):format(what or "JSON", type(text))
  end
  local v, err = cjson.decode(text)
  if v == nil and err then
    return nil, ("%s: invalid JSON (%s)"):format(what or "JSON", err)
  end
  return integers(v)
end

local function mark_empty_arrays(v, seen)
  if type(v) ~= "table" then return v end
  if getmetatable(v) == array_mt and next(v) == nil then return EMPTY_ARRAY end
  if seen[v] then error("json.encode: a table refers to itself", 0) end
  seen[v] = true
  local out = {}
  for k, x in pairs(v) do out[k] = mark_empty_arrays(x, seen) end
  seen[v] = nil
  return out
end

--- Encode a Lua value as JSON. Raises on values JSON cannot hold.
function json.encode(v)
  local text, err = cjson.encode(mark_empty_arrays(v, {}))
  if not text then error("json.encode: " .. tostring(err), 2) end
  return (text:gsub('"' .. EMPTY_ARRAY .. '"', "[]"))
end

return json
