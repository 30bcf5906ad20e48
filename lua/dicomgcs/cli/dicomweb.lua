--- Commands for DICOMweb: store (STOW-RS), retrieve (WADO-RS), search (QIDO-RS), delete.
-- They target the store given by --dicom-store/--dataset/--location, or any DICOMweb server
-- with --dicomweb-url=URL.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.cli.dicomweb
-- @local
local core = require "dicomgcs.core"
local json = require "dicomgcs.json"
local progress = require "dicomgcs.cli.progress"
local term = require "dicomgcs.cli.term"
local common = require "dicomgcs.cli.common"
local must, usage = common.must, common.usage

local target_flags = {
  ["dicom-store"] = { type = "string", metavar = "STORE", help = "DICOM store id (with --dataset and --location)" },
  ["dicomweb-url"] = { type = "string", metavar = "URL", help = "any DICOMweb server's base URL instead (no auth)" },
}

local function with_flags(extra)
  local t = {}
  for k, v in pairs(target_flags) do t[k] = v end
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

local function open(ctx)
  local url = ctx.flags["dicomweb-url"]
  if url then
    if not url:match("^https?://[^/]+") then usage("--dicomweb-url must be an http:// or https:// URL") end
    return require("dicomgcs.dicomweb").new{ base_url = url,
      concurrency = common.integer(ctx.flags, "concurrency") }
  end
  if not ctx.flags["dicom-store"] then usage("give --dicom-store=STORE (with --dataset, --location) or --dicomweb-url=URL") end
  return must(ctx.client():dicomweb{ dicom_store = ctx.flags["dicom-store"] })
end

local function positive(ctx, name) return common.integer(ctx.flags, name) end

-- "studies/S[/series/SE[/instances/I]]" → { study=, series=, instance= }
local function resource(s)
  local parts = {}
  for seg in s:gsub("^/+", ""):gsub("/+$", ""):gmatch("[^/]+") do parts[#parts + 1] = seg end
  local o, keys = {}, { studies = "study", series = "series", instances = "instance" }
  local order = { "studies", "series", "instances" }
  if #parts == 0 or #parts % 2 ~= 0 or #parts > 6 then
    usage(("'%s': give studies/UID[/series/UID[/instances/UID]]"):format(s))
  end
  for i = 1, #parts, 2 do
    if parts[i] ~= order[(i + 1) / 2] then
      usage(("'%s': expected '%s' at part %d; give studies/UID[/series/UID[/instances/UID]]"):format(s, order[(i + 1) / 2], i))
    end
    o[keys[parts[i]]] = parts[i + 1]
  end
  return o
end

local function status_line(p, meter)
  local fraction = p.bytes_total > 0 and p.bytes_done / p.bytes_total or (p.files_total > 0 and p.files_done / p.files_total or 1)
  local rate, eta = meter.rate(), meter.eta(p.bytes_total - p.bytes_done)
  return ("%s %3d%%  %d/%d files, %s/%s  %s  %s — %d stored, %d already present, %d failed"):format(
    progress.bar(fraction), math.floor(100 * fraction), p.files_done, p.files_total, progress.bytes(p.bytes_done),
    progress.bytes(p.bytes_total), rate and (progress.bytes(rate) .. "/s") or "--/s",
    eta and ("ETA " .. progress.duration(eta)) or "ETA --", p.stored or 0, p.already_present or 0, p.failed or 0) ..
    progress.throttle_note(p.throttled)
end

return {
  { path = { "dicomweb", "store" }, usage = "dicomweb store PATH... --dicom-store=S --dataset=D --location=L",
    summary = "store DICOM files and folders (STOW-RS)", min_args = 1,
    help = "Store DICOM files, and every file under folders (recursively), with STOW-RS: one\n" ..
      "application/dicom request per file, or multipart/related batches of --batch files, with\n" ..
      "--concurrency requests in flight. Non-DICOM files are reported and skipped; the rest go on.\n" ..
      "--format=json prints every file's outcome. Exit 0 all stored (or already present), 3 some\n" ..
      "failed, 1 none stored.",
    flags = with_flags{
      concurrency = { type = "string", metavar = "N", help = "requests in flight (default: adaptive, 16-128)" },
      batch = { type = "string", metavar = "N", help = "files per multipart request (default 1: single-part)" },
      study = { type = "string", metavar = "UID", help = "post to /studies/UID (every file must belong to it)" },
      report = { type = "string", metavar = "FILE", help = "at the end, write an HTML run report to FILE" },
    },
    run = function(ctx)
      local concurrency, batch = positive(ctx, "concurrency"), positive(ctx, "batch")
      local dw = open(ctx)
      local tty = core.isatty(2)
      local last, throttled = 0, false
      local meter = progress.meter()
      meter.observe(0)
      local rec = ctx.flags.report and require("dicomgcs.report").recorder()
      local summary = must(dw:store(ctx.words, {
        concurrency = concurrency, batch = batch, study = ctx.flags.study,
        on_progress = function(p)
          if rec then
            rec:sample({ success = p.stored + p.already_present, failure = p.failed,
              pending = p.files_total - p.files_done, bytes = p.bytes_done }, p.files_done == p.files_total)
          end
          local now = core.monotime()
          meter.observe(p.bytes_done, now)
          local r = p.result
          if r and r.status == "failed" then
            if tty then io.stderr:write("\r\27[K") end
            local reason = tostring(r.reason)
            if not reason:find(r.path, 1, true) then reason = r.path .. ": " .. reason end
            io.stderr:write("ERROR: ", term.escape(reason), "\n")
          end
          if tty and (now - last > 0.2 or p.files_done == p.files_total) then
            last = now
            io.stderr:write("\r\27[K", status_line(p, meter))
          elseif not tty and p.throttled and not throttled then   -- once per throttled spell
            io.stderr:write(status_line(p, meter), "\n")
          end
          throttled = p.throttled ~= nil
        end }))
      if tty then io.stderr:write("\n") end
      if rec then
        ctx.write_report(ctx.flags.report, require("dicomgcs.report").from_stow(summary), { source = table.concat(ctx.words, " "),
          store = ctx.flags["dicomweb-url"] or ctx.flags["dicom-store"], history = rec.history, events = rec.events,
          started = rec.started, ended = require("dicomgcs.timestamp").now() })
      end
      if ctx.flags.format then
        local rows = {}
        for i, r in ipairs(summary.results) do
          rows[i] = { path = r.path, status = r.status, sop_instance_uid = r.sop_instance_uid,
            study_instance_uid = r.study_instance_uid, reason = r.reason, http_status = r.http_status,
            failure_reason = r.failure_reason }
        end
        ctx.print({ total = summary.total, stored = summary.stored, already_present = summary.already_present,
          failed = summary.failed, bytes = summary.bytes, seconds = summary.seconds, results = json.array(rows) })
      end
      io.stderr:write(("Stored %d of %d file(s) (%d already present), %d failed, in %.1fs.\n"):format(
        summary.stored, summary.total, summary.already_present, summary.failed, summary.seconds or 0))
      if summary.failed == 0 then return 0 end
      return (summary.stored + summary.already_present) > 0 and 3 or 1
    end },

  { path = { "dicomweb", "retrieve" },
    usage = "dicomweb retrieve studies/UID[/series/UID[/instances/UID]] --dest=DIR --dicom-store=S",
    summary = "retrieve a study, series or instance (WADO-RS)", min_args = 1, max_args = 1,
    help = "Write each instance as DIR/STUDY/SERIES/SOP.dcm (names checked: UIDs only, never outside\n" ..
      "DIR). --metadata prints the DICOM JSON instead; --rendered=jpeg|png writes the rendered\n" ..
      "image of an instance to --dest (a file).",
    flags = with_flags{
      dest = { type = "string", metavar = "DIR", help = "destination folder (or file for --rendered)" },
      ["transfer-syntax"] = { type = "string", metavar = "UID", help = "transfer syntax to ask for (default *: as stored)" },
      flat = { type = "boolean", help = "write DIR/SOP.dcm instead of DIR/STUDY/SERIES/SOP.dcm" },
      metadata = { type = "boolean", help = "print the metadata (application/dicom+json)" },
      rendered = { type = "string", metavar = "FORMAT", help = "jpeg or png: render an instance" },
    },
    run = function(ctx)
      local o = resource(ctx.words[1])
      if ctx.flags.rendered and ctx.flags.rendered ~= "jpeg" and ctx.flags.rendered ~= "png" then
        usage("--rendered must be jpeg or png")
      end
      if (ctx.flags.rendered or not ctx.flags.metadata) and not ctx.flags.dest then
        usage(ctx.flags.rendered and "--rendered needs --dest=FILE" or "--dest=DIR is required")
      end
      local dw = open(ctx)
      if ctx.flags.metadata then
        return ctx.print(json.array(must(dw:metadata(o))))
      end
      if ctx.flags.rendered then
        o.format, o.output_file = ctx.flags.rendered, ctx.flags.dest
        must(dw:rendered(o))
        io.stderr:write("Wrote ", ctx.flags.dest, "\n")
        return 0
      end
      o.dest, o.transfer_syntax = ctx.flags.dest, ctx.flags["transfer-syntax"]
      o.layout = ctx.flags.flat and "flat" or nil
      local s = must(dw:retrieve(o))
      for _, r in ipairs(s.results) do
        if r.status == "failed" then io.stderr:write("ERROR: ", term.escape(tostring(r.err)), "\n") end
      end
      if s.err then io.stderr:write("ERROR: ", term.escape(tostring(s.err)), "\n") end
      if ctx.flags.format then
        local rows = {}
        for i, r in ipairs(s.results) do
          rows[i] = { path = r.path, status = r.status, sop_instance_uid = r.sop_instance_uid, size = r.size,
            error = r.err and tostring(r.err) or nil }
        end
        ctx.print({ instances = s.instances, failed = s.failed, bytes = s.bytes, seconds = s.seconds,
          results = json.array(rows) })
      end
      io.stderr:write(("Retrieved %d instance(s), %.1f MiB, in %.1fs%s.\n"):format(s.instances, s.bytes / 1048576,
        s.seconds or 0, s.failed > 0 and (", " .. s.failed .. " failed") or ""))
      if s.failed == 0 and not s.err then return 0 end
      return s.instances > 0 and 3 or 1
    end },

  { path = { "dicomweb", "search" },
    usage = "dicomweb search studies|series|instances [--query=KEY=VALUE]... --dicom-store=S",
    summary = "search studies, series or instances (QIDO-RS)", min_args = 1, max_args = 1,
    formats = { json = true, ["json-compact"] = true, yaml = true, table = true },
    choices = { "studies", "series", "instances" },
    help = "Search with QIDO-RS, following every page. --query=PatientName=DOE* (keywords or tags;\n" ..
      "repeatable), --include-field=KEYWORD (repeatable, or all), --limit=N results at most,\n" ..
      "--study=UID / --series=UID to search inside one.",
    flags = with_flags{
      query = { type = "list", metavar = "KEY=VALUE", help = "attribute match (repeatable)" },
      filter = { type = "list", moved = "QIDO match keys are --query KEY=VALUE (repeatable); " ..
        "--filter is gcloud's output filter, on list commands only" },
      ["include-field"] = { type = "list", metavar = "FIELD", help = "extra attribute to return (repeatable)" },
      limit = { type = "string", metavar = "N", help = "at most N results" },
      ["page-size"] = { type = "string", metavar = "N", help = "results per request" },
      study = { type = "string", metavar = "UID", help = "search series/instances in this study" },
      series = { type = "string", metavar = "UID", help = "search instances in this series" },
    },
    run = function(ctx)
      local level = ctx.words[1]
      if level ~= "studies" and level ~= "series" and level ~= "instances" then
        usage(("search what? give studies, series or instances, not '%s'"):format(level))
      end
      local filters = {}
      for _, f in ipairs(ctx.flags.query or {}) do
        local k, v = f:match("^([^=]+)=(.*)$")
        if not k then usage(("--query=%s: give KEY=VALUE"):format(f)) end
        filters[k] = v
      end
      local limit, page_size = positive(ctx, "limit"), positive(ctx, "page-size")
      local dw = open(ctx)
      local list = must(dw:search_all(level, { filters = filters, include_fields = ctx.flags["include-field"],
        limit = limit, page_size = page_size,
        study = ctx.flags.study, series = ctx.flags.series }))
      local v = require("dicomgcs.dicomweb").value
      local columns = {
        studies = {
          { title = "STUDY_UID", get = function(x) return v(x, "StudyInstanceUID") end },
          { title = "PATIENT_ID", get = function(x) return v(x, "PatientID") end },
          { title = "PATIENT_NAME", get = function(x) return v(x, "PatientName") end },
          { title = "DATE", get = function(x) return v(x, "StudyDate") end },
          { title = "INSTANCES", get = function(x) return v(x, "NumberOfStudyRelatedInstances") end },
        },
        series = {
          { title = "SERIES_UID", get = function(x) return v(x, "SeriesInstanceUID") end },
          { title = "MODALITY", get = function(x) return v(x, "Modality") end },
          { title = "NUMBER", get = function(x) return v(x, "SeriesNumber") end },
          { title = "INSTANCES", get = function(x) return v(x, "NumberOfSeriesRelatedInstances") end },
        },
        instances = {
          { title = "SOP_INSTANCE_UID", get = function(x) return v(x, "SOPInstanceUID") end },
          { title = "NUMBER", get = function(x) return v(x, "InstanceNumber") end },
          { title = "SOP_CLASS_UID", get = function(x) return v(x, "SOPClassUID") end },
        },
      }
      local fmt = ctx.flags.format and ctx.format.name
      if fmt == "table" or not fmt then
        ctx.out:write(require("dicomgcs.cli.output").render(list, ctx.format.columns and ctx.format or "table",
          columns[level]), "\n")
      else
        ctx.print(json.array(list))
      end
      return 0
    end },

  { path = { "dicomweb", "delete" },
    usage = "dicomweb delete studies/UID[/series/UID[/instances/UID]] --dicom-store=S",
    summary = "delete a study, series or instance", min_args = 1, max_args = 1,
    help = "Delete a study, series or instance. On the Healthcare API a study or series delete is\n" ..
      "a long-running operation: waited for unless --async (then its name is printed).",
    flags = with_flags{ async = { type = "boolean", help = "print the operation name and return at once" } },
    run = function(ctx)
      local dw = open(ctx)
      local o = resource(ctx.words[1])
      o.wait = not ctx.flags.async
      local r = must(dw:delete(o))
      if type(r) == "table" and r.name then
        if ctx.flags.format then ctx.print(r.raw) else ctx.out:write(term.escape(r.name), "\n") end
      end
      io.stderr:write("Deleted ", ctx.words[1], ctx.flags.async and type(r) == "table" and " (operation started)" or "", ".\n")
      return 0
    end },
}
