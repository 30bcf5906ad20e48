--- gcloud's output filter for list commands.
-- The subset dicomgcs supports of `--filter`: terms joined by spaces
-- or AND, each `FIELD OP VALUE` with OP one of `=`, `!=`, `:` (FIELD holds VALUE, case-insensitive;
-- `*` in VALUE matches anything), `<`, `<=`, `>`, `>=` (numbers compared as numbers), or `NOT term`.
-- FIELD is a dotted path into the resource's JSON (e.g. metadata.counter.success). OR and
-- parentheses are refused (exit 2) rather than read wrongly.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.cli.filter
-- @local
local common = require "dicomgcs.cli.common"
local output = require "dicomgcs.cli.output"

local filter = {}

local function tokens(expr)
  local out, i = {}, 1
  while i <= #expr do
    local c = expr:sub(i, i)
    if c:match("%s") then i = i + 1
    else
      local q = expr:match('^"[^"]*"', i) or expr:match("^'[^']*'", i)
      local t = q or expr:match("^[^%s\"']+", i)
      if not t then common.usage("--filter: an unclosed quote in '" .. expr .. "'") end
      out[#out + 1] = t
      i = i + #t
    end
  end
  return out
end

local function unquote(v) return (v:gsub('^"(.*)"$', "%1"):gsub("^'(.*)'$", "%1")) end

local function glob(v)
  return "^" .. v:lower():gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$"
end

local function term(text)
  local field, op, value = text:match("^([%w_%.@]+)%s*([!<>]=)(.*)$")
  if not field then field, op, value = text:match("^([%w_%.@]+)%s*([=:<>])(.*)$") end
  if not field then
    common.usage(("--filter: cannot read '%s'; write FIELD=VALUE, FIELD:VALUE, FIELD<N, ... joined by AND"):format(text))
  end
  value = unquote(value)
  local path = {}
  for p in field:gmatch("[^%.]+") do path[#path + 1] = p end
  return function(item)
    local v = output.pick(item, path)
    if type(v) == "table" or v == nil then v = v == nil and "" or require("dicomgcs.cli.output").json(v, true) end
    local s, nv, nvalue = tostring(v), tonumber(v), tonumber(value)
    if op == "=" then return s == value or (nv ~= nil and nv == nvalue)
    elseif op == "!=" then return not (s == value or (nv ~= nil and nv == nvalue))
    elseif op == ":" then
      if value == "*" then return s ~= "" end
      if value:find("*", 1, true) then return s:lower():match(glob(value)) ~= nil end
      return s:lower():find(value:lower(), 1, true) ~= nil
    end
    if nv and nvalue then
      if op == "<" then return nv < nvalue elseif op == "<=" then return nv <= nvalue
      elseif op == ">" then return nv > nvalue else return nv >= nvalue end
    end
    if op == "<" then return s < value elseif op == "<=" then return s <= value
    elseif op == ">" then return s > value else return s >= value end
  end
end

--- A predicate function(item) -> boolean for `expr`; a usage error when it cannot be read.
function filter.compile(expr)
  local preds, words = {}, tokens(expr)
  local i, negate = 1, false
  while i <= #words do
    local w = words[i]
    if w == "AND" then i = i + 1
    elseif w == "OR" or w:find("[()]") then
      common.usage("--filter: OR and parentheses are not supported; join terms with AND")
    elseif w == "NOT" then negate = true; i = i + 1
    elseif w:sub(1, 1) == "-" and #w > 1 then negate = true; words[i] = w:sub(2)
    else
      -- "FIELD = VALUE" written with spaces
      local text = w
      if (words[i + 1] or ""):match("^[!<>]?[=:<>]=?$") then
        text = w .. words[i + 1] .. (words[i + 2] or "")
        i = i + 2
      elseif w:match("[=:<>]$") and words[i + 1] and words[i + 1] ~= "AND" then
        text = w .. words[i + 1]
        i = i + 1
      end
      local p, neg = term(text), negate
      preds[#preds + 1] = neg and function(x) return not p(x) end or p
      negate = false
      i = i + 1
    end
  end
  if #preds == 0 then common.usage("--filter: give at least one FIELD=VALUE term") end
  return function(item)
    for _, p in ipairs(preds) do if not p(item) then return false end end
    return true
  end
end

return filter
