--- Commands for Cloud Storage: buckets, ls, cp, rm.
-- @module dicomgcs.cli.storage

local function fail(err) error(err, 0) end
local function must(v, err) if v == nil then fail(err) end return v end

-- Print one line per failed item and return the exit code for a bulk summary.
local function summarize(ctx, summary, verb)
  for _, r in ipairs(summary.results) do
    if not r.ok then io.stderr:write("ERROR: ", tostring(r.err), "\n") end
  end
  if ctx.flags.format == "json" then
    local rows = {}
    for i, r in ipairs(summary.results) do
      rows[i] = { source = r.source, target = r.target, ok = r.ok, skipped = r.skipped or nil,
                  error = r.err and tostring(r.err) or nil }
    end
    ctx.print({ ok = summary.ok, failed = summary.failed, results = require("dicomgcs.json").array(rows) })
  else
    local skipped = (summary.skipped or 0) > 0 and (" (%d already there with the same checksum)"):format(summary.skipped) or ""
    io.stderr:write(("%s %d of %d file(s)%s; %d failed.\n"):format(verb, summary.ok, #summary.results, skipped, summary.failed))
  end
  if summary.failed == 0 then return 0 end
  return summary.ok > 0 and 3 or 1
end

return {
  { path = { "storage", "buckets", "create" }, usage = "storage buckets create gs://BUCKET --project=P",
    summary = "create a bucket", min_args = 1, max_args = 1, help = "Create a Cloud Storage bucket.",
    flags = { location = { type = "string", help = "bucket location, e.g. US" } },
    run = function(ctx)
      local name = ctx.words[1]:match("^gs://([^/]+)/?$")
      if not name then fail("give the bucket as gs://BUCKET") end
      ctx.print(must(ctx.client().storage:create_bucket(name)))
    end },
  { path = { "storage", "ls" }, usage = "storage ls gs://BUCKET/PATTERN",
    summary = "list the objects an import of that URI would read", min_args = 1, max_args = 1,
    help = "Print, one gs:// URI per line, exactly the objects the Healthcare import of this\n" ..
      "wildcard URI would read ('*', '?', '**' at the end). A URI without wildcards lists the\n" ..
      "objects under it as a prefix.",
    run = function(ctx)
      local uri = ctx.words[1]
      local st = ctx.client().storage
      local objects
      if uri:find("[*?]") then
        objects = must(st:match(uri))
      else
        local bucket, prefix = uri:match("^gs://([^/]+)/?(.*)$")
        if not bucket then fail("'" .. uri .. "' is not a gs:// URI") end
        objects = must(st:match("gs://" .. bucket .. "/" .. prefix .. "**"))
      end
      if ctx.flags.format then return ctx.print(require("dicomgcs.json").array(objects)) end
      for _, o in ipairs(objects) do ctx.out:write(o.uri, "\n") end
    end },
  { path = { "storage", "cp" }, usage = "storage cp [-r] SRC DEST",
    summary = "copy files to or from Cloud Storage", min_args = 2, max_args = 2,
    help = "Copy a local file or folder (-r) to a gs:// prefix, or objects under a gs:// prefix\n" ..
      "(or matching a wildcard) to a local folder. Uploads check CRC32C (or MD5) and skip objects\n" ..
      "already there with the same checksum; files of 8 MiB or more use resumable uploads that\n" ..
      "survive dropped connections; objects of 64 MiB or more download in parallel ranges.",
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
      local on_progress = rec and function(_, s, total)
        rec:sample({ success = s.ok, failure = s.failed, pending = total - s.ok - s.failed, bytes = s.bytes },
          s.ok + s.failed == total)
      end
      local function done(summary, verb)
        if rec then
          local report = require "dicomgcs.report"
          ctx.write_report(ctx.flags.report, report.from_transfer(summary), { source = src, store = dest,
            history = rec.history, events = rec.events, started = rec.started, ended = require("dicomgcs.timestamp").now() })
        end
        return summarize(ctx, summary, verb)
      end
      if src:sub(1, 5) ~= "gs://" and dest:sub(1, 5) == "gs://" then
        local core = require "dicomgcs.core"
        local info = core.stat(src)
        if info and info.type == "directory" and not ctx.flags.recursive then
          fail(src .. " is a folder: use -r to copy it")
        end
        local opts = { content_type = ctx.flags["content-type"], skip_same = ctx.flags["skip-same"], on_progress = on_progress }
        local c = ctx.flags.checksum
        if c ~= nil then
          if c ~= "crc32c" and c ~= "md5" and c ~= "both" and c ~= "none" then fail("--checksum: use crc32c, md5, both or none") end
          opts.checksum = c ~= "none" and c or false
        end
        if ctx.flags["chunk-size"] then
          local n, unit = ctx.flags["chunk-size"]:match("^(%d+)([KkMm]?)$")
          local mult = ({ [""] = 1, k = 1024, K = 1024, m = 1048576, M = 1048576 })[unit or ""]
          n = n and math.tointeger(tonumber(n) * mult)
          if not n or n <= 0 or n % 262144 ~= 0 then fail("--chunk-size must be a multiple of 256 KiB, e.g. 256K or 8M") end
          opts.chunk_size = n
        end
        return done(must(st:upload(src, dest, opts)), "Uploaded")
      elseif src:sub(1, 5) == "gs://" and dest:sub(1, 5) ~= "gs://" then
        return done(must(st:download(src, dest, { verify = not ctx.flags["no-verify"], on_progress = on_progress })), "Downloaded")
      end
      fail("one of SRC and DEST must be a gs:// URI and the other a local path")
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
        if uri:sub(-1) == "/" then fail(uri .. " is a prefix: use -r to delete everything under it") end
        local obj = must(st:stat(uri))
        if ctx.flags["dry-run"] then ctx.out:write("would delete ", uri, "\n"); return 0 end
        must(st:delete(uri))
        ctx.out:write("deleted ", "gs://" .. obj.bucket .. "/" .. obj.name, "\n")
        return 0
      end
      local summary = must(st:delete_prefix(uri, { dry_run = ctx.flags["dry-run"] }))
      for _, r in ipairs(summary.results) do
        if r.dry_run then ctx.out:write("would delete ", r.source, "\n")
        elseif r.ok then ctx.out:write("deleted ", r.source, "\n")
        else io.stderr:write("ERROR: ", tostring(r.err), "\n") end
      end
      if #summary.results == 0 then io.stderr:write("Nothing matches ", uri, ".\n") end
      if summary.failed == 0 then return 0 end
      return summary.ok > 0 and 3 or 1
    end },
  { path = { "storage", "grant-service-agent" }, usage = "storage grant-service-agent gs://BUCKET --for=import|export",
    summary = "let the Healthcare service agent read (import) or write (export) a bucket", min_args = 1, max_args = 1,
    help = "Imports and exports run as the project's Cloud Healthcare Service Agent,\n" ..
      "service-PROJECT_NUMBER@gcp-sa-healthcare.iam.gserviceaccount.com. Grant it\n" ..
      "roles/storage.objectViewer (--for=import) or roles/storage.objectAdmin (--for=export) on the\n" ..
      "bucket, by a read-modify-write of the bucket's IAM policy. Nothing changes when it already has\n" ..
      "a role that covers it. --dry-run only checks.",
    flags = { ["for"] = { type = "string", help = "import or export" },
              ["dry-run"] = { type = "boolean", help = "only check; change nothing" } },
    run = function(ctx)
      local bucket = ctx.words[1]:match("^gs://([^/]+)/?$")
      if not bucket then fail("give the bucket as gs://BUCKET") end
      local purpose = ctx.flags["for"]
      if purpose ~= "import" and purpose ~= "export" then fail("--for=import or --for=export is required") end
      local st = ctx.client().storage
      if ctx.flags["dry-run"] then
        local ok, err = st:check_service_agent(bucket, purpose)
        if not ok then
          if err.kind ~= "permission" then fail(err) end
          ctx.out:write(err.message, "\nwould run: ", err.command, "\n")
          return 1
        end
        ctx.out:write(err or "the Cloud Healthcare Service Agent already has the access an " .. purpose .. " needs", "\n")
        return 0
      end
      local policy, member, role = st:grant_service_agent(bucket, purpose)
      if not policy then fail(member) end
      if ctx.flags.format then return ctx.print(policy) end
      ctx.out:write(("%s has %s (or a role that includes it) on gs://%s\n"):format(member, role, bucket))
    end },
}
