-- Quotas as Google enforces them (issue #15 §3): per-minute windows, 429 RESOURCE_EXHAUSTED
-- without Retry-After. The emulator's window is shortened with --quota-window-ms so the spec
-- runs in seconds; the client's quota waits (full jitter, 64 s cap, 10-minute budget) are
-- shortened through the retry policy. Nothing here sleeps: the engine waits.
local env = require "spec.support.env"
local file = require "spec.support.file"
local dicomgcs = require "dicomgcs"

-- n DICOM files that differ only by SOP Instance UID (same length), from one generated file.
local function copies(dir, n)
  local gen = env.tmpdir("quota-gen")
  local one = assert(require("dicomgcs.testdata").generate{ dir = gen, studies = 1, series = 1, instances = 1,
                                                             rows = 8, cols = 8 })[1]
  local bytes = file.read(one.path)
  local uid = one.sop_uid
  -- vary the last 4 digits of the UID's longest component (a random seed: never 0-led)
  local at, stop = nil, nil
  for s, e in uid:gmatch("()%d+()") do if not at or e - s > stop - at then at, stop = s, e end end
  assert(stop - at >= 8, "unexpected UID " .. uid)
  local pat = uid:gsub("%p", "%%%0")
  for i = 1, n do
    local new = uid:sub(1, stop - 5) .. ("%04d"):format(i) .. uid:sub(stop)
    file.write(("%s/f%04d.dcm"):format(dir, i), (bytes:gsub(pat, new)))
  end
end

describe("quota windows", function()
  local emu
  setup(function()
    emu = env.start_emulator{ "--quota", "dicomweb-write=60/min", "--quota-window-ms", "1000" }
  end)
  teardown(function() if emu then emu.stop() end end)

  it("stores 300 files under a 60-writes-per-window quota with 0 failures", function()
    local c = assert(dicomgcs.client{ project = "quota-project", location = "us-central1", emulator = emu.host,
      token = "t", dataset = env.unique("q"), dicom_store = "st",
      -- ordinary retries would give up within ~0.1 s; only the quota waits can carry this
      retry = { max_attempts = 3, base_delay_ms = 10, max_delay_ms = 50,
                quota_base_delay_ms = 100, quota_max_delay_ms = 2000 } })
    assert(c:create_dataset{}); assert(c:create_dicom_store{})
    local dir = env.tmpdir("quota-files")
    copies(dir, 300)
    local throttled_seen, min_cap = 0, math.huge
    local eng = c.transport.engine
    local s = assert(c:dicomweb():store(dir, { concurrency = 16, on_progress = function(p)
      if p.throttled then
        throttled_seen = throttled_seen + 1
        assert.is_true(p.throttled > 0 and p.throttled <= 2.0 + 0.1)
      end
      if p.result then min_cap = math.min(min_cap, eng:stats().cap) end  -- (not from inside the engine)
    end }))
    assert.are.equal(300, s.total)
    assert.are.equal(0, s.failed, s.failed > 0 and tostring(s.results[1].reason) or nil)
    assert.are.equal(300, s.stored)
    local q = assert(env.admin("GET", "quotas", nil, emu))
    assert.is_true(q.refused > 0, "the emulator refused nothing: the quota was not exercised")
    assert.is_true(s.quota_waits >= q.refused, ("%d waits for %d refusals"):format(s.quota_waits, q.refused))
    assert.is_true(throttled_seen > 0, "progress never said it was throttled")
    assert.is_true(min_cap < 16, "concurrency was not lowered while throttled")
    -- 429s were answered without Retry-After, in Google's error shape
    local log = assert(env.admin("GET", "requests?path=dicomWeb", nil, emu)).requests
    local n429 = 0
    for _, r in ipairs(log) do if r.status == 429 then n429 = n429 + 1 end end
    assert.are.equal(q.refused, n429)
    c:close()
  end)

  it("the command line says 'throttled by quota, waiting N s' and still stores everything", function()
    local c = assert(dicomgcs.client{ project = "quota-project", location = "us-central1", emulator = emu.host,
      token = "t", dataset = env.unique("qc"), dicom_store = "st" })
    assert(c:create_dataset{}); assert(c:create_dicom_store{})
    c:close()
    local dir = env.tmpdir("quota-cli")
    copies(dir, 6)
    assert(env.admin("POST", "quotas", { windowMs = 500, limits = { ["dicomweb-write"] = 2 } }, emu))
    local out, code, err = env.dicomgcs(("dicomweb store %s --project=quota-project --location=us-central1 " ..
      "--dataset=%s --dicom-store=st --concurrency=6 --format=json"):format(env.quote(dir), c.dataset), emu.host)
    assert.are.equal(0, code, err)
    assert.are.equal(6, require("dicomgcs.json").decode(out).stored)
    assert.truthy(err:find("throttled by quota, waiting %d+ s"), err)
    assert(env.admin("POST", "quotas", { windowMs = 1000, limits = { ["dicomweb-write"] = 60 } }, emu))
  end)

  it("records a throttled poll in op.events", function()
    local c = assert(dicomgcs.client{ project = "quota-project", location = "us-central1", emulator = emu.host,
      token = "t", dataset = env.unique("qo"), dicom_store = "st",
      retry = { quota_base_delay_ms = 50, quota_max_delay_ms = 200 } })
    assert(c:create_dataset{})
    local op
    for _, o in ipairs(assert(c:list_operations{})) do if o.method:match("CreateDataset$") then op = o end end
    assert.truthy(op)
    assert(env.admin("POST", "quotas", { windowMs = 2000, limits = { healthcare = 1 } }, emu))
    assert(c:get_dataset{})                                 -- uses up this window
    assert(op:get())                                        -- 429 until the next window, waited out
    assert(env.admin("POST", "quotas", { limits = { healthcare = require("dicomgcs.json").null } }, emu))
    assert.are.equal(1, #op.events)
    assert.are.equal("throttle", op.events[1].kind)
    assert.truthy(op.events[1].detail:find("throttled by quota", 1, true))
    assert.is_true(op.events[1].t >= os.time() - 60)
    c:close()
  end)

  it("answers 429 RESOURCE_EXHAUSTED without Retry-After, and the quota is settable by the admin API", function()
    local core = require "dicomgcs.core"
    local json = require "dicomgcs.json"
    assert(env.admin("POST", "quotas", { windowMs = 60000, limits = { healthcare = 1 } }, emu))
    local url = emu.url .. "/v1/projects/p/locations/l/datasets"
    local first = assert(core.fetch{ url = url, headers = { "Authorization: Bearer t" }, retry = { max_attempts = 1 } })
    assert.are.equal(200, first.status)
    local res = assert(core.fetch{ url = url, headers = { "Authorization: Bearer t" }, retry = { max_attempts = 1, quota_budget_ms = 0 } })
    assert.are.equal(429, res.status)
    assert.is_nil(res.headers["retry-after"])
    local doc = json.decode(res.body)
    assert.are.equal(429, doc.error.code)
    assert.are.equal("RESOURCE_EXHAUSTED", doc.error.status)
    local err = require("dicomgcs.errors").from_response(res, url)
    assert.are.equal("quota", err.class)
    assert.is_true(err.retryable)
    assert(env.admin("POST", "quotas", { limits = { healthcare = json.null } }, emu))
    assert.are.equal(200, assert(core.fetch{ url = url, headers = { "Authorization: Bearer t" } }).status)
  end)
end)

describe("operation progress while throttled", function()
  it("says 'throttled by quota, waiting N s' on both the bar and plain lines", function()
    local progress = require "dicomgcs.cli.progress"
    local wait = 6.2
    local op = { counter = { success = 1, failure = 0, pending = 3 }, done = false,
                 id = function() return "123" end,
                 transport = { throttle = function() return wait and { wait = wait, waits = 2 } end } }
    for _, tty in ipairs{ true, false } do
      local out = {}
      local stream = { write = function(_, ...) for _, v in ipairs{ ... } do out[#out + 1] = v end end, flush = function() end }
      local r = progress.operation(stream, tty)
      wait = 6.2
      r.report(op)
      assert.truthy(table.concat(out):find("throttled by quota, waiting 7 s", 1, true), table.concat(out))
      out = {}
      wait = nil
      r.report(op)
      assert.is_nil(table.concat(out):find("throttled", 1, true))
    end
  end)
end)
