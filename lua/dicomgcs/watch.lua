--- Keep a DICOM store in step with a landing zone: every round, list what a `gs://` wildcard
-- selects, take the objects that are new (or rewritten: a new generation) and have stopped
-- changing, copy them server-side into a batch folder of their own, import that folder with one
-- operation, then delete the copies (and with `move_to`, move the originals).
--
--     local w = assert(dicomgcs.watch{ client = c, uri = "gs://b/incoming/**.dcm", every = 60,
--                                      manifest = "state.jsonl" })
--     local summary = w:run()       -- until Ctrl-C, `rounds` rounds, or w:stop()
--
-- The manifest (dicomgcs.manifest, JSON Lines) holds one record per object (`file gs://…`: its
-- generation, size, batch and outcome) and one per batch (`batch ID`: its state and operation),
-- so a restart neither misses nor repeats a file, and an operation still running in the server
-- when the watch stopped (Ctrl-C, kill) is re-attached by name instead of started again.
-- A file that failed to import is not taken again until its object changes (a new generation).
-- @module dicomgcs.watch
local core = require "dicomgcs.core"
local errors = require "dicomgcs.errors"
local manifest = require "dicomgcs.manifest"
local options = require "dicomgcs.options"
local queue = require "dicomgcs.queue"
local report = require "dicomgcs.report"
local wildcard = require "dicomgcs.wildcard"

local watch = {}

local Watch = { __name = "dicomgcs.Watch" }
Watch.__index = Watch

local known = { client = true, uri = true, dicom_store = true, every = true, settle = true, poll = true,
  manifest = true, batch_uri = true, move_to = true, batch_size = true, max_in_flight = true,
  rounds = true, max_backoff = true, report = true, report_format = true, report_info = true, on_batch = true, on_file_failed = true,
  on_round = true, log = true, classify_error = true }

-- File states that settle an object's generation: it is not taken again until it changes.
local SETTLED = { batched = true, done = true, failed = true }
-- Batch states that hold files and count against max_in_flight.
local UNFINISHED = { copying = true, copied = true, importing = true, running = true, imported = true }

-- The one place this module waits: on an engine timer of the client's engine (runner.pause),
-- so Ctrl-C comes back as an Error, raised here
-- as lua.c's interrupt for run() to stop cleanly.
local function pause(seconds, client)
  if seconds <= 0 then return end
  local ok, err = require("dicomgcs.runner").pause(client.transport, seconds)
  if not ok and err and err.kind == "interrupted" then error("interrupted!", 0) end
end

local function file_key(uri) return "file " .. uri end
local function batch_key(id) return "batch " .. id end

local function new_batch_id()
  local hex = {}
  for i = 1, 4 do hex[i] = ("%02x"):format(math.random(0, 255)) end
  return os.date("!%Y%m%dT%H%M%SZ-") .. table.concat(hex)
end

-- "gs://b/dir/" for a prefix URI (a trailing slash added), or nil, Error.
local function folder_uri(uri, what)
  local bucket, prefix = wildcard.parse_uri(uri, { allow_empty_object = true })
  if not bucket then return nil, prefix end
  if prefix:find("[*?]") then return nil, errors.input(what .. " cannot hold wildcards: " .. uri) end
  if prefix ~= "" and prefix:sub(-1) ~= "/" then prefix = prefix .. "/" end
  return { bucket = bucket, prefix = prefix, uri = "gs://" .. bucket .. "/" .. prefix }
end

--- Make a watch. Options: `client` and `uri` (a `gs://BUCKET/PATTERN` import wildcard) are
-- required; `dicom_store` (default the client's); `every` (seconds between rounds, default 60);
-- `settle` (seconds between the two listings of a round that tell whether a new object has
-- stopped changing, default every/4, at most 15; 0 compares with the previous round instead);
-- `poll` (seconds between looks at running operations, default every/10 within 0.5…10);
-- `manifest` (path of the JSON Lines state; without it a restart starts over);
-- `batch_uri` (where batches are copied, default `gs://BUCKET/.dicomgcs-batches/`, in the
-- watched bucket: the import's service agent reads it already); `move_to` (a `gs://` folder
-- the originals move to once imported); `batch_size` (files per operation, default 1000);
-- `max_in_flight` (batches copied or importing at once, default 1); `rounds` (stop after this many
-- rounds, once their batches are finished and nothing found waits for a free slot (more rounds
-- are run for those); default: run until stopped); `max_backoff`
-- (seconds, default 300, the longest wait after the project's operation limit or a quota);
-- `report` (a path base: BASE.json and BASE.csv, see dicomgcs.report, rewritten as batches finish;
-- with `report_format = "html"`, the HTML run report page at that path, `report_info` adding
-- fields for it such as `command`);
-- hooks `on_batch(batch)` (a batch finished: `{id=, uri=, operation=, files=, succeeded=, failed=}`),
-- `on_file_failed(file, failure)` (`file = {uri=, generation=, size=}`, failure as in
-- dicomgcs.failures), `on_round(summary)`, `log(line)` (default: stderr),
-- `classify_error(err) -> "retry"|"fail"` for a refused import (default dicomgcs.queue's).
-- Returns the Watch or nil, Error.
function watch.new(opts)
  options.check(opts, known, "dicomgcs.watch")
  assert(opts.client, "dicomgcs.watch: client is required")
  assert(type(opts.uri) == "string", "dicomgcs.watch: uri (a gs:// wildcard) is required")
  local bucket, pattern = wildcard.parse_uri(opts.uri)
  if not bucket then return nil, pattern end
  local ok, err = wildcard.check(pattern)
  if not ok then err.message = opts.uri .. ": " .. err.message; return nil, err end
  local every = opts.every or 60
  if type(every) ~= "number" or every <= 0 then return nil, errors.input("every must be a number of seconds > 0") end
  local batches, berr = folder_uri(opts.batch_uri or ("gs://" .. bucket .. "/.dicomgcs-batches/"), "batch_uri")
  if not batches then return nil, berr end
  if batches.prefix == "" then return nil, errors.input("batch_uri needs a folder: " .. batches.uri) end
  local move
  if opts.move_to then
    move, berr = folder_uri(opts.move_to, "move_to")
    if not move then return nil, berr end
  end
  local self = setmetatable({
    client = opts.client, uri = opts.uri, bucket = bucket, pattern = pattern,
    base = wildcard.literal_prefix(pattern):match("^(.*/)") or "",
    dicom_store = opts.dicom_store, every = every,
    settle = opts.settle or math.min(every / 4, 15),
    poll_every = opts.poll or math.max(0.5, math.min(every / 10, 10)),
    batches_at = batches, move = move, batch_size = opts.batch_size or 1000,
    max_in_flight = opts.max_in_flight or 1, rounds = opts.rounds, max_backoff = opts.max_backoff or 300,
    report_base = opts.report, report_format = opts.report_format, report_info = opts.report_info or {},
    hooks = opts,
    log = opts.log or function(line) io.stderr:write(line, "\n") end,
    classify = opts.classify_error or queue.classify_error,
    files = {}, order = {}, batches = {}, batch_order = {}, seen = {},
    totals = { rounds = 0, batches = 0, operations = 0, imported = 0, failed = 0, moved = 0,
               reattached = 0, throttled = 0 },
  }, Watch)
  if opts.manifest then
    local m, merr = manifest.open(opts.manifest)
    if not m then return nil, merr end
    self.manifest = m
  end
  self:load()
  return self
end

function Watch:record(key, fields, sync)
  if not self.manifest then return end
  local ok, err = self.manifest:record(key, fields, sync and { sync = true } or nil)
  if not ok then self.log("warning: " .. tostring(err)) end
end

-- Update a file's fields (false clears one) and record it.
function Watch:set_file(f, fields, sync)
  for k, v in pairs(fields) do
    if v == false then f[k] = nil else f[k] = v end
  end
  if not self.files[f.uri] then self.order[#self.order + 1] = f.uri end
  self.files[f.uri] = f
  self:record(file_key(f.uri), { state = f.state, uri = f.uri, name = f.name, generation = f.generation,
    size = f.size, created = f.created, batch = f.batch, operation = f.operation, stored = f.stored,
    code = f.code, reason = f.reason, moved = f.moved }, sync)
end

function Watch:set_batch(b, fields)
  for k, v in pairs(fields) do b[k] = v end
  self:record(batch_key(b.id), { state = b.state, uri = b.uri, operation = b.op and b.op.name or b.operation,
    files = #b.files, succeeded = b.succeeded, failed = b.failed, error = b.error }, UNFINISHED[b.state] or b.state == "done")
end

-- Rebuild files and unfinished batches from the manifest.
function Watch:load()
  if not self.manifest then return end
  for key, rec in self.manifest:each() do
    local uri = key:match("^file (.+)$")
    if uri then
      local f = {}
      for k, v in pairs(rec) do f[k] = v end
      f.key, f.time = nil, nil
      self.files[uri] = f
      self.order[#self.order + 1] = uri
    end
  end
  for key, rec in self.manifest:each() do
    local id = key:match("^batch (.+)$")
    if id and UNFINISHED[rec.state] then
      local b = { id = id, uri = rec.uri, state = rec.state, operation = rec.operation, files = {}, attempts = 0 }
      for _, uri in ipairs(self.order) do
        local f = self.files[uri]
        if f.batch == id and (f.state == "batched" or rec.state == "imported") then b.files[#b.files + 1] = f end
      end
      local op, oerr
      if b.state == "running" then op, oerr = self.client:operation(tostring(b.operation), { fetch = false }) end
      if op then
        b.op = op
        self.totals.reattached = self.totals.reattached + 1
        self.log(("re-attached batch %s (%d files) to %s"):format(id, #b.files, b.operation))
      elseif b.state == "running" then
        self.log(("batch %s: cannot re-attach (%s); importing it again"):format(id, tostring(oerr)))
        b.state = "copying"
      elseif b.state == "importing" then
        -- killed between asking for the import and writing its name down: ask again (the
        -- store keeps one copy of an instance, so this costs an operation, not a duplicate)
        b.state = "copied"
      end
      self.batches[id] = b
      self.batch_order[#self.batch_order + 1] = id
    end
  end
end

function Watch:in_flight()
  local n = 0
  for _, id in ipairs(self.batch_order) do if UNFINISHED[self.batches[id].state] then n = n + 1 end end
  return n
end

-- The watched objects now, minus our own batch copies and moved files (a `**` pattern can
-- match them). Returns an array or nil, Error.
function Watch:list()
  local objs, err = self.client.storage:match(self.uri)
  if not objs then return nil, err end
  local out = {}
  for _, o in ipairs(objs) do
    local ours = (o.bucket or self.bucket) == self.batches_at.bucket and o.name:sub(1, #self.batches_at.prefix) == self.batches_at.prefix
    ours = ours or (self.move and self.bucket == self.move.bucket and o.name:sub(1, #self.move.prefix) == self.move.prefix)
    if not ours then out[#out + 1] = o end
  end
  return out
end

-- Objects that are new (unknown, or known at another generation) and unchanged since the last
-- listing (same generation and size); remembers this listing for the next comparison.
function Watch:observe(objs)
  local stable, changing, now_seen = {}, 0, {}
  for _, o in ipairs(objs) do
    local f = self.files[o.uri]
    if not (f and f.generation == o.generation and SETTLED[f.state]) then
      local before = self.seen[o.uri]
      if before and before.generation == o.generation and before.size == o.size then
        stable[#stable + 1] = o
      else
        changing = changing + 1
      end
      now_seen[o.uri] = { generation = o.generation, size = o.size }
    end
  end
  self.seen = now_seen
  return stable, changing
end

function Watch:copy_name(b, name) return self.batches_at.prefix .. b.id .. "/" .. name end

-- Copy a batch's files into its folder (again, after a restart: a copy is idempotent).
-- Files whose object changed or went away meanwhile leave the batch (they are new again).
function Watch:copy(b)
  local copies = {}
  for i, f in ipairs(b.files) do
    copies[i] = { source = f.uri, if_source_generation = f.generation,
                  target = "gs://" .. self.batches_at.bucket .. "/" .. self:copy_name(b, f.name) }
  end
  local summary = self.client.storage:rewrite_many(copies)
  local kept = {}
  for i, r in ipairs(summary.results) do
    local f = b.files[i]
    if r.ok then
      kept[#kept + 1] = f
    else
      -- changed or gone: new again; refused for good (say, a name too long for the batch
      -- folder): failed until the object changes; anything else: taken again next round
      local gone = r.err and (r.err.http_status == 412 or r.err.http_status == 404)
      local state = gone and "changed" or ((r.err and r.err.retryable) and "copy-failed" or "failed")
      self:set_file(f, { state = state, batch = false, reason = tostring(r.err),
                         code = state == "failed" and "COPY_FAILED" or false })
      if state == "failed" then
        self.totals.failed = self.totals.failed + 1
        if self.hooks.on_file_failed then
          self.hooks.on_file_failed({ uri = f.uri, generation = f.generation, size = f.size },
            { uri = f.uri, status = "COPY_FAILED", message = tostring(r.err) })
        end
      end
      self.log(("%s left batch %s: %s"):format(f.uri, b.id, gone and "it changed before it was copied" or tostring(r.err)))
    end
  end
  b.files = kept
  if #kept == 0 then
    self:set_batch(b, { state = "empty" })
    return false
  end
  self:set_batch(b, { state = "copied" })
  return true
end

-- Ask for the batch's import; a refusal worth waiting out (the project's operation limit, a
-- quota, unavailable) leaves it "copied" with a back-off. The engine has already waited out
-- 429s within the client's retry_budget: a smaller budget hands the waiting to this back-off,
-- during which the watch goes on polling and listing.
function Watch:start_import(b)
  local now = core.monotime()
  if (b.not_before or 0) > now then return end
  self:set_batch(b, { state = "importing" })
  -- the service agent's access is checked before the first import only
  local check
  if self.checked then check = false end
  local op, err = self.client:import{ uri = b.uri, dicom_store = self.dicom_store, check_permissions = check }
  if op then
    self.checked = true
    b.op = op
    self.totals.operations = self.totals.operations + 1
    self:set_batch(b, { state = "running" })
    return
  end
  b.attempts = (b.attempts or 0) + 1
  if self.classify(err) == "retry" then
    local wait = math.min(self.max_backoff, self.every * 2 ^ math.min(b.attempts - 1, 10))
    b.not_before = now + wait
    self.totals.throttled = self.totals.throttled + 1
    self:set_batch(b, { state = "copied" })
    self.log(("batch %s: import refused (%s); trying again in %gs"):format(b.id, tostring(err), wait))
  else
    self:release(b, err)
  end
end

-- A batch that failed as a whole (permission, bucket gone, cancelled): its files are not the
-- cause, so they are released to be taken again by a later round.
function Watch:release(b, err)
  for _, f in ipairs(b.files) do
    self:set_file(f, { state = "released", reason = tostring(err) })
  end
  self:set_batch(b, { state = "failed", error = tostring(err) })
  self:cleanup(b)
  self.log(("batch %s failed as a whole (%d files will be taken again): %s"):format(b.id, #b.files, tostring(err)))
end

-- Delete the batch's copies (whatever is in its folder).
function Watch:cleanup(b)
  local st = self.client.storage
  local objs, err = st:select("gs://" .. self.batches_at.bucket .. "/" .. self.batches_at.prefix .. b.id .. "/")
  if not objs then
    self.log(("batch %s: could not list its copies to delete them: %s"):format(b.id, tostring(err)))
    return
  end
  local s = st:delete_generations(self.batches_at.bucket, objs)
  if s.failed > 0 then self.log(("batch %s: %d copies not deleted"):format(b.id, s.failed)) end
end

-- Move the imported originals: copy to move_to (if the original is still the generation
-- imported), then delete exactly that generation; an object rewritten meanwhile stays.
function Watch:move_done(b)
  local copies, files = {}, {}
  for _, f in ipairs(b.files) do
    if f.state == "done" and not f.moved then
      files[#files + 1] = f
      copies[#copies + 1] = { source = f.uri, if_source_generation = f.generation,
        target = self.move.uri .. f.name:sub(#self.base + 1) }
    end
  end
  if #copies == 0 then return end
  local cs = self.client.storage:rewrite_many(copies)
  local del, moved = {}, {}
  for i, r in ipairs(cs.results) do
    if r.ok then del[#del + 1] = { name = files[i].name, generation = files[i].generation }; moved[#moved + 1] = i end
  end
  local ds = self.client.storage:delete_generations(self.bucket, del)
  for j, r in ipairs(ds.results) do
    local f = files[moved[j]]
    if r.ok then
      self:set_file(f, { moved = copies[moved[j]].target })
      self.totals.moved = self.totals.moved + 1
    end
  end
end

function Watch:finish(b)
  local op = b.op
  local processed = op.counter.success + op.counter.failure
  if op.error and processed == 0 then return self:release(b, op:failure()) end
  local found
  if op.counter.failure > 0 then
    local fl, err = self.client:failures(op)
    -- the logs of a finished operation may arrive late: look again on the next poll
    if (not fl or not fl.complete) and (b.failure_reads or 0) < 20 then
      b.failure_reads = (b.failure_reads or 0) + 1
      return
    end
    found = {}
    for _, fail in ipairs(fl and fl.failures or {}) do found[fail.uri or ""] = fail end
    if not fl then self.log(("batch %s: cannot read the failed files: %s"):format(b.id, tostring(err))) end
  end
  local stored = op.metadata and op.metadata.endTime
  local ok_n, fail_n = 0, 0
  local prefix = "gs://" .. self.batches_at.bucket .. "/"
  for _, f in ipairs(b.files) do
    local fail = found and found[prefix .. self:copy_name(b, f.name)]
    if fail then
      fail_n = fail_n + 1
      self:set_file(f, { state = "failed", operation = op.name, code = fail.status, reason = fail.message })
      if self.hooks.on_file_failed then
        self.hooks.on_file_failed({ uri = f.uri, generation = f.generation, size = f.size }, fail)
      end
    else
      ok_n = ok_n + 1
      self:set_file(f, { state = "done", operation = op.name, stored = stored })
    end
  end
  -- outcomes are written before the batch says so, and fsync'ed with it
  self:set_batch(b, { state = "imported", succeeded = ok_n, failed = fail_n })
  self.totals.imported, self.totals.failed = self.totals.imported + ok_n, self.totals.failed + fail_n
  self:cleanup(b)
  if self.move then self:move_done(b) end
  self:set_batch(b, { state = "done" })
  self.log(("batch %s done: %d imported, %d failed (%s)"):format(b.id, ok_n, fail_n, op.name))
  if self.hooks.on_batch then
    self.hooks.on_batch{ id = b.id, uri = b.uri, operation = op.name, files = b.files, succeeded = ok_n, failed = fail_n }
  end
  self:write_report()
end

--- Look at every unfinished batch once: copy, import, poll, finish as each one's state says.
function Watch:poll()
  for _, id in ipairs(self.batch_order) do
    local b = self.batches[id]
    if b.state == "copying" then
      if self:copy(b) then self:start_import(b) end
    elseif b.state == "copied" then
      self:start_import(b)
    elseif b.state == "imported" then
      self:cleanup(b)
      if self.move then self:move_done(b) end
      self:set_batch(b, { state = "done" })
    elseif b.state == "running" then
      local ok, err = b.op:get()
      if not ok and err.http_status == 404 then
        -- the operation is gone (deleted with its dataset, or never known here): import again
        self.log(("batch %s: %s; importing it again"):format(id, tostring(err)))
        b.op = nil
        self:set_batch(b, { state = "copying" })
      elseif not ok then
        if self.classify(err) ~= "retry" then self.log(("batch %s: %s"):format(id, tostring(err))) end
      elseif b.op.done then
        self:finish(b)
      end
    end
  end
  -- forget finished batches
  local keep = {}
  for _, id in ipairs(self.batch_order) do
    if UNFINISHED[self.batches[id].state] then keep[#keep + 1] = id else self.batches[id] = nil end
  end
  self.batch_order = keep
end

--- One round: list, settle, gather the stable new objects into batches (at most
-- `max_in_flight` unfinished) and start them. Returns the round's summary or nil, Error.
function Watch:round()
  local objs, err = self:list()
  if not objs then return nil, err end
  local stable, changing = self:observe(objs)
  if changing > 0 and self.settle > 0 and not self.stopping then
    pause(self.settle, self.client)
    objs, err = self:list()
    if not objs then return nil, err end
    stable, changing = self:observe(objs)
  end
  table.sort(stable, function(a, b) return a.name < b.name end)
  -- a batch done since the last look frees its slot for this round's files
  self:poll()
  self.totals.rounds = self.totals.rounds + 1
  local summary = { round = self.totals.rounds, listed = #objs, new = #stable, changing = changing, batches = {} }
  local i = 1
  while i <= #stable and self:in_flight() < self.max_in_flight do
    local id = new_batch_id()
    local b = { id = id, state = "copying", files = {}, attempts = 0,
                uri = "gs://" .. self.batches_at.bucket .. "/" .. self.batches_at.prefix .. id .. "/**" }
    for j = i, math.min(#stable, i + self.batch_size - 1) do
      local o = stable[j]
      local f = { uri = o.uri, name = o.name }
      self:set_file(f, { state = "batched", generation = o.generation, size = o.size,
                         created = o.timeCreated, batch = id, operation = false, stored = false,
                         code = false, reason = false, moved = false })
    end
    for j = i, math.min(#stable, i + self.batch_size - 1) do b.files[#b.files + 1] = self.files[stable[j].uri] end
    i = i + self.batch_size
    self.batches[id] = b
    self.batch_order[#self.batch_order + 1] = id
    self.totals.batches = self.totals.batches + 1
    self:set_batch(b, { state = "copying" })
    summary.batches[#summary.batches + 1] = { id = id, files = #b.files }
  end
  summary.waiting = #stable - math.min(i - 1, #stable)
  self.waiting = summary.waiting
  self:poll()
  local line = ("round %d: %d listed, %d new%s"):format(summary.round, summary.listed, summary.new,
    changing > 0 and (", %d still changing"):format(changing) or "")
  for _, sb in ipairs(summary.batches) do line = line .. ("; batch %s: %d files"):format(sb.id, sb.files) end
  if summary.waiting > 0 then line = line .. ("; %d wait for a free slot"):format(summary.waiting) end
  summary.in_flight = self:in_flight()
  line = line .. ("; %d in flight; %d imported, %d failed so far"):format(summary.in_flight,
    self.totals.imported, self.totals.failed)
  self.log(line)
  if self.hooks.on_round then self.hooks.on_round(summary) end
  return summary
end

--- Ask `run` to stop after the current step (from a hook).
function Watch:stop() self.stopping = true end

--- The report of the whole watch (every object ever taken, with its latest outcome), as
-- dicomgcs.report builds it: done → succeeded, failed → failed, anything else → unknown.
function Watch:report()
  local outcomes = {}
  for _, uri in ipairs(self.order) do
    local f = self.files[uri]
    if f.state == "done" then outcomes[uri] = { outcome = "succeeded" }
    elseif f.state == "failed" then outcomes[uri] = { outcome = "failed", code = f.code, reason = f.reason }
    else outcomes[uri] = { outcome = "unknown", reason = "not imported yet (" .. tostring(f.state) .. ")" } end
  end
  return report.build(self.order, outcomes)
end

function Watch:write_report()
  if not self.report_base then return end
  local info = { format = self.report_format, kind = "watch", title = "Watch of " .. self.uri,
                 source = self.uri, store = self.dicom_store }
  for k, v in pairs(self.report_info) do info[k] = v end
  local ok, err = report.write(self:report(), self.report_base, info)
  if not ok then self.log("warning: cannot write the report: " .. tostring(err)) end
end

--- Run rounds every `every` seconds and look at running batches in between, until `rounds`
-- rounds are done and their batches finished, `stop()` is called, or Ctrl-C. A stop never
-- cancels an operation: it goes on in the server and the next start re-attaches it.
-- Returns a summary `{ totals = {rounds=, batches=, operations=, imported=, failed=, moved=,
-- reattached=, throttled=}, in_flight = n, stopped = "rounds"|"stop"|"interrupted", report = r }`.
-- Errors other than an interrupt are raised after the manifest is closed.
function Watch:run()
  local stopped
  -- One guard for the whole watch: a Ctrl-C that lands between waits (a listing, a manifest
  -- write) is held here and acted on at the next turn, never raised inside some pcall that
  -- would take it for that step's failure.
  local guard = core.sigint_guard()
  local ok, err = pcall(function()
    local next_round = core.monotime()
    while true do
      if guard:caught() then error("interrupted!", 0) end
      if self.stopping then stopped = "stop"; break end
      local now = core.monotime()
      -- past `rounds`, go on only while files found wait for a free slot
      local more_rounds = not self.rounds or self.totals.rounds < self.rounds or (self.waiting or 0) > 0
      if more_rounds and now >= next_round then
        local _, rerr = self:round()
        -- an interrupt that landed inside a listing's pcall comes back as its error
        if rerr and errors.is_interrupt(rerr) then error(rerr, 0) end
        if rerr then self.log("round failed: " .. tostring(rerr)) end
        -- a fixed schedule: a slow round is not followed by a late one
        repeat next_round = next_round + self.every until next_round > core.monotime()
      else
        self:poll()
      end
      local last = self.rounds and self.totals.rounds >= self.rounds and (self.waiting or 0) == 0
      if last and self:in_flight() == 0 then stopped = "rounds"; break end
      local wait = self.poll_every
      if not last then wait = math.min(wait, next_round - core.monotime()) end
      pause(wait, self.client)
    end
  end)
  guard:close()
  if not ok then
    if not errors.is_interrupt(err) then
      if self.manifest then self.manifest:close() end
      error(err, 0)
    end
    stopped = "interrupted"
    local n = 0
    for _, id in ipairs(self.batch_order) do if self.batches[id].state == "running" then n = n + 1 end end
    self.log(("stopped; %d operation(s) go on in the server and are re-attached on the next start"):format(n))
  end
  self:write_report()
  if self.manifest then self.manifest:close() end
  return { totals = self.totals, in_flight = self:in_flight(), stopped = stopped, report = self:report() }
end

watch.Watch = Watch
return watch
