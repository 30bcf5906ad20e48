--- Local file-system paths: walking folders, and turning names that come from servers
-- (object names, UIDs) into paths that can never leave the destination folder.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.localpath
-- @local
local core = require "dicomgcs.core"
local errors = require "dicomgcs.errors"

local localpath = {}

--- Join a destination folder and a server-supplied relative name safely.
-- Rejects names that are empty, absolute, hold NUL or backslash-free `..`/`.` segments,
-- or empty segments. Returns the joined path or nil, Error naming the offending name.
function localpath.safe_join(dir, name)
  local function refuse(why)
    return nil, errors.new{ kind = "input", message = ("refusing to write '%s': %s"):format(
      name:gsub("%z", "\\0"), why), hint = "the name came from the server; nothing was written for it" }
  end
  if type(name) ~= "string" or name == "" then return refuse("empty name") end
  if name:find("%z") then return refuse("it contains a NUL byte") end
  if name:sub(1, 1) == "/" then return refuse("it is an absolute path") end
  for seg in (name .. "/"):gmatch("([^/]*)/") do
    if seg == "" then return refuse("it has an empty path segment") end
    if seg == "." or seg == ".." then return refuse("it has a '" .. seg .. "' segment") end
  end
  return (dir:gsub("/+$", "")) .. "/" .. name
end

--- The folder part of a path ("" for a bare name).
function localpath.dirname(p) return p:match("^(.*)/[^/]*$") or "" end

--- Make the parent folders of `path`. With `root` (a folder `path` lies under, as built by
-- safe_join), the folders below `root` are created without following links: one that is a
-- symbolic link fails (a link planted in the destination must not lead a server's name out of
-- it). Returns true or nil, Error.
function localpath.make_parent(path, root)
  local d = localpath.dirname(path)
  if d == "" then return true end
  local ok, err
  if root then
    root = root:gsub("/+$", "")
    if root == "" then root = "/" end
    local rel = d:sub(#root + 1):gsub("^/+", "")
    assert(d:sub(1, #root) == root, "make_parent: path is not under root")
    ok, err = core.mkdir_p(root)
    if ok then ok, err = core.mkdir_under(root, rel) end
  else
    ok, err = core.mkdir_p(d)
  end
  if not ok then return nil, errors.new{ kind = "io", message = "cannot create folder " .. err } end
  return true
end

--- Every regular file under `root` (a file or a folder, walked recursively, links not
-- followed), as a sorted list of { path=, rel=, size= }. With `opts.links`, each symbolic link
-- met (to a file or a folder) is listed too, as { path=, rel=, size=0, link=true, err=Error },
-- for the caller to report as failed. Returns the list or nil, Error.
function localpath.files(root, opts)
  local links = opts and opts.links
  local st, serr = core.stat(root)
  if not st then return nil, errors.new{ kind = "io", message = "cannot read " .. serr } end
  if st.type == "file" then
    return { { path = root, rel = root:match("([^/]+)$"), size = st.size } }
  end
  if st.type ~= "directory" then
    return nil, errors.new{ kind = "io", message = root .. " is neither a file nor a folder" }
  end
  local out = {}
  local function walk(dir, rel)
    local entries, err = core.listdir(dir)
    if not entries then return nil, errors.new{ kind = "io", message = "cannot list " .. err } end
    table.sort(entries, function(a, b) return a.name < b.name end)
    for _, e in ipairs(entries) do
      local p, r = dir .. "/" .. e.name, rel == "" and e.name or (rel .. "/" .. e.name)
      if e.type == "directory" then
        local ok, werr = walk(p, r)
        if not ok then return nil, werr end
      elseif e.type == "file" then
        local fst = core.stat(p)
        out[#out + 1] = { path = p, rel = r, size = fst and fst.size or 0 }
      elseif e.type == "link" and links then
        out[#out + 1] = { path = p, rel = r, size = 0, link = true, err = errors.new{ kind = "input",
          message = p .. " is a symbolic link: not followed", hint = "copy what it points to, or name its target" } }
      end
    end
    return true
  end
  local ok, err = walk((root:gsub("/+$", "")), "")
  if not ok then return nil, err end
  return out
end

return localpath
