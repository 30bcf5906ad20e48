--- QIDO-RS search, part of dicomgcs.dicomweb: the handle's `pages`, `search` and `search_all`.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal
-- modules". Its methods are documented with dicomgcs.dicomweb.
-- @submodule dicomgcs.dicomweb
local errors = require "dicomgcs.errors"
local json = require "dicomgcs.json"
local options = require "dicomgcs.options"
local paging = require "dicomgcs.paging"
local shared = require "dicomgcs.dicomweb.shared"

local with_headers, resource_path = shared.with_headers, shared.resource_path

local DW = {}   -- methods, installed on the handle by dicomweb/init.lua
local LEVELS = { studies = true, series = true, instances = true }
local known_search = { study = true, series = true, filters = true, include_fields = true, limit = true,
  offset = true, page_size = true, fuzzy = true }

local function search_url(self, level, o)
  if not LEVELS[level] then error("dicomweb: search level must be 'studies', 'series' or 'instances'", 3) end
  local path, perr = resource_path{ study = o.study, series = o.series }
  if not path then return nil, perr end
  if level == "studies" and o.study then return nil, errors.input("search studies takes no study=; use filters={StudyInstanceUID=...}") end
  if level == "series" and o.series then return nil, errors.input("search series takes no series=") end
  return self.base_url .. path .. "/" .. level
end

local function query_string(o, limit, offset)
  local q = {}
  for k, v in pairs(o.filters or {}) do
    if type(k) ~= "string" then error("dicomweb: filters must be a table keyword = value", 3) end
    q[k] = type(v) == "table" and table.concat(v, ",") or tostring(v)
  end
  if o.include_fields then
    local f = o.include_fields
    q.includefield = type(f) == "table" and table.concat(f, ",") or tostring(f)
  end
  if o.fuzzy then q.fuzzymatching = "true" end
  q.limit = limit
  q.offset = offset and offset > 0 and offset or nil
  -- Escape only what cannot stand in a query value: some servers (Orthanc 1.10) match the raw
  -- text, so `*`, `?`, `^` and `,` (wildcards, name parts, UID lists) stay as they are.
  local keys = {}
  for k in pairs(q) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  local function esc(v)
    return (tostring(v):gsub("[^%w%-%._~%*%?%^,:/@!$'()]", function(c) return ("%%%02X"):format(c:byte()) end))
  end
  for _, k in ipairs(keys) do parts[#parts + 1] = esc(k) .. "=" .. esc(q[k]) end
  return #parts > 0 and ("?" .. table.concat(parts, "&")) or ""
end

--- Search pages (QIDO-RS). `level` is "studies", "series" or "instances"; `o.study` /
-- `o.series` scope the search; `o.filters` = { PatientName = "DOE*", StudyDate = "20240101-",
-- StudyInstanceUID = {"1.2", "1.3"}, ... } (keywords or tags); `o.include_fields` a list
-- (or "all"); `o.page_size` (per request; default the server's); `o.offset` (start);
-- `o.limit` (most results in all). Returns a function that gives the next page (a non-empty
-- array of DICOM JSON objects), nil at the end, or nil, Error. Raises on unknown options.
function DW:pages(level, o)
  o = options.check(o or {}, known_search, "dicomweb:pages")
  local url, uerr = search_url(self, level, o)
  local offset = o.offset or 0
  local got, finished, last_first = 0, false, nil
  return function()
    if not url then
      if uerr then local e = uerr; uerr = nil; return nil, e end
      return nil
    end
    if finished then return nil end
    local want = o.page_size
    if o.limit then
      local left = o.limit - got
      if left <= 0 then finished = true; return nil end
      want = want and math.min(want, left) or left
    end
    local full = url .. query_string(o, want, offset)
    local res, err = self.transport:request({ method = "GET", url = full,
      headers = with_headers(self, { "Accept: application/dicom+json" }) }, "search " .. level)
    if not res then finished = true; return nil, err end
    local page = {}
    if res.status ~= 204 and res.body and res.body:match("%S") then
      local doc, jerr = json.decode(res.body, "search " .. level)
      if type(doc) ~= "table" then
        finished = true
        return nil, errors.new{ kind = "json", message = jerr or "search answer is not a JSON array", url = full }
      end
      page = doc
    end
    if #page == 0 then finished = true; return nil end
    -- a server that ignores offset would send the same page forever
    local first = json.encode(page[1])
    if first == last_first then finished = true; return nil end
    last_first = first
    got, offset = got + #page, offset + #page
    local more = (res.headers.warning or ""):lower():find("additional results", 1, true)
    -- without a Warning, a short page is the last; with no page size asked, the server chose
    -- one, so go on until an empty page
    if not more and want and #page < want then finished = true end
    return page
  end
end

--- Iterate over search results one DICOM JSON object at a time (see `pages` for the options).
-- `for study in dw:search("studies", { filters = { PatientID = "P1" } }) do ... end`.
-- Returns the iterator (not an array: `#` does not apply), or nil, Error for bad arguments; a
-- failure mid-way raises the Error. To collect: `local all = {}; for s in dw:search(...) do
-- all[#all + 1] = s end`, or `dw:search_all(...)` (an array, or nil, Error).
function DW:search(level, o)
  o = options.check(o or {}, known_search, "dicomweb:search")
  local _, uerr = search_url(self, level, o)
  if uerr then return nil, uerr end
  return paging.each(self:pages(level, o))
end

--- Every result of a search as one array, or nil, Error.
function DW:search_all(level, o)
  o = options.check(o or {}, known_search, "dicomweb:search_all")
  local _, uerr = search_url(self, level, o)
  if uerr then return nil, uerr end
  return paging.all(self:pages(level, o))
end

return { methods = DW }
