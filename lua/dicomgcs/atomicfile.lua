--- Files written whole or not at all: write to a hidden temporary file in the same folder,
-- then rename it over the target. (Minimal stand-in written by the `report` branch; the
-- `sec-files` branch owns the full version with O_EXCL|O_NOFOLLOW and fsync: keep that one.)
-- @module dicomgcs.atomicfile
local core = require "dicomgcs.core"
local errors = require "dicomgcs.errors"

local atomicfile = {}

--- Write `data` to `path`. Returns true or nil, Error (kind "io").
function atomicfile.write(path, data)
  local dir, base = path:match("^(.*/)([^/]+)$")
  if not dir then dir, base = "", path end
  local tmp = dir .. "." .. base .. "." .. core.random_hex(8) .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, errors.new{ kind = "io", message = "cannot write " .. path .. ": " .. tostring(err) } end
  local ok, werr = f:write(data)
  local closed, cerr = f:close()
  if not (ok and closed) then
    os.remove(tmp)
    return nil, errors.new{ kind = "io", message = "cannot write " .. path .. ": " .. tostring(werr or cerr) }
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then
    os.remove(tmp)
    return nil, errors.new{ kind = "io", message = "cannot write " .. path .. ": " .. tostring(rerr) }
  end
  return true
end

return atomicfile
