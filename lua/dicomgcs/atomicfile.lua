--- Files the tool writes (reports, exports, anything a user reads later) are complete or
-- absent: bytes go to a hidden temporary file in the same folder (random name, created with
-- O_CREAT|O_EXCL|O_NOFOLLOW, so nothing planted there is followed or reused), every write is
-- checked, the file is fsync'ed, then renamed over the final name (a symlink there is replaced,
-- never written through). A full disk or a file-size limit (`ulimit -f`) fails the call; the
-- old file, if any, is left as it was.
-- @module dicomgcs.atomicfile
local core = require "dicomgcs.core"
local errors = require "dicomgcs.errors"

local atomicfile = {}

local function io_error(what, err)
  return errors.new{ kind = "io", message = ("cannot write %s"):format(err or what),
    hint = "check the folder exists and is writable, and that the disk is not full" }
end

--- Write all of `data` to `path`. `opts.sync = false` skips the fsyncs (for bulk scratch data
-- such as generated test files: still whole or absent unless the machine itself crashes).
-- Returns true or nil, Error.
function atomicfile.write(path, data, opts)
  local ok, err = core.atomic_write(path, data, not (opts and opts.sync == false))
  if not ok then return nil, io_error(path, err) end
  return true
end

local Stream = { __name = "dicomgcs.atomicfile.Stream" }
Stream.__index = Stream

--- Append `chunk` to the temporary file. Returns true or nil, Error (then call abort).
function Stream:write(chunk)
  local ok, err = self.f:write(chunk)
  if not ok then return nil, io_error(self.path, err) end
  return true
end

--- fsync and rename into place (at `path` if given, else the name given to open). Returns true
-- or nil, Error; either way the stream is finished.
function Stream:commit(path)
  local ok, err = self.f:commit(path)
  if not ok then return nil, io_error(path or self.path, err) end
  return true
end

--- Drop what was written: the temporary file is removed (also when the stream is collected).
function Stream:abort() self.f:abort() end

--- The temporary file's path (to read back what was written before committing).
function Stream:temp_path() return self.f:temp_path() end

Stream.__close = Stream.abort

--- Start writing `path` piece by piece. Returns a stream (`write`, `commit`, `abort`) or nil, Error.
function atomicfile.open(path)
  local f, err = core.atomic_open(path)
  if not f then return nil, io_error(path, err) end
  return setmetatable({ f = f, path = path }, Stream)
end

return atomicfile
