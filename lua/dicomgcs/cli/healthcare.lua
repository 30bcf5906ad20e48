--- Commands for datasets, DICOM stores, import/export and operations.
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.cli.healthcare
-- @local

local errors = require "dicomgcs.errors"
local term = require "dicomgcs.cli.term"
local common = require "dicomgcs.cli.common"
local json = require "dicomgcs.json"
local must, usage, poll_interval = common.must, common.usage, common.poll_interval
local watch_flags = require("dicomgcs.cli.watch").flags

local async_flag = { type = "boolean", help = "return the operation name at once instead of waiting" }
local skip_permission_flag = { type = "boolean",
  help = "do not read the bucket's and project's IAM policies before starting (no service agent warning)" }
local logs_wait_flag = { type = "string", metavar = "SECONDS",
  help = "how long to keep reading Cloud Logging while it lags behind the failure counter (default 120)" }
local timeout_flag = { type = "string", metavar = "SECONDS", help = "stop waiting after this long (the operation goes on)" }

-- Ctrl-C, also when lua.c's hook fired inside a callback of the engine (kind "callback")
local function is_interrupt(e)
  return errors.is_interrupt(e) or
    (errors.is(e) and e.kind == "callback" and tostring(e.message):match("interrupted!$") ~= nil)
end

-- Ctrl-C stops the waiting, not the operation: say so and how to wait again (exit 130).
local function interrupted(op)
  local name = term.escape(op.name)
  io.stderr:write("\nInterrupted. Operation ", name, " goes on in the server; wait on it again with:\n",
    "  dicomgcs operations wait ", name, "\n")
  return 130
end

local function timeout_seconds(ctx)
  local t = ctx.flags.timeout
  if t == nil then return nil end
  local n = tonumber(t)
  if not n or n <= 0 or n ~= n or n == math.huge then
    usage(("--timeout needs a positive number of seconds, got '%s'"):format(t))
  end
  return n
end

-- Wait for an operation with a progress line; print it; map the outcome to an exit code:
-- 0 done, 3 done with some files failed, 1 failed as a whole (or not waited to the end).
-- op:wait may hand back an operation some files failed in (partial failure is a result) or
-- nil, err: both end here the same way.
local function wait_and_report(ctx, op)
  local timeout = timeout_seconds(ctx)
  local progress = ctx.progress()
  local ok, done, err = pcall(op.wait, op, { on_progress = progress.report, timeout = timeout,
                                             interval = poll_interval() })
  progress.finish()
  if not ok then
    if is_interrupt(done) then return interrupted(op) end
    error(done, 0)
  end
  if not done and is_interrupt(err) then return interrupted(op) end
  local final = done or (err and err.operation)
  if final then ctx.print(final.raw) end
  if done and done.counter.failure == 0 and not done.error then return 0 end
  if done then
    err = done:failure() or errors.new{ kind = "operation", operation = done,
      message = ("operation %s finished with %d failed file(s) of %d"):format(done.name, done.counter.failure,
        done.counter.success + done.counter.failure),
      hint_cli = "list them: dicomgcs operations failures " .. done:cli_ref() }
  end
  io.stderr:write("ERROR: ", term.escape(tostring(err)), "\n")
  if err.kind == "operation" and final.counter.success > 0 then return 3 end
  return 1
end

local function start_operation(ctx, op)
  if ctx.flags.async then
    if ctx.flags.format then ctx.print(op.raw) else ctx.out:write(op.name, "\n") end
    io.stderr:write("Started operation ", op.name, "; wait on it with: dicomgcs operations wait ", op.name, "\n")
    return 0
  end
  return wait_and_report(ctx, op)
end

local dataset_columns = {
  { title = "ID", get = function(d) return d.name:match("([^/]+)$") end },
  { title = "LOCATION", get = function(d) return d.name:match("locations/([^/]+)") end },
  { title = "TIMEZONE", get = function(d) return d.timeZone end },
}

local store_columns = {
  { title = "ID", get = function(s) return s.name:match("([^/]+)$") end },
  { title = "DATASET", get = function(s) return s.name:match("datasets/([^/]+)") end },
}

-- over the operation's JSON (what --format=json prints), so projections and filters see the same
local op_columns = {
  { title = "ID", get = function(o) return (o.name or ""):match("([^/]+)$") end },
  { title = "METHOD", get = function(o) return ((o.metadata or {}).apiMethodName or ""):match("([^.]+)$") end },
  { title = "DONE", get = function(o) return tostring(o.done == true) end },
  { title = "SUCCESS", get = function(o) return ((o.metadata or {}).counter or {}).success or 0 end },
  { title = "FAILURE", get = function(o) return ((o.metadata or {}).counter or {}).failure or 0 end },
}

local function delete_prompt(ctx, what, name)
  ctx.confirm(("You are about to delete %s [%s]%s."):format(what, name,
    what == "dataset" and ", with every DICOM store and instance in it" or ", with every instance in it"))
end

-- The QIDO match keys of repeated --query KEY=VALUE flags, or nil.
local function query_pairs(list)
  local filters
  for _, kv in ipairs(list or {}) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    if not k then usage("--query=" .. kv .. ": write it as KEY=VALUE, e.g. --query=PatientID=P1") end
    filters = filters or {}
    filters[k] = v
  end
  return filters
end
local moved_filter = { type = "list", moved = "QIDO match keys are --query KEY=VALUE (repeatable); " ..
  "--filter is gcloud's output filter, on list commands only" }

return {
  { path = { "datasets", "create" }, usage = "datasets create DATASET --location=L",
    summary = "create a dataset", min_args = 1, max_args = 1, resource = "dataset",
    help = "Create a Healthcare dataset and wait until it exists.",
    flags = { ["time-zone"] = { type = "string", help = "default time zone, e.g. UTC" } },
    run = function(ctx)
      ctx.print(must(ctx.client():create_dataset{ dataset = ctx.words[1], time_zone = ctx.flags["time-zone"] }))
    end },
  { path = { "datasets", "describe" }, usage = "datasets describe DATASET --location=L",
    summary = "show a dataset", min_args = 1, max_args = 1, resource = "dataset", help = "Show a dataset.",
    run = function(ctx) ctx.print(must(ctx.client():get_dataset{ dataset = ctx.words[1] })) end },
  { path = { "datasets", "list" }, usage = "datasets list --location=L", summary = "list datasets",
    max_args = 0, help = "List the datasets of a location.", list = true, columns = dataset_columns,
    run = function(ctx)
      ctx.print(require("dicomgcs.cli").shape_list(ctx, must(ctx.client():list_datasets{
        page_size = common.integer(ctx.flags, "page-size") })))
    end },
  { path = { "datasets", "delete" }, usage = "datasets delete DATASET --location=L",
    summary = "delete a dataset and all it holds", min_args = 1, max_args = 1, resource = "dataset",
    help = "Delete a dataset, with every store and instance in it. Asks first on a terminal\n" ..
      "(--quiet does not ask; neither does a run that is not on a terminal, as gcloud).",
    run = function(ctx)
      delete_prompt(ctx, "dataset", ctx.words[1])
      must(ctx.client():delete_dataset{ dataset = ctx.words[1] })
      io.stderr:write("Deleted dataset [", ctx.words[1], "].\n")
    end },

  { path = { "dicom-stores", "create" }, usage = "dicom-stores create STORE --dataset=D --location=L",
    summary = "create a DICOM store", min_args = 1, max_args = 1, resource = "dicom_store", help = "Create a DICOM store.",
    run = function(ctx) ctx.print(must(ctx.client():create_dicom_store{ dicom_store = ctx.words[1] })) end },
  { path = { "dicom-stores", "describe" }, usage = "dicom-stores describe STORE --dataset=D --location=L",
    summary = "show a DICOM store", min_args = 1, max_args = 1, resource = "dicom_store", help = "Show a DICOM store.",
    run = function(ctx) ctx.print(must(ctx.client():get_dicom_store{ dicom_store = ctx.words[1] })) end },
  { path = { "dicom-stores", "list" }, usage = "dicom-stores list --dataset=D --location=L",
    summary = "list DICOM stores", max_args = 0, help = "List the DICOM stores of a dataset.",
    list = true, columns = store_columns,
    run = function(ctx)
      ctx.print(require("dicomgcs.cli").shape_list(ctx, must(ctx.client():list_dicom_stores{
        page_size = common.integer(ctx.flags, "page-size") })))
    end },
  { path = { "dicom-stores", "delete" }, usage = "dicom-stores delete STORE --dataset=D --location=L",
    summary = "delete a DICOM store", min_args = 1, max_args = 1, resource = "dicom_store",
    help = "Delete a DICOM store and its instances. Asks first on a terminal (--quiet does not ask).",
    run = function(ctx)
      delete_prompt(ctx, "DICOM store", ctx.words[1])
      must(ctx.client():delete_dicom_store{ dicom_store = ctx.words[1] })
      io.stderr:write("Deleted dicomStore [", ctx.words[1], "].\n")
    end },
  { path = { "dicom-stores", "import", "gcs" },
    usage = "dicom-stores import gcs STORE --gcs-uri=gs://B/P --dataset=D --location=L",
    summary = "import DICOM files from Cloud Storage", min_args = 1, max_args = 1, resource = "dicom_store",
    help = "Import the objects a gs:// wildcard selects ('*', '?', and '**' at the end) and wait,\n" ..
      "showing the counters, unless --async.",
    flags = { ["gcs-uri"] = { type = "string", metavar = "URI", help = "gs://BUCKET/PATTERN to import" },
              async = async_flag, timeout = timeout_flag,
              plan = { type = "boolean", help = "show how the import would be split (one import per sub-folder) and stop" },
              partition = { type = "boolean", help = "run the plan: one import per sub-folder, --max-in-flight at a time" },
              ["max-in-flight"] = { type = "string", metavar = "K", help = "operations at a time: --partition (default 3), --watch (1)" },
              manifest = { type = "string", metavar = "FILE", help = "with --partition or --watch: JSON Lines state file; re-run to resume" },
              ["skip-permission-check"] = skip_permission_flag,
              report = { type = "string", metavar = "FILE", help = "at the end (with --watch: as batches finish), write an HTML run report to FILE" },
              watch = watch_flags.watch, every = watch_flags.every, ["move-to"] = watch_flags["move-to"],
              ["batch-size"] = watch_flags["batch-size"], ["batch-uri"] = watch_flags["batch-uri"], rounds = watch_flags.rounds },
    run = function(ctx)
      local uri = ctx.flags["gcs-uri"]
      if not uri then usage("--gcs-uri is required, e.g. --gcs-uri='gs://BUCKET/DIR/**.dcm'") end
      if ctx.flags.watch then return require("dicomgcs.cli.watch").run(ctx, uri) end
      if ctx.flags.plan and ctx.flags.partition then usage("--plan and --partition: give one of them") end
      local max_in_flight = common.integer(ctx.flags, "max-in-flight")
      if ctx.flags.manifest and not ctx.flags.partition then usage("--manifest goes with --partition") end
      local c = ctx.client()
      if ctx.flags.plan or ctx.flags.partition then
        local planner = require "dicomgcs.plan"
        local p = must(planner.imports(c.storage, uri, { min_files = ctx.flags.partition and 1 or nil }))
        io.stderr:write(planner.describe(p), "\n")
        if ctx.flags.plan then return 0 end
        local q = must(require("dicomgcs.queue").new{ client = c, manifest = ctx.flags.manifest,
          max_in_flight = max_in_flight or 3, interval = poll_interval() })
        for i, imp in ipairs(p.imports) do
          q:add{ key = ("%02d %s"):format(i, imp.uri), kind = "import", uri = imp.uri, dicom_store = ctx.words[1] }
        end
        local summary = q:run()
        local t = summary.totals
        if ctx.flags.report then
          local failed_files = {}
          for _, j in ipairs(summary.jobs) do
            if j.operation and j.counter and j.counter.failure > 0 then
              local found = c:failures(must(c:operation(j.operation)))
              failed_files[j.key] = found and found.failures or nil
            end
          end
          ctx.write_report(ctx.flags.report, require("dicomgcs.report").from_queue(summary, failed_files),
            { source = uri, store = ctx.words[1] })
        end
        if ctx.flags.format then ctx.print(summary.jobs) end
        io.stderr:write(("%d import(s): %d done, %d failed; %d files imported, %d failed.\n"):format(
          t.jobs, t.done, t.failed, t.success, t.failure))
        if t.failed == 0 and t.failure == 0 then return 0 end
        return t.success > 0 and 3 or 1
      end
      local op = must(c:import{ dicom_store = ctx.words[1], uri = uri,
        check_permissions = not ctx.flags["skip-permission-check"] })
      if not ctx.flags.report or ctx.flags.async then return start_operation(ctx, op) end
      local code = start_operation(ctx, op)
      local report = require "dicomgcs.report"
      local r = must(c:import_report(op, uri, { dicom_store = ctx.words[1] }))
      ctx.write_report(ctx.flags.report, report.from_operation(r, op), { kind = "import", source = uri, store = ctx.words[1] })
      return code
    end },
  { path = { "dicom-stores", "export", "gcs" },
    usage = "dicom-stores export gcs STORE --gcs-uri-prefix=gs://B/DIR/ --dataset=D --location=L",
    summary = "export a DICOM store to Cloud Storage", min_args = 1, max_args = 1, resource = "dicom_store",
    help = "Export every instance of the store under the prefix and wait, unless --async.",
    flags = { ["gcs-uri-prefix"] = { type = "string", metavar = "URI", help = "gs://BUCKET/DIR/ to write to" },
              ["mime-type"] = { type = "string", help = "application/dicom (default), application/octet-stream, image/jpeg, image/png" },
              ["transfer-syntax"] = { type = "string", metavar = "UID", help = "transfer syntax UID, or * for as stored" },
              study = { type = "list", metavar = "UID", help = "export only this study (repeatable; v1beta1 filterConfig)" },
              query = { type = "list", metavar = "KEY=VALUE", help = "export only the studies a QIDO search with these matches finds (repeatable)" },
              filter = moved_filter,
              async = async_flag, timeout = timeout_flag, ["skip-permission-check"] = skip_permission_flag },
    run = function(ctx)
      if not ctx.flags["gcs-uri-prefix"] then usage("--gcs-uri-prefix is required, e.g. --gcs-uri-prefix=gs://BUCKET/export/") end
      if ctx.flags.study or ctx.flags.query then
        local filters = query_pairs(ctx.flags.query)
        local progress = ctx.progress()
        local r = must(ctx.client():export_cohort{ dicom_store = ctx.words[1], uri_prefix = ctx.flags["gcs-uri-prefix"],
          mime_type = ctx.flags["mime-type"], studies = ctx.flags.study,
          query = filters and { level = "studies", filters = filters } or nil,
          on_progress = progress.report, interval = poll_interval() })
        progress.finish()
        ctx.print({ operation = r.operation.name, filter_uri = r.filter_uri, selected = #r.selected,
                    expected = r.expected, written = r.written, exact = r.exact,
                    missing = json.array(r.missing), unexpected = json.array(r.unexpected) })
        if not r.exact then
          io.stderr:write("ERROR: the objects under the prefix are not exactly the selected instances\n")
          return 3
        end
        return 0
      end
      return start_operation(ctx, must(ctx.client():export{ dicom_store = ctx.words[1],
        uri_prefix = ctx.flags["gcs-uri-prefix"], mime_type = ctx.flags["mime-type"],
        transfer_syntax = ctx.flags["transfer-syntax"], check_permissions = not ctx.flags["skip-permission-check"] }))
    end },

  { path = { "dicom-stores", "export", "bq" },
    usage = "dicom-stores export bq STORE --bq-table=bq://P.D.T --dataset=D --location=L",
    summary = "export a DICOM store's metadata to BigQuery", min_args = 1, max_args = 1, resource = "dicom_store",
    help = "Export the metadata of every instance of the store to a BigQuery table and wait, unless --async.",
    flags = { ["bq-table"] = { type = "string", metavar = "URI", help = "bq://PROJECT.DATASET.TABLE" },
              ["write-disposition"] = { type = "string", help = "WRITE_EMPTY, WRITE_TRUNCATE or WRITE_APPEND" },
              async = async_flag, timeout = timeout_flag },
    run = function(ctx)
      if not ctx.flags["bq-table"] then usage("--bq-table is required, e.g. --bq-table=bq://PROJECT.DATASET.TABLE") end
      return start_operation(ctx, must(ctx.client():export_bigquery{ dicom_store = ctx.words[1],
        table_uri = ctx.flags["bq-table"], write_disposition = ctx.flags["write-disposition"] }))
    end },
  { path = { "operations", "describe" }, usage = "operations describe OPERATION --dataset=D --location=L",
    summary = "show an operation", min_args = 1, max_args = 1,
    help = "Show a long-running operation (full name, or id with --dataset).",
    run = function(ctx)
      ctx.print(must(ctx.client():operation(ctx.words[1])).raw)
    end },
  { path = { "operations", "wait" }, usage = "operations wait OPERATION --dataset=D --location=L",
    summary = "wait for an operation", min_args = 1, max_args = 1,
    help = "Wait until an operation is done, showing its counters.", flags = { timeout = timeout_flag },
    run = function(ctx)
      timeout_seconds(ctx)  -- a bad --timeout is bad usage, found before any request
      return wait_and_report(ctx, must(ctx.client():operation(ctx.words[1])))
    end },
  { path = { "operations", "list" }, usage = "operations list --dataset=D --location=L",
    summary = "list operations", max_args = 0, list = true, columns = op_columns,
    help = "List a dataset's operations. --filter is gcloud's (on the operations' JSON, e.g.\n" ..
      "--filter='done=false' or --filter='metadata.counter.failure>0').",
    run = function(ctx)
      local ops = must(ctx.client():list_operations{ page_size = common.integer(ctx.flags, "page-size") })
      local raw = {}
      for i, o in ipairs(ops) do raw[i] = o.raw end
      ctx.print(require("dicomgcs.cli").shape_list(ctx, raw))
    end },
  { path = { "operations", "failures" }, usage = "operations failures OPERATION [--format=json|csv]",
    summary = "list every failed file of an import or export, with the reason", min_args = 1, max_args = 1,
    formats = { json = true, ["json-compact"] = true, yaml = true, csv = true, table = true },
    columns = { { title = "URI", path = { "uri" } }, { title = "STATUS", path = { "status" } },
                { title = "REASON", path = { "message" } } },
    flags = { ["logs-wait"] = logs_wait_flag },
    help = "Read the operation's per-file errors from Cloud Logging (and its sample errors) and print\n" ..
      "one line per failed file: URI, status and reason. Exit 3 when the logs account for fewer\n" ..
      "failures than the operation's failure counter (Cloud Logging samples past a threshold).",
    run = function(ctx)
      local op = must(ctx.client():operation(ctx.words[1]))
      local found = must(ctx.client():failures(op, { logs_wait = tonumber(ctx.flags["logs-wait"]) }))
      local rows = {}
      for i, f in ipairs(found.failures) do
        rows[i] = { uri = f.uri, status = f.status, code = f.code, kind = f.kind, message = f.message }
      end
      local fmt = ctx.flags.format and ctx.format.name
      if fmt == "csv" then
        local report = require "dicomgcs.report"
        local outcomes, inputs = {}, {}
        for _, f in ipairs(found.failures) do
          inputs[#inputs + 1] = f.uri
          outcomes[f.uri] = { outcome = "failed", code = f.status, reason = f.message }
        end
        ctx.out:write(report.csv(report.build(inputs, outcomes)))
      elseif fmt == "json" or fmt == "json-compact" or fmt == "yaml" then
        ctx.print({ operation = op.name, expected = found.expected, logged = found.logged,
                    complete = found.complete, failures = json.array(rows) })
      elseif fmt == "table" or fmt == "value" then
        ctx.print(json.array(rows))
      else
        for _, r in ipairs(rows) do
          ctx.out:write(("%s\t%s\t%s\n"):format(term.escape(r.uri), term.escape(r.status), term.escape(r.message)))
        end
      end
      if not found.complete then
        ctx.warn(("%d failure(s) found, the operation counted %d; the logs are a sample."):format(
          #found.failures, found.expected))
        return 3
      end
    end },
  { path = { "operations", "report" },
    usage = "operations report OPERATION --gcs-uri=URI [--output=BASE] [--format=json|csv|html]",
    summary = "every file an import matched, with its outcome", min_args = 1, max_args = 1,
    formats = { json = true, ["json-compact"] = true, yaml = true, csv = true, html = true },
    help = "List every object the import's --gcs-uri matched with its outcome (succeeded / failed /\n" ..
      "skipped / conflict, and the reason); succeeded + failed + skipped + conflict = matched. A conflict is\n" ..
      "a file whose SOP Instance UID the store already holds with other bytes. Files the logs do not\n" ..
      "name are settled by reading their headers and asking the store (reconciliation).\n" ..
      "--output=BASE also writes BASE.json and BASE.csv; with --format=html, --output=FILE is the\n" ..
      "HTML run report (one self-contained page: totals, counters over time, failures).",
    flags = { ["gcs-uri"] = { type = "string", metavar = "URI", help = "the gs:// URI the import was given" },
              output = { type = "string", metavar = "BASE", help = "write BASE.json and BASE.csv (with --format=html: the HTML file)" },
              ["dicom-store"] = { type = "string", metavar = "STORE", help = "the store imported into (for reconciliation)" },
              ["logs-wait"] = logs_wait_flag },
    run = function(ctx)
      if not ctx.flags["gcs-uri"] then usage("--gcs-uri is required: the URI the import was given") end
      local report = require "dicomgcs.report"
      local c = ctx.client()
      local op = must(c:operation(ctx.words[1]))
      local r = must(c:import_report(op, ctx.flags["gcs-uri"], { dicom_store = ctx.flags["dicom-store"],
        logs_wait = tonumber(ctx.flags["logs-wait"]) }))
      local html = ctx.flags.format == "html"
      if html then
        local info = { kind = "import", source = ctx.flags["gcs-uri"], store = ctx.flags["dicom-store"] }
        report.from_operation(r, op)
        if ctx.flags.output then ctx.write_report(ctx.flags.output, r, info)
        else
          info.command = report.command_line(ctx.argv, "dicomgcs")
          ctx.out:write(report.html(report.describe(r, info)))
        end
      elseif ctx.flags.output then must(report.write(r, ctx.flags.output)) end
      if ctx.flags.format == "csv" then ctx.out:write(report.csv(r))
      elseif ctx.flags.format and not html then ctx.print({ totals = r.totals, complete = r.complete, rows = json.array(r.rows) })
      elseif not html then
        for _, row in ipairs(r.rows) do
          ctx.out:write(("%s\t%s%s\n"):format(term.escape(row.input), row.outcome,
            row.reason and ("\t" .. term.escape(row.reason)) or ""))
        end
      end
      local t = r.totals
      io.stderr:write(("%d matched: %d succeeded, %d failed, %d skipped%s%s.\n"):format(t.matched, t.succeeded,
        t.failed, t.skipped, t.conflict > 0 and (", " .. t.conflict .. " conflict (already stored with other bytes; " ..
        "see operations retry-failed --replace)") or "", t.unknown > 0 and (", " .. t.unknown .. " unknown") or ""))
      if t.failed == 0 and t.unknown == 0 and t.conflict == 0 then return 0 end
      return 3
    end },
  { path = { "operations", "retry-failed" }, usage = "operations retry-failed OPERATION --dataset=D --location=L",
    summary = "re-import only the failed files worth another try", min_args = 1, max_args = 1,
    help = "Re-import, one exact-URI import each, the failed files of an import whose error was\n" ..
      "transient or whose object was replaced since it failed. Prints one line per file: URI,\n" ..
      "what was done, the new operation's id (retried files) and the reason; then the new\n" ..
      "operations' ids on stderr. A conflict (the store holds the file's SOP Instance UID with other\n" ..
      "bytes) is skipped unless --replace, which deletes the stored instance over DICOMweb and imports the file.",
    flags = { ["dicom-store"] = { type = "string", metavar = "STORE",
                                  help = "import into this store (default: the operation's dataset store given by --dicom-store)" },
              concurrency = { type = "string", metavar = "N", help = "imports at a time (default 3)" },
              replace = { type = "boolean", help = "for conflicts: delete the stored instance and import the file" },
              ["logs-wait"] = logs_wait_flag },
    run = function(ctx)
      local store = ctx.flags["dicom-store"]
      if not store then usage("--dicom-store is required: the operation does not name its store") end
      local concurrency = common.integer(ctx.flags, "concurrency")
      local c = ctx.client()
      local op = must(c:operation(ctx.words[1]))
      local summary = must(c:retry_failed(op, { dicom_store = store, concurrency = concurrency,
        replace = ctx.flags.replace, logs_wait = tonumber(ctx.flags["logs-wait"]) }))
      local rows, ids = {}, {}
      for _, r in ipairs(summary.retried) do
        rows[#rows + 1] = { uri = r.failure.uri, action = "retried", ok = r.ok, reason = r.reason,
                            operation = r.operation and r.operation.name or nil,
                            error = r.err and tostring(r.err) or nil }
        if r.operation then ids[#ids + 1] = r.operation:id() end
      end
      for _, s in ipairs(summary.skipped) do
        rows[#rows + 1] = { uri = s.failure.uri, action = "skipped", reason = s.reason }
      end
      if ctx.flags.format then
        ctx.print({ succeeded = summary.succeeded, failed = summary.failed, skipped = #summary.skipped,
                    conflicts = summary.conflicts,
                    files = json.array(rows) })
      else
        for _, r in ipairs(rows) do
          ctx.out:write(("%s\t%s%s\t%s\t%s\n"):format(term.escape(r.uri), r.action,
            r.action == "retried" and (r.ok and " ok" or " FAILED") or "",
            r.operation and term.escape(r.operation:match("([^/]+)$")) or "-", term.escape(r.error or r.reason or "")))
        end
      end
      io.stderr:write(("Retried %d file(s): %d ok, %d failed; skipped %d%s.\n"):format(
        #summary.retried, summary.succeeded, summary.failed, #summary.skipped,
        summary.conflicts > 0 and (" (%d conflict(s): --replace to overwrite)"):format(summary.conflicts) or ""))
      if #ids > 0 then
        io.stderr:write(("New operation(s): %s (dicomgcs operations describe ID --dataset=%s)\n"):format(
          term.escape(table.concat(ids, " ")), term.escape(op.name:match("/datasets/([^/]+)/") or "")))
      end
      if summary.failed > 0 then return summary.succeeded > 0 and 3 or 1 end
    end },
  { path = { "operations", "cancel" }, usage = "operations cancel OPERATION --dataset=D --location=L",
    summary = "cancel an operation", min_args = 1, max_args = 1,
    help = "Ask the server to cancel an operation, wait until it stops, and report what it did\n" ..
      "before it stopped: succeeded, failed, and not processed (the files it had matched minus\n" ..
      "those it got to). An operation already finished is left as it is, and said so.\n" ..
      "--async returns right after asking.",
    flags = { async = async_flag },
    run = function(ctx)
      local op = must(ctx.client():operation(ctx.words[1]))
      local name = term.escape(op.name)
      if op.done then
        ctx.print(op.raw)
        io.stderr:write(("Operation %s had already finished (%s) before the cancel: nothing to cancel.\n"):format(
          name, op.error and "with an error" or "successfully"))
        return 0
      end
      -- the files it matched, as counted before the cancel: once it stops, `pending` reads 0
      local matched = op.counter.success + op.counter.failure + op.counter.pending
      must(op:cancel{ wait = not ctx.flags.async, interval = poll_interval() })
      ctx.print(op.raw)
      local c = op.counter
      local done = c.success + c.failure
      matched = math.max(matched, done + c.pending)
      local counted = matched > 0 and (" of %d matched"):format(matched) or ""
      io.stderr:write(("%s %s: %d succeeded, %d failed, %d not processed%s.\n"):format(
        op.done and "Stopped" or "Cancel requested for", name, c.success, c.failure, matched - done, counted))
    end },
}
