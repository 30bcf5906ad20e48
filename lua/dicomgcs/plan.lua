--- Partition planning for big imports: Google advises a few large imports rather than many
-- small ones. Given a `gs://BUCKET/DIR/**[.ext]` URI, propose imports of whole sub-folders,
-- merging nothing the wildcard cannot express, and show the plan before anything runs.
-- @module dicomgcs.plan
local errors = require "dicomgcs.errors"
local wildcard = require "dicomgcs.wildcard"

local plan = {}

--- Propose imports for `uri`. Options: `max_imports` (default 8: how many imports at most),
-- `min_files` (default 10,000: below this many files, one import does it all).
-- Returns { imports = { {uri=, files=, bytes=} ... }, files=, bytes=, reason= } or nil, Error.
-- Every matched object is in exactly one proposed import.
function plan.imports(storage, uri, opts)
  opts = opts or {}
  local max_imports, min_files = opts.max_imports or 8, opts.min_files or 10000
  local bucket, pattern = wildcard.parse_uri(uri)
  if not bucket then return nil, pattern end
  local objects, err = storage:match(uri)
  if not objects then return nil, err end
  local total_bytes = 0
  for _, o in ipairs(objects) do total_bytes = total_bytes + (tonumber(o.size) or 0) end
  local whole = { imports = { { uri = uri, files = #objects, bytes = total_bytes } },
                  files = #objects, bytes = total_bytes }
  local dir, ext = pattern:match("^(.-)%*%*(.*)$")
  if not dir or (dir ~= "" and dir:sub(-1) ~= "/") then
    whole.reason = "only DIR/** patterns can be split by sub-folder; one import"
    return whole
  end
  if #objects < min_files then
    whole.reason = ("%d files: fewer than %d, one import"):format(#objects, min_files)
    return whole
  end
  -- group by first sub-folder below DIR; files directly in DIR form their own group
  local groups, order = {}, {}
  for _, o in ipairs(objects) do
    local rest = o.name:sub(#dir + 1)
    local sub = rest:match("^([^/]+)/")
    local key = sub or ""
    if not groups[key] then groups[key] = { files = 0, bytes = 0 }; order[#order + 1] = key end
    groups[key].files = groups[key].files + 1
    groups[key].bytes = groups[key].bytes + (tonumber(o.size) or 0)
  end
  if #order > max_imports then
    whole.reason = ("%d sub-folders: more than %d imports would be needed, one import"):format(#order, max_imports)
    return whole
  end
  if #order == 1 then
    whole.reason = "a single sub-folder: one import"
    return whole
  end
  table.sort(order)
  local p = { imports = {}, files = #objects, bytes = total_bytes,
              reason = ("%d sub-folders, one import each"):format(#order) }
  for _, key in ipairs(order) do
    local g = groups[key]
    local u
    if key == "" then
      -- the files directly in DIR: '*' does not cross '/', so this takes exactly them
      u = "gs://" .. bucket .. "/" .. dir .. "*" .. ext
    else
      u = "gs://" .. bucket .. "/" .. dir .. key .. "/**" .. ext
    end
    if ext:find("[*?]") then return nil, errors.input("unexpected wildcard in extension of " .. uri) end
    p.imports[#p.imports + 1] = { uri = u, files = g.files, bytes = g.bytes }
  end
  return p
end

--- The plan as lines of text, for showing before it runs.
function plan.describe(p)
  local lines = { ("%d file(s), %.1f MiB, in %d import(s): %s"):format(p.files, p.bytes / 1048576,
    #p.imports, p.reason or "") }
  for i, imp in ipairs(p.imports) do
    lines[#lines + 1] = ("  %2d. %-60s %8d file(s) %10.1f MiB"):format(i, imp.uri, imp.files, imp.bytes / 1048576)
  end
  return table.concat(lines, "\n")
end

return plan
