-- The reliability soak (`make soak`, issue #14 §8): FILES distinct DICOM files go through
-- stage upload → import `**` → export → download, FILES/5 more through STOW-RS, against an
-- emulator that injects faults on every service (429/503 with and without Retry-After,
-- connection resets mid-body both ways, stalls), issues 5-second tokens, and is killed
-- (SIGKILL) and restarted once on the same --data folder and port while the import runs.
-- Every file is then accounted for by name and CRC32C: staged objects, instances in the store
-- (QIDO), exported objects, downloaded files. Everything goes through the public Lua API; the
-- only retries here are whole-call resumes of what the API reports as failed (counted and
-- printed), never a silent re-send.
--   lua5.4 scripts/soak.lua WORKDIR [FILES [sabotage]]   (run by scripts/soak; FILES a multiple of 50)
-- Last line: `soak: N files, lost L, duplicated D, corrupted C, faults F, restarts R`; exits 1
-- unless L, D and C are 0 and the restart happened.
local dicomgcs = require "dicomgcs"
local core = require "dicomgcs.core"
local json = require "dicomgcs.json"
local testdata = require "dicomgcs.testdata"

local work = assert(arg[1], "usage: soak.lua WORKDIR [FILES]")
local FILES = math.tointeger(tonumber(arg[2] or "5000"))
assert(FILES and FILES >= 50 and FILES % 50 == 0, "FILES must be a multiple of 50")
local STOWS = FILES // 5
local BUCKET, PROJECT = "soak-bucket", "soak-project"
local root = os.getenv("DICOMGCS_ROOT") or "."
local t_start = core.monotime()

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function say(fmt, ...) io.stderr:write(("[soak %6.1fs] "):format(core.monotime() - t_start), fmt:format(...), "\n") end
-- Children (the emulator, curl, dcmtk) run without LD_PRELOAD: under `make sanitize` the
-- preloaded ASan runtime is meant for this Lua process, and curl deadlocks at exit under it.
local function sh(cmd)
  local p = assert(io.popen("unset LD_PRELOAD; " .. cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end
local function must(cmd) local ok, out = sh(cmd); if not ok then error(cmd .. " failed: " .. out) end return out end
local function write(path, s) local f = assert(io.open(path, "wb")); f:write(s); f:close() end
local function read(path) local f = io.open(path, "rb"); if not f then return nil end local s = f:read("a"); f:close(); return s end

-- ---- the emulator: strict auth with 5-second tokens, faults on every service ----
local data = work .. "/emulator"
local key = work .. "/key.pem"
must("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " .. q(key))
local function sa(token_uri)
  return json.encode{ type = "service_account", project_id = PROJECT, private_key_id = "soak-1", private_key = read(key),
    client_email = "soak@" .. PROJECT .. ".iam.gserviceaccount.com", client_id = "100000000000000000042",
    token_uri = token_uri }
end
write(work .. "/sa_boot.json", sa("https://oauth2.googleapis.com/token"))

-- 10% of requests get 429/503 (half of them with Retry-After), 2% of responses to GETs are cut
-- mid-body, 2% of request bodies (uploads, STOW) are cut mid-body, 1% stall 1.5 s. Each rule
-- falls through to the next when its share lets a request pass; shares are conditional.
local function faults()
  local rules, left = {}, 1.0
  local function add(share, r)
    r.path, r.share, r.fallThrough = r.path or "^/", share / left, true
    if not r.method then left = left - share end
    rules[#rules + 1] = r
  end
  add(0.025, { status = 429, retryAfter = 1 })
  add(0.025, { status = 503, retryAfter = 1 })
  add(0.025, { status = 429 })
  add(0.025, { status = 503 })
  add(0.02, { method = "GET", resetAfterBytes = 200 })
  add(0.02, { method = "POST", resetRequestAfterBytes = 300 })
  add(0.02, { method = "PUT", resetRequestAfterBytes = 300 })
  add(0.01, { stallMs = 1500 })
  return json.encode(rules)
end
-- enough per-file delay that the import is still running when the first polls arrive
local op_delay = math.max(1, 4000 // FILES)
local emu_args = table.concat({ "--data", q(data), "--strict-auth", "--service-account", q(work .. "/sa_boot.json"),
  "--token-lifetime", "5", "--grant-service-agent", "--op-delay-ms", tostring(op_delay), "--faults", q(faults()) }, " ")
local env_out = must(root .. "/emulator/start " .. emu_args)
local host = assert(env_out:match("DICOMGCS_EMULATOR_HOST=(%S+)"), env_out)
local port = host:match(":(%d+)$")
say("emulator on %s (op delay %d ms)", host, op_delay)

local function admin(path)
  local ok, out = sh("curl -sS --max-time 10 http://" .. host .. "/_emulator/" .. path)
  if not ok then return nil, out end
  return json.decode(out)
end
local function fired()
  local st = assert(admin("faults"))
  local n = 0
  for _, r in ipairs(st.faults) do n = n + r.fired end
  return n
end

-- The strict-auth emulator's key: emulator mode takes credentials only when given explicitly.
local cred = work .. "/sa.json"
write(cred, sa("http://" .. host .. "/token"))
local c = assert(dicomgcs.client{ project = PROJECT, location = "us-central1", dataset = "soak", dicom_store = "soak",
  emulator = host, emulator_credentials = cred })

-- ---- 1. test data ----
local seed = math.random(100000000, 999999999)
local function generate(dir, n, prefix)
  local got = assert(testdata.generate_many{ dir = dir, count = n, prefix = prefix, uid_seed = seed .. #prefix .. prefix:byte() })
  assert(#got == n)
  for _, f in ipairs(got) do f.crc32c = assert(core.hash_file(f.path, { crc32c = true })).crc32c end
  return got
end
local staged = generate(work .. "/stage", FILES, "p")
local stowed = generate(work .. "/stow", STOWS, "w")
local expected, expected_staged = {}, {} -- sop uid -> file
for _, f in ipairs(staged) do expected[f.sop_uid] = f; expected_staged[f.sop_uid] = f end
for _, f in ipairs(stowed) do expected[f.sop_uid] = f end
say("generated %d + %d files", FILES, STOWS)

local resumes = {}
local function resume(what) resumes[what] = (resumes[what] or 0) + 1 end

-- ---- 2. bucket, dataset, store; stage upload ----
assert(c.storage:create_bucket(BUCKET))
assert(c:create_dataset{ dataset = "soak" })
assert(c:create_dicom_store{ dicom_store = "soak" })
for pass = 1, 5 do
  local s = assert(c.storage:upload(work .. "/stage", "gs://" .. BUCKET .. "/stage/"))
  say("upload pass %d: %d ok, %d skipped, %d failed", pass, s.ok, s.skipped or 0, s.failed)
  if s.failed == 0 then break end
  resume("upload")
end

-- ---- 3. import with **, the emulator killed and restarted while it runs ----
local restarts, fired_before = 0, 0
local function kill_and_restart()
  fired_before = fired()
  local pid = assert(read(data .. "/emulator.pid")):match("%d+")
  must("kill -KILL " .. pid)
  restarts = restarts + 1
  say("emulator (pid %s) killed; restarting it on port %s in 1 s", pid, port)
  -- the client keeps polling meanwhile and sees refused connections until it is back
  must("(sleep 1; " .. root .. "/emulator/start " .. emu_args .. " --port " .. port .. " >" .. q(work .. "/restart.log") ..
    " 2>&1) >/dev/null 2>&1 &")
end
local op = assert(c:import{ uri = "gs://" .. BUCKET .. "/stage/**" })
local done, err = op:wait{ interval = 0.25, on_progress = function(o)
  if restarts == 0 and not o.done and o.counter.success > 0 then kill_and_restart() end
end }
if not done then error("import failed: " .. tostring(err)) end
say("import: %d succeeded, %d failed", op.counter.success, op.counter.failure)
assert(restarts == 1, "the import finished before the emulator could be killed; lower the poll interval")
if op.counter.failure > 0 then
  local r = assert(c:retry_failed(op))
  resume("import")
  say("retried failed imports: %d succeeded, %d failed", r.succeeded, r.failed)
end

-- ---- 4. STOW-RS ----
local dw = assert(c:dicomweb())
local todo = { work .. "/stow" }
for pass = 1, 5 do
  local s = assert(dw:store(todo, { concurrency = 8 }))
  say("STOW pass %d: %d stored, %d already present, %d failed", pass, s.stored, s.already_present, s.failed)
  if s.failed == 0 then break end
  resume("stow")
  todo = {}
  for _, r in ipairs(s.results) do if r.status == "failed" then todo[#todo + 1] = r.path end end
end

-- ---- 5. export, download ----
local exp = assert(c:export{ uri_prefix = "gs://" .. BUCKET .. "/export/", mime_type = "application/dicom" })
done, err = exp:wait{ interval = 0.25 }
if not done then error("export failed: " .. tostring(err)) end
say("export: %d succeeded, %d failed", exp.counter.success, exp.counter.failure)
for pass = 1, 5 do
  local s = assert(c.storage:download("gs://" .. BUCKET .. "/export/", work .. "/down"))
  say("download pass %d: %d ok, %d skipped, %d failed", pass, s.ok, s.skipped or 0, s.failed)
  if s.failed == 0 then break end
  resume("download")
end

-- `sabotage` (the soak's own spec): lose, duplicate and corrupt one downloaded file each, to
-- prove that the accounting below catches all three.
if arg[3] == "sabotage" then
  local list = {}
  for path in must("find " .. q(work .. "/down") .. " -type f -name '*.dcm' | sort"):gmatch("[^\n]+") do list[#list + 1] = path end
  os.remove(list[1])
  must("mkdir -p " .. q(work .. "/down/extra") .. " && cp " .. q(list[2]) .. " " .. q(work .. "/down/extra/"))
  local b = assert(read(list[3]))
  write(list[3], b:sub(1, -2) .. string.char((b:byte(-1) + 1) % 256))
  say("sabotaged: removed %s, duplicated %s, corrupted %s", list[1], list[2], list[3])
end

-- ---- 6. account for every file ----
local problems = { lost = {}, duplicated = {}, corrupted = {} }
local function mark(kind, uid, where) problems[kind][uid] = problems[kind][uid] or where end
local function tally(where, seen, want) -- seen: sop uid -> list of crc32c (false: not checked)
  for uid, f in pairs(want) do
    local list = seen[uid]
    if not list then mark("lost", uid, where)
    else
      if #list > 1 then mark("duplicated", uid, where) end
      for _, crc in ipairs(list) do if crc and crc ~= f.crc32c then mark("corrupted", uid, where) end end
    end
  end
  for uid in pairs(seen) do if not want[uid] then mark("duplicated", uid, where .. " (unexpected)") end end
end
local function add(seen, uid, crc) seen[uid] = seen[uid] or {}; table.insert(seen[uid], crc or false) end

local by_rel = {}
for _, f in ipairs(staged) do by_rel[f.rel] = f end
local seen = {}
for o in c.storage:objects(BUCKET, { prefix = "stage/" }) do
  local f = by_rel[o.name:sub(#"stage/" + 1)]
  add(seen, f and f.sop_uid or o.name, o.crc32c)
end
tally("staged", seen, expected_staged)

seen = {}
for inst in dw:search("instances", { include_fields = { "00080018" } }) do
  local v = inst["00080018"] and inst["00080018"].Value
  add(seen, v and v[1] or "?", nil)
end
tally("store", seen, expected)

seen = {}
for o in c.storage:objects(BUCKET, { prefix = "export/" }) do
  add(seen, o.name:match("([^/]+)%.dcm$") or o.name, o.crc32c)
end
tally("exported", seen, expected)

seen = {}
for path in must("find " .. q(work .. "/down") .. " -type f"):gmatch("[^\n]+") do
  add(seen, path:match("([^/]+)%.dcm$") or path, assert(core.hash_file(path, { crc32c = true })).crc32c)
end
tally("downloaded", seen, expected)

local counts = {}
for kind, set in pairs(problems) do
  local n = 0
  for uid, where in pairs(set) do
    n = n + 1
    if n <= 10 then say("%s: %s (%s)", kind, uid, where) end
  end
  counts[kind] = n
end
local f_total = fired_before + (fired() or 0)
local rs = {}
for k, v in pairs(resumes) do rs[#rs + 1] = k .. " " .. v end
say("done in %.1f s; whole-call resumes: %s", core.monotime() - t_start, #rs > 0 and table.concat(rs, ", ") or "none")
print(("soak: %d files, lost %d, duplicated %d, corrupted %d, faults %d, restarts %d"):format(
  FILES + STOWS, counts.lost, counts.duplicated, counts.corrupted, f_total, restarts))
os.exit((counts.lost + counts.duplicated + counts.corrupted == 0 and restarts == 1) and 0 or 1)
