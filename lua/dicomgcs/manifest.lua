--- A durable manifest: JSON Lines, one line per outcome, appended and flushed as outcomes
-- arrive, so that a pipeline killed halfway resumes where it stopped and never redoes
-- finished work. Reading takes the last line written for each key; a torn last line (the
-- process died mid-write) is ignored, and reported in `manifest.torn`.
-- @module dicomgcs.manifest
local errors = require "dicomgcs.errors"
local json = require "dicomgcs.json"

local manifest = {}

local Manifest = { __name = "dicomgcs.Manifest" }
Manifest.__index = Manifest

--- Open (or create) the manifest at `path`. Returns it or nil, Error.
function manifest.open(path)
  local self = setmetatable({ path = path, entries = {}, order = {}, torn = 0 }, Manifest)
  local f = io.open(path, "rb")
  if f then
    local n = 0
    for line in f:lines() do
      n = n + 1
      if line ~= "" then
        local rec = json.decode(line)
        if type(rec) == "table" and type(rec.key) == "string" then
          if not self.entries[rec.key] then self.order[#self.order + 1] = rec.key end
          self.entries[rec.key] = rec
        else
          self.torn = self.torn + 1
        end
      end
    end
    f:close()
  end
  local out, err = io.open(path, "ab")
  if not out then
    return nil, errors.new{ kind = "io", message = "cannot write manifest " .. tostring(err) }
  end
  self.file = out
  return self
end

--- The last record written for `key`, or nil.
function Manifest:get(key) return self.entries[key] end

--- Is `key` recorded with a final state (one of `states`, default {"done"})?
function Manifest:finished(key, states)
  local rec = self.entries[key]
  if not rec then return false end
  for _, s in ipairs(states or { "done" }) do if rec.state == s then return true end end
  return false
end

--- Append a record for `key` (a table of JSON-able fields; `state` is customary) and flush it
-- to the operating system before returning. Returns the record or nil, Error.
function Manifest:record(key, fields)
  local rec = {}
  for k, v in pairs(fields or {}) do rec[k] = v end
  rec.key = key
  rec.time = rec.time or os.date("!%Y-%m-%dT%H:%M:%SZ")
  local line = json.encode(rec)
  local ok, err = self.file:write(line, "\n")
  if ok then ok, err = self.file:flush() end
  if not ok then
    return nil, errors.new{ kind = "io", message = ("cannot append to manifest %s: %s"):format(self.path, tostring(err)) }
  end
  if not self.entries[key] then self.order[#self.order + 1] = key end
  self.entries[key] = rec
  return rec
end

--- Iterate over the latest record of every key, in first-seen order.
function Manifest:each()
  local i = 0
  return function()
    i = i + 1
    local k = self.order[i]
    if k then return k, self.entries[k] end
  end
end

--- Count records by state: { done = n, failed = n, ... }.
function Manifest:counts()
  local c = {}
  for _, rec in self:each() do
    local s = rec.state or "unknown"
    c[s] = (c[s] or 0) + 1
  end
  return c
end

function Manifest:close()
  if self.file then self.file:close(); self.file = nil end
end
Manifest.__close = Manifest.close
Manifest.__gc = Manifest.close

return manifest
