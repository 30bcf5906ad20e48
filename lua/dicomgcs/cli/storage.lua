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
      rows[i] = { source = r.source, target = r.target, ok = r.ok, error = r.err and tostring(r.err) or nil }
    end
    ctx.print({ ok = summary.ok, failed = summary.failed, results = require("dicomgcs.json").array(rows) })
  else
    io.stderr:write(("%s %d of %d file(s); %d failed.\n"):format(verb, summary.ok, #summary.results, summary.failed))
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
      "(or matching a wildcard) to a local folder.",
    flags = { recursive = { type = "boolean", short = "r", help = "copy folders / prefixes recursively" } },
    run = function(ctx)
      local src, dest = ctx.words[1], ctx.words[2]
      local st = ctx.client().storage
      if src:sub(1, 5) ~= "gs://" and dest:sub(1, 5) == "gs://" then
        local core = require "dicomgcs.core"
        local info = core.stat(src)
        if info and info.type == "directory" and not ctx.flags.recursive then
          fail(src .. " is a folder: use -r to copy it")
        end
        return summarize(ctx, must(st:upload(src, dest)), "Uploaded")
      elseif src:sub(1, 5) == "gs://" and dest:sub(1, 5) ~= "gs://" then
        return summarize(ctx, must(st:download(src, dest)), "Downloaded")
      end
      fail("one of SRC and DEST must be a gs:// URI and the other a local path")
    end },
  { path = { "storage", "rm" }, usage = "storage rm [-r] gs://BUCKET/OBJECT",
    summary = "delete objects", min_args = 1, max_args = 1,
    help = "Delete an object, or with -r every object under a prefix (or matching a wildcard).",
    flags = { recursive = { type = "boolean", short = "r", help = "delete everything under the prefix" },
              ["dry-run"] = { type = "boolean", help = "list what would be deleted, delete nothing" } },
    run = function(ctx)
      local uri, st = ctx.words[1], ctx.client().storage
      local targets = {}
      if ctx.flags.recursive or uri:find("[*?]") then
        local pattern = uri:find("[*?]") and uri or (uri:gsub("/*$", "/") .. "**")
        for _, o in ipairs(must(st:match(pattern))) do targets[#targets + 1] = o.uri end
      else
        targets[1] = uri
      end
      local failed = 0
      for _, t in ipairs(targets) do
        if ctx.flags["dry-run"] then
          ctx.out:write("would delete ", t, "\n")
        else
          local ok, err = st:delete(t)
          if ok then ctx.out:write("deleted ", t, "\n")
          else failed = failed + 1; io.stderr:write("ERROR: ", tostring(err), "\n") end
        end
      end
      if failed == 0 then return 0 end
      return failed < #targets and 3 or 1
    end },
}
