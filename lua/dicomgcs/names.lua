--- Resource names of the Healthcare API, checked before any request is sent so that a typo
-- gives an error naming the input instead of a remote 400 or 404.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.names
-- @local
local errors = require "dicomgcs.errors"

local names = {}

local function bad(what, value, rule)
  return nil, errors.input(("%s '%s' is not valid: %s"):format(what, tostring(value), rule))
end

-- "." and ".." are dot-segments: in a URL path they name the parent, not a resource.
local function dots(what, value)
  if value == "." or value == ".." then
    return nil, errors.input(("%s '%s' is not valid: '.' and '..' are not names"):format(what, value))
  end
  return value
end

--- Project: an id (6-30 of a-z 0-9 -, starting with a letter), optionally domain-scoped
-- (`example.com:my-project`), or a project number.
function names.project(p)
  if type(p) ~= "string" or p == "" then
    return nil, errors.input("no project given",
      "pass project= (Lua), --project (command line), or set GOOGLE_CLOUD_PROJECT")
  end
  local id = p:match("^[a-z0-9.-]+:([a-z0-9-]+)$") or p
  if id:match("^%d+$") or (id:match("^[a-z][a-z0-9-]*[a-z0-9]$") and #id >= 6 and #id <= 30) then
    return p
  end
  return bad("project", p, "use the project id (6-30 lower-case letters, digits and '-', starting with a letter)")
end

--- Location: a region such as `us-central1`.
function names.location(l)
  if type(l) ~= "string" or l == "" then
    return nil, errors.input("no location given", "pass location= (Lua) or --location, e.g. us-central1")
  end
  if l:match("^[a-z][a-z0-9-]*$") and #l <= 63 then return l end
  return bad("location", l, "use a region name such as us-central1")
end

--- Dataset id: `[\p{L}\p{N}_\-\.]{1,256}` (letters may be non-ASCII).
function names.dataset(d)
  if type(d) ~= "string" or d == "" then
    return nil, errors.input("no dataset given", "pass dataset= (Lua) or --dataset")
  end
  if #d <= 256 and not d:find("[^%w_%.%-\128-\255]") then return dots("dataset id", d) end
  return bad("dataset id", d, "use 1-256 letters, digits, '_', '-' and '.'")
end

--- DICOM store id: 1-256 characters; none that would change the meaning of the URL path.
function names.dicom_store(s)
  if type(s) ~= "string" or s == "" then
    return nil, errors.input("no DICOM store given", "pass dicom_store= (Lua) or the STORE argument")
  end
  if #s <= 256 and not s:find("[%c /?#%%:]") then return dots("DICOM store id", s) end
  return bad("DICOM store id", s, "use 1-256 characters without spaces, '/', '?', '#', '%' or ':'")
end

--- A full resource name from a user or a server (`projects/P/.../KIND/ID`): nil, Error when a
-- segment is empty, "." or "..".
function names.path(name, what)
  if type(name) ~= "string" then return nil, errors.input(what .. " must be a string") end
  for seg in (name .. "/"):gmatch("([^/]*)/") do
    if seg == "" or seg == "." or seg == ".." then
      return nil, errors.input(("%s '%s' has an empty, '.' or '..' segment"):format(what, name))
    end
  end
  return name
end

--- Operation id: Google's are long decimal strings.
function names.operation_id(o)
  if type(o) == "string" and o:match("^[%w_-]+$") then return o end
  return bad("operation id", o, "give the operation's full name (projects/.../operations/ID) or its id")
end

return names
