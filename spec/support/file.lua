-- Whole-file reads and writes for specs, in binary mode: `local file = require "spec.support.file"`.
local file = {}

--- The contents of a file; raises when it cannot be opened.
function file.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

--- The contents of a file, or nil when there is none.
function file.read_if_exists(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- Write `data` to a file, replacing it; returns the path.
function file.write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  return path
end

--- Write `data` to a file, creating its missing parent folders first; returns the path.
function file.write_p(path, data)
  local dir = path:match("^(.*)/")
  if dir then assert(require("dicomgcs.core").mkdir_p(dir)) end
  return file.write(path, data)
end

--- The size of a file in bytes, or nil when there is none.
function file.size(path)
  local st = require("dicomgcs.core").stat(path)
  return st and st.size
end

--- `n` bytes of test data, cheap to make: 4 KiB blocks that differ from each other and with
-- `seed` (default a random one, so that two calls differ).
function file.bytes(n, seed)
  seed = seed or math.random(0, 0x7fffffff)
  local t = {}
  for i = 1, n // 4096 do t[i] = string.rep(string.pack("<I4", (seed * 7919 + i) & 0x7fffffff), 1024) end
  return table.concat(t) .. string.rep("z", n % 4096)
end

--- Whether a file can be opened for reading.
function file.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

return file
