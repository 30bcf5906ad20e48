--- The `dicomgcs` command line: gcloud's verb order and flags.
-- Exit codes: 0 done; 1 failed; 2 bad usage; 3 an operation finished with some files failed.
-- @module dicomgcs.cli
local args = require "dicomgcs.cli.args"
local output = require "dicomgcs.cli.output"

local cli = {}

cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_USAGE, cli.EXIT_PARTIAL = 0, 1, 2, 3

-- Flags every command takes.
local global_flags = {
  project = { type = "string", help = "Google Cloud project id (default: $GOOGLE_CLOUD_PROJECT)" },
  location = { type = "string", help = "Healthcare API location, e.g. us-central1" },
  dataset = { type = "string", help = "Healthcare dataset id" },
  format = { type = "string", help = "output format: yaml (default), json or table" },
  help = { type = "boolean", short = "h", help = "show help for the command" },
}

local groups = { require "dicomgcs.cli.healthcare", require "dicomgcs.cli.storage",
                 require "dicomgcs.cli.dicomweb", require "dicomgcs.cli.check" }

local commands = {}
for _, g in ipairs(groups) do
  for _, c in ipairs(g) do commands[#commands + 1] = c end
end

-- The command whose path is the longest prefix of `words`.
local function find(words)
  local best, len = nil, 0
  for _, c in ipairs(commands) do
    local ok = #c.path <= #words
    for i = 1, #c.path do if not ok or c.path[i] ~= words[i] then ok = false; break end end
    if ok and #c.path > len then best, len = c, #c.path end
  end
  return best, len
end

local function flag_lines(flags)
  local names = {}
  for n in pairs(flags) do names[#names + 1] = n end
  table.sort(names)
  local out = {}
  for _, n in ipairs(names) do
    local f = flags[n]
    local left = (f.short and ("-" .. f.short .. ", ") or "") .. "--" .. n ..
      (f.type == "boolean" and "" or ("=" .. (f.metavar or n:upper():gsub("%-", "_"))))
    out[#out + 1] = ("  %-34s %s"):format(left, f.help or "")
  end
  return table.concat(out, "\n")
end

local function command_help(c)
  return ("Usage: dicomgcs %s\n\n%s\n\nFlags:\n%s\n\nGlobal flags:\n%s\n"):format(
    c.usage, c.help, next(c.flags or {}) and flag_lines(c.flags) or "  (none)", flag_lines(global_flags))
end

local function overview(prefix)
  local lines = { "Usage: dicomgcs GROUP COMMAND [ARGS] [FLAGS]", "",
    "Moves DICOM data between Cloud Storage and Cloud Healthcare API DICOM stores.",
    "Set DICOMGCS_EMULATOR_HOST (printed by emulator/start) to work against the local emulator.", "",
    "Commands:" }
  for _, c in ipairs(commands) do
    local match = true
    for i = 1, #(prefix or {}) do if c.path[i] ~= prefix[i] then match = false end end
    if match then lines[#lines + 1] = ("  %-58s %s"):format(c.usage, c.summary or "") end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Run `dicomgcs COMMAND --help` for a command's flags. Exit codes: 0 done, 1 failed,"
  lines[#lines + 1] = "2 bad usage, 3 finished with some files failed."
  return table.concat(lines, "\n") .. "\n"
end

-- What a command's run() gets: parsed words and flags, output helpers, a lazy client.
local function context(c, parsed)
  local ctx = { flags = parsed.flags, words = {}, out = io.stdout, err = io.stderr }
  for i = #c.path + 1, #parsed.words do ctx.words[#ctx.words + 1] = parsed.words[i] end
  function ctx.client()
    if ctx._client then return ctx._client end
    local dicomgcs = require "dicomgcs"
    local cl, err = dicomgcs.client{ project = parsed.flags.project, location = parsed.flags.location,
      dataset = parsed.flags.dataset }
    if not cl then error(err, 0) end
    ctx._client = cl
    return cl
  end
  function ctx.print(value, columns)
    ctx.out:write(output.render(value, parsed.flags.format, columns), "\n")
  end
  function ctx.progress() return output.progress(io.stderr) end
  -- --report=FILE: the HTML run report of `r` (see dicomgcs.report), naming the command that made it
  function ctx.write_report(path, r, info)
    local report = require "dicomgcs.report"
    info.format, info.command = "html", report.command_line(ctx.argv, "dicomgcs")
    -- the run itself is done: a report that cannot be written is an error message, not a traceback
    local called, ok, err = pcall(report.write, r, path, info)
    if not called then err = ("cannot write the report %s: %s"):format(path, tostring(ok)) end
    if not (called and ok) then error(err, 0) end
    io.stderr:write("Wrote the report ", path, "\n")
  end
  return ctx
end

local function report_error(err)
  io.stderr:write("ERROR: ", require("dicomgcs.cli.term").escape(tostring(err)), "\n")
end

--- Run the command line; returns the exit code.
function cli.main(argv)
  argv = argv or {}
  require("dicomgcs.errors").context = "cli"
  local words = {}
  for _, a in ipairs(argv) do if a:sub(1, 1) ~= "-" then words[#words + 1] = a end end
  local c = find(words)
  if not c then
    local wants_help = #argv == 0
    for _, a in ipairs(argv) do if a == "--help" or a == "-h" or a == "help" then wants_help = true end end
    if wants_help then io.stdout:write(overview(words)); return cli.EXIT_OK end
    io.stderr:write(("ERROR: unknown command: dicomgcs %s\n\n"):format(table.concat(words, " ")), overview(words))
    return cli.EXIT_USAGE
  end
  local spec = {}
  for k, v in pairs(global_flags) do spec[k] = v end
  for k, v in pairs(c.flags or {}) do spec[k] = v end
  local parsed, perr = args.parse(argv, spec)
  if not parsed then
    io.stderr:write("ERROR: ", perr, "\n\n", command_help(c))
    return cli.EXIT_USAGE
  end
  if parsed.flags.help then io.stdout:write(command_help(c)); return cli.EXIT_OK end
  local fmt = parsed.flags.format
  local formats = c.formats or { json = true, yaml = true, table = true }
  if fmt and not formats[fmt] then
    local names = {}
    for k in pairs(formats) do names[#names + 1] = k end
    table.sort(names)
    io.stderr:write(("ERROR: --format=%s: use %s\n"):format(fmt, table.concat(names, ", ")))
    return cli.EXIT_USAGE
  end
  local ctx = context(c, parsed)
  ctx.argv = argv  -- for run reports: the exact command that produced them
  local nargs = #ctx.words
  if nargs < (c.min_args or 0) or nargs > (c.max_args or math.huge) then
    io.stderr:write("ERROR: wrong number of arguments\n\n", command_help(c))
    return cli.EXIT_USAGE
  end
  local ok, code = xpcall(c.run, function(e)
    if type(e) == "table" then return e end
    return debug.traceback(tostring(e), 2)
  end, ctx)
  if not ok then
    report_error(code)
    return cli.EXIT_FAILED
  end
  return code or cli.EXIT_OK
end

return cli
