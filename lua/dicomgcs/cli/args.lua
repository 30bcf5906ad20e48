--- Command-line parsing in gcloud's manner: positional words, then flags
-- (`--flag=value`, `--flag value`, boolean `--flag`/`--no-flag`, repeatable flags, short `-r`).
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.cli.args
-- @local
local common = require "dicomgcs.cli.common"

local args = {}

local function unknown(flag, spec)
  local names = {}
  for n in pairs(spec) do names[#names + 1] = n end
  local near = common.suggest(flag, names)
  return ("unknown flag --%s%s"):format(flag, near and ("; did you mean --" .. near .. "?") or "")
end

--- Parse `argv` against a flag spec { name = { type="string"|"boolean"|"list", short="r" } }.
-- Returns { words = {...}, flags = {...} } or nil, message.
function args.parse(argv, spec)
  local words, flags = {}, {}
  local short = {}
  for name, s in pairs(spec) do if s.short then short[s.short] = name end end
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do words[#words + 1] = argv[j] end
      break
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([%w%-]+)=(.*)$")
      name = name or a:sub(3)
      local negated = false
      if not spec[name] and name:sub(1, 3) == "no-" and spec[name:sub(4)] and spec[name:sub(4)].type == "boolean" then
        name, negated = name:sub(4), true
      end
      local s = spec[name]
      if not s then return nil, unknown(name, spec) end
      if s.moved then return nil, ("--%s: %s"):format(name, s.moved) end
      if s.type == "boolean" then
        if value then return nil, ("--%s takes no value"):format(name) end
        flags[name] = not negated
      else
        if not value then
          i = i + 1
          value = argv[i]
          -- like argparse: a following flag is not this flag's value (write --name=--x for that)
          if value == nil or (value:sub(1, 2) == "--" and #value > 2) then
            return nil, ("--%s needs a value: --%s=VALUE"):format(name, name)
          end
        end
        if value:find("[\0\r\n]") then return nil, ("--%s: the value holds a control character"):format(name) end
        if s.type == "list" then
          flags[name] = flags[name] or {}
          table.insert(flags[name], value)
        else
          flags[name] = value
        end
      end
    elseif a:match("^%-%a+$") then
      -- -r, or several short flags together: -rq
      for letter in a:sub(2):gmatch(".") do
        local name = short[letter]
        if not name then return nil, ("unknown flag -%s%s"):format(letter, #a > 2 and (" in " .. a) or "") end
        flags[name] = true
      end
    else
      words[#words + 1] = a
    end
    i = i + 1
  end
  return { words = words, flags = flags }
end

return args
