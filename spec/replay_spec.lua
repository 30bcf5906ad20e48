-- Requests that must not be replayed blindly (issue #15 §4), against the emulator's faults:
-- the connection is cut after the server handled the request (resetAfterHandling), or the
-- server answers 500 / 503 / 429. The emulator's request log counts what reached the server.
local env = require "spec.support.env"
local dicomgcs = require "dicomgcs"
local http = require "dicomgcs.http"

describe("non-replayable requests", function()
  local emu, c, bucket

  local function admin(method, path, body) return assert(env.admin(method, path, body, emu)) end
  local function fault(rule) return admin("POST", "faults", rule).faults[1].id end
  local function posts(re)
    local n = 0
    for _, r in ipairs(admin("GET", "requests?path=" .. http.escape(re)).requests) do
      if r.method == "POST" then n = n + 1 end
    end
    return n
  end
  local function imports()
    local n = 0
    for _, op in ipairs(assert(c:list_operations{})) do
      if (op.method or ""):match("ImportDicomData$") then n = n + 1 end
    end
    return n
  end

  setup(function()
    emu = env.start_emulator()
    c = assert(dicomgcs.client{ project = "replay-project", location = "us-central1", emulator = emu.host,
      token = "t", dataset = env.unique("rp"), dicom_store = "st",
      retry = { max_attempts = 4, base_delay_ms = 5, max_delay_ms = 20, quota_base_delay_ms = 5, quota_max_delay_ms = 20 } })
    assert(c:create_dataset{}); assert(c:create_dicom_store{})
    bucket = env.bucket(c, nil, "import")
    env.upload_testdata(c, "gs://" .. bucket .. "/in/", { studies = 1, series = 1, instances = 2 }, "replay")
  end)
  teardown(function() if c then c:close() end; if emu then emu.stop() end end)
  before_each(function() admin("DELETE", "faults"); admin("DELETE", "requests") end)

  -- One :import under a fault on its POST: returns the import's results, the POSTs that reached
  -- the server, and how many import operations it added.
  local function faulted_import(rule)
    local before = imports()
    rule.path, rule.method, rule.count = ":import$", "POST", 1
    fault(rule)
    local op, err = c:import{ uri = "gs://" .. bucket .. "/in/**.dcm" }
    return op, err, posts(":import$"), imports() - before
  end

  it("adopts the one operation an :import started when the answer was lost, without resending", function()
    local op, err, sent, added = faulted_import{ resetAfterHandling = true }
    assert.truthy(op, err and tostring(err))
    assert.is_true(op.adopted)
    assert.are.equal(1, sent)
    assert.are.equal(1, added)
    local done = assert(op:wait{ interval = 0.05 })
    assert.are.equal(2, done.counter.success)
  end)

  it("does not resend an :import after a 500, and says what to check", function()
    local op, err, sent, added = faulted_import{ status = 500 }
    assert.is_nil(op)
    assert.are.equal("ambiguous", err.kind)
    assert.are.equal("ambiguous", require("dicomgcs.errors").class(err))
    assert.truthy(err.hint:find("operations list", 1, true), err.hint)
    assert.are.equal(1, sent)
    assert.are.equal(0, added)
  end)

  for _, code in ipairs{ 503, 429 } do
    it("resends an :import refused with " .. code .. " (it surely did not run): one operation", function()
      local op, err, sent, added = faulted_import{ status = code }
      assert.truthy(op, err and tostring(err))
      assert.is_nil(op.adopted)
      assert.are.equal(2, sent)
      assert.are.equal(1, added)
      assert(op:wait{ interval = 0.05 })
    end)
  end

  it("resends an :import when the connection could not be made", function()
    local cl = assert(dicomgcs.client{ project = "replay-project", location = "us-central1",
      emulator = "127.0.0.1:" .. env.free_port(), token = "t", dataset = "x", dicom_store = "y",
      retry = { max_attempts = 3, base_delay_ms = 1, max_delay_ms = 2 } })
    local _, err = cl:import{ uri = "gs://" .. bucket .. "/in/**.dcm", check_permissions = false }
    assert.are.equal("transport", err.kind)
    assert.are.equal(3, err.attempts)
    cl:close()
  end)

  it("takes an existing store as the success of a create whose answer was lost", function()
    fault{ path = "/dicomStores$", method = "POST", resetAfterHandling = true, count = 1 }
    local st = assert(c:create_dicom_store{ dicom_store = "lost-answer" })
    assert.truthy(st.name:find("/dicomStores/lost%-answer$"), st.name)
    assert.are.equal(1, posts("/dicomStores"))
  end)

  it("takes a readable bucket as the success of a create whose answer was lost", function()
    local b = env.unique("rpb")
    fault{ path = "^/storage/v1/b$", method = "POST", resetAfterHandling = true, count = 1 }
    local bk = assert(c.storage:create_bucket(b))
    assert.are.equal(b, bk.name)
    assert.are.equal(1, posts("^/storage/v1/b%?"))
  end)

  it("takes an existing dataset as the success of a create whose answer was lost", function()
    local d = env.unique("rpd")
    fault{ path = "/datasets$", method = "POST", resetAfterHandling = true, count = 1 }
    local ds = assert(c:create_dataset{ dataset = d })
    assert.are.equal(d, ds.name:match("/datasets/([^/]+)$"))
    assert.are.equal(1, posts("/datasets%?"))
  end)
end)
