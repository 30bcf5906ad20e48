--- The Cloud Storage half: buckets, listing with the import wildcard, uploads and downloads.
-- Every bulk call returns a summary that accounts for every input: `summary.results[i]` is
-- `{ source=, target=, ok=true|false, err=Error?, object=? }`, with `summary.ok` and
-- `summary.failed` counts. One failing object never stops the others.
-- @module dicomgcs.gcs
local errors = require "dicomgcs.errors"
local http = require "dicomgcs.http"
local iam = require "dicomgcs.gcs.iam"
local json = require "dicomgcs.json"
local localpath = require "dicomgcs.localpath"
local paging = require "dicomgcs.paging"
local replay = require "dicomgcs.replay"
local runner = require "dicomgcs.runner"
local transfer = require "dicomgcs.gcs.transfer"
local wildcard = require "dicomgcs.wildcard"

local gcs = {}

local Storage = { __name = "dicomgcs.Storage" }
Storage.__index = Storage

--- A storage handle on a transport. `base` is the JSON API root (https://storage.googleapis.com);
-- `opts.resourcemanager` the Resource Manager v1 root (for project numbers, see dicomgcs.gcs.iam).
function gcs.new(transport, base, project, opts)
  opts = opts or {}
  return setmetatable({ transport = transport, base = base, project = project,
                        resourcemanager = opts.resourcemanager }, Storage)
end

-- Bucket IAM and the Healthcare service agent: get_iam_policy, set_iam_policy, project_number,
-- service_agent, check_service_agent, grant_service_agent, get/set_project_iam_policy,
-- service_agent_access (documented in dicomgcs.gcs.iam).
for _, k in ipairs{ "get_iam_policy", "set_iam_policy", "project_number", "service_agent",
                    "check_service_agent", "grant_service_agent", "get_project_iam_policy",
                    "set_project_iam_policy", "service_agent_access" } do
  Storage[k] = iam[k]
end

--- Tuning defaults for bulk transfers (thresholds, chunk sizes); see dicomgcs.gcs.transfer.
gcs.transfer_defaults = transfer.defaults

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
  local what = "create bucket gs://" .. name
  local doc, err = replay.send(self.transport, "POST", self.base .. "/storage/v1/b" .. http.query{ project = project },
    body, what)
  if not doc and errors.class(err) == "ambiguous" then
    -- bucket names are global: one we can read after a lost answer is taken as ours
    return replay.settle_create(what, err, function() return self:get_bucket(name) end, "run the create again")
  end
  return doc, err
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
  return paging.each(paging.by_token(function(token)
    local page, err = self:list_page(bucket, { prefix = opts.prefix, page_token = token, page_size = opts.page_size,
                                               match_glob = opts.match_glob })
    if not page then return nil, err end
    return page.items or {}, page.nextPageToken
  end))
end

--- The Cloud Storage `matchGlob` to send with a listing for an import wildcard, or nil. Only
-- where Google's documented glob grammar surely selects a superset of our matcher: a pattern
-- whose only wildcard is `*` (the same "any characters but `/`" in both). Never for `?` (GCS's
-- "single character" might be counted in bytes), `**` joined to other characters in a segment
-- (undocumented there), or names holding glob syntax of GCS's own (`[`, `]`, `{`, `}`, `\`).
-- Correctness never rests on it: the local matcher decides (see Storage:match).
function gcs.server_glob(pattern)
  if not pattern:find("*", 1, true) or pattern:find("**", 1, true) or pattern:find("[?%[%]{}\\]") then return nil end
  return pattern
end

--- The objects a `gs://` wildcard URI selects, exactly as the Healthcare import reads them.
-- Lists only under the pattern's literal prefix (with a `matchGlob` only where it surely gives a
-- superset, see gcs.server_glob) and decides with the local matcher (the one definition). `opts.match_glob =
-- false` lists by prefix only. Returns an array of object resources (with `uri` added) or nil, Error.
function Storage:match(uri, opts)
  opts = opts or {}
  local bucket, pattern = wildcard.parse_uri(uri)
  if not bucket then return nil, pattern end
  local pred, err = wildcard.compile(pattern)
  if not pred then
    err.message = uri .. ": " .. err.message
    return nil, err
  end
  local out = {}
  local glob = opts.match_glob ~= false and gcs.server_glob(pattern) or nil
  local ok, lerr = pcall(function()
    for obj in self:objects(bucket, { prefix = wildcard.literal_prefix(pattern), match_glob = glob }) do
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

--- The error for a URL that selects nothing (gcloud fails there too, rather than "0 of 0").
function gcs.no_match(uri)
  return errors.input(uri .. " matched no objects", "check the name with: dicomgcs storage ls " .. uri:gsub("[^/]*$", ""))
end

--- Upload a file or a folder (recursively) under a `gs://BUCKET/PREFIX`.
-- A folder's relative paths are kept: `dir/a/b.dcm` → `PREFIX/a/b.dcm`. A single file
-- uploaded to a URI ending in `/` keeps its name; otherwise the URI names the object.
-- Files run in parallel; files of `resumable_threshold` (8 MiB) or more go through resumable
-- sessions that survive dropped connections. The CRC32C (and/or MD5) of each file is computed
-- locally and checked by the server and against the object it returns; an object already there
-- with the same size and checksum is skipped (`result.skipped`).
-- opts: `content_type` (default from the extension: .dcm → application/dicom), `checksum`
-- ("crc32c" default, "md5", "both", false), `skip_same` (default true), `resumable_threshold`,
-- `chunk_size` (nil: one streamed PUT per file; else chunks, a multiple of 256 KiB),
-- `resume_chunk_size`, `max_resume_attempts`, `on_progress(result, summary, total)`.
-- Returns a summary `{ok=, failed=, skipped=, bytes=, results=}` or nil, Error when the
-- source cannot be read at all. Raises on unknown options.
function Storage:upload(source, uri, opts)
  opts = opts or {}
  local bucket, prefix = wildcard.parse_uri(uri, { allow_empty_object = true })
  if not bucket then return nil, prefix end
  local files, ferr = localpath.files(source, { links = true })
  if not files then return nil, ferr end
  if #files == 0 then
    return nil, errors.input(source .. " matched no files", "the folder is empty; nothing was uploaded")
  end
  local single = #files == 1 and files[1].path == source
  local function name_of(f)
    if single and prefix ~= "" and prefix:sub(-1) ~= "/" then return prefix
    elseif prefix == "" or prefix:sub(-1) == "/" then return prefix .. f.rel
    else return prefix .. "/" .. f.rel end
  end
  local list_prefix = prefix
  if single then list_prefix = name_of(files[1])
  elseif prefix ~= "" and prefix:sub(-1) ~= "/" then list_prefix = prefix .. "/" end
  return transfer.upload(self, files, bucket, name_of, opts, list_prefix)
end

-- The objects under a URI for download/delete: a wildcard, one object, or a prefix ("gs://b/dir"
-- selects dir/... but not dirx/...). Returns objects, bucket, base (the part of names to drop).
function Storage:select(uri)
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
    base = (pattern == "" or pattern:sub(-1) == "/") and pattern or (pattern .. "/")
    local kept, exact = {}, nil
    for _, o in ipairs(objects) do
      if o.name == pattern and base ~= pattern then exact = o
      elseif o.name:sub(1, #base) == base then kept[#kept + 1] = o end
    end
    if exact and #kept == 0 then
      -- one object named exactly (and no folder of that name)
      kept, base = { exact }, pattern:match("^(.*/)") or ""
    end
    objects = kept
  end
  return objects, bucket, base
end

--- Download one object or every object under a `gs://BUCKET/PREFIX/` (or matching a
-- wildcard) into folder `dest`. Object names become paths relative to the prefix; a name that
-- could escape `dest` (`..`, absolute, NUL) fails for that object only. Objects of
-- `ranged_threshold` (64 MiB) or more are fetched as parallel Range requests of `range_size`
-- (32 MiB) written in place into one file; every file's CRC32C is checked against the object's (`verify=false` skips).
-- opts: `verify`, `ranged_threshold`, `range_size`, `on_progress(result, summary, total)`.
-- Returns a summary or nil, Error when the listing itself fails.
function Storage:download(uri, dest, opts)
  local objects, bucket, base = self:select(uri)
  if not objects then return nil, bucket end
  if #objects == 0 then return nil, gcs.no_match(uri) end
  return transfer.download(self, objects, bucket, function(obj)
    return localpath.safe_join(dest, obj.name:sub(#base + 1))
  end, opts, dest)
end

--- Delete every object under a prefix (or matching a wildcard, or the one object named).
-- With `opts.dry_run` nothing is deleted: the summary lists what would be (results with
-- `source`, `ok=true`, `dry_run=true`). Each delete is conditional on the generation listed, so an
-- object rewritten after the listing is kept (that result fails with HTTP 412).
-- Returns a summary or nil, Error when the listing fails.
function Storage:delete_prefix(uri, opts)
  opts = opts or {}
  local objects, bucket = self:select(uri)
  if not objects then return nil, bucket end
  if opts.dry_run then
    local results = {}
    for i, o in ipairs(objects) do
      results[i] = { source = "gs://" .. bucket .. "/" .. o.name, ok = true, dry_run = true, object = o }
    end
    return { ok = #results, failed = 0, skipped = 0, bytes = 0, results = results, dry_run = true }
  end
  return transfer.delete(self, objects, bucket, opts)
end

-- One rewrite as a runner job: POST …/rewriteTo/… again with the rewriteToken until `done`, so
-- a large object (or one crossing locations or storage classes) is copied over several calls.
local function rewrite_job(self, c)
  local sb, sn = wildcard.parse_uri(c.source)
  local db, dn = wildcard.parse_uri(c.target)
  return { source = c.source, target = c.target, fn = function(io)
    if not sb then return nil, sn end
    if not db then return nil, dn end
    local url = self:object_url(sb, sn) .. "/rewriteTo/b/" .. http.escape(db) .. "/o/" .. http.escape(dn)
    local q = { ifSourceGenerationMatch = c.if_source_generation, ifGenerationMatch = c.if_generation }
    local calls = 0
    while true do
      local res, err = io.request({ method = "POST", url = url .. http.query(q),
        headers = { "Content-Type: application/json" }, body = "{}" }, "copy " .. c.source .. " to " .. c.target)
      if not res then return nil, err end
      local doc, jerr = json.decode(res.body, "rewrite " .. c.source)
      if not doc then return nil, errors.new{ kind = "json", message = jerr } end
      calls = calls + 1
      if doc.done then return { object = doc.resource, bytes = 0, calls = calls } end
      if type(doc.rewriteToken) ~= "string" or calls > 100000 then
        return nil, errors.new{ kind = "protocol", message = "rewrite of " .. c.source .. " not done and no rewriteToken" }
      end
      q.rewriteToken = doc.rewriteToken
    end
  end }
end

--- Server-side copies (Cloud Storage `objects.rewrite`; no bytes pass through this machine).
-- `copies` is an array of `{ source = "gs://…", target = "gs://…", if_source_generation = G,
-- if_generation = G }` (the preconditions are optional: a source rewritten since G, or a target
-- not at G, fails that copy with HTTP 412). Several run at once on the engine.
-- Returns a summary like upload's: `results[i] = { source=, target=, ok=, err=?, object=? }`.
function Storage:rewrite_many(copies, opts)
  local jobs = {}
  for i, c in ipairs(copies) do jobs[i] = rewrite_job(self, c) end
  return runner.run(self.transport, jobs, { on_progress = opts and opts.on_progress })
end

--- Delete exactly the listed generations: `objects` are resources with `name` and `generation`
-- (in `bucket`); an object rewritten since is kept and its result fails with HTTP 412.
function Storage:delete_generations(bucket, objects, opts)
  return transfer.delete(self, objects, bucket, opts)
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
  if content_type ~= nil then
    local ok, err = http.header_value(content_type, "content_type")
    if not ok then return nil, err end
  end
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
