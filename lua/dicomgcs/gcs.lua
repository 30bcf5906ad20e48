--- The Cloud Storage half: buckets, listing with the import wildcard, uploads and downloads.
-- Every bulk call returns a summary that accounts for every input: `summary.results[i]` is
-- `{ source=, target=, ok=true|false, err=Error?, object=? }`, with `summary.ok` and
-- `summary.failed` counts. One failing object never stops the others.
-- @module dicomgcs.gcs
local errors = require "dicomgcs.errors"
local http = require "dicomgcs.http"
local localpath = require "dicomgcs.localpath"
local wildcard = require "dicomgcs.wildcard"

local gcs = {}

local Storage = { __name = "dicomgcs.Storage" }
Storage.__index = Storage

--- A storage handle on a transport. `base` is the JSON API root (https://storage.googleapis.com).
function gcs.new(transport, base, project)
  return setmetatable({ transport = transport, base = base, project = project }, Storage)
end

function Storage:bucket_url(bucket) return self.base .. "/storage/v1/b/" .. http.escape(bucket) end
function Storage:object_url(bucket, name) return self:bucket_url(bucket) .. "/o/" .. http.escape(name) end

--- Create a bucket. Returns the bucket resource or nil, Error.
function Storage:create_bucket(name, opts)
  opts = opts or {}
  if not wildcard.valid_bucket(name or "") then
    return nil, errors.input(("'%s' is not a valid bucket name"):format(tostring(name)),
      "bucket names have 3-63 characters: lower-case letters, digits, '-', '_' and '.'")
  end
  local project = opts.project or self.project
  if not project then return nil, errors.input("creating a bucket needs a project", "pass project=") end
  local body = { name = name, location = opts.location, storageClass = opts.storage_class }
  return self.transport:json("POST", self.base .. "/storage/v1/b" .. http.query{ project = project },
    body, "create bucket gs://" .. name)
end

--- Get a bucket's metadata. Returns the resource or nil, Error.
function Storage:get_bucket(name)
  return self.transport:json("GET", self:bucket_url(name), nil, "get bucket gs://" .. name)
end

--- One page of objects: returns the decoded `storage#objects` document or nil, Error.
function Storage:list_page(bucket, opts)
  local q = { prefix = opts.prefix, delimiter = opts.delimiter, pageToken = opts.page_token,
              maxResults = opts.page_size, matchGlob = opts.match_glob }
  return self.transport:json("GET", self:bucket_url(bucket) .. "/o" .. http.query(q), nil,
    "list gs://" .. bucket .. "/" .. (opts.prefix or ""))
end

--- Iterate over the objects of a bucket under a prefix, page by page.
-- `for obj in storage:objects("bucket", {prefix="dir/"}) do ... end`; a failure mid-way raises
-- the Error (an iterator cannot return it); use `list_page` to handle errors yourself.
function Storage:objects(bucket, opts)
  opts = opts or {}
  local page, i, token, finished = nil, 0, nil, false
  return function()
    while true do
      if page and i < #(page.items or {}) then
        i = i + 1
        return page.items[i]
      end
      if finished then return nil end
      local err
      page, err = self:list_page(bucket, { prefix = opts.prefix, page_token = token, page_size = opts.page_size })
      if not page then error(err, 0) end
      i = 0
      token = page.nextPageToken
      -- an empty page may still carry a token: keep going until there is none
      finished = token == nil or token == ""
    end
  end
end

--- The objects a `gs://` wildcard URI selects, exactly as the Healthcare import reads them.
-- Lists only under the pattern's literal prefix. Returns an array of object resources (with
-- `uri` added) or nil, Error.
function Storage:match(uri)
  local bucket, pattern = wildcard.parse_uri(uri)
  if not bucket then return nil, pattern end
  local pred, err = wildcard.compile(pattern)
  if not pred then
    err.message = uri .. ": " .. err.message
    return nil, err
  end
  local out = {}
  local ok, lerr = pcall(function()
    for obj in self:objects(bucket, { prefix = wildcard.literal_prefix(pattern) }) do
      if pred(obj.name) then
        obj.uri = "gs://" .. bucket .. "/" .. obj.name
        out[#out + 1] = obj
      end
    end
  end)
  if not ok then return nil, lerr end
  return out
end

--- Get one object's metadata. Returns the resource or nil, Error.
function Storage:stat(uri)
  local bucket, name = wildcard.parse_uri(uri)
  if not bucket then return nil, name end
  return self.transport:json("GET", self:object_url(bucket, name), nil, "get " .. uri)
end

local function upload_request(self, path, bucket, name, content_type)
  return {
    method = "POST",
    url = self.base .. "/upload/storage/v1/b/" .. http.escape(bucket) .. "/o" ..
      http.query{ uploadType = "media", name = name },
    headers = { "Content-Type: " .. (content_type or "application/octet-stream"), "Accept: application/json" },
    body_file = path,
  }
end

local function download_request(self, bucket, name, path)
  return { method = "GET", url = self:object_url(bucket, name) .. "?alt=media", output_file = path }
end

-- Run a list of jobs { req=, source=, target=, what= } through the engine at once and
-- collect one result per job, in input order.
local function run_all(self, jobs, opts)
  local results, by_id = {}, {}
  local summary = { ok = 0, failed = 0, results = results }
  for i, job in ipairs(jobs) do
    results[i] = { source = job.source, target = job.target }
    if job.err then
      results[i].ok, results[i].err = false, job.err
      summary.failed = summary.failed + 1
    else
      by_id[self.transport:submit(job.req)] = i
    end
  end
  while next(by_id) do
    for _, done in ipairs(self.transport.engine:step(200)) do
      local i = by_id[done.id]
      if i then
        by_id[done.id] = nil
        local r, job = results[i], jobs[i]
        local res, err = http.completion(done, job.req.url, job.what)
        if res then
          r.ok = true
          summary.ok = summary.ok + 1
          if res.body and res.body ~= "" and job.json then r.object = require("dicomgcs.json").decode(res.body) end
        else
          r.ok, r.err = false, err
          summary.failed = summary.failed + 1
        end
        if opts.on_progress then opts.on_progress(r, summary, #jobs) end
      end
    end
  end
  return summary
end

--- Upload a file or a folder (recursively) under a `gs://BUCKET/PREFIX`.
-- A folder's relative paths are kept: `dir/a/b.dcm` → `PREFIX/a/b.dcm`. A single file
-- uploaded to a URI ending in `/` keeps its name; otherwise the URI names the object.
-- `opts.content_type`, `opts.on_progress(result, summary, total)`. Returns a summary or nil, Error
-- when the source cannot be read at all.
function Storage:upload(source, uri, opts)
  opts = opts or {}
  local bucket, prefix = wildcard.parse_uri(uri, { allow_empty_object = true })
  if not bucket then return nil, prefix end
  local files, ferr = localpath.files(source)
  if not files then return nil, ferr end
  local single = #files == 1 and files[1].path == source
  local jobs = {}
  for _, f in ipairs(files) do
    local name
    if single and prefix ~= "" and prefix:sub(-1) ~= "/" then name = prefix
    elseif prefix == "" or prefix:sub(-1) == "/" then name = prefix .. f.rel
    else name = prefix .. "/" .. f.rel end
    local target = "gs://" .. bucket .. "/" .. name
    jobs[#jobs + 1] = { source = f.path, target = target, what = "upload " .. f.path .. " to " .. target,
      req = upload_request(self, f.path, bucket, name, opts.content_type), json = true }
  end
  return run_all(self, jobs, opts)
end

--- Download one object or every object under a `gs://BUCKET/PREFIX/` (or matching a
-- wildcard) into folder `dest`. Object names become paths relative to the prefix; a name that
-- could escape `dest` (`..`, absolute, NUL) fails for that object only.
-- Returns a summary or nil, Error when the listing itself fails.
function Storage:download(uri, dest, opts)
  opts = opts or {}
  local bucket, pattern = wildcard.parse_uri(uri, { allow_empty_object = true })
  if not bucket then return nil, pattern end
  local objects, base
  if pattern:find("[*?]") then
    local err
    objects, err = self:match(uri)
    if not objects then return nil, err end
    base = wildcard.literal_prefix(pattern):match("^(.*/)") or ""
  else
    objects = {}
    local ok, err = pcall(function()
      for obj in self:objects(bucket, { prefix = pattern }) do objects[#objects + 1] = obj end
    end)
    if not ok then return nil, err end
    if #objects == 1 and objects[1].name == pattern then
      base = pattern:match("^(.*/)") or ""
    else
      base = (pattern == "" or pattern:sub(-1) == "/") and pattern or (pattern .. "/")
      -- "gs://b/dir" selects dir/... but not dirx/...
      local kept = {}
      for _, o in ipairs(objects) do if o.name:sub(1, #base) == base then kept[#kept + 1] = o end end
      objects = kept
    end
  end
  local jobs = {}
  for _, obj in ipairs(objects) do
    local source = "gs://" .. bucket .. "/" .. obj.name
    local path, perr = localpath.safe_join(dest, obj.name:sub(#base + 1))
    local job = { source = source, target = path, what = "download " .. source }
    if not path then
      job.err = perr
    else
      local ok, mkerr = localpath.make_parent(path)
      if ok then job.req = download_request(self, bucket, obj.name, path) else job.err = mkerr end
    end
    jobs[#jobs + 1] = job
  end
  return run_all(self, jobs, opts)
end

--- Read a (small) object into memory. Returns its bytes or nil, Error.
function Storage:read(uri)
  local bucket, name = wildcard.parse_uri(uri)
  if not bucket then return nil, name end
  local res, err = self.transport:request({ method = "GET", url = self:object_url(bucket, name) .. "?alt=media" },
    "read " .. uri)
  if not res then return nil, err end
  return res.body
end

--- Write bytes to an object. Returns the object resource or nil, Error.
function Storage:write(uri, bytes, content_type)
  local bucket, name = wildcard.parse_uri(uri)
  if not bucket then return nil, name end
  local res, err = self.transport:request({
    method = "POST",
    url = self.base .. "/upload/storage/v1/b/" .. http.escape(bucket) .. "/o" ..
      http.query{ uploadType = "media", name = name },
    headers = { "Content-Type: " .. (content_type or "application/octet-stream") },
    body = bytes }, "write " .. uri)
  if not res then return nil, err end
  return require("dicomgcs.json").decode(res.body, "write " .. uri)
end

--- Delete one object. Returns true or nil, Error.
function Storage:delete(uri)
  local bucket, name = wildcard.parse_uri(uri)
  if not bucket then return nil, name end
  local res, err = self.transport:request({ method = "DELETE", url = self:object_url(bucket, name) }, "delete " .. uri)
  if not res then return nil, err end
  return true
end

return gcs
