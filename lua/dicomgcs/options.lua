--- Checking the table of options a function is given against the names it knows: misuse (options
-- that are not a table, a misspelt name) raises, naming the function and the option.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.options
-- @local
local options = {}

--- Raise unless `opts` is a table whose every key is in the set `known`; returns `opts`.
-- `where` names the function in the message ("dicomgcs.client: unknown option 'colour'");
-- `level` says where the error points, as for `error` called by the function that calls this one
-- (default 2: that function's caller); `noun` is what a key is called (default "option").
function options.check(opts, known, where, level, noun)
  level = (level or 2) + 1
  if type(opts) ~= "table" then error(where .. ": expected a table of options", level) end
  for k in pairs(opts) do
    if not known[k] then error(("%s: unknown %s '%s'"):format(where, noun or "option", tostring(k)), level) end
  end
  return opts
end

return options
