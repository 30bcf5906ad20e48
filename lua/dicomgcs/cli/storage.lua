--- Commands for Cloud Storage: buckets, ls, cp, rm, laid out as `gcloud storage` lays them out.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.cli.storage
-- @local
local core = require "dicomgcs.core"
local progress = require "dicomgcs.cli.progress"
local term = require "dicomgcs.cli.term"


local common = require "dicomgcs.cli.common"
-- usage: a mistake in the command line (exit 2); fail: the request could not be done (exit 1)
local fail, must, usage = common.fail, common.must, common.usage

local function parse_gs(uri)
  local bucket, path = uri:match("^gs://([^/]+)/?(.*)$")
  if not bucket then usage("'" .. uri .. "' is not a gs:// URI") end
  return bucket, path
end

-- One level of a bucket under `prefix` (delimiter "/"), every page: objects, prefixes. A missing
-- bucket is one error naming the command that creates it.
local function list_level(st, bucket, prefix, max)
  local objects, prefixes, token = {}, {}, nil
  repeat
    local page, err = st:list_page(bucket, { prefix = prefix ~= "" and prefix or nil, delimiter = "/",
                                             page_token = token, page_size = max })
    if not page then
      if err.http_status == 404 then
        err.message = "bucket gs://" .. bucket .. " does not exist"
        err.hint = "create it first: dicomgcs storage buckets create gs://" .. bucket
      end
      fail(err)
    end
    for _, o in ipairs(page.items or {}) do objects[#objects + 1] = o end
    for _, p in ipairs(page.prefixes or {}) do prefixes[#prefixes + 1] = p end
    token = page.nextPageToken
  until token == nil or token == "" or max
  return objects, prefixes
end

-- Does gs://bucket/path exist as a folder (objects under path/)? Fails once, up front, when the
-- bucket does not exist.
local function is_folder(st, bucket, path)
  local p = path == "" and "" or (path:gsub("/*$", "/"))
  local objects, prefixes = list_level(st, bucket, p, 1)
  return p == "" or #objects > 0 or #prefixes > 0
end

-- The last name of a path ("a/b/" → "b"); nil for ".", ".." and the root, whose contents are copied.
local function leaf(path)
  local name = path:gsub("/+$", ""):match("([^/]+)$")
  if name == "." or name == ".." then return nil end
  return name
end

-- Print one line per failed item and return the exit code for a bulk summary.
local function summarize(ctx, summary, verb, tail)
  for _, r in ipairs(summary.results) do
    if not r.ok then io.stderr:write("ERROR: ", term.escape(tostring(r.err)), "\n") end
  end
  if ctx.flags.format == "json" then
    local rows = {}
    for i, r in ipairs(summary.results) do
      rows[i] = { source = r.source, target = r.target, ok = r.ok, skipped = r.skipped or nil,
                  error = r.err and tostring(r.err) or nil }
    end
    ctx.print({ ok = summary.ok, failed = summary.failed, bytes = summary.bytes,
                results = require("dicomgcs.json").array(rows) })
  end
  local skipped = (summary.skipped or 0) > 0 and (", %d already there with the same checksum"):format(summary.skipped) or ""
  io.stderr:write(("%s %d of %d file(s)%s %s; %d failed.\n"):format(verb, summary.ok, #summary.results, skipped,
    tail, summary.failed))
  if summary.failed == 0 then return 0 end
  return summary.ok > 0 and 3 or 1
end

-- `ls -l` / `-L` lines for one object.
local function long_line(o)
  return ("%10s  %s  %s"):format(tostring(o.size or 0), o.updated or o.timeCreated or "", term.escape(o.uri))
end

return {
  { path = { "storage", "buckets", "create" }, usage = "storage buckets create gs://BUCKET --project=P",
    summary = "create a bucket", min_args = 1, max_args = 1, help = "Create a Cloud Storage bucket.",
    flags = { location = { type = "string", help = "bucket location, e.g. US" } },
    run = function(ctx)
      local name = ctx.words[1]:match("^gs://([^/]+)/?$")
      if not name then usage("give the bucket as gs://BUCKET") end
      ctx.print(must(ctx.client().storage:create_bucket(name)))
    end },
  { path = { "storage", "ls" }, usage = "storage ls [-r] [-l|-L] gs://BUCKET[/PATH]",
    summary = "list objects and prefixes, one level (or -r / '**' for all)", min_args = 1, max_args = 1,
    help = "List the objects and prefixes directly under gs://BUCKET/PATH, one level, as\n" ..
      "`gcloud storage ls` does: prefixes print as gs://BUCKET/PATH/sub/. -r lists every object\n" ..
      "below. A wildcard ('*', '?', '**' at the end) prints exactly the objects the Healthcare\n" ..
      "import of that URI would read. -l adds size and time and a TOTAL line; -L prints each\n" ..
      "object's full metadata. A missing bucket is one error, exit 1.",
    flags = { recursive = { type = "boolean", short = "r", help = "every object below, not one level" },
              long = { type = "boolean", short = "l", help = "size, update time and URI, then a TOTAL line" },
              full = { type = "boolean", short = "L", help = "every metadata field of each object" } },
    run = function(ctx)
      local uri = ctx.words[1]
      local st = ctx.client().storage
      local bucket, path = parse_gs(uri)
      local objects, prefixes
      prefixes = {}
      if uri:find("[*?]") or ctx.flags.recursive then
        local pattern = uri
        if not uri:find("[*?]") then
          -- -r on a prefix: everything below it (a folder path names its contents, not a sibling)
          if path ~= "" and path:sub(-1) ~= "/" and not is_folder(st, bucket, path) then
            pattern = "gs://" .. bucket .. "/" .. path
          else
            pattern = "gs://" .. bucket .. "/" .. (path == "" and "" or (path:gsub("/*$", "/"))) .. "**"
          end
        else
          is_folder(st, bucket, "")   -- one error up front for a missing bucket
        end
        if pattern:find("[*?]") then
          objects = must(st:match(pattern))
        else
          objects = { must(st:stat(pattern)) }
          objects[1].uri = pattern
        end
      else
        local level = path
        if level ~= "" and level:sub(-1) ~= "/" then
          -- gs://B/dir lists dir/'s contents; gs://B/file names the one object
          local objs, pfx = list_level(st, bucket, level .. "/")
          if #objs == 0 and #pfx == 0 then
            local obj = st:stat(uri)
            if obj then objs = { obj } end
          end
          objects, prefixes = objs, pfx
        else
          objects, prefixes = list_level(st, bucket, level)
        end
        for _, o in ipairs(objects) do o.uri = "gs://" .. bucket .. "/" .. o.name end
      end
      if #objects == 0 and #prefixes == 0 and path ~= "" then
        fail("one or more URLs matched no objects: " .. uri)
      end
      local fmt = ctx.flags.format
      if fmt == "json" or fmt == "yaml" then
        local rows = {}
        for _, p in ipairs(prefixes) do rows[#rows + 1] = { uri = "gs://" .. bucket .. "/" .. p, type = "prefix" } end
        for _, o in ipairs(objects) do rows[#rows + 1] = o end
        return ctx.print(require("dicomgcs.json").array(rows))
      end
      local out = ctx.out
      if ctx.flags.full then
        for _, o in ipairs(objects) do
          local fields = {}
          for k, v in pairs(o) do if k ~= "uri" then fields[k] = v end end
          out:write(term.escape(o.uri), ":\n")
          for line in (require("dicomgcs.cli.output").render(fields, "yaml") .. "\n"):gmatch("([^\n]*)\n") do
            out:write("  ", line, "\n")
          end
        end
        for _, p in ipairs(prefixes) do out:write(term.escape("gs://" .. bucket .. "/" .. p), "\n") end
        return 0
      end
      local total = 0
      for _, p in ipairs(prefixes) do
        out:write(ctx.flags.long and string.rep(" ", 38) or "", term.escape("gs://" .. bucket .. "/" .. p), "\n")
      end
      for _, o in ipairs(objects) do
        total = total + (tonumber(o.size) or 0)
        out:write(ctx.flags.long and long_line(o) or term.escape(o.uri), "\n")
      end
      if ctx.flags.long then
        out:write(("TOTAL: %d objects, %d bytes (%s)\n"):format(#objects, math.tointeger(total) or total, progress.bytes(total)))
      end
    end },
  { path = { "storage", "cp" }, usage = "storage cp [-r] SRC DEST",
    summary = "copy files to or from Cloud Storage", min_args = 2, max_args = 2,
    help = "Copy a local file or folder (-r) to Cloud Storage, or objects under a gs:// prefix (-r)\n" ..
      "or matching a wildcard to a local folder. Names follow `gcloud storage cp`: a folder DIR\n" ..
      "copied to a bucket, to a URI ending in '/' or to a prefix that already exists lands under\n" ..
      "it as DIR/... (cp -r DIR gs://B/ makes gs://B/DIR/...); to a prefix that does not exist\n" ..
      "yet, its contents become that prefix. Downloads likewise: cp -r gs://B/P DIR makes DIR/P/...\n" ..
      "when DIR is a folder (or ends in '/'), else DIR holds P's contents. Uploads check CRC32C\n" ..
      "(or MD5) and skip objects already there with the same checksum; files of 8 MiB or more use\n" ..
      "resumable uploads that survive dropped connections; objects of 64 MiB or more download in\n" ..
      "parallel ranges. On a terminal a bar shows files, bytes, rate and ETA; a summary line ends it.",
    flags = { recursive = { type = "boolean", short = "r", help = "copy folders / prefixes recursively" },
              ["skip-same"] = { type = "boolean",
                help = "skip objects already there with the same checksum (default; --no-skip-same uploads all)" },
              checksum = { type = "string", help = "crc32c (default), md5, both or none" },
              ["chunk-size"] = { type = "string",
                help = "resumable upload chunk size, a multiple of 256 KiB (e.g. 8M); default: one streamed request" },
              ["content-type"] = { type = "string", help = "Content-Type of uploaded objects (default from the extension)" },
              ["no-verify"] = { type = "boolean", help = "do not check downloaded files against the objects' CRC32C" },
              report = { type = "string", metavar = "FILE", help = "at the end, write an HTML run report to FILE" } },
    run = function(ctx)
      local src, dest = ctx.words[1], ctx.words[2]
      local st = ctx.client().storage
      local rec = ctx.flags.report and require("dicomgcs.report").recorder()
      -- with --report, every progress call also feeds the report's counters over time
      local function observed(show)
        if not rec then return show end
        return function(r, s, total)
          rec:sample({ success = s.ok, failure = s.failed, pending = total - s.ok - s.failed, bytes = s.bytes },
            s.ok + s.failed == total)
          return show(r, s, total)
        end
      end
      local function done(summary, verb, tail)
        if rec then
          local report = require "dicomgcs.report"
          ctx.write_report(ctx.flags.report, report.from_transfer(summary), { source = src, store = dest,
            history = rec.history, events = rec.events, started = rec.started, ended = require("dicomgcs.timestamp").now() })
        end
        return summarize(ctx, summary, verb, tail)
      end
      if src:sub(1, 5) ~= "gs://" and dest:sub(1, 5) == "gs://" then
        local localpath = require "dicomgcs.localpath"
        local info = core.stat(src)
        local is_dir = info and info.type == "directory"
        if is_dir and not ctx.flags.recursive then
          usage(src .. " is a folder: use -r to copy it")
        end
        local opts = { content_type = ctx.flags["content-type"], skip_same = ctx.flags["skip-same"] }
        local c = ctx.flags.checksum
        if c ~= nil then
          if c ~= "crc32c" and c ~= "md5" and c ~= "both" and c ~= "none" then usage("--checksum: use crc32c, md5, both or none") end
          opts.checksum = c ~= "none" and c or false
        end
        if ctx.flags["chunk-size"] then
          local n, unit = ctx.flags["chunk-size"]:match("^(%d+)([KkMm]?)$")
          local mult = ({ [""] = 1, k = 1024, K = 1024, m = 1048576, M = 1048576 })[unit or ""]
          n = n and math.tointeger(tonumber(n) * mult)
          if not n or n <= 0 or n % 262144 ~= 0 then usage("--chunk-size must be a multiple of 256 KiB, e.g. 256K or 8M") end
          opts.chunk_size = n
        end
        local files = must(localpath.files(src))
        local bucket, path = parse_gs(dest)
        -- gcloud's rule: into an existing folder (the bucket, a URI ending in '/', a prefix with
        -- objects under it) a folder keeps its own name; else its contents become the new prefix.
        local into = is_folder(st, bucket, path) or path:sub(-1) == "/"
        local base = path == "" and "" or (path:gsub("/*$", "/"))
        if is_dir then
          local name = leaf(src)
          dest = "gs://" .. bucket .. "/" .. base .. ((into and name) and (name .. "/") or "")
        elseif into then
          dest = "gs://" .. bucket .. "/" .. base
        end
        local bytes = 0
        for _, f in ipairs(files) do bytes = bytes + (f.size or 0) end
        local p = progress.transfer(io.stderr, #files, bytes)
        opts.on_progress = observed(p.on_progress)
        local summary = must(st:upload(src, dest, opts))
        return done(summary, "Uploaded", p.finish(summary))
      elseif src:sub(1, 5) == "gs://" and dest:sub(1, 5) ~= "gs://" then
        local bucket, path = parse_gs(src)
        local objects, serr, base = st:select(src)
        if not objects then
          if serr.http_status == 404 then is_folder(st, bucket, "") end
          fail(serr)
        end
        if #objects == 0 then
          is_folder(st, bucket, "")   -- a missing bucket says so
          fail("one or more URLs matched no objects: " .. src)
        end
        local is_prefix = not src:find("[*?]") and base == (path == "" and "" or (path:gsub("/*$", "/")))
        if is_prefix then
          if not ctx.flags.recursive then usage(src .. " is a prefix: use -r to copy everything under it") end
          local dinfo = core.stat(dest)
          if (dinfo and dinfo.type == "directory") or dest:sub(-1) == "/" then
            dest = dest:gsub("/+$", "") .. "/" .. (leaf(path) or bucket)
          end
        end
        local bytes = 0
        for _, o in ipairs(objects) do bytes = bytes + (tonumber(o.size) or 0) end
        local p = progress.transfer(io.stderr, #objects, bytes)
        local summary = must(st:download(src, dest, { verify = not ctx.flags["no-verify"], on_progress = observed(p.on_progress) }))
        return done(summary, "Downloaded", p.finish(summary))
      end
      usage("one of SRC and DEST must be a gs:// URI and the other a local path")
    end },
  { path = { "storage", "rm" }, usage = "storage rm [-r] [--dry-run] gs://BUCKET/OBJECT",
    summary = "delete objects", min_args = 1, max_args = 1,
    help = "Delete an object, or with -r every object under a prefix (or matching a wildcard).\n" ..
      "Run it with --dry-run first to see the list. Each delete is conditional on the generation\n" ..
      "listed, so an object rewritten meanwhile is kept.",
    flags = { recursive = { type = "boolean", short = "r", help = "delete everything under the prefix" },
              ["dry-run"] = { type = "boolean", help = "list what would be deleted, delete nothing" } },
    run = function(ctx)
      local uri, st = ctx.words[1], ctx.client().storage
      if not ctx.flags.recursive and not uri:find("[*?]") then
        if uri:sub(-1) == "/" then usage(uri .. " is a prefix: use -r to delete everything under it") end
        local obj = must(st:stat(uri))
        if ctx.flags["dry-run"] then ctx.out:write("would delete ", term.escape(uri), "\n"); return 0 end
        must(st:delete(uri))
        ctx.out:write("deleted ", term.escape("gs://" .. obj.bucket .. "/" .. obj.name), "\n")
        return 0
      end
      if not ctx.flags["dry-run"] then ctx.confirm("You are about to delete every object matching " .. uri .. ".") end
      local summary = must(st:delete_prefix(uri, { dry_run = ctx.flags["dry-run"] }))
      for _, r in ipairs(summary.results) do
        if r.dry_run then ctx.out:write("would delete ", term.escape(r.source), "\n")
        elseif r.ok then ctx.out:write("deleted ", term.escape(r.source), "\n")
        else io.stderr:write("ERROR: ", term.escape(tostring(r.err)), "\n") end
      end
      -- as gcloud storage rm: a URL that matches nothing is an error, not a quiet success
      if #summary.results == 0 then fail("one or more URLs matched no objects: " .. uri) end
      if summary.failed == 0 then return 0 end
      return summary.ok > 0 and 3 or 1
    end },
  { path = { "storage", "grant-service-agent" }, usage = "storage grant-service-agent gs://BUCKET --for=import|export [--project-level]",
    summary = "let the Healthcare service agent read (import) or write (export) a bucket", min_args = 1, max_args = 1,
    help = "Imports and exports run as the project's Cloud Healthcare Service Agent,\n" ..
      "service-PROJECT_NUMBER@gcp-sa-healthcare.iam.gserviceaccount.com. Grant it\n" ..
      "roles/storage.objectViewer (--for=import) or roles/storage.objectAdmin (--for=export) on the\n" ..
      "bucket (or, with --project-level, on the whole project, as Google's permissions page does), by a\n" ..
      "read-modify-write of the IAM policy. Nothing changes when it already has that access.\n" ..
      "--dry-run only checks (bucket policy, then project policy).",
    flags = { ["for"] = { type = "string", help = "import or export" },
              ["project-level"] = { type = "boolean", help = "grant on the project instead of the bucket" },
              ["dry-run"] = { type = "boolean", help = "only check; change nothing" } },
    run = function(ctx)
      local bucket = ctx.words[1]:match("^gs://([^/]+)/?$")
      if not bucket then usage("give the bucket as gs://BUCKET") end
      local purpose = ctx.flags["for"]
      if purpose ~= "import" and purpose ~= "export" then usage("--for=import or --for=export is required") end
      local st = ctx.client().storage
      if ctx.flags["dry-run"] then
        local access, err = st:service_agent_access(bucket, purpose)
        if not access then fail(err) end
        if access.granted then
          ctx.out:write(("the Cloud Healthcare Service Agent already has the access an %s needs (granted on the %s)\n")
            :format(purpose, access.where))
          return 0
        end
        ctx.out:write(require("dicomgcs.gcs.iam").access_warning(access, purpose), "\nwould run: ",
          ctx.flags["project-level"] and access.project_command or access.command, "\n")
        return 1
      end
      local policy, member, role = st:grant_service_agent(bucket, purpose, { project_level = ctx.flags["project-level"] })
      if not policy then fail(member) end
      if ctx.flags.format then return ctx.print(policy) end
      ctx.out:write(("%s has %s (or a role that includes it) on %s\n"):format(member, role,
        ctx.flags["project-level"] and ("project " .. ctx.client().project) or ("gs://" .. bucket)))
    end },
}
