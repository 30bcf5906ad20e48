--- Bulk transfers between local folders and Cloud Storage: parallel uploads (multipart for
-- small files, resumable sessions for large ones), parallel downloads (ranged for large
-- objects), deletes under a prefix; CRC32C/MD5 computed locally in the C core and checked
-- against what the server kept. Private to dicomgcs.gcs: use Storage:upload/download/delete_prefix.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.gcs.transfer
-- @local
local core = require "dicomgcs.core"
local errors = require "dicomgcs.errors"
local http = require "dicomgcs.http"
local json = require "dicomgcs.json"
local localpath = require "dicomgcs.localpath"
local options = require "dicomgcs.options"
local multipart = require "dicomgcs.multipart"
local runner = require "dicomgcs.runner"

local transfer = {}

local KIB256 = 262144
local MIB = 1024 * 1024

transfer.defaults = {
  resumable_threshold = 8 * MIB,   -- files this large or larger use a resumable session
  chunk_size = nil,                -- nil: one streamed PUT, chunks only after a drop; else a multiple of 256 KiB
  resume_chunk_size = 8 * MIB,     -- chunk size when resuming after a drop (streamed as a file slice)
  max_resume_attempts = 10,        -- failed chunks in a row before giving up on one file
  max_stalled = 3,                 -- 308 answers in a row that keep no new byte before giving up
  ranged_threshold = 64 * MIB,     -- objects this large or larger download in ranges
  range_size = 32 * MIB,
}

local upload_options = { content_type = true, on_progress = true, checksum = true, skip_same = true,
  resumable_threshold = true, chunk_size = true, resume_chunk_size = true, max_resume_attempts = true,
  max_active = true, max_large = true }
local download_options = { on_progress = true, verify = true, ranged_threshold = true, range_size = true,
  max_active = true, max_large = true }

local function setting(opts, k)
  if opts[k] ~= nil then return opts[k] end
  return transfer.defaults[k]
end

--- Which checksums to compute: "crc32c" (default), "md5", "both", or false.
local function checksum_set(c)
  if c == nil or c == "crc32c" then return { crc32c = true } end
  if c == "md5" then return { md5 = true } end
  if c == "both" then return { crc32c = true, md5 = true } end
  if c == false then return {} end
  error("upload: option 'checksum' must be \"crc32c\", \"md5\", \"both\" or false", 3)
end

local function guess_type(name)
  local ext = name:match("%.([%w]+)$")
  ext = ext and ext:lower()
  if ext == "dcm" or ext == "dicom" then return "application/dicom" end
  if ext == "json" then return "application/json" end
  if ext == "txt" then return "text/plain" end
  if ext == "png" then return "image/png" end
  if ext == "jpg" or ext == "jpeg" then return "image/jpeg" end
  return "application/octet-stream"
end

local function same_content(obj, d)
  if tostring(obj.size) ~= tostring(d.size) then return false end
  if d.crc32c and obj.crc32c then return obj.crc32c == d.crc32c end
  if d.md5 and obj.md5Hash then return obj.md5Hash == d.md5 end
  return false
end

local function checksum_error(what, kind, want, got)
  return errors.new{ kind = "checksum", message = ("%s: %s mismatch: local %s, server %s"):format(what, kind,
    tostring(want), tostring(got)), hint = "the bytes changed on the way or the file changed during the upload; run it again" }
end

-- Compare the server's object with the local digest.
local function verify_object(obj, d, what)
  if d.crc32c and obj.crc32c and obj.crc32c ~= d.crc32c then return checksum_error(what, "CRC32C", d.crc32c, obj.crc32c) end
  if d.md5 and obj.md5Hash and obj.md5Hash ~= d.md5 then return checksum_error(what, "MD5", d.md5, obj.md5Hash) end
  return nil
end

local function hash_header(d)
  local parts = {}
  if d.crc32c then parts[#parts + 1] = "crc32c=" .. d.crc32c end
  if d.md5 then parts[#parts + 1] = "md5=" .. d.md5 end
  if #parts == 0 then return nil end
  return "X-Goog-Hash: " .. table.concat(parts, ",")
end

-- The last persisted byte from a 308's Range header ("bytes=0-N") as the next offset.
local function persisted(res)
  local last = res.headers and res.headers.range and res.headers.range:match("bytes=0%-(%d+)")
  return last and (tonumber(last) + 1) or 0
end

local function decode_object(res, what)
  local obj, jerr = json.decode(res.body or "", what)
  if type(obj) ~= "table" then return nil, errors.new{ kind = "json", message = tostring(jerr) } end
  return obj
end

-- A multipart upload (metadata with the checksums, then the file, streamed).
local function upload_small(st, net, path, bucket, name, ctype, d, what)
  local meta = { name = name, contentType = ctype, crc32c = d.crc32c, md5Hash = d.md5 }
  local mp_type, body = multipart.related{ { content_type = "application/json; charset=UTF-8", data = json.encode(meta) },
    { content_type = ctype, file = path } }
  local res, err = net.request({
    method = "POST",
    url = st.base .. "/upload/storage/v1/b/" .. http.escape(bucket) .. "/o?uploadType=multipart",
    headers = { "Content-Type: " .. mp_type, "Accept: application/json" },
    body_parts = body,
  }, what)
  if not res then return nil, err end
  return decode_object(res, what)
end

-- A resumable upload: start a session, stream the file in one PUT (or in chunks of
-- `chunk_size`); after a dropped connection or a retryable status ask the server how much it
-- kept (`bytes */SIZE` → 308 Range) and go on from there in chunks of multiples of 256 KiB,
-- the final one carrying X-Goog-Hash.
local function upload_resumable(st, net, path, bucket, name, ctype, d, opts, what, info)
  local size = d.size
  local res, err = net.request({
    method = "POST",
    url = st.base .. "/upload/storage/v1/b/" .. http.escape(bucket) .. "/o" ..
      http.query{ uploadType = "resumable", name = name },
    headers = { "Content-Type: application/json; charset=UTF-8", "X-Upload-Content-Type: " .. ctype,
                "X-Upload-Content-Length: " .. size, "Accept: application/json" },
    body = json.encode{ name = name, contentType = ctype },
  }, what .. " (start a resumable session)")
  if not res then return nil, err end
  local session = res.headers.location
  if not session then
    return nil, errors.new{ kind = "http", message = what .. ": the server gave no session URI (Location)" }
  end
  local hash = hash_header(d)
  local chunk = setting(opts, "chunk_size")
  local resume_chunk = setting(opts, "resume_chunk_size")
  local max_fail = setting(opts, "max_resume_attempts")
  local max_stalled = transfer.defaults.max_stalled
  local offset, failures, streamed, stalled = 0, 0, false, 0
  info.resumed = 0
  local function abandon(e)
    net.request({ method = "DELETE", url = session, retry = { max_attempts = 1 } }, what .. " (cancel the session)")
    return nil, e
  end
  while true do
    local req = { method = "PUT", url = session, retry = { max_attempts = 1 }, headers = { "Accept: application/json" } }
    if size == 0 then
      req.headers[2] = "Content-Range: bytes */0"
      req.body = ""
      if hash then req.headers[3] = hash end
    elseif offset == 0 and not chunk and not streamed then
      streamed = true
      req.headers[2] = ("Content-Range: bytes 0-%d/%d"):format(size - 1, size)
      if hash then req.headers[3] = hash end
      req.body_file, req.body_length = path, size   -- exactly what Content-Range says
    else
      -- a chunk streamed from the file by the engine (a file that shrank fails with kind io)
      local n = math.min(chunk or resume_chunk, size - offset)
      local final = offset + n == size
      req.headers[2] = ("Content-Range: bytes %d-%d/%d"):format(offset, offset + n - 1, size)
      if final and hash then req.headers[3] = hash end
      req.body_file, req.body_offset, req.body_length = path, offset, n
    end
    local r, e = net.request(req, what)
    if r and (r.status == 200 or r.status == 201) then
      return decode_object(r, what)
    elseif r and r.status == 308 then
      local now = persisted(r)
      if now > offset then failures, stalled = 0, 0 else stalled = stalled + 1 end
      if stalled >= max_stalled then
        -- a server that keeps answering "incomplete" without keeping a byte would loop forever
        return abandon(errors.new{ kind = "http", http_status = 308,
          message = ("%s: the server answered 308 %d times in a row with no progress (it kept %d of %d bytes)")
            :format(what, stalled, now, size), hint = "the upload session is stuck; run the copy again to start a new one" })
      end
      offset = now
    else
      if e and not errors.retryable(errors.class(e)) then
        return abandon(e)
      end
      failures = failures + 1
      if failures > max_fail then return abandon(e) end
      -- where are we? (the engine retries this idempotent query with backoff)
      local q, qe = net.request({ method = "PUT", url = session, body = "",
        headers = { "Content-Range: bytes */" .. size, "Accept: application/json" } }, what .. " (resume)")
      if not q then return nil, qe end
      if q.status == 200 or q.status == 201 then return decode_object(q, what) end
      offset = persisted(q)
      info.resumed = info.resumed + 1
    end
  end
end

--- Upload `files` ({path=, rel=}) to names built by `name_of(file)` in `bucket`.
function transfer.upload(st, files, bucket, name_of, opts, list_prefix)
  opts = opts or {}
  options.check(opts, upload_options, "upload")
  if opts.content_type ~= nil then
    local ok, err = http.header_value(opts.content_type, "content_type (--content-type)")
    if not ok then return nil, err end
  end
  local want = checksum_set(opts.checksum)
  local chunk = opts.chunk_size
  if chunk ~= nil and (math.type(chunk) ~= "integer" or chunk <= 0 or chunk % KIB256 ~= 0) then
    error("upload: option 'chunk_size' must be a positive multiple of 262144 (256 KiB)", 2)
  end
  local rc = opts.resume_chunk_size
  if rc ~= nil and (math.type(rc) ~= "integer" or rc <= 0 or rc % KIB256 ~= 0) then
    error("upload: option 'resume_chunk_size' must be a positive multiple of 262144 (256 KiB)", 2)
  end
  local threshold = setting(opts, "resumable_threshold")

  -- What is there already (one listing, not one request per file).
  local existing, bucket_err = {}, nil
  if opts.skip_same ~= false and (want.crc32c or want.md5) then
    local token
    repeat
      local page, err = st:list_page(bucket, { prefix = list_prefix, page_token = token })
      if not page then
        if err.http_status == 404 then bucket_err = err end
        existing = {}
        break
      end
      for _, o in ipairs(page.items or {}) do existing[o.name] = o end
      token = page.nextPageToken
    until token == nil or token == ""
  end

  local jobs = {}
  for _, f in ipairs(files) do
    local name = name_of(f)
    local target = "gs://" .. bucket .. "/" .. name
    local what = "upload " .. f.path .. " to " .. target
    local job = { source = f.path, target = target, large = (f.size or 0) >= threshold }
    if f.err then
      job.err = f.err   -- e.g. a symbolic link in the source folder: not followed
    elseif bucket_err then
      job.err = errors.new{ kind = bucket_err.kind, http_status = bucket_err.http_status, status = bucket_err.status,
        message = what .. ": bucket gs://" .. bucket .. " does not exist", hint = ("create it first: c.storage:create_bucket(%q)"):format(bucket),
        hint_cli = "create it first: dicomgcs storage buckets create gs://" .. bucket }
    else
      job.fn = function(net)
        local d, herr = core.hash_file(f.path, want)
        if not d then
          return nil, errors.new{ kind = "io", message = what .. ": cannot read " .. herr,
            hint = "the file vanished or became unreadable after the folder was listed" }
        end
        local ex = existing[name]
        if ex and same_content(ex, d) then return { skipped = true, object = ex, bytes = 0 } end
        local ctype = opts.content_type or guess_type(name)
        local info = { bytes = d.size }
        local obj, err
        if d.size >= threshold then
          obj, err = upload_resumable(st, net, f.path, bucket, name, ctype, d, opts, what, info)
        else
          obj, err = upload_small(st, net, f.path, bucket, name, ctype, d, what)
        end
        if not obj then return nil, err end
        local bad = verify_object(obj, d, what)
        if bad then return nil, bad end
        info.object = obj
        return info
      end
    end
    jobs[#jobs + 1] = job
  end
  return runner.run(st.transport, jobs, { on_progress = opts.on_progress, max_active = opts.max_active,
    max_large = opts.max_large })
end

--- Download `objects` (listing entries) of `bucket`; `path_of(obj)` gives the local path or nil,
-- Error; `root` is the destination folder the paths lie under (no link below it is followed).
-- Each object goes to a hidden temporary file beside its path (created O_EXCL|O_NOFOLLOW with a
-- random name, see core.create_temp), reserved to the object's size, filled by one GET or by
-- ranged GETs written in place, checked (length, CRC32C), and only then renamed into place.
function transfer.download(st, objects, bucket, path_of, opts, root)
  opts = opts or {}
  options.check(opts, download_options, "download")
  local verify = opts.verify ~= false
  local threshold, range_size = setting(opts, "ranged_threshold"), setting(opts, "range_size")
  if math.type(range_size) ~= "integer" or range_size <= 0 then
    error("download: option 'range_size' must be a positive integer", 2)
  end
  local jobs = {}
  for _, obj in ipairs(objects) do
    local source = "gs://" .. bucket .. "/" .. obj.name
    local what = "download " .. source
    local size = tonumber(obj.size) or 0
    local job = { source = source, large = size >= threshold }
    if obj.name:sub(-1) == "/" and size == 0 then
      -- a "folder" placeholder: nothing to write
      job.fn = function() return { skipped = true, bytes = 0 } end
    else
      local path, perr = path_of(obj)
      job.target = path
      if not path then
        job.err = perr
      else
        local ok, mkerr = localpath.make_parent(path, root)
        if not ok then job.err = mkerr end
      end
      local url = st:object_url(bucket, obj.name) .. "?alt=media" ..
        (obj.generation and ("&generation=" .. http.escape(obj.generation)) or "")
      local check = verify and obj.crc32c and true or false
      -- With `verify` and a CRC32C on the object: nil if the `got` bytes whose CRC32C (an
      -- integer, computed by the engine as they were written) is `crc` are the object, else an Error.
      local function digest_error(got, crc)
        if not check then return nil end
        if got ~= size or math.type(crc) ~= "integer" then
          return errors.new{ kind = "checksum", message = ("%s: got %d bytes, the object has %d%s"):format(what,
            got, size, math.type(crc) == "integer" and "" or " (no CRC32C computed)") }
        end
        local b64 = core.crc32c_b64(crc)
        if b64 ~= obj.crc32c then return checksum_error(what, "CRC32C", b64, obj.crc32c) end
        return nil
      end
      job.fn = function(net)
        -- blocks reserved up front: a full disk fails here, not halfway
        local tmp, terr = core.create_temp(path, size)
        if not tmp then
          return nil, errors.new{ kind = "io", message = ("%s: cannot create a %d-byte file beside %s"):format(what, size, terr) }
        end
        local ranged = size >= threshold and size > range_size
        local n = ranged and (size + range_size - 1) // range_size or 1
        local list, want = {}, {}
        for i = 1, n do
          local a = (i - 1) * range_size
          local b = ranged and math.min(size, a + range_size) - 1 or size - 1
          want[i] = b - a + 1
          list[i] = { { method = "GET", url = url, headers = ranged and { ("Range: bytes=%d-%d"):format(a, b) } or nil,
                        output_file = tmp, output_offset = ranged and a or 0, hash = check and "crc32c" or nil },
                      what .. (ranged and (" (bytes %d-%d)"):format(a, b) or "") }
        end
        local failed
        local results = net.requests(list)
        for i, o in ipairs(results) do
          if not o.res then failed = failed or o.err
          elseif ranged and o.res.status ~= 206 then
            failed = failed or errors.new{ kind = "http", http_status = o.res.status,
              message = ("%s: the server ignored Range for part %d (HTTP %d)"):format(what, i, o.res.status) }
          elseif o.res.bytes_received ~= want[i] then
            failed = failed or errors.new{ kind = "checksum", message = ("%s: %sgot %d bytes, %s %d")
              :format(what, ranged and ("part %d: "):format(i) or "", o.res.bytes_received,
                ranged and "asked for" or "the object has", want[i]) }
          end
        end
        if not failed and check then
          -- the file's CRC32C from the parts' (each over exactly its range), in order
          local crc = 0
          for i = 1, n do crc = core.crc32c_combine(crc, results[i].res.crc32c, want[i]) end
          failed = digest_error(size, crc)
        end
        if not failed then
          local rok, rerr = os.rename(tmp, path)
          if not rok then failed = errors.new{ kind = "io", message = what .. ": cannot rename " .. tostring(rerr) } end
        end
        if failed then
          os.remove(tmp)
          return nil, failed
        end
        return { bytes = size, object = obj }
      end
    end
    jobs[#jobs + 1] = job
  end
  return runner.run(st.transport, jobs, { on_progress = opts.on_progress, max_active = opts.max_active,
    max_large = opts.max_large or 4 })
end

--- Delete `objects` of `bucket` in parallel; a summary like the others.
function transfer.delete(st, objects, bucket, opts)
  opts = opts or {}
  local jobs = {}
  for _, obj in ipairs(objects) do
    local uri = "gs://" .. bucket .. "/" .. obj.name
    local q = obj.generation and ("?ifGenerationMatch=" .. http.escape(obj.generation)) or ""
    jobs[#jobs + 1] = { source = uri, fn = function(net)
      local res, err = net.request({ method = "DELETE", url = st:object_url(bucket, obj.name) .. q }, "delete " .. uri)
      if not res then return nil, err end
      return { bytes = 0 }
    end }
  end
  return runner.run(st.transport, jobs, { on_progress = opts.on_progress })
end

return transfer
