--- The command-line face of dicomgcs.watch (issue #19): `dicom-stores import gcs STORE` with
-- the watch flag. The flags are declared with the import command (cli/healthcare.lua).
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.cli.watch
-- @local
local common = require "dicomgcs.cli.common"
local term = require "dicomgcs.cli.term"

local cli_watch = {}

--- The flags the watch adds to `dicom-stores import gcs`.
cli_watch.flags = {
  watch = { type = "boolean", help = "keep importing new arrivals every --every, in batches (Ctrl-C stops; re-run resumes)" },
  every = { type = "string", metavar = "DURATION", help = "with --watch: time between rounds, e.g. 60s, 5m (default 60s)" },
  ["move-to"] = { type = "string", metavar = "URI", help = "with --watch: move imported originals under this gs:// folder" },
  ["batch-size"] = { type = "string", metavar = "N", help = "with --watch: files per import operation at most (default 1000)" },
  ["batch-uri"] = { type = "string", metavar = "URI", help = "with --watch: where batches are copied (default gs://BUCKET/.dicomgcs-batches/)" },
  rounds = { type = "string", metavar = "N", help = "with --watch: stop after N rounds, once their imports are done" },
}

local UNITS = { ms = 0.001, s = 1, m = 60, h = 3600 }

--- Seconds in "90", "90s", "1.5m", "500ms", "2h"; nil for anything else.
function cli_watch.duration(text)
  local n, unit = tostring(text):match("^(%d+%.?%d*)(%a*)$")
  n = tonumber(n)
  local k = UNITS[unit ~= "" and unit or "s"]
  if not n or not k or n * k <= 0 then return nil end
  return n * k
end

--- Run the watch for the parsed command `ctx` (STORE in ctx.words[1]); returns the exit code:
-- 0 every file imported, 3 some failed, 1 none could be, 130 stopped by Ctrl-C.
function cli_watch.run(ctx, uri)
  local f = ctx.flags
  local every = 60
  if f.every then
    every = cli_watch.duration(f.every)
    if not every then common.usage(("--every=%s: use a duration such as 60s, 5m or 500ms"):format(f.every)) end
  end
  local dicomgcs = require "dicomgcs"
  local w, err = dicomgcs.watch{
    client = ctx.client(), uri = uri, dicom_store = ctx.words[1], every = every, poll = common.poll_interval(),
    manifest = f.manifest, move_to = f["move-to"], batch_uri = f["batch-uri"], report = f.report,
    report_format = "html", report_info = { command = require("dicomgcs.report").command_line(ctx.argv, "dicomgcs") },
    batch_size = common.integer(f, "batch-size"), max_in_flight = common.integer(f, "max-in-flight"),
    rounds = common.integer(f, "rounds"),
    log = function(line) io.stderr:write(term.escape(line), "\n") end,
    on_file_failed = function(file, failure)
      io.stderr:write(term.escape(("  failed: %s: %s %s"):format(file.uri, failure.status or "", failure.message or "")), "\n")
    end,
  }
  if not w then common.fail(err) end
  local s = w:run()
  local t = s.totals
  io.stderr:write(("watch %s after %d round(s): %d operation(s), %d imported, %d failed%s%s.\n"):format(
    s.stopped, t.rounds, t.operations, t.imported, t.failed,
    t.moved > 0 and (", %d moved"):format(t.moved) or "",
    s.in_flight > 0 and ("; %d batch(es) still in flight (re-run to resume)"):format(s.in_flight) or ""))
  if ctx.flags.format then ctx.print(s.totals) end
  if s.stopped == "interrupted" then return 130 end
  if t.failed == 0 then return 0 end
  return t.imported > 0 and 3 or 1
end

return cli_watch
