--- A durable manifest: JSON Lines, one line per outcome, appended as outcomes arrive, so that a
-- pipeline killed halfway resumes where it stopped and never redoes finished work. Each record
-- is one write(2) of a whole line; records that change what a resume does (an operation started,
-- done, failed, cancelled) are fsync'ed before `record` returns. Reading takes the last line
-- written for each key. On open, a torn tail (the writer died mid-line) is cut off the file, so
-- the next record starts on a line of its own: `manifest.dropped` says how many bytes went;
-- complete lines that are not records are skipped and counted in `manifest.torn`. The manifest
-- is opened with O_NOFOLLOW: a symlink at its path is refused.
-- @module dicomgcs.manifest
local core = require "dicomgcs.core"
local errors = require "dicomgcs.errors"
local json = require "dicomgcs.json"

local manifest = {}

--- States whose records are fsync'ed (the rest are flushed to the OS only).
manifest.durable = { running = true, done = true, failed = true, cancelled = true }

local Manifest = { __name = "dicomgcs.Manifest" }
Manifest.__index = Manifest

local function io_error(msg)
  return errors.new{ kind = "io", message = msg, hint = "check the path is a writable regular file and the disk is not full" }
end

--- Open (or create) the manifest at `path`. Returns it or nil, Error.
function manifest.open(path)
  local self = setmetatable({ path = path, entries = {}, order = {}, torn = 0, dropped = 0 }, Manifest)
  local out, err = core.append_open(path)
  if not out then return nil, io_error("cannot open manifest " .. tostring(err)) end
  local f = io.open(path, "rb")
  local text = f and f:read("a") or ""
  if f then f:close() end
  if text ~= "" and text:sub(-1) ~= "\n" then
    local keep = text:find("\n[^\n]*$") or 0
    self.dropped = #text - keep
    local ok, terr = out:truncate(keep)
    if not ok then
      out:close()
      return nil, io_error(("cannot cut the torn last line (%d bytes) of manifest %s"):format(self.dropped, tostring(terr)))
    end
    text = text:sub(1, keep)
  end
  for line in text:gmatch("([^\n]*)\n") do
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

--- Append a record for `key` (a table of JSON-able fields; `state` is customary) in one write;
-- fsync'ed when its state is in `manifest.durable` or `opts.sync` is true. Returns the record or
-- nil, Error.
function Manifest:record(key, fields, opts)
  local rec = {}
  for k, v in pairs(fields or {}) do rec[k] = v end
  rec.key = key
  rec.time = rec.time or os.date("!%Y-%m-%dT%H:%M:%SZ")
  local ok, err = self.file:write(json.encode(rec) .. "\n")
  if ok and ((opts and opts.sync) or manifest.durable[rec.state]) then ok, err = self.file:sync() end
  if not ok then return nil, io_error(("cannot append to manifest %s"):format(tostring(err))) end
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
