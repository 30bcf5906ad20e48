--- The `dicomgcs` command line: gcloud's verb order, flags, properties and output formats.
-- Exit codes: 0 done; 1 failed; 2 bad usage; 3 an operation finished with some files failed;
-- 130 interrupted (Ctrl-C). No Lua traceback reaches the user unless asked for
-- (--verbosity=debug or DICOMGCS_DEBUG=1).
-- Internal (not public API; may change without notice): see docs/CONTRACTS.md "Public and internal modules".
-- @module dicomgcs.cli
-- @local
local args = require "dicomgcs.cli.args"
local common = require "dicomgcs.cli.common"
local config = require "dicomgcs.cli.config"
local output = require "dicomgcs.cli.output"

local cli = {}

cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_USAGE, cli.EXIT_PARTIAL, cli.EXIT_INTERRUPTED = 0, 1, 2, 3, 130

-- Flags every command takes.
cli.global_flags = {
  project = { type = "string", help = "Google Cloud project id (default: gcloud's core/project)" },
  location = { type = "string", help = "Healthcare API location, e.g. us-central1 (default: healthcare/location)" },
  dataset = { type = "string", help = "Healthcare dataset id or full name (default: healthcare/dataset)" },
  format = { type = "string", help = "yaml, json, json-compact, table, table(FIELD,...) or value(FIELD,...); lists default to table" },
  help = { type = "boolean", short = "h", help = "show help for the command" },
  version = { type = "boolean", help = "print the version and exit" },
  quiet = { type = "boolean", short = "q", help = "never prompt: answer yes to confirmations" },
  verbosity = { type = "string", metavar = "LEVEL", help = "debug, info, warning (default), error or none" },
  ["log-http"] = { type = "boolean", help = "log each HTTP request and response on stderr (secrets masked)" },
  ["impersonate-service-account"] = { type = "string", metavar = "SA",
    help = "act as this service account (IAM Credentials generateAccessToken)" },
}

-- Flags of list commands (gcloud's list flags).
cli.list_flags = {
  limit = { type = "string", metavar = "N", help = "print at most N items" },
  ["page-size"] = { type = "string", metavar = "N", help = "items per request to the API" },
  ["sort-by"] = { type = "list", metavar = "FIELD", help = "sort by a field (~FIELD: descending; repeatable)" },
  filter = { type = "string", metavar = "EXPR",
    help = "keep the items that match: FIELD=VALUE, FIELD!=VALUE, FIELD:TEXT, FIELD<N, ... (AND)" },
}

local verbosities = { debug = 10, info = 20, warning = 30, error = 40, none = 100 }

local groups = { require "dicomgcs.cli.healthcare", require "dicomgcs.cli.storage",
                 require "dicomgcs.cli.dicomweb", require "dicomgcs.cli.check" }

-- Every command, in help order: { path=, usage=, summary=, help=, flags=, run=, ... }.
cli.commands = {}
for _, g in ipairs(groups) do
  for _, c in ipairs(g) do cli.commands[#cli.commands + 1] = c end
end

-- The flags a command takes (its own, the list flags when it lists, the global ones).
function cli.flags_of(c)
  local spec = {}
  for k, v in pairs(cli.global_flags) do spec[k] = v end
  if c.list then for k, v in pairs(cli.list_flags) do spec[k] = v end end
  for k, v in pairs(c.flags or {}) do spec[k] = v end
  return spec
end

local function add(c) cli.commands[#cli.commands + 1] = c end

add{ path = { "config", "list" }, usage = "config list", summary = "show each default and where it comes from",
  max_args = 0, formats = { json = true, ["json-compact"] = true, yaml = true, table = true },
  help = "Show the defaults dicomgcs uses, read as gcloud reads its properties: a flag, then the\n" ..
    "environment variable (CLOUDSDK_CORE_PROJECT, CLOUDSDK_HEALTHCARE_LOCATION,\n" ..
    "CLOUDSDK_HEALTHCARE_DATASET, CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT), then gcloud's active\n" ..
    "configuration ($CLOUDSDK_CONFIG/configurations/config_NAME).",
  run = function(ctx)
    local rows = {}
    for _, p in ipairs(config.properties) do
      local r = ctx.defaults[p.flag]
      rows[#rows + 1] = { property = p.property, value = r.value or require("dicomgcs.json").null,
                          source = r.source or "unset" }
    end
    local structured = { json = true, ["json-compact"] = true, yaml = true, value = true }
    if ctx.flags.format and structured[ctx.format.name] then return ctx.print(require("dicomgcs.json").array(rows)) end
    ctx.out:write(output.table(rows, ctx.format.columns or {
      { title = "PROPERTY", path = { "property" } }, { title = "VALUE", path = { "value" } },
      { title = "SOURCE", path = { "source" } } }), "\n")
  end }

add{ path = { "completion" }, usage = "completion bash|zsh", summary = "print a shell completion script",
  min_args = 1, max_args = 1, choices = { "bash", "zsh" },
  help = "Print a completion script for bash or zsh, generated from the command table. Load it with\n" ..
    "`source <(dicomgcs completion bash)` (in zsh: `source <(dicomgcs completion zsh)`).",
  run = function(ctx)
    local shell = ctx.words[1]
    if shell ~= "bash" and shell ~= "zsh" then common.usage("completion: give bash or zsh, got '" .. shell .. "'") end
    ctx.out:write(require("dicomgcs.cli.doc").completion(cli, shell))
  end }

-- The command whose path is the longest prefix of `words`.
local function find(words)
  local best, len = nil, 0
  for _, c in ipairs(cli.commands) do
    local ok = #c.path <= #words
    for i = 1, #c.path do if not ok or c.path[i] ~= words[i] then ok = false; break end end
    if ok and #c.path > len then best, len = c, #c.path end
  end
  return best, len
end

-- For an unknown command: the command line with each wrong word replaced by the likeliest
-- correction, or nil when a word is too far from any.
local function suggestion(words)
  local fixed, changed = {}, false
  for depth = 0, #words - 1 do
    local nexts, seen = {}, {}
    for _, c in ipairs(cli.commands) do
      local ok = #c.path > depth
      for i = 1, depth do if c.path[i] ~= fixed[i] then ok = false end end
      if ok and not seen[c.path[depth + 1]] then seen[c.path[depth + 1]] = true; nexts[#nexts + 1] = c.path[depth + 1] end
    end
    if #nexts == 0 then break end
    local w = words[depth + 1]
    if not seen[w] then
      w = common.suggest(w, nexts)
      if not w then return nil end
      changed = true
    end
    fixed[#fixed + 1] = w
  end
  return changed and table.concat(fixed, " ") or nil
end

-- Every flag name any command knows, to tell `--flag VALUE` values from command words.
local function value_flags()
  local t = {}
  for _, c in ipairs(cli.commands) do
    for k, v in pairs(cli.flags_of(c)) do if v.type ~= "boolean" then t[k] = true end end
  end
  return t
end

local function command_words(argv)
  local takes_value, words = value_flags(), {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then break end
    if a:sub(1, 2) == "--" and not a:find("=", 1, true) and takes_value[a:sub(3)] then i = i + 1
    elseif a:sub(1, 1) ~= "-" then words[#words + 1] = a end
    i = i + 1
  end
  return words
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
  local own = {}
  for k, v in pairs(c.flags or {}) do own[k] = v end
  if c.list then for k, v in pairs(cli.list_flags) do own[k] = v end end
  return ("Usage: dicomgcs %s\n\n%s\n\nFlags:\n%s\n\nGlobal flags:\n%s\n"):format(
    c.usage, c.help, next(own) and flag_lines(own) or "  (none)", flag_lines(cli.global_flags))
end

local function overview(prefix)
  local lines = { "Usage: dicomgcs GROUP COMMAND [ARGS] [FLAGS]", "",
    "Moves DICOM data between Cloud Storage and Cloud Healthcare API DICOM stores.",
    "Set DICOMGCS_EMULATOR_HOST (printed by emulator/start) to work against the local emulator.", "",
    "Commands:" }
  for _, c in ipairs(cli.commands) do
    local match = true
    for i = 1, #(prefix or {}) do if c.path[i] ~= prefix[i] then match = false end end
    if match then lines[#lines + 1] = ("  %-58s %s"):format(c.usage, c.summary or "") end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Run `dicomgcs COMMAND --help` for a command's flags. Exit codes: 0 done, 1 failed,"
  lines[#lines + 1] = "2 bad usage, 3 finished with some files failed, 130 interrupted."
  return table.concat(lines, "\n") .. "\n"
end

-- projects/P/locations/L[/datasets/D[/dicomStores/S]] → its parts, or nil.
local function split_name(s)
  local p, l, rest = s:match("^projects/([^/]+)/locations/([^/]+)(.*)$")
  if not p then return nil end
  if rest == "" then return { project = p, location = l } end
  local d, rest2 = rest:match("^/datasets/([^/]+)(.*)$")
  if not d then return nil end
  if rest2 == "" then return { project = p, location = l, dataset = d } end
  local st = rest2:match("^/dicomStores/([^/]+)$")
  if not st then return nil end
  return { project = p, location = l, dataset = d, dicom_store = st }
end

-- A full resource name given for `what` (flag or argument) sets project, location and dataset
-- (as gcloud's resource arguments do); a flag that says otherwise is a usage error.
local function take_name(flags, value, what, kind)
  if not value:find("/", 1, true) then return value end
  local parts = split_name(value)
  if not parts or not parts[kind] then
    common.usage(("%s: '%s' is not a %s name; give an id or projects/P/locations/L/datasets/D%s"):format(
      what, value, kind == "dataset" and "dataset" or "DICOM store", kind == "dataset" and "" or "/dicomStores/S"))
  end
  for _, k in ipairs{ "project", "location", "dataset" } do
    if parts[k] and k ~= kind then
      if flags[k] and flags[k] ~= parts[k] then
        common.usage(("%s names %s '%s' but --%s=%s"):format(what, k, parts[k], k, flags[k]))
      end
      flags[k] = parts[k]
    end
  end
  return parts[kind]
end

local SENSITIVE_HEADER = { authorization = true, ["proxy-authorization"] = true, cookie = true,
  ["set-cookie"] = true, ["x-goog-api-key"] = true, ["x-upload-content-md5"] = false }

--- Mask what must never be printed: secret headers, key-like query parameters, and anything
-- token- or key-shaped (dicomgcs.auth.redact).
function cli.mask(text)
  text = tostring(text)
  text = text:gsub("([%w%-]+)(:%s*)([^\r\n]*)", function(name, sep)
    if SENSITIVE_HEADER[name:lower()] then return name .. sep .. "--- Token Redacted ---" end
  end)
  text = text:gsub("([?&])([%w_%-%.]+)=([^&%s\"]*)", function(sep, k)
    local l = k:lower()
    for _, word in ipairs{ "key", "token", "signature", "secret", "credential", "password" } do
      if l:find(word, 1, true) then return sep .. k .. "=--- Redacted ---" end
    end
  end)
  text = text:gsub('("[%w_]*[Tt]oken"%s*:%s*)"[^"]*"', '%1"--- Token Redacted ---"')
  text = text:gsub('("[%w_]*[Ss]ecret"%s*:%s*)"[^"]*"', '%1"--- Redacted ---"')
  text = text:gsub('("private_key[%w_]*"%s*:%s*)"[^"]*"', '%1"--- Redacted ---"')
  return require("dicomgcs.auth").redact(text)
end

-- --log-http: each request and response on stderr, in gcloud's layout, masked.
local function http_logger(stream)
  return function(event, a, b)
    local lines
    if event == "request" then
      lines = { "=======================", "==== request start ====", "uri: " .. tostring(a.url),
        "method: " .. (a.method or "GET"), "== headers start ==" }
      for _, h in ipairs(a.headers or {}) do lines[#lines + 1] = h end
      if a.auth ~= false then lines[#lines + 1] = "authorization: --- Token Redacted ---" end
      lines[#lines + 1] = "== headers end =="
      lines[#lines + 1] = "== body start =="
      if a.body then lines[#lines + 1] = #a.body > 2048 and ("<%d bytes>"):format(#a.body) or a.body
      elseif a.body_file or a.body_parts then lines[#lines + 1] = "<file body>" end
      lines[#lines + 1] = "== body end =="
      lines[#lines + 1] = "==== request end ===="
    else
      local res, err = a, b
      lines = { "---- response start ----" }
      if res then
        lines[#lines + 1] = "status: " .. tostring(res.status)
        lines[#lines + 1] = "-- headers start --"
        local names = {}
        for k in pairs(res.headers or {}) do names[#names + 1] = k end
        table.sort(names)
        for _, k in ipairs(names) do lines[#lines + 1] = k .. ": " .. tostring(res.headers[k]) end
        lines[#lines + 1] = "-- headers end --"
        lines[#lines + 1] = "-- body start --"
        local body = res.body or "<streamed to a file>"
        lines[#lines + 1] = #body > 4096 and (body:sub(1, 4096) .. ("... <%d bytes>"):format(#body)) or body
        lines[#lines + 1] = "-- body end --"
      else
        lines[#lines + 1] = "error: " .. tostring(err and err.message or err)
      end
      lines[#lines + 1] = "---- response end ----"
      lines[#lines + 1] = "----------------------"
    end
    stream:write(cli.mask(table.concat(lines, "\n")), "\n")
  end
end

-- Y/n on a terminal; gcloud's rule elsewhere: --quiet (or not a terminal) takes the default, yes.
local function confirm(ctx, message)
  local core = require "dicomgcs.core"
  if ctx.flags.quiet then return true end
  if not (core.isatty(0) and core.isatty(2)) then return true end
  io.stderr:write(message, "\n\nDo you want to continue (Y/n)?  ")
  while true do
    io.stderr:flush()
    local answer = io.stdin:read("l")
    -- end of input or Enter: the default, yes (gcloud's PromptContinue)
    answer = (answer or ""):lower():gsub("^%s+", ""):gsub("%s+$", "")
    if answer == "" or answer == "y" or answer == "yes" then io.stderr:write("\n"); return true end
    if answer == "n" or answer == "no" then break end
    io.stderr:write("Please enter 'y' or 'n':  ")
  end
  io.stderr:write("\n")
  common.fail(require("dicomgcs.errors").new{ kind = "cancelled", message = "Aborted by user." })
end

-- What a command's run() gets: parsed words and flags, output helpers, a lazy client.
local function context(c, parsed, format, defaults)
  local ctx = { flags = parsed.flags, words = {}, out = io.stdout, err = io.stderr, format = format,
                defaults = defaults, command = c }
  for i = #c.path + 1, #parsed.words do ctx.words[#ctx.words + 1] = parsed.words[i] end
  local level = verbosities[parsed.flags.verbosity or "warning"]
  ctx.level = level
  function ctx.client()
    if ctx._client then return ctx._client end
    local dicomgcs = require "dicomgcs"
    if parsed.flags["log-http"] then require("dicomgcs.http").trace = http_logger(io.stderr) end
    local cl, err = dicomgcs.client{ project = defaults.project.value, location = defaults.location.value,
      dataset = defaults.dataset.value, impersonate_service_account = defaults["impersonate-service-account"].value }
    if not cl then common.fail(err) end
    ctx._client = cl
    return cl
  end
  function ctx.print(value, columns)
    ctx.out:write(output.render(value, format, columns or c.columns), "\n")
  end
  function ctx.warn(text) if level <= 30 then io.stderr:write("WARNING: ", text, "\n") end end
  function ctx.info(text) if level <= 20 then io.stderr:write("INFO: ", text, "\n") end end
  function ctx.confirm(message) return confirm(ctx, message) end
  function ctx.progress() return output.progress(io.stderr) end
  -- --report=FILE: the HTML run report of `r` (see dicomgcs.report), naming the command that made it
  function ctx.write_report(path, r, info)
    local report = require "dicomgcs.report"
    info.format, info.command = "html", report.command_line(ctx.argv, "dicomgcs")
    -- the run itself is done: a report that cannot be written is an error message, not a traceback
    local called, ok, err = pcall(report.write, r, path, info)
    if not called then err = ("cannot write the report %s: %s"):format(path, tostring(ok)) end
    if not (called and ok) then common.fail(err) end
    io.stderr:write("Wrote the report ", path, "\n")
  end
  return ctx
end

-- gcloud's list flags, done here on what the API returned: --filter, --sort-by, --limit.
function cli.shape_list(ctx, items, raw_of)
  raw_of = raw_of or function(x) return x end
  local expr = ctx.flags.filter
  if expr then
    local keep = require("dicomgcs.cli.filter").compile(expr)
    local kept = {}
    for _, x in ipairs(items) do if keep(raw_of(x)) then kept[#kept + 1] = x end end
    items = kept
  end
  for i = #(ctx.flags["sort-by"] or {}), 1, -1 do
    local key = ctx.flags["sort-by"][i]
    local desc = key:sub(1, 1) == "~"
    local path = {}
    for part in key:gsub("^~", ""):gmatch("[^%.]+") do path[#path + 1] = part end
    if #path == 0 then common.usage("--sort-by: name a field, e.g. --sort-by=name or --sort-by=~name") end
    local pos = {}
    for j, x in ipairs(items) do pos[x] = j end
    table.sort(items, function(a, b)
      local va, vb = output.pick(raw_of(a), path), output.pick(raw_of(b), path)
      local na, nb = tonumber(va), tonumber(vb)
      if na and nb and na ~= nb then if desc then return na > nb end return na < nb end
      local sa, sb = va == nil and "" or tostring(va), vb == nil and "" or tostring(vb)
      if sa ~= sb and not (na and nb) then if desc then return sa > sb end return sa < sb end
      return pos[a] < pos[b]  -- stable
    end)
  end
  local limit = common.integer(ctx.flags, "limit")
  if limit and #items > limit then
    local cut = {}
    for i = 1, limit do cut[i] = items[i] end
    items = cut
  end
  return require("dicomgcs.json").array(items)
end

local function debugging(flags)
  return os.getenv("DICOMGCS_DEBUG") == "1" or (flags and flags.verbosity == "debug")
end

-- Turn anything raised into a message and an exit code; never a traceback unless debugging.
local function report(e, trace, flags)
  local quiet_errors = flags and flags.verbosity == "none"
  -- messages carry names from servers and users: make them inert on a terminal
  local function say(text)
    if quiet_errors then return end
    for line in (text .. "\n"):gmatch("(.-)\n") do io.stderr:write(require("dicomgcs.cli.term").escape(line), "\n") end
  end
  local errors = require "dicomgcs.errors"
  if common.is_usage(e) then
    say("ERROR: (dicomgcs) " .. e.message)
    return cli.EXIT_USAGE
  end
  local text = type(e) == "table" and (e.message or "") or tostring(e)
  if errors.is_interrupt(e) then
    say("\nInterrupted.")
    return cli.EXIT_INTERRUPTED
  end
  if errors.is(e) then
    say("ERROR: " .. tostring(e))
    if debugging(flags) then io.stderr:write(trace, "\n") end
    return cli.EXIT_FAILED
  end
  -- a message raised with error(msg, 0) by a command's own checks: bad usage
  local located = text:find("%.lua:%d+:") or text:find("%[C%]") or text:match("^[%w_%.%-/]+:%d+: ")
  if type(e) == "string" and not located then
    say("ERROR: (dicomgcs) " .. text)
    return cli.EXIT_USAGE
  end
  say("ERROR: internal error: " .. (text:match("^[%w_%.%-/]+:%d+: ([^\n]*)") or text:gsub("\n.*", "")))
  if debugging(flags) then io.stderr:write(trace, "\n")
  else say("This is a bug in dicomgcs. Run again with --verbosity=debug (or DICOMGCS_DEBUG=1) to see where,\n" ..
    "and report it with that output.") end
  return cli.EXIT_FAILED
end

local function run(argv, state)
  local words = command_words(argv)
  for _, a in ipairs(argv) do
    if a == "--version" then io.stdout:write("dicomgcs ", require("dicomgcs.version"), "\n"); return cli.EXIT_OK end
  end
  local c = find(words)
  if not c then
    local wants_help = #argv == 0
    for _, a in ipairs(argv) do if a == "--help" or a == "-h" or a == "help" then wants_help = true end end
    if wants_help then
      local prefix = {}
      for _, w in ipairs(words) do if w ~= "help" then prefix[#prefix + 1] = w end end
      local sub = find(prefix)
      if sub and #sub.path == #prefix then io.stdout:write(command_help(sub)) else io.stdout:write(overview(prefix)) end
      return cli.EXIT_OK
    end
    local near = suggestion(words)
    local msg = ("unknown command: dicomgcs %s"):format(table.concat(words, " "))
    if near then msg = msg .. ("; did you mean `dicomgcs %s`?"):format(near) end
    io.stderr:write("ERROR: (dicomgcs) ", msg, "\n\n", overview(near and { near:match("^(%S+)") } or nil))
    return cli.EXIT_USAGE
  end
  local parsed, perr = args.parse(argv, cli.flags_of(c))
  if not parsed then
    io.stderr:write("ERROR: (dicomgcs) ", perr, "\nRun `dicomgcs ", table.concat(c.path, " "), " --help` for its flags.\n")
    return cli.EXIT_USAGE
  end
  state.flags = parsed.flags
  if parsed.flags.help then io.stdout:write(command_help(c)); return cli.EXIT_OK end
  -- gcloud's defaults: list commands print a table, the others YAML
  local format = { name = (c.list and c.columns) and "table" or "yaml" }
  if parsed.flags.format then
    local f, ferr = output.parse_format(parsed.flags.format)
    if not f then common.usage(ferr) end
    format = f
    local formats = c.formats or { json = true, ["json-compact"] = true, yaml = true, table = c.columns ~= nil }
    if not formats[f.name] and not ((f.name == "table" or f.name == "value") and f.columns) then
      local names = {}
      for k, ok in pairs(formats) do if ok then names[#names + 1] = k end end
      table.sort(names)
      common.usage(("--format=%s: use %s%s"):format(parsed.flags.format, table.concat(names, ", "),
        formats.table and "" or " or table(FIELD,...)"))
    end
  end
  for _, k in ipairs{ "limit", "page-size" } do common.integer(parsed.flags, k) end
  if parsed.flags.dataset then parsed.flags.dataset = take_name(parsed.flags, parsed.flags.dataset, "--dataset", "dataset") end
  if parsed.flags["dicom-store"] and not parsed.flags["dicomweb-url"] then
    parsed.flags["dicom-store"] = take_name(parsed.flags, parsed.flags["dicom-store"], "--dicom-store", "dicom_store")
  end
  local nargs = #parsed.words - #c.path
  if nargs < (c.min_args or 0) or nargs > (c.max_args or math.huge) then
    local want = c.min_args == c.max_args and tostring(c.min_args or 0) or
      (c.max_args and ("%d to %d"):format(c.min_args or 0, c.max_args) or ("at least " .. (c.min_args or 0)))
    common.usage(("dicomgcs %s takes %s argument(s), got %d: dicomgcs %s"):format(
      table.concat(c.path, " "), want, nargs, c.usage))
  end
  if c.resource then
    local i = #c.path + 1
    parsed.words[i] = take_name(parsed.flags, parsed.words[i], c.resource == "dataset" and "DATASET" or "STORE", c.resource)
  end
  for _, name in ipairs(config.checked_env) do
    local value = os.getenv(name)
    if value and value:find("[%c]") then
      common.usage(("the environment variable %s holds a control character (CR, LF, ...): fix or unset it"):format(name))
    end
  end
  local defaults = config.resolve(parsed.flags)
  -- gcloud's core properties behind --quiet, --verbosity and --log-http
  for _, p in ipairs(config.properties) do
    if p.boolean then parsed.flags[p.flag] = config.truthy(defaults[p.flag].value) end
  end
  local v = defaults.verbosity.value
  if v and not verbosities[v] then
    parsed.flags.verbosity = nil
    common.usage(("verbosity '%s' (%s): use debug, info, warning, error or none"):format(v, defaults.verbosity.source))
  end
  parsed.flags.verbosity = v
  local ctx = context(c, parsed, format, defaults)
  ctx.argv = argv  -- for run reports: the exact command that produced them
  for _, p in ipairs(config.properties) do
    if defaults[p.flag].value then ctx.info(("%s = %s (%s)"):format(p.property, defaults[p.flag].value, defaults[p.flag].source)) end
  end
  return c.run(ctx) or cli.EXIT_OK
end

--- Run the command line; returns the exit code. Whatever is raised becomes a message.
function cli.main(argv)
  require("dicomgcs.errors").context = "cli"  -- errors' hints name dicomgcs commands, not Lua calls
  local state = {}
  local trace
  local ok, code = xpcall(run, function(e)
    trace = debug.traceback(type(e) == "table" and tostring(e.message or e) or tostring(e), 2)
    return e
  end, argv or {}, state)
  require("dicomgcs.http").trace = nil
  if ok then return code end
  local rok, rcode = pcall(report, code, trace, state.flags)
  if rok then return rcode end
  io.stderr:write("ERROR: internal error\n")
  return cli.EXIT_FAILED
end

return cli
